//! `ronode-client`: the Rust SDK that applications embed to talk to ronode nodes.
//!
//! It speaks OAP/1 (`../shared/spec/WIRE.md`, refined by `docs/PROTOCOL.md`) through
//! `ronode-proto`, over TLS 1.3 with rustls, and never needs glommio or the node's engine.
//!
//! - [`blocking`]: [`Client`], one session over a `std::net::TcpStream`: connect (TLS, HELLO),
//!   PING, HEAD, GET (whole, verified against its BLAKE3 address; or a byte range), PUT (streamed,
//!   with a capability).
//! - [`tls`]: the TLS configurations of ron/oap1 sessions, shared with the node: [`PqMode`]
//!   (`off`, `hybrid`, `pq_only`), NodeId-based certificate verification with optional pinning,
//!   the peer's NodeId and the negotiated key exchange group.
//! - [`error`]: [`NodeError`], what a node answered, typed by its wire label ([`Reason`]).
//!
//! # Example
//!
//! Store a file's bytes on a node whose identity is pinned, read them back, and check the
//! session's key exchange:
//!
//! ```no_run
//! use std::time::Duration;
//! use ronode_client::{Client, ClientOptions, NodeId, ObjectAddr, PqMode};
//!
//! fn main() -> Result<(), Box<dyn std::error::Error>> {
//!     let node: NodeId =
//!         "e11b7ba139dda67198474e88ca2bd0e8a056b70441e22d309424382c0a73a72a".parse()?;
//!     let opts = ClientOptions {
//!         pq_mode: PqMode::Hybrid,
//!         pin: Some(node),
//!         ua: "my-app/1.0".into(),
//!         timeout: Duration::from_secs(5),
//!         ..ClientOptions::default()
//!     };
//!     let mut client = Client::connect("127.0.0.1:9500".parse()?, &opts)?;
//!     println!("group {:?}, rtt {:?}", client.negotiated_group(), client.ping()?);
//!
//!     // A capability token (its CBOR bytes) with `scope=put`, minted by the node's operator.
//!     let cap = std::fs::read("put.cap")?;
//!     let stored = client.put(b"hello world", Some(&cap))?;
//!     println!("{} ({} bytes, new: {})", stored.addr, stored.size, stored.stored);
//!
//!     let bytes = client.get(&stored.addr)?; // verified against the address
//!     assert_eq!(bytes, b"hello world");
//!     let abc: ObjectAddr =
//!         "b3:6437b3ac38465133ffb63b75273a8db548c558465d79db03fd359c6cd5bd9d85".parse()?;
//!     match client.head(&abc) {
//!         Err(e) if e.is_not_found() => println!("not stored there"),
//!         other => println!("{other:?}"),
//!     }
//!     client.close()?;
//!     Ok(())
//! }
//! ```

pub mod blocking;
pub mod error;
pub mod tls;

pub use blocking::{Client, ClientError, ClientOptions};
pub use error::NodeError;
pub use ronode_proto::msg::objects::PutResp;
pub use ronode_proto::{NodeId, ObjectAddr, Reason};
pub use tls::{PqMode, TlsError};
