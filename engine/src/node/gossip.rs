//! The gossip plane on a shard (app 2, PROTOCOL.md section 7): the sans-IO `GossipPlane` for the
//! topics this shard owns (`shard_of(BLAKE3(topic))`), fed by the sessions of every shard over
//! the bounded gossip mesh, its frames for peers sent on their dialled links (the peer mesh
//! takes them to the shard owning the peer), its deliveries put into the subscriber's session
//! outbox (the gossip mesh takes them to the subscriber's shard).
//!
//! A full gossip mesh channel sheds the message and counts it in `bus_lagged_total`: a session
//! never waits for another shard. IWANT carries no topic, so it goes to every shard's plane.

use super::objects::Objects;
use super::peers::Peers;
use bytes::Bytes;
use glommio::channels::shared_channel::{ConnectedReceiver, ConnectedSender};
use ronode_proto::cap::Op;
use ronode_proto::error_body::ErrorBody;
use ronode_proto::id::NodeId;
use ronode_proto::inbound::Received;
use ronode_proto::msg::gossip::{GossipEvent, GossipRequest, IHave, IWant};
use ronode_proto::msg::APP_GOSSIP;
use ronode_proto::{Flags, Kind, Reason};
use ronode_shards::gossip::Reply;
use ronode_shards::gossip::{GossipCounters, GossipPlane, PublishError};
use ronode_shards::objects::{CapKeys, Policy, SessionId, Transmit};
use ronode_shards::stats::GossipEvent as Counted;
use ronode_shards::{shard_of, ShardId};
use std::cell::{Cell, RefCell};
use std::collections::BTreeSet;
use std::rc::Rc;

/// A local subscriber: a session, named by its shard and its id there.
pub type Subscriber = (ShardId, SessionId);

/// Where a publish's verdict goes when the client asked for one (EVENT with ACK_REQ).
#[derive(Debug, Clone, Copy)]
pub struct Ack {
    pub corr_id: u64,
    pub tenant_id: u128,
}

/// What crosses the gossip mesh.
#[derive(Debug)]
pub enum GossipMsg {
    /// A client's publish, for the topic's owner: its topic, `ts` and data (its `msg_id`, a
    /// hash of those, was verified when the EVENT was decoded).
    Publish {
        publisher: Subscriber,
        ack: Option<Ack>,
        topic: String,
        ts: u64,
        data: Vec<u8>,
    },
    Subscribe {
        subscriber: Subscriber,
        topic: String,
    },
    Unsubscribe {
        subscriber: Subscriber,
        topic: String,
    },
    /// A session ended: its subscriptions go on every shard.
    SessionClosed(Subscriber),
    /// An EVENT, IHAVE or IWANT from a peer session.
    Event {
        peer: NodeId,
        payload: Bytes,
    },
    IHave {
        peer: NodeId,
        ihave: IHave,
    },
    IWant {
        peer: NodeId,
        iwant: IWant,
    },
    /// A frame for a session of the receiving shard (a delivery, a publish's verdict).
    Out(Transmit),
}

/// How the shard's gossip runtime is set up.
#[derive(Debug, Clone)]
pub struct GossipSeed {
    pub config: ronode_shards::gossip::GossipConfig,
    /// `gossip.seed`; mixed with the shard id so that shards choose differently.
    pub seed: u64,
    pub pub_policy: Policy,
}

/// Most frames a subscriber's outbox holds before its deliveries are dropped (counted): a
/// subscriber that does not read must not grow the node's memory. The same bound holds for the
/// EVENTs relayed to a peer over the session it dialled to this node.
pub(super) const MAX_OUTBOX_FRAMES: usize = 4_096;

/// See the module docs.
pub struct Gossip {
    shard: ShardId,
    shard_count: u16,
    plane: RefCell<GossipPlane<Subscriber>>,
    pub_policy: Policy,
    cap_keys: CapKeys,
    objects: Rc<Objects>,
    peers: Rc<Peers>,
    mesh: RefCell<Vec<Option<Rc<ConnectedSender<GossipMsg>>>>>,
    /// Mesh sends shed (full or still connecting), and deliveries dropped at a full outbox.
    lagged: Cell<u64>,
    dropped: Cell<u64>,
}

impl Gossip {
    pub fn new(
        shard: ShardId,
        shard_count: u16,
        seed: GossipSeed,
        cap_keys: CapKeys,
        objects: Rc<Objects>,
        peers: Rc<Peers>,
    ) -> Result<Rc<Gossip>, ronode_shards::gossip::ConfigError> {
        let rng_seed = seed.seed ^ (u64::from(shard.0) << 48) ^ 0x9e37_79b9_7f4a_7c15;
        let plane = GossipPlane::new(seed.config, rng_seed, unix_ms())?;
        Ok(Rc::new(Gossip {
            shard,
            shard_count,
            plane: RefCell::new(plane),
            pub_policy: seed.pub_policy,
            cap_keys,
            objects,
            peers,
            mesh: RefCell::new((0..shard_count).map(|_| None).collect()),
            lagged: Cell::new(0),
            dropped: Cell::new(0),
        }))
    }

    pub fn connect_mesh(&self, to: ShardId, tx: ConnectedSender<GossipMsg>) {
        self.mesh.borrow_mut()[to.0 as usize] = Some(Rc::new(tx));
    }

    /// Mesh sends shed since start, for `bus_lagged_total`.
    pub fn lagged(&self) -> u64 {
        self.lagged.get()
    }

    /// The plane's counters as `gossip_messages_total{event}` counts them.
    pub fn counts(&self) -> [u64; Counted::ALL.len()] {
        let plane = self.plane.borrow();
        let c: &GossipCounters = plane.counters();
        Counted::ALL.map(|e| match e {
            Counted::Published => c.published,
            Counted::Relayed => c.relayed,
            Counted::Delivered => c.delivered,
            Counted::Duplicate => c.duplicates,
            Counted::BudgetShed => c.budget_shed,
            Counted::HopLimited => c.hop_limited,
            Counted::Repaired => c.repaired,
            Counted::Dropped => {
                c.frames_dropped
                    + c.deliveries_dropped
                    + self.dropped.get()
                    + self.peers.gossip_dropped()
            }
        })
    }

    /// A frame on app 2 from a session: `peer` is the NodeId of a peer session (its EVENTs are
    /// relays, its IHAVE / IWANT repair), `None` for a client (its EVENTs are publishes).
    /// `now_s` is unix seconds, for capability expiry.
    pub fn handle_frame(
        &self,
        me: Subscriber,
        peer: Option<NodeId>,
        rx: &Received,
        now_s: u64,
    ) -> Reply {
        let frame = &rx.frame;
        let h = frame.header;
        let ack = h.flags.contains(Flags::ACK_REQ);
        match h.kind() {
            Some(Kind::Event) => {
                if let Some(peer) = peer {
                    let payload = Bytes::copy_from_slice(&frame.payload);
                    let topic = match GossipEvent::decode(&payload) {
                        Ok(ev) => ev.topic,
                        Err(_) => return Reply::Error(Reason::Malformed, "bad EVENT".into()),
                    };
                    self.send(self.owner(&topic), GossipMsg::Event { peer, payload });
                    return if ack { Reply::Ok } else { Reply::None };
                }
                let authorized =
                    self.cap_keys
                        .authorize(self.pub_policy, Op::Gossip, frame, None, now_s);
                if let Err(e) = authorized {
                    return Reply::Error(e.reason(), e.to_string());
                }
                let Ok(ev) = GossipEvent::decode(&frame.payload) else {
                    return Reply::Error(Reason::Malformed, "bad EVENT".into());
                };
                let ack = ack.then_some(Ack {
                    corr_id: h.corr_id,
                    tenant_id: h.tenant_id,
                });
                let msg = GossipMsg::Publish {
                    publisher: me,
                    ack,
                    topic: ev.topic.clone(),
                    ts: ev.ts,
                    data: ev.data,
                };
                // The verdict comes back from the topic's owner (or from `send` when shed).
                self.send(self.owner(&ev.topic), msg);
                Reply::None
            }
            Some(Kind::Req) => {
                let Ok(req) = GossipRequest::decode(&frame.payload) else {
                    return Reply::Error(Reason::Malformed, "bad gossip request".into());
                };
                match (req, peer) {
                    (GossipRequest::Subscribe(s), _) => {
                        let msg = GossipMsg::Subscribe {
                            subscriber: me,
                            topic: s.topic.clone(),
                        };
                        self.send(self.owner(&s.topic), msg);
                    }
                    (GossipRequest::Unsubscribe(s), _) => {
                        let msg = GossipMsg::Unsubscribe {
                            subscriber: me,
                            topic: s.topic.clone(),
                        };
                        self.send(self.owner(&s.topic), msg);
                    }
                    (GossipRequest::IHave(ihave), Some(peer)) => {
                        self.send(self.owner(&ihave.topic), GossipMsg::IHave { peer, ihave });
                    }
                    (GossipRequest::IWant(iwant), Some(peer)) => {
                        for to in 0..self.shard_count {
                            let iwant = iwant.clone();
                            self.send(ShardId(to), GossipMsg::IWant { peer, iwant });
                        }
                    }
                    // Repair from a client: nothing to repair for it; answered all the same.
                    (GossipRequest::IHave(_) | GossipRequest::IWant(_), None) => {}
                }
                Reply::Ok
            }
            _ => Reply::None,
        }
    }

    /// An EVENT a peer sent on a link this shard dialled: handled as if it came on a session
    /// the peer dialled (to the topic's owner). A malformed one goes to this shard's plane,
    /// which counts it.
    pub fn handle_peer_event(&self, peer: NodeId, payload: Bytes) {
        let to = match GossipEvent::decode(&payload) {
            Ok(ev) => self.owner(&ev.topic),
            Err(_) => self.shard,
        };
        self.send(to, GossipMsg::Event { peer, payload });
    }

    /// The session ended: its subscriptions go on every shard.
    pub fn session_closed(&self, me: Subscriber) {
        for to in 0..self.shard_count {
            self.send(ShardId(to), GossipMsg::SessionClosed(me));
        }
    }

    fn owner(&self, topic: &str) -> ShardId {
        shard_of(blake3::hash(topic.as_bytes()).as_bytes(), self.shard_count)
    }

    /// Hands `msg` to shard `to` (this one: at once). Shed when the channel is full or still
    /// connecting (counted); a shed publish that wants a verdict is answered 503 `busy`.
    fn send(&self, to: ShardId, msg: GossipMsg) {
        if to == self.shard {
            return self.handle(msg);
        }
        let tx = self.mesh.borrow()[to.0 as usize].clone();
        let failed = match tx {
            Some(tx) => match tx.try_send(msg) {
                Ok(()) => return,
                Err(e) => super::mesh::returned(e),
            },
            None => msg,
        };
        self.lagged.set(self.lagged.get() + 1);
        if let GossipMsg::Publish {
            publisher,
            ack: Some(ack),
            ..
        } = failed
        {
            let t = error_transmit(publisher.1, ack, Reason::Busy, "shard mesh full", 100);
            self.handle(GossipMsg::Out(t));
        }
    }

    /// A message for this shard (from the mesh, or from one of its own sessions).
    pub fn handle(&self, msg: GossipMsg) {
        let now = unix_ms();
        {
            let mut plane = self.plane.borrow_mut();
            match msg {
                GossipMsg::Publish {
                    publisher,
                    ack,
                    topic,
                    ts,
                    data,
                } => {
                    let verdict = plane.handle_publish(publisher, &topic, ts, &data, now);
                    drop(plane);
                    if let Some(ack) = ack {
                        let t = match verdict {
                            // A duplicate is the publisher's retry of a message it already
                            // got through: acknowledged, not delivered again (counted).
                            Ok(_) | Err(PublishError::Duplicate) => ok_transmit(publisher.1, ack),
                            Err(e) => {
                                let retry = match e {
                                    PublishError::Shed { retry_after_ms } => retry_after_ms,
                                    _ => 0,
                                };
                                error_transmit(publisher.1, ack, e.reason(), &e.to_string(), retry)
                            }
                        };
                        self.send(publisher.0, GossipMsg::Out(t));
                    }
                }
                GossipMsg::Subscribe { subscriber, topic } => {
                    // A refusal (the tables are full) is rare; the session already answered.
                    let _ = plane.handle_subscribe(subscriber, &topic, now);
                }
                GossipMsg::Unsubscribe { subscriber, topic } => {
                    plane.handle_unsubscribe(subscriber, &topic)
                }
                GossipMsg::SessionClosed(s) => plane.handle_session_closed(s),
                GossipMsg::Event { peer, payload } => {
                    // Malformed is counted by the plane; the session checked the frame already.
                    let _ = plane.handle_event(peer, payload, now);
                }
                GossipMsg::IHave { peer, ihave } => plane.handle_ihave(peer, &ihave, now),
                GossipMsg::IWant { peer, iwant } => plane.handle_iwant(peer, &iwant, now),
                GossipMsg::Out(t) => {
                    drop(plane);
                    if !self.objects.offer(t, MAX_OUTBOX_FRAMES) {
                        self.dropped.set(self.dropped.get() + 1);
                    }
                }
            }
        }
        self.drain();
    }

    /// Each tick: the plane's peers follow the node's peers that are up, and the repair timer.
    pub fn tick(&self) {
        let now = unix_ms();
        let up: BTreeSet<NodeId> = self.peers.gossip_peers();
        {
            let mut plane = self.plane.borrow_mut();
            let gone: Vec<NodeId> = plane.peers().filter(|p| !up.contains(p)).copied().collect();
            for p in gone {
                plane.handle_peer_down(&p);
            }
            for p in &up {
                plane.handle_peer_up(*p, now);
            }
            if plane.poll_timeout().is_some_and(|t| now >= t) {
                plane.handle_timeout(now);
            }
        }
        self.drain();
    }

    /// Runs the plane's outputs: deliveries to subscribers' sessions, then frames to peers.
    fn drain(&self) {
        loop {
            let d = self.plane.borrow_mut().poll_delivery();
            let Some(d) = d else { break };
            let (shard, session) = d.subscriber;
            let t = Transmit {
                session,
                app_proto_id: APP_GOSSIP,
                flags: Flags::EVENT,
                code: 0,
                tenant_id: 0,
                corr_id: 0,
                payload: d.payload,
            };
            self.send(shard, GossipMsg::Out(t));
        }
        loop {
            let f = self.plane.borrow_mut().poll_transmit();
            let Some(f) = f else { break };
            self.peers.send_gossip(f);
        }
    }
}

fn ok_transmit(session: SessionId, ack: Ack) -> Transmit {
    Transmit {
        session,
        app_proto_id: APP_GOSSIP,
        flags: Flags::RESP,
        code: 200,
        tenant_id: ack.tenant_id,
        corr_id: ack.corr_id,
        payload: Bytes::new(),
    }
}

fn error_transmit(
    session: SessionId,
    ack: Ack,
    reason: Reason,
    message: &str,
    retry_after_ms: u64,
) -> Transmit {
    let body = ErrorBody::new(reason, message, ack.corr_id, retry_after_ms);
    let mut payload = Vec::new();
    body.encode(APP_GOSSIP, &mut payload);
    Transmit {
        code: body.code,
        payload: Bytes::from(payload),
        ..ok_transmit(session, ack)
    }
}

/// Unix milliseconds: the plane's clock, and the `ts` of messages published here.
pub fn unix_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// Serves one incoming gossip-mesh channel until its sender goes away.
pub async fn serve_mesh(gossip: Rc<Gossip>, rx: ConnectedReceiver<GossipMsg>) {
    while let Some(msg) = rx.recv().await {
        gossip.handle(msg);
    }
}
