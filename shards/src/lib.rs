//! `ronode-shards`: the per-shard node core. It composes `ronode-proto` and, like it, does no
//! I/O and reads no clock.
//!
//! What it holds:
//! - [`shard_core::ShardCore`]: a shard's objects runtime (where each store operation runs,
//!   where each completion goes, fetch on miss, each session's queue of frames and its flow
//!   control, upload and fetch deadlines), driven by the engine and by tests alike;
//! - [`session::SessionCore`]: a served session's protocol state (admission, HELLO, PING,
//!   the read, idle and drain timers, rejects and their farewells);
//! - the planes: objects ([`objects::ObjectsPlane`]: GET, HEAD and PUT of app 1,
//!   capabilities, BLAKE3 verification, the store contract and the RAM store; fetch on miss in
//!   [`objects::OnMiss`]) and gossip ([`gossip::GossipPlane`]: eager push, IHAVE/IWANT repair,
//!   burst budgets, dedupe, delivery to subscribers);
//! - placement ([`placement::shard_of`]: which shard owns a NodeId, an object address or a DHT
//!   key), the peer set's dial backoff ([`peers`]), limiters, and the per-shard statistics
//!   ([`stats::ShardStats`]) published to the admin thread through a [`stats::StatsBoard`]
//!   without ever waiting for it.
//!
//! - the many-node simulator (`sim`, behind feature `sim`): virtual time, a seeded network
//!   with the seeds' latency profiles, partitions, kills; today it runs gossip nodes built on
//!   the gossip plane.
//!
//! Still in the engine and moving here next (issue 16): the gossip runtime's routing, the peer
//! set and the dialled peer link's protocol state.

pub mod gossip;
pub mod limiter;
pub mod limits;
pub mod objects;
pub mod peers;
pub mod placement;
pub mod refusals;
pub mod rng;
pub mod session;
pub mod shard_core;
#[cfg(feature = "sim")]
pub mod sim;
pub mod stats;

pub use placement::{shard_of, ShardId};
