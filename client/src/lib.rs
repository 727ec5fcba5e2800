//! `ronode-client`: the Rust SDK that applications embed to talk to ronode nodes.
//!
//! It speaks OAP/1 through `ronode-proto` and never needs glommio. Today it holds the typed
//! errors an application sees ([`NodeError`], built from the wire's error bodies and labels);
//! the blocking and async session APIs (connect over TLS, HELLO, GET/PUT/HEAD, gossip) arrive
//! with the running node.

pub mod error;

pub use error::NodeError;
pub use ronode_proto::Reason;
