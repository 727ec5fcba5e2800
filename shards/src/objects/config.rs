//! [`ObjectsConfig`]: the knobs of the objects plane, a plain struct the engine fills from its own
//! configuration (`objects.*`, `chunk_bytes`, ...), and the root keys capabilities are checked
//! against ([`CapKeys`]).

use ronode_proto::cap::{CapError, CapRequest, Capability, Op};
use ronode_proto::frame::Frame;
use std::collections::BTreeMap;
use std::fmt;

pub use crate::limits::MAX_CAP_KEYS;
use ronode_proto::limits::{
    HEADER_LEN, MAX_CHUNK_BYTES, MAX_FRAME, MAX_INFLIGHT, MIN_CHUNK_BYTES, MIN_NEGOTIATED_FRAME,
};

/// Largest object by default (`objects.max_bytes`): 256 MiB.
pub const DEFAULT_MAX_BYTES: u64 = 256 * 1024 * 1024;
/// Payload bytes per frame of a streamed GET body by default (`chunk_bytes`).
pub const DEFAULT_CHUNK_BYTES: usize = ronode_proto::limits::CHUNK_BYTES;
/// Bytes of PUT bodies a shard buffers at once by default: one largest object.
pub const DEFAULT_MAX_INFLIGHT_PUT_BYTES: u64 = DEFAULT_MAX_BYTES;
/// Uploads in progress per shard by default.
pub const DEFAULT_MAX_PUTS: usize = 1024;
/// GET streams and HEADs in progress per shard by default.
pub const DEFAULT_MAX_READS: usize = 1024;
/// Seconds a PUT may take from its START frame to its END frame by default.
pub const DEFAULT_PUT_TIMEOUT_S: u64 = 120;
/// The `retry_after_ms` of 429 and 503 answers by default.
pub const DEFAULT_RETRY_AFTER_MS: u64 = 250;

/// Whether an operation needs a capability.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Policy {
    /// Anyone who can connect may.
    Open,
    /// A capability whose scope allows the operation is required (401 without, 403 when it does
    /// not verify).
    Token,
}

/// The objects plane's configuration. Every bound of the plane is one of these fields.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectsConfig {
    /// Largest object a PUT may announce (`objects.max_bytes`); over it: 413 `oversize`.
    pub max_bytes: u64,
    /// `objects.put_policy`: `Token` (default) or `Open`.
    pub put_policy: Policy,
    /// `objects.get_policy`: `Open` (default) or `Token`; applies to GET and HEAD.
    pub get_policy: Policy,
    /// Payload bytes per frame of a streamed GET body (`chunk_bytes`, 4 KiB ..= 1,048,538).
    pub chunk_bytes: usize,
    /// Bytes of PUT bodies this shard buffers at once (the sum of the announced sizes of the
    /// uploads in progress); a PUT that would pass it: 503 `busy`. At least `max_bytes`.
    pub max_inflight_put_bytes: u64,
    /// Uploads in progress per session; one more: 429 `quota`. At most the session's
    /// `max_inflight` (64).
    pub max_puts_per_session: usize,
    /// Uploads in progress on this shard; one more: 503 `busy`.
    pub max_puts: usize,
    /// GET streams and HEADs in progress on this shard; one more: 503 `busy`.
    pub max_reads: usize,
    /// Seconds from a PUT's START frame to its END frame; past it: 408 `slow_client`.
    pub put_timeout_s: u64,
    /// `retry_after_ms` carried by this plane's 429 and 503 answers.
    pub retry_after_ms: u64,
}

impl Default for ObjectsConfig {
    fn default() -> ObjectsConfig {
        ObjectsConfig {
            max_bytes: DEFAULT_MAX_BYTES,
            put_policy: Policy::Token,
            get_policy: Policy::Open,
            chunk_bytes: DEFAULT_CHUNK_BYTES,
            max_inflight_put_bytes: DEFAULT_MAX_INFLIGHT_PUT_BYTES,
            max_puts_per_session: MAX_INFLIGHT,
            max_puts: DEFAULT_MAX_PUTS,
            max_reads: DEFAULT_MAX_READS,
            put_timeout_s: DEFAULT_PUT_TIMEOUT_S,
            retry_after_ms: DEFAULT_RETRY_AFTER_MS,
        }
    }
}

/// A configuration value out of its range: the field and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{key}: {why}")]
pub struct ConfigError {
    /// The field, as the engine's configuration names it.
    pub key: &'static str,
    pub why: String,
}

impl ObjectsConfig {
    /// Checks every field against its range; the first failure names its key.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let fail = |key, why: String| Err(ConfigError { key, why });
        if self.max_bytes == 0 {
            return fail("objects.max_bytes", "must be at least 1".into());
        }
        if !(MIN_CHUNK_BYTES..=MAX_CHUNK_BYTES).contains(&self.chunk_bytes) {
            return fail(
                "chunk_bytes",
                format!(
                    "{} is outside {MIN_CHUNK_BYTES}..={MAX_CHUNK_BYTES}",
                    self.chunk_bytes
                ),
            );
        }
        if self.max_inflight_put_bytes < self.max_bytes {
            return fail(
                "objects.max_inflight_put_bytes",
                format!(
                    "{} is below objects.max_bytes ({}): the largest object could never be put",
                    self.max_inflight_put_bytes, self.max_bytes
                ),
            );
        }
        if !(1..=MAX_INFLIGHT).contains(&self.max_puts_per_session) {
            return fail(
                "objects.max_puts_per_session",
                format!(
                    "{} is outside 1..={MAX_INFLIGHT}",
                    self.max_puts_per_session
                ),
            );
        }
        for (key, v) in [
            ("objects.max_puts", self.max_puts),
            ("objects.max_reads", self.max_reads),
        ] {
            if v == 0 {
                return fail(key, "must be at least 1".into());
            }
        }
        if self.put_timeout_s == 0 {
            return fail("objects.put_timeout_s", "must be at least 1".into());
        }
        Ok(())
    }

    /// The payload bytes per body frame for a session whose negotiated `max_frame` is given
    /// (taken within the range HELLO allows).
    pub(crate) fn chunk_for(&self, max_frame: u32) -> usize {
        let frame_room = max_frame.clamp(MIN_NEGOTIATED_FRAME, MAX_FRAME) as usize - HEADER_LEN;
        self.chunk_bytes.min(frame_room)
    }
}

/// The root keys capabilities are verified with, by key id (`kid`). Empty for an amnesia node
/// started without `--cap-key`: it then accepts no capability. `Debug` prints the ids only.
#[derive(Clone, Default)]
pub struct CapKeys {
    keys: BTreeMap<[u8; 8], [u8; 32]>,
}

/// [`CapKeys::insert`] past [`MAX_CAP_KEYS`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("at most {MAX_CAP_KEYS} capability root keys")]
pub struct TooManyKeys;

impl CapKeys {
    pub fn new() -> CapKeys {
        CapKeys::default()
    }

    /// A table holding one key.
    pub fn with(kid: [u8; 8], key: [u8; 32]) -> CapKeys {
        let mut keys = CapKeys::new();
        keys.keys.insert(kid, key);
        keys
    }

    /// Adds (or replaces) the key named `kid`.
    pub fn insert(&mut self, kid: [u8; 8], key: [u8; 32]) -> Result<(), TooManyKeys> {
        if self.keys.len() >= MAX_CAP_KEYS && !self.keys.contains_key(&kid) {
            return Err(TooManyKeys);
        }
        self.keys.insert(kid, key);
        Ok(())
    }

    /// Checks `frame`'s capability for `op` under `policy` (PROTOCOL.md section 10.4): the one
    /// check of every plane that takes capabilities (objects, gossip publishes). `now` is unix
    /// seconds; `bytes` the size the request declares, if any.
    pub fn authorize(
        &self,
        policy: Policy,
        op: Op,
        frame: &Frame,
        bytes: Option<u64>,
        now: u64,
    ) -> Result<(), CapError> {
        if policy == Policy::Open {
            return Ok(());
        }
        if frame.cap.is_empty() {
            return Err(CapError::Missing);
        }
        let req = CapRequest {
            op,
            now,
            tenant: frame.header.tenant_id,
            bytes,
        };
        Capability::decode(&frame.cap)?.verify(|kid| self.get(kid), &req)
    }

    /// The key named `kid`.
    pub fn get(&self, kid: &[u8; 8]) -> Option<[u8; 32]> {
        self.keys.get(kid).copied()
    }

    pub fn len(&self) -> usize {
        self.keys.len()
    }

    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }
}

impl fmt::Debug for CapKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_set()
            .entries(
                self.keys
                    .keys()
                    .map(|kid| kid.iter().map(|b| format!("{b:02x}")).collect::<String>()),
            )
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_validate_and_bad_values_name_their_key() {
        ObjectsConfig::default().validate().unwrap();
        let bad = |f: fn(&mut ObjectsConfig)| {
            let mut c = ObjectsConfig::default();
            f(&mut c);
            c.validate().unwrap_err().key
        };
        assert_eq!(bad(|c| c.chunk_bytes = 4095), "chunk_bytes");
        assert_eq!(bad(|c| c.chunk_bytes = MAX_CHUNK_BYTES + 1), "chunk_bytes");
        assert_eq!(bad(|c| c.max_bytes = 0), "objects.max_bytes");
        assert_eq!(
            bad(|c| c.max_inflight_put_bytes = c.max_bytes - 1),
            "objects.max_inflight_put_bytes"
        );
        assert_eq!(
            bad(|c| c.max_puts_per_session = 65),
            "objects.max_puts_per_session"
        );
        assert_eq!(bad(|c| c.max_reads = 0), "objects.max_reads");
        assert_eq!(bad(|c| c.put_timeout_s = 0), "objects.put_timeout_s");
    }

    #[test]
    fn chunk_follows_the_negotiated_frame() {
        let c = ObjectsConfig::default();
        assert_eq!(c.chunk_for(MAX_FRAME), 65_536);
        assert_eq!(c.chunk_for(4096), 4096 - HEADER_LEN);
        assert_eq!(c.chunk_for(10), 4096 - HEADER_LEN);
        assert_eq!(c.chunk_for(u32::MAX), 65_536);
    }

    #[test]
    fn keys_are_bounded_and_not_printed() {
        let mut k = CapKeys::with(*b"rootkey1", [0x55; 32]);
        assert_eq!(k.get(b"rootkey1"), Some([0x55; 32]));
        assert_eq!(format!("{k:?}"), "{\"726f6f746b657931\"}");
        for i in 1..MAX_CAP_KEYS as u8 {
            k.insert([i; 8], [i; 32]).unwrap();
        }
        assert_eq!(k.insert([99; 8], [0; 32]), Err(TooManyKeys));
        assert_eq!(k.insert([1; 8], [2; 32]), Ok(()));
        assert_eq!(k.len(), MAX_CAP_KEYS);
    }
}
