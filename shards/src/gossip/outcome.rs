//! What the plane's inputs can come to besides success: [`EventOutcome`] for an EVENT from a
//! peer (every outcome counted, none needing an answer), [`PublishError`] and
//! [`SubscribeError`] for a local client (each maps to the error body the engine sends).

use ronode_proto::limits::{MAX_CLOCK_SKEW_S, MAX_TOPIC_BYTES};
use ronode_proto::reason::Reason;

/// What became of an EVENT from a peer that decoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventOutcome {
    /// New here: delivered to local subscribers, pushed on, cached for repair.
    Accepted,
    /// Already seen: dropped (the peer is noted as holding it).
    Duplicate,
    /// The topic's or the peer's burst budget was spent: dropped, counted `budget_shed`.
    Shed,
    /// `hops` above `max_hops`: dropped.
    HopLimited,
    /// The topic table is full of topics with subscribers: dropped.
    TopicsFull,
    /// Not from a peer the plane tracks (`handle_peer_up` first): dropped.
    UnknownPeer,
}

/// Why a local publish was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PublishError {
    #[error("topic must be 1 to {MAX_TOPIC_BYTES} bytes")]
    BadTopic,
    /// The same message (topic, ts, data: so the same id) was already published or received:
    /// a publisher's retry. Not delivered again; the engine acknowledges it as a success.
    #[error("the same message (topic, ts, data) was already published")]
    Duplicate,
    /// The publisher's `ts` is more than [`MAX_CLOCK_SKEW_S`] s away from this node's clock.
    #[error("message ts {ts} is more than {MAX_CLOCK_SKEW_S} s away from the node's clock (now {now_ms})")]
    BadTs { ts: u64, now_ms: u64 },
    #[error("the topic's burst budget is spent")]
    Shed { retry_after_ms: u64 },
    #[error("too many topics in use")]
    TopicsFull,
}

impl PublishError {
    /// The error body's reason for the client (429 for a spent budget, 503 for a full table).
    pub fn reason(&self) -> Reason {
        match self {
            PublishError::BadTopic | PublishError::Duplicate => Reason::Malformed,
            PublishError::BadTs { .. } => Reason::BadTs,
            PublishError::Shed { .. } => Reason::Quota,
            PublishError::TopicsFull => Reason::Busy,
        }
    }
}

/// Why a subscription was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SubscribeError {
    #[error("topic must be 1 to {MAX_TOPIC_BYTES} bytes")]
    BadTopic,
    #[error("too many subscriptions or topics")]
    Full,
}
