//! `ronode-proto`: the sans-IO wire layer of ronode.
//!
//! Everything here is pure computation over caller-owned buffers: no sockets, no clocks (time is
//! an argument), no threads and no global randomness (seeds are arguments). The node, the SDK,
//! the simulator, the fuzzers and the inspector all run this same code.
//!
//! Map of the crate, following `docs/PROTOCOL.md`:
//! - [`frame`], [`flags`], [`comp`], [`sequence`]: OAP/1 frames (section 2).
//! - [`inbound`]: a session's receive pipeline, every row of the reject table in order.
//! - [`control`]: HELLO, PING, GOAWAY (section 3); [`error_body`]: error bodies (section 5).
//! - [`msg`]: the CBOR messages of apps 1-3 (objects, gossip, dht).
//! - [`identity`], [`cert`]: Ed25519 + ML-DSA-87 identities and node certificates (section 1).
//! - [`cap`]: capabilities (section 4); [`record`]: signed provider records (section 6).
//! - [`id`]: NodeId, object addresses, XOR distance (sections 1, 5, 6).
//! - [`reason`]: the labels every reject and error carries.
//! - [`limits`]: every bound, named once.

pub mod cap;
pub mod cert;
pub mod comp;
pub mod control;
pub mod error_body;
pub mod flags;
pub mod frame;
#[doc(hidden)]
pub mod fuzz_targets;
pub mod id;
pub mod identity;
pub mod inbound;
pub mod limits;
pub mod msg;
pub mod reason;
pub mod record;
pub mod sequence;

pub use flags::{Flags, Kind};
pub use frame::{Frame, FrameDecoder, FrameEncoder, FrameError, Header, OutFrame};
pub use id::{Distance, NodeId, ObjectAddr};
pub use reason::Reason;
