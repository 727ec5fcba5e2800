//! One shard: a glommio executor pinned to a core, its SO_REUSEPORT listener (bound by the main thread), its sessions and
//! its statistics. Nothing here is shared with other shards but the read-only TLS configuration,
//! the drain flag and the stats board slot this shard publishes into.

use super::gossip::{self, Gossip, GossipMsg, GossipSeed};
use super::handoff::{self, Handoff};
use super::objects::{self, MeshMsg, Objects, StoreSeed};
use super::peers::{self, PeerMsg, Peers, PeersCfg};
use super::session;
use super::tls_conn::TlsConn;
use glommio::channels::shared_channel::{
    ConnectedReceiver, ConnectedSender, SharedReceiver, SharedSender,
};
use glommio::net::TcpListener;
use ronode_proto::inbound::ServedApps;
use ronode_proto::Reason;
use ronode_shards::objects::{CapKeys, ObjectsConfig, ObjectsPlane};
use ronode_shards::peers::{DialFailure, PeerState};
use ronode_shards::stats::{PeerUsage, Queue, ShardStats, StatsBoard};
use ronode_shards::ShardId;
use std::cell::{Cell, RefCell};
use std::net::SocketAddr;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The apps a node serves today: control, objects and gossip. DHT joins as its plane lands;
/// until then its frames are answered `unknown_app`, truthfully.
pub const SERVED_APPS: ServedApps = ServedApps::of(&[
    ronode_proto::control::APP_CONTROL,
    ronode_proto::msg::APP_OBJECTS,
    ronode_proto::msg::APP_GOSSIP,
]);

/// What a shard needs from the node's configuration, resolved once.
#[derive(Debug, Clone)]
pub struct ShardCfg {
    pub handshake_timeout: Duration,
    /// A peer mid-request must complete a frame within this (408 `slow_client`).
    pub read_timeout: Duration,
    /// A write must complete within this, else the session is closed.
    pub write_timeout: Duration,
    pub idle_timeout: Duration,
    pub max_frame: u32,
    pub max_conns_per_shard: usize,
    /// Requests a session may have unanswered (`session.inflight_frames`); beyond, 429.
    pub inflight: u32,
    /// Frames queued for a session's writer before its GET streams pause.
    pub send_window_frames: usize,
    /// Per-session request rate (token bucket) and its burst.
    pub max_rps: u32,
    pub burst: u32,
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
    stats: RefCell<ShardStats>,
    board: Arc<StatsBoard>,
    draining: Arc<AtomicBool>,
    /// When the drain must be over: set by the first look after the drain flag went up.
    drain_deadline: Cell<Option<Instant>>,
    sessions: Cell<usize>,
    epoch: Instant,
    pub objects: Rc<Objects>,
    pub peers: Rc<Peers>,
    pub gossip: Rc<Gossip>,
    /// Senders on the hand-off mesh, by shard (None for this one, or until connected).
    handoffs: RefCell<Vec<Option<Rc<ConnectedSender<Handoff>>>>>,
    /// What has been copied into `stats` from the objects runtime's own counters.
    reported: RefCell<Reported>,
    /// Returns freed memory to the system after a burst of sessions ended.
    heap: super::heap::HeapTrim,
}

#[derive(Default)]
struct Reported {
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
        self.epoch.elapsed().as_millis() as u64
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
    fn publish(&self, now_ms: u64) {
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
            // waiting in session outboxes, the disk store's reads and commits, and what each
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

/// Everything a shard thread starts from (all `Send`).
pub struct ShardSeed {
    pub id: ShardId,
    pub cfg: ShardCfg,
    pub tls: Arc<rustls::ServerConfig>,
    pub board: Arc<StatsBoard>,
    pub draining: Arc<AtomicBool>,
    /// This shard's listener, bound and listening (SO_REUSEPORT) by the node's main thread.
    pub listener: std::net::TcpListener,
    pub shard_count: u16,
    pub objects: ObjectsConfig,
    /// Fetch on miss: how, and whether fetched objects are kept.
    pub fetch: ronode_shards::objects::FetchConfig,
    pub cache_fetched: bool,
    pub cap_keys: CapKeys,
    pub store: StoreSeed,
    /// Senders towards every other shard, and receivers from them (the bounded SPSC mesh).
    pub mesh_out: Vec<(ShardId, SharedSender<MeshMsg>)>,
    pub mesh_in: Vec<SharedReceiver<MeshMsg>>,
    /// The same for peer sessions handed to the shard owning their NodeId.
    pub handoff_out: Vec<(ShardId, SharedSender<Handoff>)>,
    pub handoff_in: Vec<SharedReceiver<Handoff>>,
    /// The configured peers whose NodeId this shard owns, how to keep them, and the peer mesh.
    pub peers: Vec<ronode_shards::peers::PeerSpec>,
    pub peers_cfg: PeersCfg,
    pub peer_out: Vec<(ShardId, SharedSender<PeerMsg>)>,
    pub peer_in: Vec<SharedReceiver<PeerMsg>>,
    /// The gossip plane's settings, and the gossip mesh.
    pub gossip: GossipSeed,
    pub gossip_out: Vec<(ShardId, SharedSender<GossipMsg>)>,
    pub gossip_in: Vec<SharedReceiver<GossipMsg>>,
    /// Tells the node the address this shard listens on, once its store is open.
    pub bound: std::sync::mpsc::Sender<std::io::Result<SocketAddr>>,
}

/// Runs a shard until the node drains: accept, serve, publish stats every tick.
pub async fn run(seed: ShardSeed) {
    #[cfg(feature = "count-allocs")]
    ronode_admin::alloc_count::count_this_thread();
    // The store first: a shard serves nothing before its index is built, and a store that
    // cannot open fails the start like a port that cannot be bound.
    let store = match seed.store.open(seed.id, seed.shard_count) {
        Ok(store) => store,
        Err(e) => {
            let _ = seed
                .bound
                .send(Err(std::io::Error::other(format!("object store: {e}"))));
            return;
        }
    };
    let listener = glommio_listener(seed.listener);
    let _ = seed
        .bound
        .send(listener.local_addr().map_err(std::io::Error::from));
    let plane = match ObjectsPlane::new(seed.id, seed.objects, seed.cap_keys.clone()) {
        Ok(p) => p,
        Err(e) => {
            tracing::error!(shard = %seed.id, "objects configuration: {e}");
            return;
        }
    };
    let fetch = super::fetch::FetchState::new(seed.fetch, seed.cache_fetched);
    let objects = Objects::new(seed.id, seed.shard_count, plane, store, fetch);
    for rx in seed.mesh_in {
        let objects = objects.clone();
        glommio::spawn_local(async move { objects::serve_mesh(objects, rx.connect().await).await })
            .detach();
    }
    for (to, tx) in seed.mesh_out {
        let objects = objects.clone();
        glommio::spawn_local(async move { objects.connect_mesh(to, tx.connect().await) }).detach();
    }
    let peers = Peers::new(seed.id, seed.shard_count, seed.peers, seed.peers_cfg);
    objects.attach_peers(peers.clone());
    for rx in seed.peer_in {
        let peers = peers.clone();
        glommio::spawn_local(
            async move { peers::serve_mesh(peers.clone(), rx.connect().await).await },
        )
        .detach();
    }
    for (to, tx) in seed.peer_out {
        let peers = peers.clone();
        glommio::spawn_local(async move { peers.connect_mesh(to, tx.connect().await) }).detach();
    }
    let gossip = match Gossip::new(
        seed.id,
        seed.shard_count,
        seed.gossip,
        seed.cap_keys,
        objects.clone(),
        peers.clone(),
    ) {
        Ok(g) => g,
        Err(e) => {
            tracing::error!(shard = %seed.id, "gossip configuration: {e}");
            return;
        }
    };
    {
        // Peers reach the gossip runtime and the sessions through weak handles: each of them
        // holds `peers` already.
        let (g, o) = (Rc::downgrade(&gossip), Rc::downgrade(&objects));
        peers.set_gossip_sinks(
            Box::new(move |peer, payload| {
                if let Some(g) = g.upgrade() {
                    g.handle_peer_event(peer, payload);
                }
            }),
            Box::new(move |t| {
                o.upgrade()
                    .is_some_and(|o| o.offer(t, gossip::MAX_OUTBOX_FRAMES))
            }),
        );
    }
    for rx in seed.gossip_in {
        let gossip = gossip.clone();
        glommio::spawn_local(async move { gossip::serve_mesh(gossip, rx.connect().await).await })
            .detach();
    }
    for (to, tx) in seed.gossip_out {
        let gossip = gossip.clone();
        glommio::spawn_local(async move { gossip.connect_mesh(to, tx.connect().await) }).detach();
    }
    let shard = Rc::new(Shard {
        id: seed.id,
        gossip,
        peers: peers.clone(),
        shard_count: seed.shard_count,
        handoffs: RefCell::new((0..seed.shard_count).map(|_| None).collect()),
        acceptor: futures_rustls::TlsAcceptor::from(seed.tls),
        stats: RefCell::new(ShardStats::new(seed.id)),
        board: seed.board,
        draining: seed.draining,
        drain_deadline: Cell::new(None),
        sessions: Cell::new(0),
        epoch: Instant::now(),
        objects,
        reported: RefCell::new(Reported::default()),
        heap: super::heap::HeapTrim::default(),
        cfg: seed.cfg,
    });
    for rx in seed.handoff_in {
        let shard = shard.clone();
        glommio::spawn_local(async move { adopt(shard, rx.connect().await).await }).detach();
    }
    for (to, tx) in seed.handoff_out {
        let shard = shard.clone();
        glommio::spawn_local(async move {
            let tx = Rc::new(tx.connect().await);
            shard.handoffs.borrow_mut()[to.0 as usize] = Some(tx);
        })
        .detach();
    }
    let ticker = glommio::spawn_local(tick(shard.clone()));
    let dialer = {
        let shard = shard.clone();
        glommio::spawn_local(async move {
            let stop = || shard.draining();
            peers::run_dialer(peers, shard.cfg.tick, stop).await
        })
    };
    accept_loop(&listener, &shard).await;
    drop(listener);
    // Sessions see the flag within a tick (the ticker wakes those waiting in a read), send
    // GOAWAY, answer what they accepted and close; at the deadline they close themselves,
    // counted. Links this shard dialled say GOAWAY too.
    let deadline = shard
        .drain_deadline()
        .expect("the accept loop ends when the node drains");
    shard.peers.drain_links();
    let give_up = deadline + 2 * shard.cfg.tick;
    while shard.sessions.get() > 0 && Instant::now() < give_up {
        glommio::timer::sleep(shard.cfg.tick).await;
    }
    // Sessions still open now are stuck in a write past the deadline: cut with the executor.
    let stuck = shard.sessions.get();
    if stuck > 0 {
        tracing::warn!(shard = %shard.id, stuck, "sessions still writing at the drain deadline, cut");
        shard.stats_mut(|s| (0..stuck).for_each(|_| s.drain_cut()));
    }
    shard.publish(u64::MAX);
    drop(ticker);
    drop(dialer);
}

/// The shard's heartbeat: publishes stats at least every tick, even when idle.
async fn tick(shard: Rc<Shard>) {
    loop {
        glommio::timer::sleep(shard.cfg.tick).await;
        shard.objects.wake_sessions();
        shard.objects.handle_fetch_timeout();
        shard
            .objects
            .handle_put_timeout(super::session::unix_now_s());
        shard.gossip.tick();
        let held = {
            let stats = shard.stats.borrow();
            let c = stats.counters();
            c.session_buffer_bytes()
                + c.overlay_sessions_active() * super::heap::SESSION_STATE_BYTES
        };
        shard.heap.tick(held);
        shard.publish(shard.now_ms());
    }
}

/// The main thread's listener as this executor's glommio listener.
#[allow(unsafe_code)]
fn glommio_listener(listener: std::net::TcpListener) -> TcpListener {
    use std::os::fd::{FromRawFd, IntoRawFd};
    // SAFETY: the fd is a bound, listening TCP socket, and `into_raw_fd` gives up ownership of
    // it to the glommio listener, which closes it when dropped.
    unsafe { TcpListener::from_raw_fd(listener.into_raw_fd()) }
}

async fn accept_loop(listener: &TcpListener, shard: &Rc<Shard>) {
    loop {
        let accepted = futures_lite::future::or(async { Some(listener.accept().await) }, async {
            while !shard.draining() {
                glommio::timer::sleep(shard.cfg.tick).await;
            }
            None
        })
        .await;
        let stream = match accepted {
            None => return,
            Some(Ok(stream)) => stream,
            Some(Err(e)) => {
                // Out of fds and the like: back off a tick rather than spin.
                tracing::warn!(shard = %shard.id, "accept failed: {e}");
                glommio::timer::sleep(shard.cfg.tick).await;
                continue;
            }
        };
        // Closed before the TLS handshake costs anything when over `max_conns`.
        spawn_session(shard, stream, |stream, shard| async move {
            session::serve(stream, shard).await
        });
    }
}

/// Peer sessions other shards hand to this one, until the channel closes.
async fn adopt(shard: Rc<Shard>, rx: ConnectedReceiver<Handoff>) {
    while let Some(handoff) = rx.recv().await {
        if shard.draining() {
            continue; // dropping it closes the connection
        }
        spawn_session(&shard, handoff, |handoff, shard| async move {
            session::serve_tls(handoff::attach(handoff), &shard).await
        });
    }
}

/// Runs a session as a task on this shard, counted in its sessions (refused, and counted, when
/// the shard is at `max_conns`).
fn spawn_session<T: 'static, F>(
    shard: &Rc<Shard>,
    conn: T,
    serve: impl FnOnce(T, Rc<Shard>) -> F + 'static,
) where
    F: std::future::Future<Output = session::End> + 'static,
{
    if shard.sessions.get() >= shard.cfg.max_conns_per_shard {
        shard.stats_mut(|s| s.conn_refused());
        return;
    }
    shard.sessions.set(shard.sessions.get() + 1);
    shard.stats_mut(|s| s.session_opened());
    let shard = shard.clone();
    glommio::spawn_local(async move {
        let end = serve(conn, shard.clone()).await;
        if let session::End::Rejected(reason) = end {
            debug_assert!(reason != Reason::Internal);
        }
        shard.sessions.set(shard.sessions.get() - 1);
    })
    .detach();
}
