//! `ronode-shards`: the per-shard node core. It composes `ronode-proto` and, like it, does no
//! I/O and reads no clock.
//!
//! Today it holds placement ([`placement::shard_of`]): which shard owns a NodeId, an object
//! address or a DHT key; and the per-shard statistics ([`stats::ShardStats`]) that a shard
//! mutates on its hot path and publishes to the admin thread through a [`stats::StatsBoard`]
//! without ever waiting for it. The objects plane ([`objects::ObjectsPlane`]: GET, HEAD and
//! PUT of app 1, capabilities, BLAKE3 verification, the store contract and the RAM store) is a
//! sans-IO state machine the engine drives; so is the gossip plane ([`gossip::GossipPlane`]:
//! eager push, IHAVE/IWANT repair, burst budgets, dedupe, delivery to subscribers). So are the
//! peer set ([`peers::PeerSet`]: which configured peers to dial when, backoff), fetch on miss
//! ([`objects::fetch`]: which peers to ask for a missing object, tries and their deadlines), the
//! session limiter ([`limiter::TokenBucket`]) and the bound on refused requests
//! ([`refusals::RefusalWindow`]); the engine drives all of them over its sockets and files.
//! Not here yet: the DHT plane, and the many-node simulator.

pub mod gossip;
pub mod limiter;
pub mod objects;
pub mod peers;
pub mod placement;
pub mod refusals;
pub mod rng;
pub mod stats;

pub use placement::{shard_of, ShardId};
