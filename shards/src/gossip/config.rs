//! [`GossipConfig`]: every bound and knob of the gossip plane in one place (ARCHITECTURE.md
//! rule 3), a plain struct the engine fills from `gossip.*` in its configuration, checked by
//! [`GossipConfig::validate`], which names the key of the first bad value.

use ronode_proto::limits::MAX_GOSSIP_IDS;

pub use crate::limits::MAX_RELAY_FANOUT;
pub use crate::objects::ConfigError;

/// Most peers a message is eagerly pushed to, by default (`gossip.relay_fanout`).
pub const DEFAULT_RELAY_FANOUT: usize = 6;
/// Relays a message may take by default (`gossip.max_hops`).
pub const DEFAULT_MAX_HOPS: u8 = 8;

/// The gossip plane's configuration. Every table and queue of the plane has its bound here.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GossipConfig {
    /// Most peers each new message is eagerly pushed to (1..=[`MAX_RELAY_FANOUT`]).
    pub relay_fanout: usize,
    /// Relays a message may take: one received with `hops` above it is dropped; one received
    /// with `hops` equal to it is delivered here but neither pushed nor announced further.
    pub max_hops: u8,
    /// Period of the lazy-repair tick: IHAVE digests, expiry of caches and pending IWANTs.
    pub ihave_interval_ms: u64,
    /// How long a message stays announced in IHAVE digests after it was first seen here (a
    /// few ticks, so that a lost IHAVE or IWANT is retried); at least `ihave_interval_ms`.
    pub ihave_window_ms: u64,
    /// Most ids one IHAVE carries (1..=512, the wire bound); ids past it wait for the next
    /// tick while they are still in the window.
    pub max_ihave_ids: usize,
    /// Message ids remembered for deduplication (oldest forgotten first); at least
    /// `message_cache`, so that every message that can still be served is known as seen.
    pub seen_cache: usize,
    /// Messages kept to answer IWANT (oldest dropped first).
    pub message_cache: usize,
    /// How long a message is kept to answer IWANT; at least `ihave_window_ms`, so that every
    /// id this node announced can be served.
    pub message_ttl_ms: u64,
    /// How long an IWANT waits for its EVENT before the id may be asked of another peer.
    pub iwant_timeout_ms: u64,
    /// Ids asked for with IWANT and not yet received.
    pub max_pending_iwant: usize,
    /// Burst budget per topic: new messages a second, and the burst, over all sources.
    pub topic_rate_per_s: u32,
    pub topic_burst: u32,
    /// Burst budget per peer: EVENTs carrying new messages and IWANTs a second, and the burst.
    pub peer_rate_per_s: u32,
    pub peer_burst: u32,
    /// Topics with state on this plane (subscribers or a budget in use).
    pub max_topics: usize,
    /// Local subscriptions, all topics together.
    pub max_subscriptions: usize,
    /// Connected peers the plane tracks.
    pub max_peers: usize,
    /// Frames to peers queued for the engine, and deliveries to local subscribers.
    pub max_queued_frames: usize,
    pub max_queued_deliveries: usize,
}

impl Default for GossipConfig {
    fn default() -> GossipConfig {
        GossipConfig {
            relay_fanout: DEFAULT_RELAY_FANOUT,
            max_hops: DEFAULT_MAX_HOPS,
            ihave_interval_ms: 1_000,
            ihave_window_ms: 3_000,
            max_ihave_ids: MAX_GOSSIP_IDS,
            seen_cache: 65_536,
            message_cache: 4_096,
            message_ttl_ms: 60_000,
            iwant_timeout_ms: 1_000,
            max_pending_iwant: 4_096,
            topic_rate_per_s: 200,
            topic_burst: 400,
            peer_rate_per_s: 1_000,
            peer_burst: 2_000,
            max_topics: 1_024,
            max_subscriptions: 16_384,
            max_peers: 256,
            max_queued_frames: 65_536,
            max_queued_deliveries: 65_536,
        }
    }
}

impl GossipConfig {
    /// Checks every field against its range; the first failure names its key.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let fail = |key, why: String| Err(ConfigError { key, why });
        if !(1..=MAX_RELAY_FANOUT).contains(&self.relay_fanout) {
            return fail(
                "gossip.relay_fanout",
                format!("{} is outside 1..={MAX_RELAY_FANOUT}", self.relay_fanout),
            );
        }
        if !(1..=MAX_GOSSIP_IDS).contains(&self.max_ihave_ids) {
            return fail(
                "gossip.max_ihave_ids",
                format!("{} is outside 1..={MAX_GOSSIP_IDS}", self.max_ihave_ids),
            );
        }
        let at_least_one: [(&'static str, u64); 15] = [
            ("gossip.max_hops", self.max_hops.into()),
            ("gossip.ihave_interval_ms", self.ihave_interval_ms),
            ("gossip.message_cache", self.message_cache as u64),
            ("gossip.iwant_timeout_ms", self.iwant_timeout_ms),
            ("gossip.max_pending_iwant", self.max_pending_iwant as u64),
            ("gossip.topic_rate_per_s", self.topic_rate_per_s.into()),
            ("gossip.topic_burst", self.topic_burst.into()),
            ("gossip.peer_rate_per_s", self.peer_rate_per_s.into()),
            ("gossip.peer_burst", self.peer_burst.into()),
            ("gossip.max_topics", self.max_topics as u64),
            ("gossip.max_subscriptions", self.max_subscriptions as u64),
            ("gossip.max_peers", self.max_peers as u64),
            ("gossip.max_queued_frames", self.max_queued_frames as u64),
            (
                "gossip.max_queued_deliveries",
                self.max_queued_deliveries as u64,
            ),
            ("gossip.seen_cache", self.seen_cache as u64),
        ];
        if let Some((key, _)) = at_least_one.iter().find(|(_, v)| *v == 0) {
            return fail(key, "must be at least 1".into());
        }
        let ordered: [(&'static str, u64, &str, u64); 3] = [
            (
                "gossip.ihave_window_ms",
                self.ihave_window_ms,
                "gossip.ihave_interval_ms",
                self.ihave_interval_ms,
            ),
            (
                "gossip.message_ttl_ms",
                self.message_ttl_ms,
                "gossip.ihave_window_ms",
                self.ihave_window_ms,
            ),
            (
                "gossip.seen_cache",
                self.seen_cache as u64,
                "gossip.message_cache",
                self.message_cache as u64,
            ),
        ];
        for (key, v, other, min) in ordered {
            if v < min {
                return fail(key, format!("{v} is below {other} ({min})"));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_validate_and_bad_values_name_their_key() {
        GossipConfig::default().validate().unwrap();
        let bad = |f: fn(&mut GossipConfig)| {
            let mut c = GossipConfig::default();
            f(&mut c);
            c.validate().unwrap_err().key
        };
        assert_eq!(bad(|c| c.relay_fanout = 0), "gossip.relay_fanout");
        assert_eq!(bad(|c| c.relay_fanout = 65), "gossip.relay_fanout");
        assert_eq!(bad(|c| c.max_ihave_ids = 513), "gossip.max_ihave_ids");
        assert_eq!(bad(|c| c.max_hops = 0), "gossip.max_hops");
        assert_eq!(bad(|c| c.topic_burst = 0), "gossip.topic_burst");
        assert_eq!(bad(|c| c.max_peers = 0), "gossip.max_peers");
        assert_eq!(
            bad(|c| c.ihave_window_ms = c.ihave_interval_ms - 1),
            "gossip.ihave_window_ms"
        );
        assert_eq!(
            bad(|c| c.message_ttl_ms = c.ihave_window_ms - 1),
            "gossip.message_ttl_ms"
        );
        assert_eq!(
            bad(|c| c.seen_cache = c.message_cache - 1),
            "gossip.seen_cache"
        );
    }
}
