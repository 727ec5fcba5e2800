//! `ronode run`: the node. Resolves keys and addresses, starts the admin thread and one glommio
//! executor per shard, marks the overlay ready once every shard listens, and drains on SIGINT
//! or SIGTERM: readiness flips first, sessions get GOAWAY and finish within `drain_timeout_ms`,
//! then the process exits 0.

mod clock;
mod dial;
mod disk;
mod gossip;
mod guard;
mod handoff;
mod heap;
mod mesh;
mod objects;
mod peer_link;
mod peers;
mod run;
mod session;
mod shard;
mod tls_conn;

use crate::config::NodeConfig;
use anyhow::{bail, Context, Result};
use glommio::{LocalExecutorBuilder, Placement};
use mesh::Mesh;
use objects::StoreSeed;
use ronode_admin::{AdminServer, Readiness, VersionInfo};
use ronode_proto::identity::Identity;
use ronode_shards::stats::StatsBoard;
use ronode_shards::ShardId;
use run::ShardSeed;
use shard::ShardCfg;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Peer sessions in transit between two shards (each side's hand-offs beyond it are served where
/// they were accepted, counted in `bus_lagged_total`).
const HANDOFF_QUEUE: usize = 64;

/// How often a shard publishes its stats and wakes its sessions to look at their timers.
const TICK: Duration = Duration::from_millis(100);

/// The plane names `/readyz` reports.
const PLANE_OVERLAY: &str = "overlay";

/// Starts the node and blocks until it has drained after a signal.
pub fn run(mut cfg: NodeConfig) -> Result<()> {
    let started = Instant::now();
    // Absolute from here on: glommio opens directories by path without the working directory
    // (the default `./ronode-data` would fail on the first PUT otherwise).
    cfg.data_dir = std::path::absolute(&cfg.data_dir)
        .with_context(|| format!("data directory {}", cfg.data_dir.display()))?;
    let (identity, _lock) = identity_for(&cfg)?;
    let shards = shard_count(&cfg);
    // The port is held from the check to the listeners (guard.rs): lock, probe, bind, unlock.
    let port_lock = guard::lock_port_start(cfg.listen, "listen")?;
    guard::probe_port(cfg.listen, "listen")?;
    guard::probe_port(cfg.admin, "admin")?;
    let listeners = guard::bind_listeners(cfg.listen, shards)
        .with_context(|| format!("listen address {}", cfg.listen))?;
    drop(port_lock);

    let (cert, key) =
        ronode_proto::cert::node_certificate(&identity).context("node certificate")?;
    let tls = ronode_client::tls::server_config(&cert, &key, cfg.pq_mode.into())
        .context("TLS configuration")?;

    let board = Arc::new(StatsBoard::new(shards));
    let readiness = Arc::new(Readiness::new(&[PLANE_OVERLAY]));
    let draining = Arc::new(AtomicBool::new(false));
    let signals = drain_on_signals()?;

    let admin_listener = std::net::TcpListener::bind(cfg.admin)
        .with_context(|| format!("admin address {}", cfg.admin))?;
    let admin = AdminServer::start(
        admin_listener,
        board.clone(),
        readiness.clone(),
        version_info(&cfg),
    )
    .context("starting the admin thread")?;

    let shard_cfg = ShardCfg {
        handshake_timeout: Duration::from_millis(cfg.session.handshake_timeout_ms),
        write_timeout: Duration::from_millis(cfg.session.write_timeout_ms),
        max_conns_per_shard: (cfg.session.max_conns as usize).div_ceil(shards as usize),
        send_window_frames: cfg.session.send_window_frames as usize,
        session: ronode_shards::session::SessionCfg {
            max_frame: cfg.session.max_frame,
            inflight: cfg.session.inflight_frames,
            max_rps: cfg.session.max_rps,
            burst: cfg.session.burst,
            read_timeout_ms: cfg.session.read_timeout_ms,
            idle_timeout_ms: cfg.session.idle_timeout_ms,
            retry_after_ms: TICK.as_millis() as u64,
        },
        tick: TICK,
        drain_timeout: Duration::from_millis(cfg.drain_timeout_ms),
    };
    let objects_cfg = objects_config(&cfg);
    let cap_keys = cap_keys(&cfg)?;
    let store = store_seed(&cfg, shards)?;
    let mut mesh = Mesh::new(shards, cfg.queues.mesh as usize);
    let mut handoffs = Mesh::new(shards, HANDOFF_QUEUE);
    let mut peer_mesh = Mesh::new(shards, cfg.queues.mesh as usize);
    let mut gossip_mesh = Mesh::new(shards, cfg.queues.mesh as usize);
    let gossip_seed = gossip_seed(&cfg);
    gossip_seed
        .config
        .validate()
        .map_err(|e| anyhow::anyhow!("gossip configuration: {e}"))?;
    let peers_cfg = peers_cfg(&cfg, &identity, &cert, &key);
    let cpus = core_ids();
    let mut listen = cfg.listen;
    let mut executors = Vec::new();
    for (id, listener) in (0..shards).zip(listeners) {
        let (tx, rx) = std::sync::mpsc::channel();
        let seed = ShardSeed {
            id: ShardId(id),
            cfg: shard_cfg.clone(),
            tls: tls.clone(),
            board: board.clone(),
            draining: draining.clone(),
            listener,
            shard_count: shards,
            objects: objects_cfg.clone(),
            fetch: ronode_shards::objects::FetchConfig {
                fetch_peers: cfg.objects.fetch_peers as usize,
                timeout_ms: cfg.objects.fetch_timeout_ms,
                ..Default::default()
            },
            cache_fetched: cfg.objects.cache_fetched,
            cap_keys: cap_keys.clone(),
            store: store.clone(),
            mesh_out: mesh.senders_from(ShardId(id)),
            mesh_in: mesh.receivers_to(ShardId(id)),
            handoff_out: handoffs.senders_from(ShardId(id)),
            handoff_in: handoffs.receivers_to(ShardId(id)),
            peers: peer_specs(&cfg, ShardId(id), shards),
            peers_cfg: peers_cfg.clone(),
            peer_out: peer_mesh.senders_from(ShardId(id)),
            peer_in: peer_mesh.receivers_to(ShardId(id)),
            gossip: gossip_seed.clone(),
            gossip_out: gossip_mesh.senders_from(ShardId(id)),
            gossip_in: gossip_mesh.receivers_to(ShardId(id)),
            bound: tx,
        };
        let placement = match (cfg.pin, cpus.get(id as usize % cpus.len().max(1))) {
            (true, Some(&cpu)) => Placement::Fixed(cpu),
            _ => Placement::Unbound,
        };
        let handle = LocalExecutorBuilder::new(placement)
            .name(&format!("ronode-shard-{id}"))
            .io_memory(cfg.engine.io_memory_bytes as usize)
            .ring_depth(cfg.engine.ring_depth as usize)
            .spin_before_park(Duration::from_micros(cfg.engine.spin_before_park_us))
            .spawn(move || run::run(seed))
            .map_err(|e| {
                anyhow::anyhow!("starting shard {id} (glommio; check `ulimit -l`): {e}")
            })?;
        executors.push(handle);
        let bound = rx
            .recv_timeout(Duration::from_secs(10))
            .context("a shard did not report its listener within 10 s")?
            .with_context(|| format!("shard {id} could not listen on {listen}"))?;
        // The port the listeners got when `--listen` asked for port 0.
        listen = bound;
    }
    readiness.set_ready(PLANE_OVERLAY);
    println!(
        "ronode {} node_id {}",
        env!("CARGO_PKG_VERSION"),
        identity.node_id()
    );
    println!(
        "listening on {listen} (OAP/1 over TLS 1.3, ALPN ron/oap1, pq_mode {})",
        cfg.pq_mode.name()
    );
    println!("admin on http://{}", admin.local_addr());
    println!(
        "{shards} shard(s), pinned: {}, ready in {} ms",
        cfg.pin,
        started.elapsed().as_millis()
    );

    signals.wait();
    tracing::info!(
        "draining: readiness off, GOAWAY to every session, up to {} ms",
        cfg.drain_timeout_ms
    );
    readiness.set_draining();
    draining.store(true, Ordering::SeqCst);
    for handle in executors {
        if let Err(e) = handle.join() {
            tracing::error!("a shard ended with an error: {e}");
        }
    }
    if let Err(e) = admin.shutdown() {
        tracing::error!("admin thread: {e}");
    }
    tracing::info!("drained; bye");
    Ok(())
}

/// The identity and, for a disk node, the data directory lock held while the node runs.
fn identity_for(cfg: &NodeConfig) -> Result<(Identity, Option<guard::DirLock>)> {
    if cfg.amnesia {
        // Nothing is written: a given identity file is read, otherwise a fresh identity lives
        // in memory for this run only.
        let seeds = match &cfg.identity {
            Some(path) => crate::keystore::load_identity(path)?,
            None => crate::keystore::generate_seeds(),
        };
        return Ok((Identity::from_seeds(&seeds), None));
    }
    std::fs::create_dir_all(&cfg.data_dir)
        .with_context(|| format!("creating data directory {}", cfg.data_dir.display()))?;
    let lock = guard::lock_data_dir(&cfg.data_dir)?;
    let identity = match &cfg.identity {
        Some(path) => Identity::from_seeds(&crate::keystore::load_identity(path)?),
        None => crate::init::ensure_keys(&cfg.data_dir)?.identity,
    };
    Ok((identity, Some(lock)))
}

/// The configured peers shard `shard` dials: those whose NodeId it owns.
fn peer_specs(
    cfg: &NodeConfig,
    shard: ShardId,
    shards: u16,
) -> Vec<ronode_shards::peers::PeerSpec> {
    cfg.peers
        .iter()
        .filter(|p| ronode_shards::shard_of(p.node_id.as_bytes(), shards) == shard)
        .map(|p| ronode_shards::peers::PeerSpec {
            id: p.node_id,
            addr: p.addr,
        })
        .collect()
}

/// How shards dial and keep peers: with this node's certificate, within the handshake timeout,
/// a PING every third of the idle timeout (so the peer's idle timer never fires on a quiet link).
fn peers_cfg(cfg: &NodeConfig, identity: &Identity, cert: &[u8], key: &[u8]) -> peers::PeersCfg {
    peers::PeersCfg {
        own: dial::OwnCert {
            cert: cert.to_vec(),
            key: key.to_vec(),
        },
        pq_mode: cfg.pq_mode.into(),
        dial_timeout: Duration::from_millis(cfg.session.handshake_timeout_ms),
        link: peer_link::LinkCfg {
            ping_interval: Duration::from_millis(cfg.session.idle_timeout_ms / 3),
            answer_timeout: Duration::from_millis(cfg.session.read_timeout_ms),
            max_frame: cfg.session.max_frame,
            max_body: cfg.objects.max_bytes,
            tick: TICK,
        },
        backoff: ronode_shards::peers::Backoff::default(),
        // Differs between nodes, stable across runs of one: jitter that replays per node.
        seed: u64::from_le_bytes(identity.node_id().0[..8].try_into().expect("8 bytes")),
    }
}

/// The gossip plane's settings from `[gossip]`: the knobs set the fanout, hops, budgets and
/// caches; the repair window is three IHAVE periods (a lost IHAVE or IWANT is retried twice),
/// an IWANT waits one period before another peer is asked, and messages are kept a minute (at
/// least the window) to answer IWANT.
fn gossip_seed(cfg: &NodeConfig) -> gossip::GossipSeed {
    let g = &cfg.gossip;
    let window = g.ihave_interval_ms * 3;
    let message_cache = g.message_cache as usize;
    gossip::GossipSeed {
        config: ronode_shards::gossip::GossipConfig {
            relay_fanout: g.relay_fanout as usize,
            max_hops: g.max_hops,
            ihave_interval_ms: g.ihave_interval_ms,
            ihave_window_ms: window,
            message_ttl_ms: window.max(60_000),
            iwant_timeout_ms: g.ihave_interval_ms,
            topic_rate_per_s: g.topic_rate_per_s,
            topic_burst: g.topic_burst,
            peer_rate_per_s: g.peer_rate_per_s,
            peer_burst: g.peer_burst,
            message_cache,
            seen_cache: message_cache * 16,
            ..Default::default()
        },
        seed: g.seed,
        pub_policy: policy(g.pub_policy),
    }
}

fn policy(p: crate::config::Policy) -> ronode_shards::objects::Policy {
    use crate::config::Policy as P;
    use ronode_shards::objects::Policy;
    match p {
        P::Token => Policy::Token,
        P::Open => Policy::Open,
    }
}

/// The objects plane's settings from the node's configuration.
fn objects_config(cfg: &NodeConfig) -> ronode_shards::objects::ObjectsConfig {
    ronode_shards::objects::ObjectsConfig {
        max_bytes: cfg.objects.max_bytes,
        put_policy: policy(cfg.objects.put_policy),
        get_policy: policy(cfg.objects.get_policy),
        chunk_bytes: cfg.session.chunk_bytes as usize,
        // The shard's work queue: GETs and HEADs in progress past it are answered 503 `busy`.
        max_reads: cfg.queues.work as usize,
        put_timeout_s: cfg.objects.put_timeout_s,
        ..Default::default()
    }
}

/// The capability root keys the node honours: the data directory's (or `--cap-key`); an amnesia
/// node without `--cap-key` honours none (PROTOCOL.md section 10).
fn cap_keys(cfg: &NodeConfig) -> Result<ronode_shards::objects::CapKeys> {
    let path = match (&cfg.cap_key, cfg.amnesia) {
        (Some(path), _) => path.clone(),
        (None, true) => return Ok(ronode_shards::objects::CapKeys::new()),
        (None, false) => cfg.data_dir.join(crate::keystore::CAP_ROOT_FILE),
    };
    let (kid, key) = crate::keystore::load_cap_root(&path)?;
    Ok(ronode_shards::objects::CapKeys::with(kid, key))
}

/// Each shard's store: its share of `store.capacity_bytes`, and for a disk store the objects
/// directory, prepared here once (layout made, torn uploads deleted) before any shard indexes it.
fn store_seed(cfg: &NodeConfig, shards: u16) -> Result<StoreSeed> {
    let capacity_bytes = cfg.store.capacity_bytes / u64::from(shards);
    Ok(match cfg.store.kind {
        crate::config::StoreKind::Ram => StoreSeed::Ram { capacity_bytes },
        crate::config::StoreKind::Disk => {
            let objects_dir = cfg.data_dir.join(disk::layout::OBJECTS_DIR);
            let torn = disk::layout::prepare(&objects_dir)
                .with_context(|| format!("object store {}", objects_dir.display()))?;
            if torn > 0 {
                tracing::warn!("object store: deleted {torn} upload(s) torn by the last exit");
            }
            StoreSeed::Disk {
                objects_dir,
                capacity_bytes,
                cache_bytes: cfg.store.cache_bytes / u64::from(shards),
            }
        }
    })
}

fn shard_count(cfg: &NodeConfig) -> u16 {
    match cfg.shards {
        0 => std::thread::available_parallelism()
            .map_or(1, |n| n.get().min(u16::MAX as usize) as u16),
        n => n.min(u32::from(u16::MAX)) as u16,
    }
}

/// Online CPUs, in order, for pinning shard i to the i-th.
fn core_ids() -> Vec<usize> {
    core_affinity::get_core_ids()
        .map(|ids| ids.into_iter().map(|c| c.id).collect())
        .unwrap_or_default()
}

fn version_info(cfg: &NodeConfig) -> VersionInfo {
    let mut features = vec!["oap1", "tls13"];
    if cfg.pq_mode != crate::config::PqMode::Off {
        features.push("x25519mlkem768");
    }
    if cfg.amnesia {
        features.push("amnesia");
    }
    VersionInfo::new(features)
}

/// SIGINT and SIGTERM, caught from the start so that a signal during start-up drains too.
struct Signals(signal_hook::iterator::Signals);

impl Signals {
    fn wait(mut self) {
        let _ = self.0.forever().next();
    }
}

fn drain_on_signals() -> Result<Signals> {
    use signal_hook::consts::{SIGINT, SIGTERM};
    match signal_hook::iterator::Signals::new([SIGINT, SIGTERM]) {
        Ok(s) => Ok(Signals(s)),
        Err(e) => bail!("installing signal handlers: {e}"),
    }
}
