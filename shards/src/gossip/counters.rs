//! [`GossipCounters`]: what the plane did, for the shard's stats (the metrics `published`,
//! `relayed`, `delivered`, `duplicates dropped`, `budget-shed` and the repair traffic).

/// Monotonic counters of one [`GossipPlane`](super::GossipPlane).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GossipCounters {
    /// Messages published by local clients and accepted.
    pub published: u64,
    /// Eager pushes: EVENT frames queued to peers for new messages (not IWANT answers).
    pub relayed: u64,
    /// Deliveries queued to local subscribers (one per subscriber and message).
    pub delivered: u64,
    /// EVENTs of messages already seen, dropped.
    pub duplicates: u64,
    /// New messages dropped because a topic's or a peer's burst budget was spent, and IWANTs
    /// left unanswered for the same reason.
    pub budget_shed: u64,
    /// EVENTs dropped for `hops` above `max_hops`.
    pub hop_limited: u64,
    /// EVENT payloads refused as `malformed` (bad CBOR, or a `msg_id` that does not match).
    pub malformed: u64,
    /// IHAVE frames sent, and the ids they carried; IHAVE frames received.
    pub ihave_sent: u64,
    pub ihave_ids_sent: u64,
    pub ihave_received: u64,
    /// IWANT frames sent, and the ids they asked for; IWANT frames received.
    pub iwant_sent: u64,
    pub iwant_ids_sent: u64,
    pub iwant_received: u64,
    /// EVENTs sent in answer to IWANT.
    pub repaired: u64,
    /// IWANTs answered with a message the peer first pulled from here, and received messages
    /// that arrived first through such a pull (the repairs that mattered).
    pub pulled: u64,
    /// Outputs dropped because the engine let a queue fill: frames to peers, deliveries.
    pub frames_dropped: u64,
    pub deliveries_dropped: u64,
    /// Messages dropped because the topic table was full of topics in use.
    pub topics_full: u64,
    /// `handle_peer_up` refused past `max_peers`.
    pub peers_refused: u64,
}
