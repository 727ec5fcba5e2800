//! One shard's state: its planes, its sessions' count, its clock and its statistics (its life
//! on the executor is `run.rs`). Nothing here is shared with other shards but the read-only TLS configuration,
//! the drain flag and the stats board slot this shard publishes into.

use super::gossip::Gossip;
use super::handoff::{self, Handoff};
use super::objects::Objects;
use super::peers::Peers;
use super::tls_conn::TlsConn;
use glommio::channels::shared_channel::ConnectedSender;
use ronode_shards::peers::{DialFailure, PeerState};
use ronode_shards::session::{Now, SessionCfg};
use ronode_shards::stats::{PeerUsage, Queue, ShardStats, StatsBoard};
use ronode_shards::ShardId;
use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// What a shard needs from the node's configuration, resolved once.
#[derive(Debug, Clone)]
pub struct ShardCfg {
    pub handshake_timeout: Duration,
    /// A write must complete within this, else the session is closed.
    pub write_timeout: Duration,
    pub max_conns_per_shard: usize,
    /// Frames queued for a session's writer before its GET streams pause.
    pub send_window_frames: usize,
    /// What each session applies (timeouts, limits, rates): `ronode_shards::session`.
    pub session: SessionCfg,
    /// How often a shard publishes its stats and sessions look at the drain flag.
    pub tick: Duration,
    pub drain_timeout: Duration,
}

/// Per-shard state, owned by the shard's executor thread.
pub struct Shard {
    pub id: ShardId,
    pub shard_count: u16,
    pub cfg: ShardCfg,
    pub acceptor: futures_rustls::TlsAcceptor,
    pub(super) stats: RefCell<ShardStats>,
    pub(super) board: Arc<StatsBoard>,
    pub(super) draining: Arc<AtomicBool>,
    /// When the drain must be over: set by the first look after the drain flag went up.
    pub(super) drain_deadline: Cell<Option<Instant>>,
    pub(super) sessions: Cell<usize>,
    pub(super) clock: super::clock::Clock,
    pub objects: Rc<Objects>,
    pub peers: Rc<Peers>,
    pub gossip: Rc<Gossip>,
    /// Senders on the hand-off mesh, by shard (None for this one, or until connected).
    pub(super) handoffs: RefCell<Vec<Option<Rc<ConnectedSender<Handoff>>>>>,
    /// What has been copied into `stats` from the objects runtime's own counters.
    pub(super) reported: RefCell<Reported>,
    /// Returns freed memory to the system after a burst of sessions ended.
    pub(super) heap: super::heap::HeapTrim,
}

#[derive(Default)]
pub(super) struct Reported {
    mesh_refused: u64,
    outbox_refused: u64,
    work_refused: u64,
    lagged: u64,
    gossip_lagged: u64,
    refusals: Vec<u64>,
}

impl Shard {
    /// Milliseconds since the shard started: the time the sans-IO parts are given.
    pub fn now_ms(&self) -> u64 {
        self.clock.now_ms()
    }

    /// Both clocks the sans-IO core is given, read once per loop turn.
    pub fn now(&self) -> Now {
        self.clock.now()
    }

    /// [`Shard::drain_deadline`] on the [`Shard::now_ms`] clock.
    pub fn drain_deadline_ms(&self) -> Option<u64> {
        self.drain_deadline().map(|d| self.clock.ms_of(d))
    }

    pub fn draining(&self) -> bool {
        self.draining.load(Ordering::Relaxed)
    }

    /// `None` while the node runs; once it drains, the instant by which every session must
    /// have closed (`drain_timeout` after this shard first noticed).
    pub fn drain_deadline(&self) -> Option<Instant> {
        if let Some(deadline) = self.drain_deadline.get() {
            return Some(deadline);
        }
        if !self.draining() {
            return None;
        }
        let deadline = Instant::now() + self.cfg.drain_timeout;
        self.drain_deadline.set(Some(deadline));
        Some(deadline)
    }

    /// Updates this shard's stats. Never held across an await.
    pub fn stats_mut(&self, f: impl FnOnce(&mut ShardStats)) {
        f(&mut self.stats.borrow_mut());
    }

    /// The shard's peers and fetches, for its stats.
    fn peer_usage(&self) -> PeerUsage {
        let f = self.objects.fetch_counters();
        PeerUsage {
            peers: PeerState::ALL.map(|st| self.peers.count(st) as u64),
            dial_failures: DialFailure::ALL.map(|r| self.peers.failures(r)),
            fetches: [
                f.found,
                f.not_found,
                f.bad_digest,
                f.timeouts,
                f.failed,
                f.loops_refused,
            ],
        }
    }

    /// Gives a peer session to the shard that owns its NodeId. Hands the session back when it
    /// cannot go (the channel is full or still connecting: counted in `bus_lagged_total`; or
    /// its fd could not be duplicated), to be served here instead.
    pub fn hand_off(&self, owner: ShardId, tls: TlsConn) -> Option<TlsConn> {
        let sender = self.handoffs.borrow()[owner.0 as usize].clone();
        let Some(sender) = sender else {
            self.stats_mut(|s| s.bus_lagged());
            return Some(tls);
        };
        let handoff = match handoff::detach(tls) {
            handoff::Detached::Ready(h) => h,
            handoff::Detached::Kept(tls, e) => {
                tracing::warn!(shard = %self.id, "cannot hand a session to shard {owner}: {e}");
                return Some(tls);
            }
        };
        match sender.try_send(handoff) {
            Ok(()) => None,
            Err(e) => {
                self.stats_mut(|s| s.bus_lagged());
                Some(handoff::attach(super::mesh::returned(e)))
            }
        }
    }

    /// Publishes to the admin thread when due (never waits for it), after folding in what the
    /// objects runtime counted since the last turn.
    pub(super) fn publish(&self, now_ms: u64) {
        {
            let mut rep = self.reported.borrow_mut();
            let mut stats = self.stats.borrow_mut();
            let lagged = self.objects.lagged();
            for _ in rep.lagged..lagged {
                stats.bus_lagged();
            }
            rep.lagged = lagged;
            let gossip_lagged = self.gossip.lagged();
            for _ in rep.gossip_lagged..gossip_lagged {
                stats.bus_lagged();
            }
            rep.gossip_lagged = gossip_lagged;
            // The bounded queues of this shard: messages waiting for a mesh channel, frames
            // waiting in session queues, the disk store's reads and commits, and what each
            // refused.
            stats.set_queue_depth(Queue::Mesh, super::mesh::waiting() as u64);
            stats.set_queue_depth(Queue::Send, self.objects.outbox_frames() as u64);
            let mesh_refused = super::mesh::refused();
            for _ in rep.mesh_refused..mesh_refused {
                stats.queue_dropped(Queue::Mesh);
            }
            rep.mesh_refused = mesh_refused;
            let outbox_refused = self.objects.outbox_refused();
            for _ in rep.outbox_refused..outbox_refused {
                stats.queue_dropped(Queue::Send);
            }
            rep.outbox_refused = outbox_refused;
            let (work, work_refused) = self.objects.store_work();
            stats.set_queue_depth(Queue::Work, work);
            for _ in rep.work_refused..work_refused {
                stats.queue_dropped(Queue::Work);
            }
            rep.work_refused = work_refused;
            stats.set_gossip(self.gossip.counts());
            stats.set_store(self.objects.store_usage());
            stats.set_peers(self.peer_usage());
            let refusals = self.objects.refusals();
            rep.refusals.resize(refusals.len(), 0);
            for (i, (reason, n)) in refusals.into_iter().enumerate() {
                for _ in rep.refusals[i]..n {
                    stats.rejected(reason);
                }
                rep.refusals[i] = n;
            }
        }
        let _ = self
            .board
            .publish_if_due(&mut self.stats.borrow_mut(), now_ms);
    }
}
