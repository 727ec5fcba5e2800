//! What a session answers to a gossip frame (app 2), as the gossip runtime decided it.

use ronode_proto::msg::gossip::GossipOk;
use ronode_proto::Reason;

/// The answer to one gossip frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    /// Nothing to send (an EVENT without ACK_REQ, a RESP).
    None,
    /// RESP 200 `{"ok": true}` to a REQ, or an empty RESP 200 to an EVENT with ACK_REQ.
    Ok,
    /// Refused: an error answer when the frame asks for one, counted either way.
    Error(Reason, String),
}

/// The `{"ok": true}` every gossip REQ is answered with.
pub fn ok_payload() -> Vec<u8> {
    let mut out = Vec::new();
    GossipOk.encode(&mut out);
    out
}
