//! `ronode-shards`: the per-shard node core. It composes `ronode-proto` and, like it, does no
//! I/O and reads no clock.
//!
//! Today it holds placement ([`placement::shard_of`]): which shard owns a NodeId, an object
//! address or a DHT key. The shard state machines and the many-node simulator arrive with the
//! issues that need them.

pub mod placement;

pub use placement::{shard_of, ShardId};
