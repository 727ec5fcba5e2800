//! Every fixed bound of the shard core, in one place (ARCHITECTURE.md rule 3): what a queue,
//! table or loop may hold, and why that number. Full means refuse, count and hand back, never
//! grow. Bounds an operator sets are knobs, with their defaults and ranges in the planes'
//! configurations (`objects::ObjectsConfig`, `gossip::GossipConfig`, `objects::FetchConfig`,
//! `session::SessionCfg`), validated at start.

/// Plaintext a session collects from the planes before it writes: large enough for a handful
/// of 64 KiB chunks per write, small enough to bound each session's buffer.
pub const WRITE_BATCH: usize = 256 * 1024;

/// Payloads at least this long are not copied into a session's write buffer: they are
/// encrypted from the `Bytes` the store answered (a vectored write), which saves a copy of
/// every body byte.
pub const SHARED_PAYLOAD_MIN: usize = 8 * 1024;

/// Refusals a session may collect within one [`REFUSAL_WINDOW_MS`] before it is shed: a
/// client that honours `retry_after_ms` never comes near it (about 64 per retry), a flood
/// passes it within milliseconds.
pub const MAX_REFUSALS: u32 = 1024;
/// The window [`MAX_REFUSALS`] counts in.
pub const REFUSAL_WINDOW_MS: u64 = 10_000;

/// Most frames a session's queue holds in the shard core. What the planes queue for one
/// session stays below it: GET body frames pause at `session.send_window_frames` (at most
/// 1,024), whole answers are at most one per request in flight (64), gossip deliveries stop at
/// the gossip runtime's own bound (4,096). Past it a frame is refused and counted; for an
/// answer that would mean a broken bound above (a debug assertion says so).
pub const OUTBOX_FRAMES: usize = 8_192;

/// Fetched objects being written to the store at once; past it one is served, not kept.
pub const MAX_CACHING: usize = 64;

/// Most root keys a node checks capabilities against.
pub const MAX_CAP_KEYS: usize = 16;

/// The largest `gossip.relay_fanout` accepted: beyond it eager push is a flood, and lazy
/// repair is there so that it never needs to be.
pub const MAX_RELAY_FANOUT: usize = 64;
