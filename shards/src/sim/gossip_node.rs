//! [`GossipNode`]: a node running today's sans-IO [`GossipPlane`], one per shard as the engine
//! does (a topic's plane is `shard_of(BLAKE3(topic))`; IWANT, which names no topic, goes to
//! every plane), over simulated connections carrying encoded OAP/1 frames as the engine sends
//! them on app 2: EVENT frames for messages (corr_id 0), REQ frames for IHAVE and IWANT, each
//! answered RESP 200 `{"ok": true}`.
//!
//! Left out, as the shard core will own them: TLS, HELLO and PING (a session starts at its
//! first app frame), and the cross-shard mesh (planes of one node call each other at once).
//! Peer sessions are symmetric: a connection counts as the peer's link whoever dialled it. When
//! two connections to one peer exist (both dialled at once), both ends keep the one dialled by
//! the smaller NodeId (the older on a tie) and close the other.
//!
//! A node dials the peers it was given and dials them again after a close or a failed dial,
//! with a doubling, jittered backoff (`REDIAL_MIN_MS` to `REDIAL_MAX_MS`).

use std::cell::Cell;
use std::collections::{BTreeMap, VecDeque};

use bytes::{Bytes, BytesMut};
use ronode_proto::frame::{FrameDecoder, FrameEncoder, OutFrame};
use ronode_proto::id::NodeId;
use ronode_proto::limits::{MAX_FRAME, MAX_INFLIGHT};
use ronode_proto::msg::gossip::{GossipEvent, GossipRequest, MsgId};
use ronode_proto::msg::APP_GOSSIP;
use ronode_proto::{Flags, Kind};

use super::node::{unix_ms, ConnId, Now, SimNode, UNIX_ORIGIN_MS};
use crate::gossip::{ok_payload, GossipConfig, GossipPlane, PeerMsg, PublishError};
use crate::rng::SplitMix64;
use crate::shard_of;

/// The first redial's delay after a close or a failed dial; it doubles per failure up to the
/// max, each with up to half of it again at random (so that a healed partition does not see
/// every node dial at the same millisecond).
pub const REDIAL_MIN_MS: u64 = 200;
pub const REDIAL_MAX_MS: u64 = 5_000;

/// The local client that subscribes; publishes come from another, so that a node's subscriber
/// gets the messages published at its own node (a plane never delivers to the publisher).
pub const SUBSCRIBER: u32 = 0;
pub const PUBLISHER: u32 = 1;

/// How every [`GossipNode`] of a run is set up.
#[derive(Debug, Clone)]
pub struct GossipNodeConfig {
    pub gossip: GossipConfig,
    /// Shards (planes) per node.
    pub shards: u16,
    /// Eager pushes dropped on purpose, per mille: what a full peer queue does in the engine
    /// (its frames are dropped, counted), to exercise repair. 0 in normal runs.
    pub push_loss_permille: u32,
    /// Notes every eager push ([`GossipNote::Pushed`]): for tests that bound the fanout.
    pub record_pushes: bool,
}

impl Default for GossipNodeConfig {
    fn default() -> GossipNodeConfig {
        GossipNodeConfig {
            gossip: GossipConfig::default(),
            shards: 1,
            push_loss_permille: 0,
            record_pushes: false,
        }
    }
}

/// A client operation.
#[derive(Debug, Clone)]
pub enum GossipOp {
    /// [`SUBSCRIBER`] subscribes to a topic.
    Subscribe { topic: String },
    /// [`PUBLISHER`] publishes `data` on a topic, `ts` now.
    Publish { topic: String, data: Vec<u8> },
}

/// What a [`GossipNode`] tells the scenario.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GossipNote {
    Published {
        msg_id: MsgId,
    },
    Refused(PublishError),
    /// A message reached [`SUBSCRIBER`].
    Delivered {
        msg_id: MsgId,
    },
    /// An eager push left for `to` (only with `record_pushes`).
    Pushed {
        msg_id: MsgId,
        to: NodeId,
    },
}

/// What a node counted besides its planes' counters.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LinkCounters {
    /// Eager pushes dropped by `push_loss_permille`.
    pub pushes_dropped: u64,
    /// Frames for a peer with no connection (it went down since the plane queued them).
    pub no_link: u64,
    /// IHAVE/IWANT not sent: the connection had `MAX_INFLIGHT - 1` REQs unanswered.
    pub reqs_shed: u64,
    /// Connections closed for a frame that did not decode.
    pub malformed: u64,
    /// Second connections to one peer, closed.
    pub duplicate_links: u64,
}

#[derive(Debug)]
struct Link {
    peer: NodeId,
    dialled: bool,
    rbuf: BytesMut,
    decoder: FrameDecoder,
    next_corr: u64,
    reqs_in_flight: usize,
}

/// A peer this node dials: whether a dial is out, and when to dial again.
#[derive(Debug, Clone, Copy, Default)]
struct Redial {
    dialling: bool,
    at: Option<u64>,
    failures: u32,
}

/// See the module docs.
pub struct GossipNode {
    id: NodeId,
    config: GossipNodeConfig,
    planes: Vec<GossipPlane<u32>>,
    rng: SplitMix64,
    encoder: FrameEncoder,
    links: BTreeMap<ConnId, Link>,
    by_peer: BTreeMap<NodeId, ConnId>,
    redial: BTreeMap<NodeId, Redial>,
    /// Frames encoded during one input, per connection: written as one buffer, as the engine
    /// writes its wbuf.
    pending: BTreeMap<ConnId, Vec<u8>>,
    out: VecDeque<(ConnId, Bytes)>,
    dials: VecDeque<NodeId>,
    closes: VecDeque<ConnId>,
    notes: VecDeque<GossipNote>,
    ok: Bytes,
    counters: LinkCounters,
    /// Calls of `check_invariants`, to space its deep checks.
    checks: Cell<u32>,
}

/// One `check_invariants` call in this many walks the tables member by member.
pub const DEEP_CHECK_EVERY: u32 = 16;

impl std::fmt::Debug for GossipNode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GossipNode")
            .field("id", &self.id)
            .field("shards", &self.planes.len())
            .field("links", &self.links.len())
            .field("peers_up", &self.by_peer.len())
            .field("counters", &self.counters)
            .finish_non_exhaustive()
    }
}

impl GossipNode {
    /// A node that dials `peers`; `seed` seeds its planes (mixed with the shard) and its RNG.
    pub fn new(
        id: NodeId,
        config: GossipNodeConfig,
        peers: &[NodeId],
        seed: u64,
        now: Now,
    ) -> Self {
        let planes = (0..config.shards)
            .map(|s| {
                let seed = seed ^ (u64::from(s) << 48) ^ 0x9e37_79b9_7f4a_7c15;
                GossipPlane::new(config.gossip.clone(), seed, unix_ms(now))
                    .expect("a valid gossip config")
            })
            .collect();
        let mut node = GossipNode {
            id,
            config,
            planes,
            rng: SplitMix64::new(seed),
            encoder: FrameEncoder::new(MAX_FRAME),
            links: BTreeMap::new(),
            by_peer: BTreeMap::new(),
            redial: BTreeMap::new(),
            pending: BTreeMap::new(),
            out: VecDeque::new(),
            dials: VecDeque::new(),
            closes: VecDeque::new(),
            notes: VecDeque::new(),
            ok: Bytes::from(ok_payload()),
            counters: LinkCounters::default(),
            checks: Cell::new(0),
        };
        for p in peers.iter().filter(|p| **p != id) {
            node.redial.insert(
                *p,
                Redial {
                    dialling: true,
                    ..Redial::default()
                },
            );
            node.dials.push_back(*p);
        }
        node
    }

    pub fn id(&self) -> NodeId {
        self.id
    }

    pub fn planes(&self) -> &[GossipPlane<u32>] {
        &self.planes
    }

    pub fn link_counters(&self) -> &LinkCounters {
        &self.counters
    }

    /// Peers with a connection up.
    pub fn peers_up(&self) -> usize {
        self.by_peer.len()
    }

    fn owner(&self, topic: &str) -> usize {
        shard_of(
            blake3::hash(topic.as_bytes()).as_bytes(),
            self.config.shards,
        )
        .0 as usize
    }

    fn schedule_redial(&mut self, peer: NodeId, now: Now) {
        let Some(r) = self.redial.get_mut(&peer) else {
            return;
        };
        if self.by_peer.contains_key(&peer) {
            r.failures = 0;
            return;
        }
        let base = (REDIAL_MIN_MS << r.failures.min(8)).min(REDIAL_MAX_MS);
        let jitter = self.rng.below(base as usize / 2 + 1) as u64;
        r.dialling = false;
        r.at = Some(now.mono_ms + base + jitter);
        r.failures += 1;
    }

    fn peer_up(&mut self, peer: NodeId, now: Now) {
        for p in &mut self.planes {
            p.handle_peer_up(peer, unix_ms(now));
        }
    }

    fn handle_frame(&mut self, conn: ConnId, frame: ronode_proto::frame::Frame, now: Now) {
        let h = frame.header;
        let Some(peer) = self.links.get(&conn).map(|l| l.peer) else {
            return;
        };
        if h.app_proto_id != APP_GOSSIP {
            return;
        }
        let t = unix_ms(now);
        match h.kind() {
            Some(Kind::Event) => {
                // The topic picks the plane (a decode the engine makes too; skipped with one
                // shard); the plane decodes again and counts what does not decode.
                let s = if self.planes.len() == 1 {
                    Some(0)
                } else {
                    GossipEvent::decode(&frame.payload)
                        .ok()
                        .map(|ev| self.owner(&ev.topic))
                };
                if let Some(s) = s {
                    let _ = self.planes[s].handle_event(peer, frame.payload, t);
                }
            }
            Some(Kind::Req) => {
                match GossipRequest::decode(&frame.payload) {
                    Ok(GossipRequest::IHave(ihave)) => {
                        let s = self.owner(&ihave.topic);
                        self.planes[s].handle_ihave(peer, &ihave, t);
                    }
                    Ok(GossipRequest::IWant(iwant)) => {
                        for p in &mut self.planes {
                            p.handle_iwant(peer, &iwant, t);
                        }
                    }
                    // Subscriptions are for clients, not peers; answered all the same.
                    Ok(_) => {}
                    Err(_) => return,
                }
                let ok = self.ok.clone();
                self.encode(conn, &OutFrame::response(APP_GOSSIP, h.corr_id, 200, &ok));
            }
            Some(Kind::Resp) => {
                if let Some(l) = self.links.get_mut(&conn) {
                    l.reqs_in_flight = l.reqs_in_flight.saturating_sub(1);
                }
            }
            None => {}
        }
    }

    fn encode(&mut self, conn: ConnId, frame: &OutFrame<'_>) {
        // Not presized: the buffer becomes the delivered `Bytes`, and frames decoded from it
        // (cached by the receiving plane) keep all of it alive.
        let buf = self.pending.entry(conn).or_default();
        let encoded = self.encoder.encode(frame, buf);
        debug_assert!(encoded.is_ok(), "encoding our own frame failed");
    }

    /// Takes the planes' outputs: deliveries become notes, frames go on the peers' links.
    fn flush(&mut self) {
        for s in 0..self.planes.len() {
            while let Some(d) = self.planes[s].poll_delivery() {
                if d.subscriber == SUBSCRIBER {
                    self.notes
                        .push_back(GossipNote::Delivered { msg_id: d.msg_id });
                }
            }
            while let Some(f) = self.planes[s].poll_transmit() {
                self.send(f.peer, f.msg);
            }
        }
        for (conn, buf) in std::mem::take(&mut self.pending) {
            self.out.push_back((conn, Bytes::from(buf)));
        }
    }

    fn send(&mut self, peer: NodeId, msg: PeerMsg) {
        let Some(&conn) = self.by_peer.get(&peer) else {
            self.counters.no_link += 1;
            return;
        };
        if let PeerMsg::Event {
            repair: false,
            payload,
        } = &msg
        {
            if self.config.record_pushes {
                if let Ok(ev) = GossipEvent::decode(payload) {
                    let msg_id = ev.msg_id;
                    self.notes
                        .push_back(GossipNote::Pushed { msg_id, to: peer });
                }
            }
            let loss = self.config.push_loss_permille;
            if loss > 0 && (self.rng.below(1_000) as u32) < loss {
                self.counters.pushes_dropped += 1;
                return;
            }
        }
        let payload = msg.payload();
        let corr_id = if msg.flags() == Flags::REQ {
            let l = self.links.get_mut(&conn).expect("by_peer names a link");
            if l.reqs_in_flight >= MAX_INFLIGHT - 1 {
                self.counters.reqs_shed += 1;
                return;
            }
            l.reqs_in_flight += 1;
            l.next_corr += 1;
            l.next_corr
        } else {
            0
        };
        let frame = OutFrame {
            flags: msg.flags(),
            ..OutFrame::request(APP_GOSSIP, corr_id, &payload)
        };
        self.encode(conn, &frame);
    }

    /// Who dialled a link.
    fn dialler(&self, link: &Link) -> NodeId {
        if link.dialled {
            self.id
        } else {
            link.peer
        }
    }
}

impl SimNode for GossipNode {
    type Op = GossipOp;
    type Note = GossipNote;

    fn handle_connected(&mut self, now: Now, conn: ConnId, peer: NodeId, dialled: bool) {
        let link = Link {
            peer,
            dialled,
            rbuf: BytesMut::new(),
            decoder: FrameDecoder::new(MAX_FRAME),
            next_corr: 0,
            reqs_in_flight: 0,
        };
        if dialled {
            if let Some(r) = self.redial.get_mut(&peer) {
                r.dialling = false;
                r.failures = 0;
            }
        }
        match self.by_peer.get(&peer).copied() {
            None => {
                self.links.insert(conn, link);
                self.by_peer.insert(peer, conn);
                self.peer_up(peer, now);
            }
            Some(old) => {
                self.counters.duplicate_links += 1;
                let old_dialler = self.dialler(&self.links[&old]);
                let new_dialler = self.dialler(&link);
                // Both ends apply the same rule, so they close the same connection.
                let keep_new = new_dialler < old_dialler;
                self.links.insert(conn, link);
                let loser = if keep_new {
                    self.by_peer.insert(peer, conn);
                    old
                } else {
                    conn
                };
                self.links.remove(&loser);
                self.closes.push_back(loser);
            }
        }
        self.flush();
    }

    fn handle_dial_failed(&mut self, now: Now, peer: NodeId) {
        self.schedule_redial(peer, now);
    }

    fn handle_bytes(&mut self, now: Now, conn: ConnId, bytes: Bytes) {
        let Some(link) = self.links.get_mut(&conn) else {
            return;
        };
        if link.rbuf.is_empty() {
            // Nothing buffered: decode from the delivered buffer itself (frames are split off
            // it without a copy), as the engine decodes from its read buffer.
            link.rbuf = bytes
                .try_into_mut()
                .unwrap_or_else(|b| BytesMut::from(&b[..]));
        } else {
            link.rbuf.extend_from_slice(&bytes);
        }
        loop {
            let link = self.links.get_mut(&conn).expect("present");
            match link.decoder.decode(&mut link.rbuf) {
                Ok(Some(frame)) => self.handle_frame(conn, frame, now),
                Ok(None) => break,
                Err(_) => {
                    self.counters.malformed += 1;
                    self.closes.push_back(conn);
                    self.handle_closed(now, conn);
                    return;
                }
            }
        }
        self.flush();
    }

    fn handle_closed(&mut self, now: Now, conn: ConnId) {
        let Some(link) = self.links.remove(&conn) else {
            return;
        };
        if self.by_peer.get(&link.peer) == Some(&conn) {
            self.by_peer.remove(&link.peer);
            for p in &mut self.planes {
                p.handle_peer_down(&link.peer);
            }
            self.schedule_redial(link.peer, now);
        }
        self.flush();
    }

    fn handle_timeout(&mut self, now: Now) {
        let t = unix_ms(now);
        for p in &mut self.planes {
            if p.poll_timeout().is_some_and(|due| due <= t) {
                p.handle_timeout(t);
            }
        }
        for (peer, r) in &mut self.redial {
            if r.at.is_some_and(|at| at <= now.mono_ms) {
                r.at = None;
                r.dialling = true;
                self.dials.push_back(*peer);
            }
        }
        self.flush();
    }

    fn handle_op(&mut self, now: Now, op: GossipOp) {
        let t = unix_ms(now);
        match op {
            GossipOp::Subscribe { topic } => {
                let s = self.owner(&topic);
                let _ = self.planes[s].handle_subscribe(SUBSCRIBER, &topic, t);
            }
            GossipOp::Publish { topic, data } => {
                let s = self.owner(&topic);
                let note = match self.planes[s].handle_publish(PUBLISHER, &topic, t, &data, t) {
                    Ok(msg_id) => GossipNote::Published { msg_id },
                    Err(e) => GossipNote::Refused(e),
                };
                self.notes.push_back(note);
            }
        }
        self.flush();
    }

    fn poll_transmit(&mut self) -> Option<(ConnId, Bytes)> {
        self.out.pop_front()
    }

    fn poll_dial(&mut self) -> Option<NodeId> {
        self.dials.pop_front()
    }

    fn poll_close(&mut self) -> Option<ConnId> {
        self.closes.pop_front()
    }

    fn poll_note(&mut self) -> Option<GossipNote> {
        self.notes.pop_front()
    }

    fn poll_timeout(&self) -> Option<u64> {
        let planes = self
            .planes
            .iter()
            .filter_map(|p| p.poll_timeout())
            .map(|t| t.saturating_sub(UNIX_ORIGIN_MS))
            .min();
        let redial = self.redial.values().filter_map(|r| r.at).min();
        [planes, redial].into_iter().flatten().min()
    }

    /// Every call: the planes' caches within their bounds. Every `DEEP_CHECK_EVERY`th call
    /// also: each link up is the peer's link, the planes' peers are exactly the links up, no
    /// redial armed while dialling, REQs in flight within the window (done every call, these
    /// took a tenth of a large run's time).
    fn check_invariants(&self) -> Result<(), String> {
        let calls = self.checks.get().wrapping_add(1);
        self.checks.set(calls);
        let deep = calls.is_multiple_of(DEEP_CHECK_EVERY);
        if deep {
            for (peer, conn) in &self.by_peer {
                match self.links.get(conn) {
                    Some(l) if l.peer == *peer => {}
                    _ => return Err(format!("peer {peer} maps to {conn:?}, not its link")),
                }
            }
        }
        for (s, p) in self.planes.iter().enumerate().filter(|_| deep) {
            let mut n = 0;
            for peer in p.peers() {
                n += 1;
                if !self.by_peer.contains_key(peer) {
                    return Err(format!("plane {s} has peer {peer} with no link up"));
                }
            }
            if n != self.by_peer.len() {
                return Err(format!(
                    "plane {s} has {n} peers, {} links are up",
                    self.by_peer.len()
                ));
            }
        }
        for (s, p) in self.planes.iter().enumerate() {
            let c = p.config();
            if p.seen_len() > c.seen_cache || p.cached_len() > c.message_cache {
                return Err(format!("plane {s} past its cache bounds"));
            }
        }
        for (peer, r) in self.redial.iter().filter(|_| deep) {
            if r.dialling && r.at.is_some() {
                return Err(format!("peer {peer}: dialling and a redial armed"));
            }
        }
        for l in self.links.values().filter(|_| deep) {
            if l.reqs_in_flight >= MAX_INFLIGHT {
                return Err(format!(
                    "link to {}: {} REQs in flight",
                    l.peer, l.reqs_in_flight
                ));
            }
        }
        Ok(())
    }
}
