//! The gossip plane (app 2, PROTOCOL.md section 7), sans-IO: topics, eager push of each new
//! message to a bounded, seeded-random set of peers, lazy repair by IHAVE / IWANT (gossipsub,
//! Plumtree), burst budgets per topic and per peer, a bounded seen-cache, a hop limit, and
//! delivery to local subscribers exactly once. No I/O, no clock, no global randomness: time
//! comes in as `now_ms` (unix milliseconds, also the `ts` of messages published here) and the
//! RNG seed at construction.
//!
//! # Model
//!
//! [`GossipPlane`] is node-level logic that knows nothing about shards: the engine runs one per
//! shard for the topics that shard owns (`shard_of(BLAKE3(topic))`) and hands it the frames of
//! those topics. Peers are [`NodeId`](ronode_proto::id::NodeId)s; local subscribers are an
//! opaque `Copy + Ord` handle `S` (e.g. `(ShardId, SessionId)`). Every connected peer relays
//! every topic: peers do not subscribe to each other, so a message reaches every node within
//! the hop limit and the repair window.
//!
//! - **Eager push**: a message new here is sent to `min(eligible peers, relay_fanout)` peers,
//!   never back to the peer it came from, chosen by [`SplitMix64`] seeded at construction;
//!   the suggested fanout is thus "every connected peer", capped by `relay_fanout`.
//! - **Lazy repair** (`repair.rs`): each tick, IHAVE digests of the ids seen in the
//!   last `ihave_window_ms` to the peers not known to hold them (peers pushed to are skipped
//!   for the first `ihave_interval_ms`, then announced to unless they showed they hold it, so a
//!   lost push is repaired even when every holder pushed to the same peer); IWANT for announced
//!   ids not seen here, one peer at a time; IWANT answered with the cached EVENT, once per
//!   peer. Delivery completes while the eager fanout stays bounded.
//! - **Budgets**: a token bucket per topic (every new message, published or relayed) and per
//!   peer (every new message it sends, and every IWANT); past it a message is shed and counted
//!   (`budget_shed`) and is not marked seen, so a later IHAVE can still bring it in once the
//!   budget refilled. Duplicates cost no budget: they are expected at fanout > 1.
//! - **Hops**: a relay sends `hops + 1`; received `hops` above `max_hops`: dropped; equal to it:
//!   delivered here, but neither pushed nor announced (it would be dropped by the next node).
//! - **Dedupe**: the seen-cache remembers `seen_cache` ids; a message is delivered locally at most
//!   once while its id is remembered, and never to the session that published it.
//!
//! # Inputs
//! - [`GossipPlane::handle_peer_up`] / [`GossipPlane::handle_peer_down`]: peer sessions.
//! - [`GossipPlane::handle_subscribe`] / [`GossipPlane::handle_unsubscribe`] /
//!   [`GossipPlane::handle_session_closed`]: local sessions (subscribe REQs need no capability).
//! - [`GossipPlane::handle_publish`]: an EVENT a local client published. **The capability check
//!   stays in the engine**: it verifies `scope=gossip` (PROTOCOL.md section 10) on the frame,
//!   unless `gossip.pub_policy = "open"`, before calling; the plane holds no keys.
//! - [`GossipPlane::handle_event`]: an EVENT payload from a peer; `msg_id` verified on decode
//!   (mismatch: `Err(Malformed)`).
//! - [`GossipPlane::handle_ihave`] / [`GossipPlane::handle_iwant`]: decoded REQs from a peer.
//!   The engine answers every well-formed gossip REQ RESP 200 `{"ok": true}` itself: the plane
//!   never refuses IHAVE or IWANT, it ignores what it cannot use.
//! - [`GossipPlane::handle_timeout`]: when `now_ms` reaches [`GossipPlane::poll_timeout`].
//!
//! # Outputs (drain order on [`GossipPlane`])
//! [`GossipPlane::poll_delivery`] ([`Delivery`]: an EVENT payload for a subscriber), then
//! [`GossipPlane::poll_transmit`] ([`PeerFrame`]: EVENT, IHAVE or IWANT for a peer; REQs get
//! their corr_id from the engine), then [`GossipPlane::poll_timeout`].
//!
//! IWANT carries no topic, so the engine cannot route it by `shard_of(topic)`: it hands it to
//! the plane of every shard (each answers the ids it caches and ignores the rest), or to the
//! shard that sent the IHAVE it answers.
//!
//! # Bounds
//! All in [`GossipConfig`], checked by [`GossipConfig::validate`]: fanout, hops, seen-cache,
//! message cache (count and age), IHAVE window and ids per IHAVE (<= 512), pending IWANTs,
//! budgets, topics, subscriptions, peers, and both output queues.

mod cache;
mod config;
mod counters;
mod outcome;
mod output;
mod plane;
mod repair;
mod reply;

#[cfg(test)]
mod tests;

pub use crate::rng::SplitMix64;
pub use cache::SeenCache;
pub use config::{
    ConfigError, GossipConfig, DEFAULT_MAX_HOPS, DEFAULT_RELAY_FANOUT, MAX_RELAY_FANOUT,
};
pub use counters::GossipCounters;
pub use outcome::{EventOutcome, PublishError, SubscribeError};
pub use output::{Delivery, PeerFrame, PeerMsg};
pub use plane::GossipPlane;
pub use reply::{ok_payload, Reply};
