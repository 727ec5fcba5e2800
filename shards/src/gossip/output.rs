//! The plane's outputs: [`PeerFrame`] (an EVENT, IHAVE or IWANT for a peer) and [`Delivery`]
//! (a message for a local subscriber).

use bytes::Bytes;
use ronode_proto::flags::Flags;
use ronode_proto::id::NodeId;
use ronode_proto::msg::gossip::{GossipRequest, IHave, IWant, MsgId};

/// A frame for `peer` on app 2.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerFrame {
    pub peer: NodeId,
    pub msg: PeerMsg,
}

/// What a [`PeerFrame`] carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PeerMsg {
    /// An EVENT whose payload is the encoded `GossipEvent` (shared `Bytes`: every peer a
    /// message goes to gets the same buffer). `repair` is true for an answer to IWANT, false
    /// for an eager push.
    Event { payload: Bytes, repair: bool },
    /// REQ `{"ihave": ..}`: ids this node holds and the peer is not known to.
    IHave(IHave),
    /// REQ `{"iwant": ..}`: ids the peer announced and this node lacks.
    IWant(IWant),
}

impl PeerMsg {
    /// EVENT for a message, REQ for IHAVE and IWANT (the engine gives a REQ its corr_id from
    /// the session's numbering, and takes the peer's RESP 200 `{"ok": true}`).
    pub fn flags(&self) -> Flags {
        match self {
            PeerMsg::Event { .. } => Flags::EVENT,
            PeerMsg::IHave(_) | PeerMsg::IWant(_) => Flags::REQ,
        }
    }

    /// The frame's payload.
    pub fn payload(&self) -> Bytes {
        match self {
            PeerMsg::Event { payload, .. } => payload.clone(),
            PeerMsg::IHave(ihave) => encode_request(GossipRequest::IHave(ihave.clone())),
            PeerMsg::IWant(iwant) => encode_request(GossipRequest::IWant(iwant.clone())),
        }
    }
}

fn encode_request(req: GossipRequest) -> Bytes {
    let mut out = Vec::new();
    req.encode(&mut out);
    Bytes::from(out)
}

/// A message for a local subscriber: `payload` is the EVENT's payload (as received, or as
/// published here), ready to send on the subscriber's session as an EVENT frame on app 2.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery<S> {
    pub subscriber: S,
    pub msg_id: MsgId,
    pub payload: Bytes,
}
