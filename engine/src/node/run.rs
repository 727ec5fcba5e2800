//! A shard's life on its executor: wiring its planes, store and meshes from its seed, the
//! accept loop, peer sessions handed over by other shards, the tick, and the drain at the end.

use super::clock::Clock;
use super::gossip::{self, Gossip, GossipMsg, GossipSeed};
use super::handoff::{self, Handoff};
use super::objects::{self, MeshMsg, Objects, StoreSeed};
use super::peers::{self, PeerMsg, Peers, PeersCfg};
use super::session;
use super::shard::{Reported, Shard, ShardCfg};
use glommio::channels::shared_channel::{ConnectedReceiver, SharedReceiver, SharedSender};
use glommio::net::TcpListener;
use ronode_proto::Reason;
use ronode_shards::objects::{CapKeys, ObjectsConfig, ObjectsPlane, OnMiss};
use ronode_shards::shard_core::ShardCore;
use ronode_shards::stats::{ShardStats, StatsBoard};
use ronode_shards::ShardId;
use std::cell::{Cell, RefCell};
use std::net::SocketAddr;
use std::rc::Rc;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Instant;

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
    // The one clock of this shard's sans-IO parts.
    let clock = Clock::start();
    let on_miss = OnMiss::new(seed.id, seed.fetch, seed.cache_fetched);
    let core = ShardCore::new(seed.id, seed.shard_count, plane, on_miss, clock.now());
    let objects = Objects::new(seed.shard_count, core, store, clock);
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
        clock,
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
        shard.objects.handle_timeout();
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
