//! One shard: a glommio executor pinned to a core, its SO_REUSEPORT listener, its sessions and
//! its statistics. Nothing here is shared with other shards but the read-only TLS configuration,
//! the drain flag and the stats board slot this shard publishes into.

use super::objects::{self, MeshMsg, Objects, StoreSeed};
use super::session;
use glommio::channels::shared_channel::{SharedReceiver, SharedSender};
use glommio::net::TcpListener;
use ronode_proto::inbound::ServedApps;
use ronode_proto::Reason;
use ronode_shards::objects::{CapKeys, ObjectsConfig, ObjectsPlane};
use ronode_shards::stats::{ShardStats, StatsBoard};
use ronode_shards::ShardId;
use std::cell::{Cell, RefCell};
use std::net::SocketAddr;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The apps a node serves today: control and objects. Gossip and DHT join as their planes land;
/// until then their frames are answered `unknown_app`, truthfully.
pub const SERVED_APPS: ServedApps = ServedApps::of(&[
    ronode_proto::control::APP_CONTROL,
    ronode_proto::msg::APP_OBJECTS,
]);

/// What a shard needs from the node's configuration, resolved once.
#[derive(Debug, Clone)]
pub struct ShardCfg {
    pub handshake_timeout: Duration,
    pub idle_timeout: Duration,
    pub max_frame: u32,
    pub max_conns_per_shard: usize,
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
    pub cfg: ShardCfg,
    pub acceptor: futures_rustls::TlsAcceptor,
    stats: RefCell<ShardStats>,
    board: Arc<StatsBoard>,
    draining: Arc<AtomicBool>,
    sessions: Cell<usize>,
    epoch: Instant,
    pub objects: Rc<Objects>,
    /// What has been copied into `stats` from the objects runtime's own counters.
    reported: RefCell<Reported>,
}

#[derive(Default)]
struct Reported {
    lagged: u64,
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

    /// Updates this shard's stats. Never held across an await.
    pub fn stats_mut(&self, f: impl FnOnce(&mut ShardStats)) {
        f(&mut self.stats.borrow_mut());
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
            stats.set_store(self.objects.store_usage());
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
    pub listen: SocketAddr,
    pub shard_count: u16,
    pub objects: ObjectsConfig,
    pub cap_keys: CapKeys,
    pub store: StoreSeed,
    /// Senders towards every other shard, and receivers from them (the bounded SPSC mesh).
    pub mesh_out: Vec<(ShardId, SharedSender<MeshMsg>)>,
    pub mesh_in: Vec<SharedReceiver<MeshMsg>>,
    /// Tells the node the address this shard bound (shard 0 binds port 0 in tests; the others
    /// then bind the port it got).
    pub bound: std::sync::mpsc::Sender<std::io::Result<SocketAddr>>,
}

/// Runs a shard until the node drains: accept, serve, publish stats every tick.
pub async fn run(seed: ShardSeed) {
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
    let listener = match TcpListener::bind(seed.listen) {
        Ok(l) => {
            let _ = seed
                .bound
                .send(l.local_addr().map_err(std::io::Error::from));
            l
        }
        Err(e) => {
            let _ = seed.bound.send(Err(std::io::Error::other(e.to_string())));
            return;
        }
    };
    let plane = match ObjectsPlane::new(seed.id, seed.objects, seed.cap_keys) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("shard {}: objects configuration: {e}", seed.id);
            return;
        }
    };
    let objects = Objects::new(seed.id, seed.shard_count, plane, store);
    for rx in seed.mesh_in {
        let objects = objects.clone();
        glommio::spawn_local(async move { objects::serve_mesh(objects, rx.connect().await).await })
            .detach();
    }
    for (to, tx) in seed.mesh_out {
        let objects = objects.clone();
        glommio::spawn_local(async move { objects.connect_mesh(to, tx.connect().await) }).detach();
    }
    let shard = Rc::new(Shard {
        id: seed.id,
        acceptor: futures_rustls::TlsAcceptor::from(seed.tls),
        stats: RefCell::new(ShardStats::new(seed.id)),
        board: seed.board,
        draining: seed.draining,
        sessions: Cell::new(0),
        epoch: Instant::now(),
        objects,
        reported: RefCell::new(Reported::default()),
        cfg: seed.cfg,
    });
    let ticker = glommio::spawn_local(tick(shard.clone()));
    accept_loop(&listener, &shard).await;
    drop(listener);
    // Sessions see the flag within a tick and send GOAWAY; give them drain_timeout to finish.
    let deadline = Instant::now() + shard.cfg.drain_timeout;
    while shard.sessions.get() > 0 && Instant::now() < deadline {
        glommio::timer::sleep(shard.cfg.tick).await;
    }
    shard.publish(u64::MAX);
    drop(ticker);
}

/// The shard's heartbeat: publishes stats at least every tick, even when idle.
async fn tick(shard: Rc<Shard>) {
    loop {
        glommio::timer::sleep(shard.cfg.tick).await;
        shard.publish(shard.now_ms());
    }
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
                eprintln!("shard {}: accept failed: {e}", shard.id);
                glommio::timer::sleep(shard.cfg.tick).await;
                continue;
            }
        };
        if shard.sessions.get() >= shard.cfg.max_conns_per_shard {
            // Closed before the TLS handshake costs anything.
            shard.stats_mut(|s| s.conn_refused());
            drop(stream);
            continue;
        }
        shard.sessions.set(shard.sessions.get() + 1);
        shard.stats_mut(|s| s.session_opened());
        let shard = shard.clone();
        glommio::spawn_local(async move {
            let end = session::serve(stream, shard.clone()).await;
            if let session::End::Rejected(reason) = end {
                debug_assert!(reason != Reason::Internal);
            }
            shard.sessions.set(shard.sessions.get() - 1);
        })
        .detach();
    }
}
