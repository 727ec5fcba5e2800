//! Every bound the wire layer enforces, named once (ARCHITECTURE.md rule 3).

/// OAP/1 header length in bytes.
pub const HEADER_LEN: usize = 38;
/// Largest frame (header included) a node accepts before negotiation lowers it.
pub const MAX_FRAME: u32 = 1_048_576;
/// The lowest `max_frame` a HELLO may ask for.
pub const MIN_NEGOTIATED_FRAME: u32 = 4_096;
/// Inflated COMP payloads may be at most this many times their compressed size.
pub const DECOMPRESS_RATIO_CAP: u32 = 10;
/// COMP payloads are inflated this many bytes at a time, checking both caps after each step.
pub const INFLATE_STEP: usize = 64 * 1024;
/// Largest zstd window (log2 bytes) a node allocates for a COMP payload: 4 MiB. Honest senders
/// compress at most one frame (1 MiB) per zstd frame, so they never need more; a frame that
/// declares a larger window is refused as `bad_comp` before any memory is committed to it.
pub const ZSTD_WINDOW_LOG_MAX: u32 = 22;
/// Requests in flight per session in each direction (HELLO reply's `max_inflight`).
pub const MAX_INFLIGHT: usize = 64;
/// Message streams open at once per session and direction.
pub const MAX_OPEN_STREAMS: usize = 64;
/// Default payload bytes per frame of a streamed body (`chunk_bytes`).
pub const CHUNK_BYTES: usize = 64 * 1024;
/// Bounds for `chunk_bytes`: 4 KiB up to the largest payload a frame without a capability carries.
pub const MIN_CHUNK_BYTES: usize = 4 * 1024;
/// Largest payload of a frame that carries no capability.
pub const MAX_CHUNK_BYTES: usize = MAX_FRAME as usize - HEADER_LEN;
/// Largest encoded provider record.
pub const MAX_RECORD_BYTES: usize = 16 * 1024;
/// Most addresses a provider record or NodeInfo lists, and the longest one.
pub const MAX_ADDRS: usize = 8;
pub const MAX_ADDR_BYTES: usize = 256;
/// Provider record TTL: the most allowed, and the default.
pub const MAX_RECORD_TTL_S: u64 = 172_800;
pub const DEFAULT_RECORD_TTL_S: u64 = 86_400;
/// Allowed clock skew: for provider record timestamps (future only), and either way for the
/// `ts` of a message a client publishes.
pub const MAX_CLOCK_SKEW_S: u64 = 300;
/// Kademlia bucket width and lookup result size.
pub const K: usize = 20;
/// Longest capability token accepted (the header field is a u16; this is far below it).
pub const MAX_CAP_BYTES: usize = 4 * 1024;
/// Most caveats a capability may carry.
pub const MAX_CAVEATS: usize = 32;
/// Longest gossip topic name.
pub const MAX_TOPIC_BYTES: usize = 256;
/// Most message ids in one IHAVE or IWANT.
pub const MAX_GOSSIP_IDS: usize = 512;
/// Longest user agent in a HELLO.
pub const MAX_UA_BYTES: usize = 256;
/// Most provider records in one FIND_VALUE answer.
pub const MAX_PROVIDERS: usize = K;
/// Most signatures on a provider record (one Ed25519, one ML-DSA-87).
pub const MAX_RECORD_SIGS: usize = 2;
