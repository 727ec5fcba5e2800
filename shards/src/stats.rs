//! Per-shard statistics: what a shard counts on its hot path, and the board through which it
//! publishes snapshots to the admin thread (ARCHITECTURE.md section 1).
//!
//! A shard owns one [`ShardStats`] and mutates it through `&mut self`: plain integer adds and one
//! histogram record, no locks, no atomics, no allocation. At least every
//! [`PUBLISH_INTERVAL_MS`] of its own time (an argument; nothing here reads a clock) it calls
//! [`StatsBoard::publish`], which copies the stats into the shard's slot with `Mutex::try_lock`:
//! when the admin thread holds the slot at that moment, the shard skips this turn and publishes on
//! its next one, so a shard never waits for the admin. The admin reads the slots at scrape time
//! ([`StatsBoard::snapshots`], or [`StatsBoard::read`] to summarise without cloning) and merges
//! latency histograms there ([`Latency::merge`]), so nothing is copied per event.
//!
//! Every slot exists, at zero, from [`StatsBoard::new`]: the admin can expose every family for
//! every shard before any shard has published.

use std::sync::{Mutex, MutexGuard, PoisonError};

use hdrhistogram::Histogram;
use ronode_proto::reason::Reason;

use crate::peers::{DialFailure, PeerState};
use crate::placement::ShardId;

/// A shard publishes when this much of its time has passed since its last publish, so that with
/// a skipped turn and a loop turn of delay an event still reaches the board within 100 ms.
pub const PUBLISH_INTERVAL_MS: u64 = 50;

const REASONS: usize = Reason::ALL.len();

/// Why a TLS handshake failed: the label of `tls_handshake_failures_total{reason}`.
///
/// The engine maps its handshake outcome onto one of these:
/// - `timeout`: the handshake did not complete within `handshake_timeout` (a slow loris);
/// - `protocol`: the peer broke TLS or could not agree on it: a malformed or unexpected record or
///   message, no common protocol version, cipher suite or key-exchange group (for example a
///   classical-only peer against `pq_mode = "pq_only"`), a decrypt or decode error;
/// - `bad_cert`: a certificate was presented but refused: unparsable, not a node certificate, a
///   bad CertificateVerify signature, or a NodeId other than the one the dialler pinned;
/// - `alpn`: the handshake would have succeeded but no `ron/oap1` ALPN was agreed;
/// - `other`: anything else, chiefly I/O errors and the peer closing mid-handshake.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum TlsFailure {
    Timeout,
    Protocol,
    BadCert,
    Alpn,
    Other,
}

impl TlsFailure {
    /// Every label, so metrics can expose each at zero from the first scrape.
    pub const ALL: [TlsFailure; 5] = [
        TlsFailure::Timeout,
        TlsFailure::Protocol,
        TlsFailure::BadCert,
        TlsFailure::Alpn,
        TlsFailure::Other,
    ];

    /// The metric label.
    pub const fn label(self) -> &'static str {
        match self {
            TlsFailure::Timeout => "timeout",
            TlsFailure::Protocol => "protocol",
            TlsFailure::BadCert => "bad_cert",
            TlsFailure::Alpn => "alpn",
            TlsFailure::Other => "other",
        }
    }
}

/// Direction of overlay traffic: the `dir` label.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Dir {
    In,
    Out,
}

impl Dir {
    pub const ALL: [Dir; 2] = [Dir::In, Dir::Out];

    pub const fn label(self) -> &'static str {
        match self {
            Dir::In => "in",
            Dir::Out => "out",
        }
    }
}

/// Kind of an overlay frame: the `kind` label (REQ, RESP or EVENT flag).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum FrameKind {
    Req,
    Resp,
    Event,
}

impl FrameKind {
    pub const ALL: [FrameKind; 3] = [FrameKind::Req, FrameKind::Resp, FrameKind::Event];

    pub const fn label(self) -> &'static str {
        match self {
            FrameKind::Req => "req",
            FrameKind::Resp => "resp",
            FrameKind::Event => "event",
        }
    }
}

/// A shard's named bounded queues: the `queue` label.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Queue {
    /// Work waiting in the shard's disk store: reads waiting for an I/O place and uploads begun
    /// and not yet committed (the store's `MAX_QUEUED_READS` and `MAX_QUEUED_COMMITS` bound
    /// them; refused 503 `busy` past them).
    Work,
    /// Messages that must not be lost waiting for room on the shard's mesh channels to other
    /// shards (the engine's `MESH_WAITING` bounds them; refused past it).
    Mesh,
    /// Frames waiting in the shard's session outboxes for their writers (the engine's
    /// `OUTBOX_FRAMES` bounds each; refused past it).
    Send,
}

impl Queue {
    pub const ALL: [Queue; 3] = [Queue::Work, Queue::Mesh, Queue::Send];

    pub const fn label(self) -> &'static str {
        match self {
            Queue::Work => "work",
            Queue::Mesh => "mesh",
            Queue::Send => "send",
        }
    }
}

/// The application a request was for: the `app` label of `request_latency_seconds`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum App {
    /// App 0: HELLO, PING.
    Control,
    /// App 1: GET, HEAD, PUT.
    Objects,
    /// App 2: subscriptions, repair requests, publishes that ask an acknowledgement.
    Gossip,
}

impl App {
    pub const ALL: [App; 3] = [App::Control, App::Objects, App::Gossip];

    pub const fn label(self) -> &'static str {
        match self {
            App::Control => "control",
            App::Objects => "objects",
            App::Gossip => "gossip",
        }
    }

    /// The app of a frame's `app_proto_id`; `None` for one the node does not serve.
    pub fn of(app_proto_id: u16) -> Option<App> {
        match app_proto_id {
            ronode_proto::control::APP_CONTROL => Some(App::Control),
            ronode_proto::msg::APP_OBJECTS => Some(App::Objects),
            ronode_proto::msg::APP_GOSSIP => Some(App::Gossip),
            _ => None,
        }
    }
}

/// A shard's object store: `store_objects` and `store_bytes` (gauges),
/// `store_quarantined_total` (files the store moved to quarantine since start) and
/// `store_disk_full_total` (uploads the disk refused: ENOSPC, EDQUOT or a short write) and
/// `store_reserved_bytes` (a gauge: room promised to uploads in progress, given back by their
/// commit or abort, so an upload that never ends shows here).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StoreUsage {
    pub objects: u64,
    pub bytes: u64,
    pub quarantined: u64,
    pub disk_full: u64,
    pub reserved: u64,
}

/// How fetch on miss ended: the `result` label of `objects_fetch_total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum FetchResult {
    /// A fetch that found the object.
    Found,
    /// A fetch that asked every candidate in vain.
    NotFound,
    /// A try answered with bytes that do not hash to the address (the peer was skipped).
    BadDigest,
    /// A try past its deadline.
    Timeout,
    /// A try that failed otherwise.
    Failed,
    /// A miss refused as part of a fetch cycle or past the hop limit.
    LoopRefused,
}

impl FetchResult {
    pub const ALL: [FetchResult; 6] = [
        FetchResult::Found,
        FetchResult::NotFound,
        FetchResult::BadDigest,
        FetchResult::Timeout,
        FetchResult::Failed,
        FetchResult::LoopRefused,
    ];

    pub const fn label(self) -> &'static str {
        match self {
            FetchResult::Found => "found",
            FetchResult::NotFound => "not_found",
            FetchResult::BadDigest => "bad_digest",
            FetchResult::Timeout => "timeout",
            FetchResult::Failed => "failed",
            FetchResult::LoopRefused => "loop_refused",
        }
    }
}

/// What the gossip planes did: the `event` label of `gossip_messages_total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum GossipEvent {
    /// Messages published by local clients and accepted.
    Published,
    /// Eager pushes of new messages to peers (IWANT answers excluded).
    Relayed,
    /// Messages handed to local subscribers (one per subscriber and message).
    Delivered,
    /// EVENTs of messages already seen, dropped.
    Duplicate,
    /// New messages (and IWANTs) dropped because a topic's or a peer's burst budget was spent.
    BudgetShed,
    /// EVENTs dropped past the hop limit.
    HopLimited,
    /// EVENTs sent in answer to IWANT (lazy repair).
    Repaired,
    /// Frames or deliveries dropped because a queue towards a peer or a session was full.
    Dropped,
}

impl GossipEvent {
    pub const ALL: [GossipEvent; 8] = [
        GossipEvent::Published,
        GossipEvent::Relayed,
        GossipEvent::Delivered,
        GossipEvent::Duplicate,
        GossipEvent::BudgetShed,
        GossipEvent::HopLimited,
        GossipEvent::Repaired,
        GossipEvent::Dropped,
    ];

    pub const fn label(self) -> &'static str {
        match self {
            GossipEvent::Published => "published",
            GossipEvent::Relayed => "relayed",
            GossipEvent::Delivered => "delivered",
            GossipEvent::Duplicate => "duplicate",
            GossipEvent::BudgetShed => "budget_shed",
            GossipEvent::HopLimited => "hop_limited",
            GossipEvent::Repaired => "repaired",
            GossipEvent::Dropped => "dropped",
        }
    }
}

/// The overlay's peers and fetches on one shard, as their owners keep them:
/// `overlay_peers{state}` (a gauge: the peers this shard dials), `overlay_dial_failures_total
/// {reason}` and `objects_fetch_total{result}`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PeerUsage {
    pub peers: [u64; PeerState::ALL.len()],
    pub dial_failures: [u64; DialFailure::ALL.len()],
    pub fetches: [u64; FetchResult::ALL.len()],
}

/// The plain counters and gauges of one shard (everything but latency). `Copy`: the admin can
/// take them out of a slot without allocating.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Counters {
    rejected: [u64; REASONS],
    tls_handshake_failures: [u64; TlsFailure::ALL.len()],
    overlay_frames: [[u64; FrameKind::ALL.len()]; Dir::ALL.len()],
    overlay_bytes: [u64; Dir::ALL.len()],
    overlay_sessions_active: u64,
    bus_lagged: u64,
    queue_depth: [u64; Queue::ALL.len()],
    queue_dropped: [u64; Queue::ALL.len()],
    conns_refused: u64,
    store: StoreUsage,
    peers: PeerUsage,
    gossip: [u64; GossipEvent::ALL.len()],
    drain_cut: u64,
    sessions_shed: u64,
    session_buffer_bytes: u64,
}

impl Default for Counters {
    fn default() -> Self {
        Counters {
            rejected: [0; REASONS],
            tls_handshake_failures: [0; TlsFailure::ALL.len()],
            overlay_frames: [[0; FrameKind::ALL.len()]; Dir::ALL.len()],
            overlay_bytes: [0; Dir::ALL.len()],
            overlay_sessions_active: 0,
            bus_lagged: 0,
            queue_depth: [0; Queue::ALL.len()],
            queue_dropped: [0; Queue::ALL.len()],
            conns_refused: 0,
            store: StoreUsage::default(),
            peers: PeerUsage::default(),
            gossip: [0; GossipEvent::ALL.len()],
            drain_cut: 0,
            sessions_shed: 0,
            session_buffer_bytes: 0,
        }
    }
}

impl Counters {
    /// `rejected_total{reason}`.
    pub fn rejected(&self, reason: Reason) -> u64 {
        self.rejected[reason as usize]
    }

    /// `tls_handshake_failures_total{reason}`.
    pub fn tls_handshake_failures(&self, reason: TlsFailure) -> u64 {
        self.tls_handshake_failures[reason as usize]
    }

    /// `overlay_frames_total{dir,kind}`.
    pub fn overlay_frames(&self, dir: Dir, kind: FrameKind) -> u64 {
        self.overlay_frames[dir as usize][kind as usize]
    }

    /// `overlay_bytes_total{dir}`.
    pub fn overlay_bytes(&self, dir: Dir) -> u64 {
        self.overlay_bytes[dir as usize]
    }

    /// `overlay_sessions_active` (a gauge).
    pub fn overlay_sessions_active(&self) -> u64 {
        self.overlay_sessions_active
    }

    /// `bus_lagged_total`: times a mesh channel to another shard was found full.
    pub fn bus_lagged(&self) -> u64 {
        self.bus_lagged
    }

    /// `queue_depth{queue}` (a gauge).
    pub fn queue_depth(&self, queue: Queue) -> u64 {
        self.queue_depth[queue as usize]
    }

    /// `queue_dropped_total{queue}`: items refused because the queue was full.
    pub fn queue_dropped(&self, queue: Queue) -> u64 {
        self.queue_dropped[queue as usize]
    }

    /// `conns_refused_total`: connections closed before the TLS handshake, over `max_conns`.
    pub fn conns_refused(&self) -> u64 {
        self.conns_refused
    }

    /// `store_objects`, `store_bytes` and `store_quarantined_total`.
    pub fn store(&self) -> StoreUsage {
        self.store
    }

    /// `overlay_peers{state}`, `overlay_dial_failures_total{reason}`, `objects_fetch_total`.
    pub fn peers(&self) -> PeerUsage {
        self.peers
    }

    /// `gossip_messages_total{event}`.
    pub fn gossip(&self, event: GossipEvent) -> u64 {
        self.gossip[event as usize]
    }

    /// `drain_cut_total`: sessions the drain deadline closed with accepted requests unanswered.
    pub fn drain_cut(&self) -> u64 {
        self.drain_cut
    }

    /// `sessions_shed_total`: sessions closed for collecting too many refused requests.
    pub fn sessions_shed(&self) -> u64 {
        self.sessions_shed
    }

    /// `session_buffer_bytes` (a gauge): what the shard's sessions hold in read, write and
    /// ciphertext buffers (0 when every session is idle).
    pub fn session_buffer_bytes(&self) -> u64 {
        self.session_buffer_bytes
    }
}

/// Request latency in microseconds: an hdrhistogram over a fixed range plus the exact sum.
///
/// Every `Latency` has the same configuration, so copying and merging one into another is a
/// straight pass over the counts array, never a reallocation, and never fails.
#[derive(Debug, Clone)]
pub struct Latency {
    hist: Histogram<u64>,
    sum_us: u64,
}

impl Latency {
    /// Smallest discernible value, in microseconds.
    pub const LOWEST_US: u64 = 1;
    /// Largest tracked value (60 s); larger values are recorded as this.
    pub const HIGHEST_US: u64 = 60_000_000;
    /// Significant figures kept: values are exact to 0.1 %.
    pub const SIGFIGS: u8 = 3;

    /// An empty histogram (allocates its counts array once, about 140 KiB).
    pub fn new() -> Self {
        let hist = Histogram::new_with_bounds(Self::LOWEST_US, Self::HIGHEST_US, Self::SIGFIGS)
            .expect("constant histogram bounds are valid");
        Latency { hist, sum_us: 0 }
    }

    /// Records one request of `us` microseconds, clamped to [`Latency::HIGHEST_US`] in the
    /// histogram; the sum keeps the exact value.
    pub fn record_us(&mut self, us: u64) {
        self.hist.saturating_record(us.min(Self::HIGHEST_US));
        self.sum_us = self.sum_us.saturating_add(us);
    }

    /// Requests recorded.
    pub fn count(&self) -> u64 {
        self.hist.len()
    }

    /// Sum of the recorded latencies, in microseconds.
    pub fn sum_us(&self) -> u64 {
        self.sum_us
    }

    /// The latency at quantile `q` (0.0..=1.0), in microseconds (0 when empty).
    pub fn quantile_us(&self, q: f64) -> u64 {
        self.hist.value_at_quantile(q)
    }

    /// The underlying histogram.
    pub fn histogram(&self) -> &Histogram<u64> {
        &self.hist
    }

    /// Adds `other`'s requests to these.
    pub fn merge(&mut self, other: &Latency) {
        self.hist
            .add(&other.hist)
            .expect("histograms of one configuration always add");
        self.sum_us = self.sum_us.saturating_add(other.sum_us);
    }

    /// Overwrites these requests with `other`'s, reusing this histogram's memory.
    pub fn copy_from(&mut self, other: &Latency) {
        self.hist
            .set_to(&other.hist)
            .expect("histograms of one configuration always add");
        self.sum_us = other.sum_us;
    }

    /// Distributes the recorded requests over buckets bounded above by `bounds_us` (ascending):
    /// `out[i]` counts requests in `(bounds_us[i-1], bounds_us[i]]` and `out[bounds_us.len()]`
    /// those above the last bound. Counts are not cumulative. A value shares a bucket with
    /// every value the histogram cannot tell from it (within 0.1 %).
    ///
    /// # Panics
    /// If `out.len() != bounds_us.len() + 1`.
    pub fn bucket_counts(&self, bounds_us: &[u64], out: &mut [u64]) {
        assert_eq!(
            out.len(),
            bounds_us.len() + 1,
            "one more bucket than bounds"
        );
        debug_assert!(bounds_us.is_sorted(), "bounds ascend");
        let top = self.hist.high();
        // `low`: the smallest value not yet counted. Each pass sums one stretch of the counts
        // array, so the whole call reads it once.
        let mut low = 0;
        let mut counted = 0u64;
        for (slot, &bound) in out.iter_mut().zip(bounds_us) {
            let high = bound.min(top);
            *slot = if low > high {
                0
            } else {
                self.hist.count_between(low, high)
            };
            counted = counted.saturating_add(*slot);
            low = low.max(self.hist.next_non_equivalent(high));
        }
        out[bounds_us.len()] = self.hist.len().saturating_sub(counted);
    }
}

impl Default for Latency {
    fn default() -> Self {
        Latency::new()
    }
}

/// The statistics one shard owns and mutates on its hot path.
#[derive(Debug, Clone)]
pub struct ShardStats {
    shard: ShardId,
    counters: Counters,
    /// By [`App`], in [`App::ALL`] order.
    latency: [Latency; App::ALL.len()],
    last_published_ms: Option<u64>,
    publishes_skipped: u64,
}

impl ShardStats {
    /// Zeroed statistics for `shard` (allocates the latency histograms once).
    pub fn new(shard: ShardId) -> Self {
        ShardStats {
            shard,
            counters: Counters::default(),
            latency: std::array::from_fn(|_| Latency::new()),
            last_published_ms: None,
            publishes_skipped: 0,
        }
    }

    pub fn shard(&self) -> ShardId {
        self.shard
    }

    pub fn counters(&self) -> &Counters {
        &self.counters
    }

    pub fn latency(&self, app: App) -> &Latency {
        &self.latency[app as usize]
    }

    /// A frame or session was rejected with `reason`.
    pub fn rejected(&mut self, reason: Reason) {
        self.counters.rejected[reason as usize] += 1;
    }

    /// A TLS handshake failed.
    pub fn tls_handshake_failed(&mut self, reason: TlsFailure) {
        self.counters.tls_handshake_failures[reason as usize] += 1;
    }

    /// One overlay frame of `bytes` wire bytes (header included) went `dir`.
    pub fn frame(&mut self, dir: Dir, kind: FrameKind, bytes: u64) {
        self.counters.overlay_frames[dir as usize][kind as usize] += 1;
        self.counters.overlay_bytes[dir as usize] += bytes;
    }

    /// Overlay bytes that belong to no counted frame (a frame cut short by a reject).
    pub fn bytes(&mut self, dir: Dir, bytes: u64) {
        self.counters.overlay_bytes[dir as usize] += bytes;
    }

    pub fn session_opened(&mut self) {
        self.counters.overlay_sessions_active += 1;
    }

    pub fn session_closed(&mut self) {
        debug_assert!(
            self.counters.overlay_sessions_active > 0,
            "session closed that was never opened"
        );
        self.counters.overlay_sessions_active =
            self.counters.overlay_sessions_active.saturating_sub(1);
    }

    /// Sets the session gauge outright (the shard knows its session table's size).
    pub fn set_sessions_active(&mut self, sessions: u64) {
        self.counters.overlay_sessions_active = sessions;
    }

    /// A mesh channel to another shard was found full.
    pub fn bus_lagged(&mut self) {
        self.counters.bus_lagged += 1;
    }

    pub fn set_queue_depth(&mut self, queue: Queue, depth: u64) {
        self.counters.queue_depth[queue as usize] = depth;
    }

    /// An item was refused because `queue` was full.
    pub fn queue_dropped(&mut self, queue: Queue) {
        self.counters.queue_dropped[queue as usize] += 1;
    }

    /// A connection was closed before its TLS handshake because the shard was at `max_conns`.
    pub fn conn_refused(&mut self) {
        self.counters.conns_refused += 1;
    }

    /// The drain deadline closed a session before every request it accepted was answered.
    pub fn drain_cut(&mut self) {
        self.counters.drain_cut += 1;
    }

    /// A session was closed for passing the bound on refused requests.
    pub fn session_shed(&mut self) {
        self.counters.sessions_shed += 1;
    }

    /// The shard's peers and fetches (their owners keep the counts).
    pub fn set_peers(&mut self, usage: PeerUsage) {
        self.counters.peers = usage;
    }

    /// What the shard's gossip plane counted, by [`GossipEvent`] (the plane keeps the counts).
    pub fn set_gossip(&mut self, counts: [u64; GossipEvent::ALL.len()]) {
        self.counters.gossip = counts;
    }

    /// A session's buffers went from `before` bytes to `now` (each session reports its own
    /// changes, so the gauge is their sum).
    pub fn session_buffers(&mut self, before: usize, now: usize) {
        let g = &mut self.counters.session_buffer_bytes;
        *g = g.saturating_add(now as u64).saturating_sub(before as u64);
    }

    /// What the shard's object store holds and has quarantined (the store keeps the counts).
    pub fn set_store(&mut self, usage: StoreUsage) {
        self.counters.store = usage;
    }

    /// A request of `app` was answered `us` microseconds after it was accepted.
    pub fn request_latency_us(&mut self, app: App, us: u64) {
        self.latency[app as usize].record_us(us);
    }

    /// Whether a publish is due at `now_ms` (never published, or [`PUBLISH_INTERVAL_MS`]
    /// since the last one). A skipped publish leaves it due.
    pub fn publish_due(&self, now_ms: u64) -> bool {
        self.last_published_ms
            .is_none_or(|last| now_ms.saturating_sub(last) >= PUBLISH_INTERVAL_MS)
    }

    /// When these stats last reached the board.
    pub fn last_published_ms(&self) -> Option<u64> {
        self.last_published_ms
    }

    /// Publishes skipped because the admin held the slot.
    pub fn publishes_skipped(&self) -> u64 {
        self.publishes_skipped
    }
}

/// What a shard's stats looked like when it last published. Before its first publish, the
/// slot holds a zero snapshot with `published_ms == None`.
#[derive(Debug, Clone)]
pub struct Snapshot {
    pub shard: ShardId,
    /// The shard's time at the publish (`None`: never published).
    pub published_ms: Option<u64>,
    pub counters: Counters,
    /// By [`App`], in [`App::ALL`] order.
    pub latency: [Latency; App::ALL.len()],
}

impl Snapshot {
    /// A zero snapshot for `shard`.
    pub fn empty(shard: ShardId) -> Self {
        Snapshot {
            shard,
            published_ms: None,
            counters: Counters::default(),
            latency: std::array::from_fn(|_| Latency::new()),
        }
    }

    fn copy_from(&mut self, stats: &ShardStats, now_ms: u64) {
        debug_assert_eq!(self.shard, stats.shard);
        self.published_ms = Some(now_ms);
        self.counters = stats.counters;
        for (mine, theirs) in self.latency.iter_mut().zip(&stats.latency) {
            mine.copy_from(theirs);
        }
    }
}

/// The outcome of [`StatsBoard::publish`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[must_use]
pub enum Publish {
    /// The slot now holds these stats.
    Published,
    /// The admin was reading the slot; try again next turn (still due).
    Skipped,
}

// Slots on their own cache lines, so one shard's publish does not disturb its neighbours'.
#[derive(Debug)]
#[repr(align(128))]
struct Slot(Mutex<Snapshot>);

/// One slot per shard: each shard writes its own without ever waiting, the admin thread reads
/// them all.
#[derive(Debug)]
pub struct StatsBoard {
    slots: Box<[Slot]>,
}

impl StatsBoard {
    /// A board for `shard_count` shards, every slot a zero snapshot.
    ///
    /// # Panics
    /// If `shard_count` is 0.
    pub fn new(shard_count: u16) -> Self {
        assert!(shard_count > 0, "a node has at least one shard");
        let slots = (0..shard_count)
            .map(|s| Slot(Mutex::new(Snapshot::empty(ShardId(s)))))
            .collect();
        StatsBoard { slots }
    }

    pub fn shard_count(&self) -> u16 {
        self.slots.len() as u16
    }

    /// Copies `stats` into its shard's slot, unless the admin holds the slot right now: then
    /// nothing is copied, the publish stays due and the shard tries again on a later turn.
    /// Never blocks and never allocates.
    ///
    /// # Panics
    /// If `stats` belongs to a shard the board does not have.
    pub fn publish(&self, stats: &mut ShardStats, now_ms: u64) -> Publish {
        let slot = &self.slots[usize::from(stats.shard.0)].0;
        let mut snap = match slot.try_lock() {
            Ok(guard) => guard,
            Err(std::sync::TryLockError::Poisoned(p)) => p.into_inner(),
            Err(std::sync::TryLockError::WouldBlock) => {
                stats.publishes_skipped += 1;
                return Publish::Skipped;
            }
        };
        snap.copy_from(stats, now_ms);
        stats.last_published_ms = Some(now_ms);
        Publish::Published
    }

    /// [`StatsBoard::publish`] when [`ShardStats::publish_due`]; `None` when not due. The
    /// shard calls this once per loop turn.
    pub fn publish_if_due(&self, stats: &mut ShardStats, now_ms: u64) -> Option<Publish> {
        stats
            .publish_due(now_ms)
            .then(|| self.publish(stats, now_ms))
    }

    /// Runs `f` on `shard`'s latest snapshot, holding its slot meanwhile (the shard skips a
    /// publish if it comes then): keep `f` short. Lets the admin summarise without cloning
    /// the histogram.
    pub fn read<R>(&self, shard: ShardId, f: impl FnOnce(&Snapshot) -> R) -> R {
        f(&self.lock(shard))
    }

    /// A clone of every shard's latest snapshot, in shard order.
    pub fn snapshots(&self) -> Vec<Snapshot> {
        (0..self.shard_count())
            .map(|s| self.lock(ShardId(s)).clone())
            .collect()
    }

    /// The latency of every shard and app merged into one histogram.
    pub fn merged_latency(&self) -> Latency {
        let mut all = Latency::new();
        for s in 0..self.shard_count() {
            for latency in &self.lock(ShardId(s)).latency {
                all.merge(latency);
            }
        }
        all
    }

    fn lock(&self, shard: ShardId) -> MutexGuard<'_, Snapshot> {
        self.slots[usize::from(shard.0)]
            .0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn enum_indices_follow_all() {
        for (i, r) in Reason::ALL.into_iter().enumerate() {
            assert_eq!(r as usize, i, "{r}");
        }
        for (i, t) in TlsFailure::ALL.into_iter().enumerate() {
            assert_eq!(t as usize, i);
        }
        for (i, d) in Dir::ALL.into_iter().enumerate() {
            assert_eq!(d as usize, i);
        }
        for (i, k) in FrameKind::ALL.into_iter().enumerate() {
            assert_eq!(k as usize, i);
        }
        for (i, q) in Queue::ALL.into_iter().enumerate() {
            assert_eq!(q as usize, i);
        }
        for (i, a) in App::ALL.into_iter().enumerate() {
            assert_eq!(a as usize, i);
            assert_eq!(App::of([0, 1, 2][i]), Some(a));
        }
        assert_eq!(App::of(3), None);
    }

    #[test]
    fn counters_count() {
        let mut s = ShardStats::new(ShardId(1));
        s.rejected(Reason::Oversize);
        s.rejected(Reason::Oversize);
        s.rejected(Reason::BadPublisher);
        s.tls_handshake_failed(TlsFailure::Alpn);
        s.frame(Dir::In, FrameKind::Req, 100);
        s.frame(Dir::Out, FrameKind::Resp, 40);
        s.frame(Dir::Out, FrameKind::Event, 2);
        s.bytes(Dir::In, 7);
        s.session_opened();
        s.session_opened();
        s.session_closed();
        s.bus_lagged();
        s.set_queue_depth(Queue::Send, 9);
        s.queue_dropped(Queue::Work);
        s.conn_refused();
        s.request_latency_us(App::Objects, 250);
        let usage = StoreUsage {
            objects: 2,
            bytes: 300,
            quarantined: 1,
            disk_full: 0,
            reserved: 4,
        };
        s.set_store(usage);

        let c = s.counters();
        assert_eq!(c.rejected(Reason::Oversize), 2);
        assert_eq!(c.rejected(Reason::BadPublisher), 1);
        assert_eq!(c.rejected(Reason::Truncated), 0);
        assert_eq!(c.tls_handshake_failures(TlsFailure::Alpn), 1);
        assert_eq!(c.tls_handshake_failures(TlsFailure::Timeout), 0);
        assert_eq!(c.overlay_frames(Dir::In, FrameKind::Req), 1);
        assert_eq!(c.overlay_frames(Dir::Out, FrameKind::Resp), 1);
        assert_eq!(c.overlay_frames(Dir::Out, FrameKind::Event), 1);
        assert_eq!(c.overlay_frames(Dir::In, FrameKind::Event), 0);
        assert_eq!(c.overlay_bytes(Dir::In), 107);
        assert_eq!(c.overlay_bytes(Dir::Out), 42);
        assert_eq!(c.overlay_sessions_active(), 1);
        assert_eq!(c.bus_lagged(), 1);
        assert_eq!(c.queue_depth(Queue::Send), 9);
        assert_eq!(c.queue_depth(Queue::Work), 0);
        assert_eq!(c.queue_dropped(Queue::Work), 1);
        assert_eq!(c.conns_refused(), 1);
        assert_eq!(c.store(), usage);
        assert_eq!(s.latency(App::Objects).count(), 1);
        assert_eq!(s.latency(App::Objects).sum_us(), 250);
        assert_eq!(s.latency(App::Gossip).count(), 0);
        s.set_sessions_active(5);
        assert_eq!(s.counters().overlay_sessions_active(), 5);
        s.session_buffers(0, 4096);
        s.session_buffers(0, 100);
        s.session_buffers(4096, 1000);
        assert_eq!(s.counters().session_buffer_bytes(), 1100);
        s.session_buffers(1100, 0);
        assert_eq!(s.counters().session_buffer_bytes(), 0);
    }

    #[test]
    fn board_starts_at_zero_for_every_shard() {
        let board = StatsBoard::new(3);
        let snaps = board.snapshots();
        assert_eq!(snaps.len(), 3);
        for (i, snap) in snaps.iter().enumerate() {
            assert_eq!(snap.shard, ShardId(i as u16));
            assert_eq!(snap.published_ms, None);
            assert_eq!(snap.counters, Counters::default());
            assert!(snap.latency.iter().all(|l| l.count() == 0));
        }
    }

    #[test]
    fn publish_copies_and_skips_while_the_admin_reads() {
        let board = StatsBoard::new(2);
        let mut s = ShardStats::new(ShardId(1));
        assert!(s.publish_due(0));
        s.rejected(Reason::Quota);
        s.request_latency_us(App::Control, 1_000);
        assert_eq!(board.publish(&mut s, 10), Publish::Published);
        assert_eq!(s.last_published_ms(), Some(10));
        assert!(!s.publish_due(10 + PUBLISH_INTERVAL_MS - 1));
        assert!(s.publish_due(10 + PUBLISH_INTERVAL_MS));

        let snaps = board.snapshots();
        assert_eq!(snaps[0].published_ms, None);
        assert_eq!(snaps[1].published_ms, Some(10));
        assert_eq!(snaps[1].counters.rejected(Reason::Quota), 1);
        assert_eq!(snaps[1].latency[App::Control as usize].count(), 1);

        // The admin holds the slot: the shard skips, stays due, and loses nothing.
        s.rejected(Reason::Quota);
        let outcome = board.read(ShardId(1), |_| board.publish(&mut s, 100));
        assert_eq!(outcome, Publish::Skipped);
        assert_eq!(s.publishes_skipped(), 1);
        assert_eq!(s.last_published_ms(), Some(10));
        assert!(s.publish_due(100));
        assert_eq!(
            board.read(ShardId(1), |snap| snap.counters.rejected(Reason::Quota)),
            1
        );
        // The other shard's slot is free meanwhile.
        let mut s0 = ShardStats::new(ShardId(0));
        let outcome = board.read(ShardId(1), |_| board.publish(&mut s0, 100));
        assert_eq!(outcome, Publish::Published);

        assert_eq!(board.publish_if_due(&mut s, 101), Some(Publish::Published));
        assert_eq!(board.publish_if_due(&mut s, 102), None);
        let snap = &board.snapshots()[1];
        assert_eq!(snap.counters.rejected(Reason::Quota), 2);
        assert_eq!(snap.published_ms, Some(101));
    }

    #[test]
    fn publish_never_waits_for_a_reader_on_another_thread() {
        let board = std::sync::Arc::new(StatsBoard::new(1));
        let (held_tx, held_rx) = std::sync::mpsc::channel();
        let (release_tx, release_rx) = std::sync::mpsc::channel::<()>();
        let reader = {
            let board = board.clone();
            std::thread::spawn(move || {
                board.read(ShardId(0), |_| {
                    held_tx.send(()).unwrap();
                    release_rx.recv().unwrap();
                })
            })
        };
        held_rx.recv().unwrap();
        let mut s = ShardStats::new(ShardId(0));
        assert_eq!(board.publish(&mut s, 1), Publish::Skipped);
        release_tx.send(()).unwrap();
        reader.join().unwrap();
        assert_eq!(board.publish(&mut s, 2), Publish::Published);
    }

    #[test]
    fn latency_merges_and_buckets() {
        let mut a = Latency::new();
        let mut b = Latency::new();
        for us in [50, 150, 900] {
            a.record_us(us);
        }
        for us in [1_000, 1_001, 120_000_000] {
            b.record_us(us);
        }
        let mut all = a.clone();
        all.merge(&b);
        assert_eq!(all.count(), 6);
        assert_eq!(all.sum_us(), 50 + 150 + 900 + 1_000 + 1_001 + 120_000_000);
        // The 120 s request is clamped to the histogram's top.
        assert!(all.quantile_us(1.0) >= Latency::HIGHEST_US);
        assert!(all.quantile_us(1.0) <= Latency::HIGHEST_US + Latency::HIGHEST_US / 1000);

        let bounds = [100, 1_000, 10_000];
        let mut out = [0u64; 4];
        all.bucket_counts(&bounds, &mut out);
        assert_eq!(out, [1, 3, 1, 1]);
        Latency::new().bucket_counts(&bounds, &mut out);
        assert_eq!(out, [0; 4]);
        // Bounds the histogram cannot tell apart (5000..=5003 share a slot above 4096), and
        // bounds past its top: nothing is counted twice.
        let mut d = Latency::new();
        for us in [5, 5_002, 70_000_000] {
            d.record_us(us);
        }
        d.bucket_counts(&[5_000, 5_001, 5_003], &mut out);
        assert_eq!(out, [2, 0, 0, 1]);
        d.bucket_counts(&[10, 100_000_000, 200_000_000], &mut out);
        assert_eq!(out, [1, 2, 0, 0]);

        // Merged through the board, across shards.
        let board = StatsBoard::new(2);
        let mut s0 = ShardStats::new(ShardId(0));
        let mut s1 = ShardStats::new(ShardId(1));
        s0.request_latency_us(App::Objects, 10);
        s1.request_latency_us(App::Gossip, 20);
        s1.request_latency_us(App::Objects, 30);
        assert_eq!(board.publish(&mut s0, 0), Publish::Published);
        assert_eq!(board.publish(&mut s1, 0), Publish::Published);
        let merged = board.merged_latency();
        assert_eq!(merged.count(), 3);
        assert_eq!(merged.sum_us(), 60);
        assert_eq!(merged.quantile_us(0.0), 10);
        assert_eq!(merged.quantile_us(1.0), 30);

        // copy_from replaces rather than adds.
        let mut c = a.clone();
        c.copy_from(&b);
        assert_eq!(c.count(), 3);
        assert_eq!(c.sum_us(), b.sum_us());
    }
}
