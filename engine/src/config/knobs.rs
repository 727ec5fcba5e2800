//! Every knob of the node in one table: key, type, default, safe range and meaning.
//!
//! Validation, the embedded defaults, the environment variable names and `tuning/KNOBS.md` are
//! all derived from [`KNOBS`], so they cannot disagree (a unit test compares the document with
//! [`crate::config::markdown::knob_table`]). The wire layer's fixed bounds
//! (`ronode_proto::limits`) are not knobs; some knobs are bounded by them.

use ronode_proto::limits;

pub const KIB: u64 = 1024;
pub const MIB: u64 = 1024 * KIB;
pub const GIB: u64 = 1024 * MIB;
pub const TIB: u64 = 1024 * GIB;

/// The sections of a configuration file, in the order the effective configuration prints them.
pub const SECTIONS: &[&str] = &["engine", "session", "objects", "store", "queues", "gossip"];

/// What a number counts; only used to write it for people (`65536 (64 KiB)`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unit {
    Count,
    Bytes,
    Millis,
    Micros,
    Secs,
}

/// The type of a knob's value and, for numbers, its safe range.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// An integer within `min..=max` (inclusive).
    Int {
        min: u64,
        max: u64,
        unit: Unit,
    },
    Bool,
    /// Exactly one of these strings.
    Choice(&'static [&'static str]),
    /// A socket address, `IP:port` (port 0: the system picks one).
    Addr,
    /// A non-empty path.
    Path,
    /// A non-empty path, or absent (no default).
    OptPath,
    /// A list of `IP:port#NodeId` strings, at most `max` of them, no NodeId twice.
    Peers {
        max: usize,
    },
}

/// A knob's default value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DefaultValue {
    Int(u64),
    /// `store.capacity_bytes`: its default depends on the store's kind.
    IntByStore {
        disk: u64,
        ram: u64,
    },
    Bool(bool),
    Str(&'static str),
    /// No default: the key is absent unless a layer sets it.
    Absent,
    EmptyList,
}

/// One knob.
#[derive(Debug, Clone, Copy)]
pub struct Knob {
    /// `name` at the top level, `section.name` in a section.
    pub key: &'static str,
    pub kind: Kind,
    pub default: DefaultValue,
    /// What it does (one or two sentences, no `|`).
    pub doc: &'static str,
    /// Where the range comes from, when it is not obvious; quoted by range errors.
    pub bound: &'static str,
}

const fn int(min: u64, max: u64, unit: Unit) -> Kind {
    Kind::Int { min, max, unit }
}

/// The knob table. Order: top level, then each section in [`SECTIONS`] order.
pub const KNOBS: &[Knob] = &[
    Knob {
        key: "listen",
        kind: Kind::Addr,
        default: DefaultValue::Str("127.0.0.1:9500"),
        doc: "Overlay listener (OAP/1 over TLS 1.3), one SO_REUSEPORT listener per shard. Port 0: \
              the system picks one.",
        bound: "",
    },
    Knob {
        key: "admin",
        kind: Kind::Addr,
        default: DefaultValue::Str("127.0.0.1:9600"),
        doc: "Admin HTTP plane (`/metrics`, `/healthz`, `/readyz`, `/version`). Must not be the \
              overlay's address.",
        bound: "",
    },
    Knob {
        key: "data_dir",
        kind: Kind::Path,
        default: DefaultValue::Str("./ronode-data"),
        doc: "Directory of the identity, the capability root key, the disk store and the lock \
              that keeps a second node out.",
        bound: "",
    },
    Knob {
        key: "shards",
        kind: int(0, 1024, Unit::Count),
        default: DefaultValue::Int(0),
        doc: "Executors, one per core, each owning a slice of the keyspace; 0: every online core.",
        bound: "",
    },
    Knob {
        key: "pin",
        kind: Kind::Bool,
        default: DefaultValue::Bool(true),
        doc: "Pin each executor to its core; `false` on machines shared with other work.",
        bound: "",
    },
    Knob {
        key: "amnesia",
        kind: Kind::Bool,
        default: DefaultValue::Bool(false),
        doc: "Write nothing to disk: RAM store, identity kept in memory unless `identity` names a \
              file. A `store.kind` left to the defaults or a profile becomes `\"ram\"`; an explicit \
              `store.kind = \"disk\"` is refused.",
        bound: "",
    },
    Knob {
        key: "pq_mode",
        kind: Kind::Choice(&["off", "hybrid", "pq_only"]),
        default: DefaultValue::Str("hybrid"),
        doc: "TLS key exchange: `hybrid` offers X25519MLKEM768 then X25519, `pq_only` only \
              X25519MLKEM768, `off` only X25519.",
        bound: "",
    },
    Knob {
        key: "identity",
        kind: Kind::OptPath,
        default: DefaultValue::Absent,
        doc: "Identity key file to use instead of `data_dir/identity.key` (with amnesia: read, \
              never written).",
        bound: "",
    },
    Knob {
        key: "cap_key",
        kind: Kind::OptPath,
        default: DefaultValue::Absent,
        doc: "Capability root key file to use instead of `data_dir/cap_root.key`; an amnesia node \
              accepts capabilities only with one.",
        bound: "",
    },
    Knob {
        key: "drain_timeout_ms",
        kind: int(100, 300_000, Unit::Millis),
        default: DefaultValue::Int(5_000),
        doc: "On SIGINT/SIGTERM: time in-flight requests get to finish after GOAWAY.",
        bound: "",
    },
    Knob {
        key: "peers",
        kind: Kind::Peers { max: 256 },
        default: DefaultValue::EmptyList,
        doc: "Peers to dial at start, each `\"IP:port#NodeId\"` (NodeId: 64 lowercase hex); the \
              peer's certificate must match the NodeId.",
        bound: "",
    },
    Knob {
        key: "engine.io_memory_bytes",
        kind: int(64 * KIB, 64 * MIB, Unit::Bytes),
        default: DefaultValue::Int(512 * KIB),
        doc: "Memory each executor registers with io_uring, once per ring (3 rings): shards x 3 x \
              this must fit `ulimit -l` unless the node runs as root.",
        bound: "glommio allocates at least 64 KiB; above 1 MiB needs a raised ulimit -l",
    },
    Knob {
        key: "engine.ring_depth",
        kind: int(8, 4096, Unit::Count),
        default: DefaultValue::Int(256),
        doc: "Entries of each io_uring ring: I/O an executor can submit at once.",
        bound: "measured: 8 to 4096 work, 32768 fails",
    },
    Knob {
        key: "engine.spin_before_park_us",
        kind: int(0, 10_000, Unit::Micros),
        default: DefaultValue::Int(0),
        doc: "Time an idle executor spins before sleeping: lower cross-shard latency for idle \
              CPU (200 us measured 14 us ping-pong instead of about 60 us).",
        bound: "",
    },
    Knob {
        key: "session.handshake_timeout_ms",
        kind: int(500, 30_000, Unit::Millis),
        default: DefaultValue::Int(3_000),
        doc: "TLS handshake and HELLO must complete within this (the slow-loris guard).",
        bound: "",
    },
    Knob {
        key: "session.read_timeout_ms",
        kind: int(1_000, 60_000, Unit::Millis),
        default: DefaultValue::Int(5_000),
        doc: "A peer mid-request must complete each frame within this of the last, else 408 \
              `slow_client`.",
        bound: "",
    },
    Knob {
        key: "session.write_timeout_ms",
        kind: int(1_000, 60_000, Unit::Millis),
        default: DefaultValue::Int(5_000),
        doc: "A frame must be written within this, else the session is closed.",
        bound: "",
    },
    Knob {
        key: "session.idle_timeout_ms",
        kind: int(5_000, 600_000, Unit::Millis),
        default: DefaultValue::Int(30_000),
        doc: "A session with nothing in flight is closed after this.",
        bound: "",
    },
    Knob {
        key: "session.inflight_frames",
        kind: int(1, limits::MAX_INFLIGHT as u64, Unit::Count),
        default: DefaultValue::Int(limits::MAX_INFLIGHT as u64),
        doc: "Requests a peer may have in flight on one session (the HELLO reply's \
              `max_inflight`).",
        bound: "the protocol's MAX_INFLIGHT is 64",
    },
    Knob {
        key: "session.max_rps",
        kind: int(1, 1_000_000, Unit::Count),
        default: DefaultValue::Int(2_000),
        doc: "Requests per second per session (token-bucket refill); beyond it, 429 `quota` with \
              `retry_after_ms`.",
        bound: "",
    },
    Knob {
        key: "session.burst",
        kind: int(1, 1_000_000, Unit::Count),
        default: DefaultValue::Int(500),
        doc: "Token-bucket size: requests a session may send at once on top of `max_rps`.",
        bound: "",
    },
    Knob {
        key: "session.send_window_frames",
        kind: int(1, 1024, Unit::Count),
        default: DefaultValue::Int(16),
        doc: "Frames queued for one session's writer; when full the node stops reading that \
              session (backpressure, never an unbounded buffer).",
        bound: "",
    },
    Knob {
        key: "session.max_conns",
        kind: int(1, 1_048_576, Unit::Count),
        default: DefaultValue::Int(4_096),
        doc: "Open connections per node; more are closed before the TLS handshake and counted.",
        bound: "",
    },
    Knob {
        key: "session.chunk_bytes",
        kind: int(
            limits::MIN_CHUNK_BYTES as u64,
            limits::MAX_CHUNK_BYTES as u64,
            Unit::Bytes,
        ),
        default: DefaultValue::Int(limits::CHUNK_BYTES as u64),
        doc: "Payload bytes per frame of a streamed body; with the 38-byte header it must fit \
              `max_frame`.",
        bound: "PROTOCOL.md 2.1: 4 KiB .. the largest payload a frame can carry",
    },
    Knob {
        key: "session.max_frame",
        kind: int(
            limits::MIN_NEGOTIATED_FRAME as u64,
            limits::MAX_FRAME as u64,
            Unit::Bytes,
        ),
        default: DefaultValue::Int(limits::MAX_FRAME as u64),
        doc: "Largest frame, header included, the node accepts and offers in HELLO (a client may \
              lower it).",
        bound: "PROTOCOL.md 3.1: HELLO may not ask below 4 KiB; 1 MiB is the protocol's max_frame",
    },
    Knob {
        key: "objects.max_bytes",
        kind: int(KIB, 64 * GIB, Unit::Bytes),
        default: DefaultValue::Int(256 * MIB),
        doc: "Largest object a PUT may store (413 `oversize` beyond); at most \
              `store.capacity_bytes`.",
        bound: "",
    },
    Knob {
        key: "objects.put_policy",
        kind: Kind::Choice(&["token", "open"]),
        default: DefaultValue::Str("token"),
        doc: "`token`: a PUT needs a `scope=put` capability; `open`: anyone who connects may PUT.",
        bound: "",
    },
    Knob {
        key: "objects.get_policy",
        kind: Kind::Choice(&["open", "token"]),
        default: DefaultValue::Str("open"),
        doc: "`open`: anyone may GET and HEAD; `token`: they need a `scope=get` capability.",
        bound: "",
    },
    Knob {
        key: "objects.fetch_peers",
        kind: int(0, 16, Unit::Count),
        default: DefaultValue::Int(3),
        doc: "Peers asked for an object this node lacks; 0: never fetch.",
        bound: "",
    },
    Knob {
        key: "objects.fetch_timeout_ms",
        kind: int(100, 60_000, Unit::Millis),
        default: DefaultValue::Int(2_000),
        doc: "How long each peer asked for a missing object has to deliver it before the next \
              one is asked.",
        bound: "",
    },
    Knob {
        key: "objects.cache_fetched",
        kind: Kind::Bool,
        default: DefaultValue::Bool(true),
        doc: "Keep objects fetched from peers in the local store.",
        bound: "",
    },
    Knob {
        key: "objects.put_timeout_s",
        kind: int(1, 86_400, Unit::Secs),
        default: DefaultValue::Int(ronode_shards::objects::DEFAULT_PUT_TIMEOUT_S),
        doc: "How long an upload has from its START frame to its last body frame before it is \
              answered 408 `slow_client` and its reservation given back.",
        bound: "",
    },
    Knob {
        key: "store.kind",
        kind: Kind::Choice(&["disk", "ram"]),
        default: DefaultValue::Str("disk"),
        doc: "Object store: `disk` (durable, every read checked against the address) or `ram` \
              (bounded LRU). Amnesia makes it `ram`.",
        bound: "",
    },
    Knob {
        key: "store.capacity_bytes",
        kind: int(MIB, 256 * TIB, Unit::Bytes),
        default: DefaultValue::IntByStore {
            disk: 8 * GIB,
            ram: 256 * MIB,
        },
        doc: "Bytes the store may hold; a PUT beyond it gets 507 `store_full`. A RAM store whose \
              capacity comes from the defaults, or from a profile that chose a disk store, gets \
              the RAM default.",
        bound: "",
    },
    Knob {
        key: "store.cache_bytes",
        kind: int(0, TIB, Unit::Bytes),
        default: DefaultValue::Int(64 * MIB),
        doc: "Memory a disk store keeps verified objects in for reads (its own cache: DMA reads \
              bypass the page cache); 0: none. Objects over an eighth of it are not cached.",
        bound: "",
    },
    Knob {
        key: "queues.work",
        kind: int(256, 2048, Unit::Count),
        default: DefaultValue::Int(512),
        doc: "GETs and HEADs a shard has in progress before it answers more 503 `busy`.",
        bound: "the svc-dht seed's queue_cap.work: 256 to 2048",
    },
    Knob {
        key: "queues.mesh",
        kind: int(16, 65_536, Unit::Count),
        default: DefaultValue::Int(1_024),
        doc: "Messages each SPSC channel between two shards holds; a full one is counted \
              (`bus_lagged_total`) and the work refused.",
        bound: "",
    },
    Knob {
        key: "gossip.relay_fanout",
        kind: int(1, 64, Unit::Count),
        default: DefaultValue::Int(6),
        doc: "Most peers each new gossip message is eagerly pushed to; lazy repair (IHAVE / \
              IWANT) reaches the others.",
        bound: "the gossip plane's MAX_RELAY_FANOUT",
    },
    Knob {
        key: "gossip.seed",
        kind: int(0, i64::MAX as u64, Unit::Count),
        default: DefaultValue::Int(0),
        doc: "Seeds the choice of eager-push peers (mixed with the shard), so that a run can be \
              replayed.",
        bound: "a TOML integer",
    },
    Knob {
        key: "gossip.pub_policy",
        kind: Kind::Choice(&["token", "open"]),
        default: DefaultValue::Str("token"),
        doc: "`token`: publishing needs a `scope=gossip` capability; `open`: anyone who connects \
              may publish. Subscribing never needs one.",
        bound: "",
    },
    Knob {
        key: "gossip.max_hops",
        kind: int(1, 255, Unit::Count),
        default: DefaultValue::Int(8),
        doc: "Relays a gossip message may take; one received past it is dropped.",
        bound: "the EVENT's hops is a u8",
    },
    Knob {
        key: "gossip.ihave_interval_ms",
        kind: int(50, 60_000, Unit::Millis),
        default: DefaultValue::Int(1_000),
        doc: "Period of lazy repair: IHAVE digests of recent messages go to peers each period, \
              for three periods after a message is first seen.",
        bound: "",
    },
    Knob {
        key: "gossip.topic_rate_per_s",
        kind: int(1, 1_000_000, Unit::Count),
        default: DefaultValue::Int(200),
        doc: "New messages a second a topic may carry on this node (publishes and relays); past \
              the burst they are shed and counted.",
        bound: "",
    },
    Knob {
        key: "gossip.topic_burst",
        kind: int(1, 1_000_000, Unit::Count),
        default: DefaultValue::Int(400),
        doc: "Burst of `gossip.topic_rate_per_s`.",
        bound: "",
    },
    Knob {
        key: "gossip.peer_rate_per_s",
        kind: int(1, 1_000_000, Unit::Count),
        default: DefaultValue::Int(1_000),
        doc: "New messages and IWANTs a second taken from one peer; past the burst they are shed \
              and counted.",
        bound: "",
    },
    Knob {
        key: "gossip.peer_burst",
        kind: int(1, 1_000_000, Unit::Count),
        default: DefaultValue::Int(2_000),
        doc: "Burst of `gossip.peer_rate_per_s`.",
        bound: "",
    },
    Knob {
        key: "gossip.message_cache",
        kind: int(16, 1_048_576, Unit::Count),
        default: DefaultValue::Int(4_096),
        doc: "Messages each shard keeps to answer IWANT; sixteen times as many ids are \
              remembered to drop duplicates.",
        bound: "",
    },
];

/// The knob named `key` (`name` or `section.name`).
pub fn knob(key: &str) -> Option<&'static Knob> {
    KNOBS.iter().find(|k| k.key == key)
}

/// The environment variable of a key: `RONODE_LISTEN`, `RONODE_SESSION__MAX_RPS`.
pub fn env_var(key: &str) -> String {
    format!("RONODE_{}", key.replace('.', "__").to_ascii_uppercase())
}

impl Knob {
    /// The TOML value of the default, `None` for a knob without one.
    pub fn default_value(&self) -> Option<toml::Value> {
        match self.default {
            DefaultValue::Int(n) | DefaultValue::IntByStore { disk: n, .. } => {
                Some(toml::Value::Integer(n as i64))
            }
            DefaultValue::Bool(b) => Some(toml::Value::Boolean(b)),
            DefaultValue::Str(s) => Some(toml::Value::String(s.to_owned())),
            DefaultValue::Absent => None,
            DefaultValue::EmptyList => Some(toml::Value::Array(Vec::new())),
        }
    }

    /// The section (`None` at the top level) and the name within it.
    pub fn split(&self) -> (Option<&'static str>, &'static str) {
        match self.key.split_once('.') {
            Some((section, name)) => (Some(section), name),
            None => (None, self.key),
        }
    }
}

/// The default RAM store capacity (`store.capacity_bytes` when `store.kind = "ram"`).
pub fn ram_store_capacity() -> u64 {
    match knob("store.capacity_bytes").map(|k| k.default) {
        Some(DefaultValue::IntByStore { ram, .. }) => ram,
        _ => unreachable!("store.capacity_bytes has a default per store kind"),
    }
}

/// The defaults as a TOML table: every section present, every knob with a default set.
pub fn defaults_table() -> toml::Table {
    let mut table = toml::Table::new();
    for section in SECTIONS {
        table.insert(
            (*section).to_owned(),
            toml::Value::Table(toml::Table::new()),
        );
    }
    for knob in KNOBS {
        if let Some(value) = knob.default_value() {
            set(&mut table, knob.key, value);
        }
    }
    table
}

/// Sets the value of `key` (`name` or `section.name`) in a table holding every section.
pub fn set(table: &mut toml::Table, key: &str, value: toml::Value) {
    match key.split_once('.') {
        Some((section, name)) => {
            let inner = table
                .entry(section.to_owned())
                .or_insert_with(|| toml::Value::Table(toml::Table::new()));
            if let toml::Value::Table(inner) = inner {
                inner.insert(name.to_owned(), value);
            }
        }
        None => {
            table.insert(key.to_owned(), value);
        }
    }
}

/// The value of `key` in a table, if set.
pub fn value<'t>(table: &'t toml::Table, key: &str) -> Option<&'t toml::Value> {
    match key.split_once('.') {
        Some((section, name)) => table.get(section)?.as_table()?.get(name),
        None => table.get(key),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_unique_known_sections_and_ordered() {
        let mut seen = std::collections::BTreeSet::new();
        let mut last_section = 0;
        for knob in KNOBS {
            assert!(seen.insert(knob.key), "{} twice", knob.key);
            assert!(!knob.doc.contains('|'), "{}: a | breaks KNOBS.md", knob.key);
            let (section, name) = knob.split();
            assert!(!name.contains('.') && !name.is_empty(), "{}", knob.key);
            let index = match section {
                None => 0,
                Some(s) => {
                    1 + SECTIONS
                        .iter()
                        .position(|x| *x == s)
                        .expect("known section")
                }
            };
            assert!(index >= last_section, "{} out of order", knob.key);
            last_section = index;
            assert!(
                !SECTIONS.contains(&knob.key),
                "{} names a section",
                knob.key
            );
        }
    }

    #[test]
    fn ranges_hold_their_defaults() {
        for knob in KNOBS {
            if let Kind::Int { min, max, .. } = knob.kind {
                assert!(min <= max, "{}", knob.key);
                let defaults = match knob.default {
                    DefaultValue::Int(n) => vec![n],
                    DefaultValue::IntByStore { disk, ram } => vec![disk, ram],
                    other => panic!("{}: integer knob with default {other:?}", knob.key),
                };
                for d in defaults {
                    assert!((min..=max).contains(&d), "{} default {d}", knob.key);
                }
                assert!(
                    max <= i64::MAX as u64,
                    "{} must fit a TOML integer",
                    knob.key
                );
            }
            if let (Kind::Choice(choices), DefaultValue::Str(s)) = (knob.kind, knob.default) {
                assert!(choices.contains(&s), "{}", knob.key);
            }
        }
    }

    #[test]
    fn env_names() {
        assert_eq!(env_var("listen"), "RONODE_LISTEN");
        assert_eq!(env_var("session.max_rps"), "RONODE_SESSION__MAX_RPS");
        assert_eq!(env_var("data_dir"), "RONODE_DATA_DIR");
    }

    #[test]
    fn wire_bounds_come_from_proto() {
        let chunk = knob("session.chunk_bytes").unwrap();
        assert_eq!(
            chunk.kind,
            int(4096, 1_048_538, Unit::Bytes),
            "PROTOCOL.md 2.1: 4 KiB .. 1 MiB - 38"
        );
        let frame = knob("session.max_frame").unwrap();
        assert_eq!(frame.kind, int(4096, 1_048_576, Unit::Bytes));
        assert_eq!(ram_store_capacity(), 256 * MIB);
    }
}
