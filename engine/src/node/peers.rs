//! The peers of the overlay on one shard: the configured peers whose NodeId this shard owns are
//! dialled here ([`PeerSet`] says when), each up peer has a [`Link`], and every shard keeps the
//! node-wide set of peers that are up (what fetch on miss chooses from).
//!
//! Shards tell each other over the peer mesh ([`PeerMsg`]): the peers each shard has up (a
//! versioned snapshot, so a late message can never undo a newer one), GETs for a peer another
//! shard owns, and the answers going back to the shard whose fetcher asked.
//!
//! Gossip runs both ways over a peer session whoever dialled it: a session accepted from a node
//! that proved its NodeId (its certificate) is that peer's way in for gossip when this node has
//! no link to it ([`Peers::session_opened`]). Such peers count for gossip, not for fetch on miss
//! (a GET needs a link this node dialled), and they get eager pushes only: the repair requests
//! (IHAVE, IWANT) go over dialled links, where their answers are taken.

use super::dial::{self, OwnCert};
use super::peer_link::{self, Link, LinkCfg, LinkGet};
use glommio::channels::shared_channel::{ConnectedReceiver, ConnectedSender};
use ronode_client::tls::PqMode;
use ronode_proto::id::NodeId;
use ronode_proto::msg::APP_GOSSIP;
use ronode_proto::Flags;
use ronode_shards::gossip::{PeerFrame, PeerMsg as GossipMsg};
use ronode_shards::objects::fetch::{Answer, Try};
use ronode_shards::objects::{SessionId, Transmit};
use ronode_shards::peers::{Backoff, DialFailure, PeerSet, PeerSpec, PeerState};
use ronode_shards::{shard_of, ShardId};
use std::cell::{Cell, RefCell};
use std::collections::{BTreeMap, BTreeSet};
use std::rc::Rc;
use std::time::{Duration, Instant};

/// What crosses the peer mesh.
#[derive(Debug)]
pub enum PeerMsg {
    /// The peers shard `from` has up now (its `version`-th snapshot): dialled links, and
    /// sessions accepted from peers (gossip only).
    Up {
        from: ShardId,
        version: u64,
        peers: Vec<NodeId>,
        accepted: Vec<NodeId>,
    },
    /// A GET for a peer the receiving shard owns.
    Get { peer: NodeId, get: LinkGet },
    /// The answer to a GET, for the fetcher of the receiving shard.
    Answer { try_id: u64, answer: Answer },
    /// A gossip frame for a peer the receiving shard owns.
    Gossip(PeerFrame),
}

/// How this shard dials and keeps its peers.
#[derive(Debug, Clone)]
pub struct PeersCfg {
    pub own: OwnCert,
    pub pq_mode: PqMode,
    pub dial_timeout: Duration,
    pub link: LinkCfg,
    pub backoff: Backoff,
    /// Seeds the backoff jitter (with the shard id mixed in).
    pub seed: u64,
}

/// Where fetch answers for this shard go (its objects runtime's fetcher).
pub type AnswerSink = Box<dyn Fn(u64, Answer)>;
/// Where gossip EVENTs that peers send on links this shard dialled go (the gossip runtime).
pub type EventSink = Box<dyn Fn(NodeId, bytes::Bytes)>;
/// Queues a frame on a session of this shard (its outbox); false when refused (full, gone).
pub type SessionSink = Box<dyn Fn(Transmit) -> bool>;

/// Snapshots of the up peers, by the shard that has them up.
#[derive(Debug, Default, Clone)]
struct UpSlot {
    version: u64,
    /// Peers the shard has a dialled link to.
    dialled: BTreeSet<NodeId>,
    /// Peers with a session accepted on the shard (gossip only).
    accepted: BTreeSet<NodeId>,
}

/// See the module docs.
pub struct Peers {
    shard: ShardId,
    shard_count: u16,
    cfg: PeersCfg,
    epoch: Instant,
    set: RefCell<PeerSet>,
    links: RefCell<BTreeMap<NodeId, Rc<Link>>>,
    /// Up peers by the shard that owns them (this one's included), and the snapshot version.
    up: RefCell<Vec<UpSlot>>,
    /// Sessions accepted on this shard from peers that proved their NodeId, the latest by peer
    /// (bounded by the shard's sessions).
    accepted: RefCell<BTreeMap<NodeId, SessionId>>,
    events: RefCell<Option<EventSink>>,
    sessions: RefCell<Option<SessionSink>>,
    version: Cell<u64>,
    mesh: RefCell<Vec<Option<Rc<ConnectedSender<PeerMsg>>>>>,
    sink: RefCell<Option<AnswerSink>>,
    /// Gossip frames dropped: the peer's link was gone or its queue full, or the peer mesh
    /// was full (the plane's lazy repair makes up for a lost frame).
    gossip_dropped: Cell<u64>,
}

impl Peers {
    pub fn new(shard: ShardId, shard_count: u16, specs: Vec<PeerSpec>, cfg: PeersCfg) -> Rc<Peers> {
        let seed = cfg.seed ^ (u64::from(shard.0) << 48);
        Rc::new(Peers {
            shard,
            shard_count,
            set: RefCell::new(PeerSet::new(specs, cfg.backoff, seed)),
            cfg,
            epoch: Instant::now(),
            links: RefCell::new(BTreeMap::new()),
            up: RefCell::new(vec![UpSlot::default(); shard_count as usize]),
            accepted: RefCell::new(BTreeMap::new()),
            events: RefCell::new(None),
            sessions: RefCell::new(None),
            version: Cell::new(0),
            mesh: RefCell::new((0..shard_count).map(|_| None).collect()),
            sink: RefCell::new(None),
            gossip_dropped: Cell::new(0),
        })
    }

    /// Where this shard's fetch answers go.
    pub fn set_sink(&self, sink: AnswerSink) {
        *self.sink.borrow_mut() = Some(sink);
    }

    /// Where EVENTs from peers on dialled links go, and how frames reach this shard's sessions.
    pub fn set_gossip_sinks(&self, events: EventSink, sessions: SessionSink) {
        *self.events.borrow_mut() = Some(events);
        *self.sessions.borrow_mut() = Some(sessions);
    }

    pub fn connect_mesh(&self, to: ShardId, tx: ConnectedSender<PeerMsg>) {
        self.mesh.borrow_mut()[to.0 as usize] = Some(Rc::new(tx));
        // The newcomer learns what is up here now.
        self.announce();
    }

    /// The peers up across the node over links it dialled, in NodeId order (fetch on miss).
    pub fn up(&self) -> Vec<NodeId> {
        let up = self.up.borrow();
        let all: BTreeSet<NodeId> = up.iter().flat_map(|s| s.dialled.iter().copied()).collect();
        all.into_iter().collect()
    }

    /// The peers gossip runs with: up over a dialled link or an accepted session, anywhere.
    pub fn gossip_peers(&self) -> BTreeSet<NodeId> {
        let up = self.up.borrow();
        up.iter()
            .flat_map(|s| s.dialled.iter().chain(&s.accepted).copied())
            .collect()
    }

    /// A session from `peer` (a proven NodeId) began on this shard: gossip for the peer goes
    /// on it while this node has no link to it.
    pub fn session_opened(&self, peer: NodeId, session: SessionId) {
        self.accepted.borrow_mut().insert(peer, session);
        self.announce();
    }

    /// The session from `peer` ended (a newer one from it may have taken its place).
    pub fn session_closed(&self, peer: NodeId, session: SessionId) {
        let mut accepted = self.accepted.borrow_mut();
        if accepted.get(&peer) == Some(&session) {
            accepted.remove(&peer);
            drop(accepted);
            self.announce();
        }
    }

    /// An EVENT a peer sent on a link this shard dialled: to gossip, as over its session.
    fn peer_event(&self, peer: NodeId, payload: bytes::Bytes) {
        if let Some(sink) = self.events.borrow().as_ref() {
            sink(peer, payload);
        }
    }

    /// Peers this shard dials, by state (`overlay_peers{state}`).
    pub fn count(&self, state: PeerState) -> usize {
        self.set.borrow().count(state)
    }

    /// Failed dials since start, by reason (`overlay_dial_failures_total{reason}`).
    pub fn failures(&self, why: DialFailure) -> u64 {
        self.set.borrow().failures(why)
    }

    /// Sends a fetch try to its peer, wherever the peer's link lives.
    pub fn send_try(&self, t: Try) {
        let get = LinkGet {
            try_id: t.id,
            origin: self.shard,
            addr: t.addr,
            hops: t.hops,
        };
        let owner = shard_of(t.peer.as_bytes(), self.shard_count);
        if owner == self.shard {
            self.queue_get(t.peer, get);
        } else {
            self.send(owner, PeerMsg::Get { peer: t.peer, get });
        }
    }

    /// Sends a gossip frame on its peer's link, wherever the link lives. Never waits: a frame
    /// that cannot go is dropped and counted.
    pub fn send_gossip(&self, frame: PeerFrame) {
        let owner = shard_of(frame.peer.as_bytes(), self.shard_count);
        if owner == self.shard {
            return self.queue_gossip(frame);
        }
        let tx = self.mesh.borrow()[owner.0 as usize].clone();
        if tx.is_none_or(|tx| tx.try_send(PeerMsg::Gossip(frame)).is_err()) {
            self.gossip_dropped.set(self.gossip_dropped.get() + 1);
        }
    }

    /// Gossip frames dropped since start.
    pub fn gossip_dropped(&self) -> u64 {
        self.gossip_dropped.get()
    }

    /// Queues a gossip frame on the peer's dialled link or, lacking one, as an EVENT on the
    /// session it dialled to this node (the repair requests are not sent there: see the module
    /// docs). A frame that cannot go is dropped and counted.
    fn queue_gossip(&self, frame: PeerFrame) {
        let link = self.links.borrow().get(&frame.peer).cloned();
        let queued = match link {
            Some(link) => link.push_gossip(frame.msg),
            None => match frame.msg {
                GossipMsg::Event { payload, .. } => {
                    let session = self.accepted.borrow().get(&frame.peer).copied();
                    let sink = self.sessions.borrow();
                    match (session, sink.as_ref()) {
                        (Some(session), Some(sink)) => sink(Transmit {
                            session,
                            app_proto_id: APP_GOSSIP,
                            flags: Flags::EVENT,
                            code: 0,
                            tenant_id: 0,
                            corr_id: 0,
                            payload,
                        }),
                        _ => false,
                    }
                }
                GossipMsg::IHave(_) | GossipMsg::IWant(_) => {
                    self.accepted.borrow().contains_key(&frame.peer)
                }
            },
        };
        if !queued {
            self.gossip_dropped.set(self.gossip_dropped.get() + 1);
        }
    }

    /// A message from another shard.
    pub fn handle_mesh(&self, msg: PeerMsg) {
        match msg {
            PeerMsg::Up {
                from,
                version,
                peers,
                accepted,
            } => {
                let mut up = self.up.borrow_mut();
                let slot = &mut up[from.0 as usize];
                if version > slot.version {
                    *slot = UpSlot {
                        version,
                        dialled: peers.into_iter().collect(),
                        accepted: accepted.into_iter().collect(),
                    };
                }
            }
            PeerMsg::Get { peer, get } => self.queue_get(peer, get),
            PeerMsg::Answer { try_id, answer } => self.deliver_local(try_id, answer),
            PeerMsg::Gossip(frame) => self.queue_gossip(frame),
        }
    }

    fn queue_get(&self, peer: NodeId, get: LinkGet) {
        let link = self.links.borrow().get(&peer).cloned();
        let queued = match link {
            Some(link) => link.push(get).is_ok(),
            None => false,
        };
        if !queued {
            self.answer(get, Answer::Failed);
        }
    }

    /// Routes an answer to the shard whose fetcher asked.
    fn answer(&self, get: LinkGet, answer: Answer) {
        if get.origin == self.shard {
            self.deliver_local(get.try_id, answer);
        } else {
            let msg = PeerMsg::Answer {
                try_id: get.try_id,
                answer,
            };
            self.send(get.origin, msg);
        }
    }

    fn deliver_local(&self, try_id: u64, answer: Answer) {
        if let Some(sink) = self.sink.borrow().as_ref() {
            sink(try_id, answer);
        }
    }

    /// Sends on the peer mesh without dropping: waits for room in a task when the channel is
    /// full (answers and snapshots must arrive; both tolerate reordering).
    fn send(&self, to: ShardId, msg: PeerMsg) {
        let Some(tx) = self.mesh.borrow()[to.0 as usize].clone() else {
            // The channel is still connecting (the node's first moments): a lost answer is a
            // try past its deadline for the fetcher, and a snapshot is sent again on connect.
            return;
        };
        // Refused past the shard's bound on waiting messages (counted there): a lost answer is a
        // try past its deadline, a lost snapshot is made good by the next.
        let _ = super::mesh::send_or_wait(&tx, msg);
    }

    /// Tells every shard (this one included) which peers are up here.
    fn announce(&self) {
        let version = self.version.get() + 1;
        self.version.set(version);
        let peers: Vec<NodeId> = self.links.borrow().keys().copied().collect();
        let accepted: Vec<NodeId> = self.accepted.borrow().keys().copied().collect();
        self.up.borrow_mut()[self.shard.0 as usize] = UpSlot {
            version,
            dialled: peers.iter().copied().collect(),
            accepted: accepted.iter().copied().collect(),
        };
        for to in 0..self.shard_count {
            if to != self.shard.0 {
                let msg = PeerMsg::Up {
                    from: self.shard,
                    version,
                    peers: peers.clone(),
                    accepted: accepted.clone(),
                };
                self.send(ShardId(to), msg);
            }
        }
    }

    fn now_ms(&self) -> u64 {
        self.epoch.elapsed().as_millis() as u64
    }

    /// The node drains: every link this shard dialled sends GOAWAY and closes.
    pub fn drain_links(&self) {
        for link in self.links.borrow().values() {
            link.drain();
        }
    }
}

/// Dials this shard's peers when they are due, until `stop` says the node is draining.
pub async fn run_dialer(peers: Rc<Peers>, tick: Duration, stop: impl Fn() -> bool) {
    while !stop() {
        loop {
            let due = peers.set.borrow_mut().poll_dial(peers.now_ms());
            let Some(spec) = due else { break };
            let p = peers.clone();
            glommio::spawn_local(async move { keep(p, spec).await }).detach();
        }
        glommio::timer::sleep(tick).await;
    }
}

/// One dial, and the link it gives for as long as it lasts.
async fn keep(peers: Rc<Peers>, spec: PeerSpec) {
    let cfg = &peers.cfg;
    let tls = match dial::dial(&spec, &cfg.own, cfg.pq_mode, cfg.dial_timeout).await {
        Ok(tls) => tls,
        Err(why) => {
            let now = peers.now_ms();
            let mut set = peers.set.borrow_mut();
            set.handle_dial_failed(&spec.id, why, now);
            let next = set
                .next_dial_ms(&spec.id)
                .unwrap_or(now)
                .saturating_sub(now);
            tracing::warn!(
                peer = %format_args!("{}#{}", spec.addr, spec.id),
                "peer dial failed ({}); next try in {next} ms",
                why.label(),
            );
            return;
        }
    };
    tracing::info!(peer = %format_args!("{}#{}", spec.addr, spec.id), "peer up");
    peers.set.borrow_mut().handle_up(&spec.id);
    let link = Rc::new(Link::new());
    peers.links.borrow_mut().insert(spec.id, link.clone());
    peers.announce();
    let on_answer = |get: LinkGet, answer: Answer| peers.answer(get, answer);
    let on_event = |payload: bytes::Bytes| peers.peer_event(spec.id, payload);
    let end = peer_link::run(tls, &link, &cfg.link, &on_answer, &on_event).await;
    peers.links.borrow_mut().remove(&spec.id);
    peers.announce();
    let now = peers.now_ms();
    peers.set.borrow_mut().handle_down(&spec.id, now);
    tracing::info!(peer = %format_args!("{}#{}", spec.addr, spec.id), "peer down: {end}");
}

/// Serves one incoming peer-mesh channel until its sender goes away.
pub async fn serve_mesh(peers: Rc<Peers>, rx: ConnectedReceiver<PeerMsg>) {
    while let Some(msg) = rx.recv().await {
        peers.handle_mesh(msg);
    }
}
