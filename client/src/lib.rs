//! `ronode-client`: the Rust SDK that applications embed to talk to ronode nodes.
//!
//! It speaks OAP/1 (`docs/PROTOCOL.md`, refined by `docs/PROTOCOL.md`) through
//! `ronode-proto`, over TLS 1.3 with rustls, and never needs glommio or the node's engine.
//!
//! - [`blocking`]: [`Client`], one session over a `std::net::TcpStream`: connect (TLS, HELLO),
//!   PING, HEAD, GET (whole, verified against its BLAKE3 address; or a byte range), PUT (streamed,
//!   with a capability).
//! - [`async_client`]: [`AsyncClient`], the same operations on tokio (any runtime flavour,
//!   current-thread included), plus pipelined GETs ([`AsyncClient::get_many`]).
//! - Both are thin transports over one sans-IO core (`conversation`): request encoding, answer
//!   reassembly, sequence checks, error bodies and digest verification exist once.
//! - [`ClientOptions`] and [`ClientError`] are shared: the same settings, the same typed errors
//!   ([`ClientError::is_not_found`], [`ClientError::reason`]).
//! - [`tls`]: the TLS configurations of ron/oap1 sessions, shared with the node: [`PqMode`]
//!   (`off`, `hybrid`, `pq_only`), NodeId-based certificate verification with optional pinning,
//!   an optional client certificate ([`ClientIdentity`]) for nodes that dial peers, the peer's
//!   NodeId and the negotiated key exchange group.
//! - [`error`]: [`NodeError`], what a node answered, typed by its wire label ([`Reason`]).
//!
//! # Blocking example
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
//!
//! # Async example
//!
//! The same on a current-thread tokio runtime (it needs the I/O and time drivers), with the
//! session presenting a node certificate so the node knows which peer dialled it, and three
//! GETs pipelined:
//!
//! ```no_run
//! use ronode_client::{AsyncClient, ClientIdentity, ClientOptions};
//! use ronode_proto::identity::{Identity, IdentitySeeds};
//!
//! fn main() -> Result<(), Box<dyn std::error::Error>> {
//!     let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
//!     rt.block_on(async {
//!         // A node's identity comes from its data directory; fixed seeds stand in here.
//!         let me = Identity::from_seeds(&IdentitySeeds { ed25519: [7; 32], ml_dsa: [8; 32] });
//!         let opts = ClientOptions {
//!             identity: Some(ClientIdentity::new(&me)?),
//!             ..ClientOptions::default()
//!         };
//!         let mut client = AsyncClient::connect("127.0.0.1:9500".parse()?, &opts).await?;
//!         println!("rtt {:?} to {:?}", client.ping().await?, client.peer_node_id());
//!
//!         let cap = std::fs::read("put.cap")?;
//!         let stored = client.put(b"hello world", Some(&cap)).await?;
//!         assert_eq!(client.get(&stored.addr).await?, b"hello world");
//!         assert_eq!(client.get_range(&stored.addr, 6, 11).await?, b"world");
//!
//!         let missing = ronode_client::ObjectAddr::of(b"never stored");
//!         for answer in client.get_many(&[stored.addr, missing, stored.addr]).await? {
//!             match answer {
//!                 Ok(bytes) => println!("{} bytes", bytes.len()),
//!                 Err(e) if e.is_not_found() => println!("not stored there"),
//!                 Err(e) => return Err(e.into()),
//!             }
//!         }
//!         client.close().await?;
//!         Ok(())
//!     })
//! }
//! ```

pub mod async_client;
pub mod blocking;
mod conversation;
pub mod error;
mod options;
pub mod tls;

pub use async_client::AsyncClient;
pub use blocking::Client;
pub use error::{ClientError, NodeError};
pub use options::{ClientOptions, DEFAULT_MAX_OBJECT_BYTES, DEFAULT_TIMEOUT, DEFAULT_UA};
pub use ronode_proto::msg::objects::PutResp;
pub use ronode_proto::{NodeId, ObjectAddr, Reason};
pub use tls::{ClientIdentity, PqMode, TlsError};
