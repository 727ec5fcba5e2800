//! Two shard cores and a session core wired by a tiny driver that does what the engine does
//! (store operations on RAM stores, mesh messages into the other core, frames into the
//! session), on virtual time: the node's logic without its I/O.

use super::*;
use crate::objects::{CapKeys, ObjectsConfig, Policy, RamStore};
use crate::session::{SessionCfg, SessionCore, SessionHost, SERVED_APPS};
use crate::stats::ShardStats;
use bytes::{Bytes, BytesMut};
use ronode_proto::control::{Control, Hello, APP_CONTROL};
use ronode_proto::frame::{Frame, FrameDecoder, FrameEncoder, OutFrame};
use ronode_proto::id::ObjectAddr;
use ronode_proto::msg::objects::{Get, ObjectRequest, Put};
use ronode_proto::msg::APP_OBJECTS;
use ronode_proto::Flags;
use std::cell::RefCell;

const SHARDS: u16 = 2;
const UNIX_S: u64 = 1_700_000_000;

struct Shard {
    core: RefCell<ShardCore>,
    store: RefCell<RamStore>,
    stats: RefCell<ShardStats>,
}

/// The driver: both shards, the clock, and one client session served by shard 0.
struct Node {
    shards: Vec<Shard>,
    now: Now,
    session: SessionCore,
    sid: SessionId,
    rbuf: BytesMut,
    enc: FrameEncoder,
    dec: FrameDecoder,
    wakes: u32,
}

/// Shard 0 as its sessions see it.
struct Host<'a>(&'a Shard);

impl SessionHost for Host<'_> {
    fn stats(&self, f: impl FnOnce(&mut ShardStats)) {
        f(&mut self.0.stats.borrow_mut());
    }
    fn objects_frame(&self, session: SessionId, rx: Received, now: Now) {
        self.0
            .core
            .borrow_mut()
            .handle_objects_frame(session, rx, now);
    }
    fn gossip_frame(&self, _: SessionId, _: Option<NodeId>, _: &Received, _: u64) -> Reply {
        Reply::None
    }
    fn set_max_frame(&self, session: SessionId, max_frame: u32) {
        self.0.core.borrow_mut().set_max_frame(session, max_frame);
    }
}

use crate::gossip::Reply;

fn session_cfg() -> SessionCfg {
    SessionCfg {
        max_frame: 1 << 20,
        inflight: 64,
        max_rps: 100_000,
        burst: 100_000,
        read_timeout_ms: 60_000,
        idle_timeout_ms: 600_000,
        retry_after_ms: 100,
    }
}

impl Node {
    fn new(put_timeout_s: u64) -> Node {
        let now = Now {
            mono_ms: 0,
            mono_us: 0,
            unix_s: UNIX_S,
        };
        let shards: Vec<Shard> = (0..SHARDS)
            .map(|i| {
                let config = ObjectsConfig {
                    put_policy: Policy::Open,
                    get_policy: Policy::Open,
                    put_timeout_s,
                    ..ObjectsConfig::default()
                };
                let plane = ObjectsPlane::new(ShardId(i), config, CapKeys::new()).unwrap();
                let on_miss = OnMiss::new(ShardId(i), Default::default(), false);
                Shard {
                    core: RefCell::new(ShardCore::new(ShardId(i), SHARDS, plane, on_miss, now)),
                    store: RefCell::new(RamStore::new(1 << 30)),
                    stats: RefCell::new(ShardStats::new(ShardId(i))),
                }
            })
            .collect();
        let sid = shards[0].core.borrow_mut().handle_session_open(64);
        let session = SessionCore::new(&session_cfg(), SERVED_APPS, sid, None, 0);
        let mut node = Node {
            shards,
            now,
            session,
            sid,
            rbuf: BytesMut::new(),
            enc: FrameEncoder::new(1 << 20),
            dec: FrameDecoder::new(1 << 20),
            wakes: 0,
        };
        let hello = Control::Hello(Hello {
            ua: None,
            max_frame: None,
        })
        .to_vec();
        node.send(&OutFrame::request(APP_CONTROL, 1, &hello));
        assert_eq!(node.received()[0].header.code, 200);
        node
    }

    /// The client sends a frame; the node runs until it has nothing left to do.
    fn send(&mut self, frame: &OutFrame<'_>) {
        self.enc.encode(frame, &mut self.rbuf).unwrap();
        let host = Host(&self.shards[0]);
        let ending = self
            .session
            .handle_input(&mut self.rbuf, self.now, &session_cfg(), &host);
        assert_eq!(ending, None);
        self.run();
    }

    /// Executes every core's outputs as the engine does, until all are quiet.
    fn run(&mut self) {
        loop {
            let mut any = false;
            for i in 0..SHARDS as usize {
                loop {
                    let out = self.shards[i].core.borrow_mut().poll();
                    let Some(out) = out else { break };
                    any = true;
                    match out {
                        CoreOut::Store(op) => {
                            let done = op.execute(&mut *self.shards[i].store.borrow_mut());
                            if let Some(done) = done {
                                let mut core = self.shards[i].core.borrow_mut();
                                core.handle_store_done(done, Vec::new, self.now);
                            }
                        }
                        CoreOut::Mesh { to, msg } => self.shards[to.0 as usize]
                            .core
                            .borrow_mut()
                            .handle_mesh(msg),
                        CoreOut::Try(t) => {
                            self.shards[i].core.borrow_mut().fail_try(t.id, self.now)
                        }
                        CoreOut::Wake(s) => {
                            assert_eq!((i, s), (0, self.sid), "only shard 0 has a session");
                            self.wakes += 1;
                        }
                    }
                }
            }
            if !any {
                return;
            }
        }
    }

    /// Every frame the session has for the client now.
    fn received(&mut self) -> Vec<Frame> {
        loop {
            let t = self.shards[0].core.borrow_mut().next_transmit(self.sid);
            let Some(t) = t else { break };
            let host = Host(&self.shards[0]);
            self.session.queue_transmit(t, self.now, &host);
            self.run();
        }
        let mut wire = crate::session::tests::output_bytes(&self.session);
        let host = Host(&self.shards[0]);
        self.session.written(self.now, &host);
        std::iter::from_fn(|| self.dec.decode(&mut wire).unwrap()).collect()
    }

    fn advance(&mut self, ms: u64) {
        self.now.mono_ms += ms;
        self.now.mono_us = self.now.mono_ms * 1000;
        self.now.unix_s = UNIX_S + self.now.mono_ms / 1000;
        for shard in &self.shards {
            let due = shard.core.borrow().poll_timeout();
            if due.is_some_and(|t| t <= self.now.mono_ms) {
                shard.core.borrow_mut().handle_timeout(self.now);
            }
        }
        self.run();
    }
}

/// A body whose address shard 1 owns: the session's shard must go over the mesh.
fn body_owned_by_shard_1() -> Vec<u8> {
    (0u32..)
        .map(|i| format!("object {i}").into_bytes())
        .find(|b| shard_of(ObjectAddr::of(b).as_bytes(), SHARDS) == ShardId(1))
        .unwrap()
}

impl Node {
    /// The client sends a PUT's START frame (no body yet).
    fn start_put(&mut self, corr_id: u64, addr: ObjectAddr, size: u64) {
        let mut payload = Vec::new();
        ObjectRequest::Put(Put { addr, size }).encode(&mut payload);
        let start = OutFrame {
            flags: Flags::REQ | Flags::START,
            ..OutFrame::request(APP_OBJECTS, corr_id, &payload)
        };
        self.send(&start);
    }
}

#[test]
fn a_put_and_a_get_cross_the_mesh_to_the_owner_shard() {
    let mut node = Node::new(30);
    let body = body_owned_by_shard_1();
    let addr = ObjectAddr::of(&body);
    node.start_put(2, addr, body.len() as u64);
    let end = OutFrame {
        flags: Flags::REQ | Flags::END,
        ..OutFrame::request(APP_OBJECTS, 2, &body)
    };
    node.send(&end);
    let put = node.received();
    assert_eq!((put[0].header.corr_id, put[0].header.code), (2, 200));
    assert_eq!(
        node.shards[1].store.borrow().len(),
        1,
        "stored by its owner"
    );
    assert_eq!(node.shards[0].store.borrow().len(), 0);

    let mut get = Vec::new();
    ObjectRequest::Get(Get::whole(addr)).encode(&mut get);
    node.send(&OutFrame::request(APP_OBJECTS, 3, &get));
    let frames = node.received();
    let bytes: Vec<u8> = frames.iter().flat_map(|f| f.payload.to_vec()).collect();
    assert_eq!(frames[0].header.code, 200);
    assert_eq!(bytes, body);
    assert!(node.wakes >= 2, "the session was woken for each answer");
}

#[test]
fn an_upload_past_put_timeout_is_answered_408_and_its_reservation_released() {
    let mut node = Node::new(2);
    let body = body_owned_by_shard_1();
    let addr = ObjectAddr::of(&body);
    node.start_put(2, addr, body.len() as u64);
    assert_eq!(
        node.shards[1].store.borrow().reserved_bytes(),
        body.len() as u64
    );
    assert!(node.received().is_empty(), "nothing to answer yet");
    let due = node.shards[0].core.borrow().poll_timeout();
    assert_eq!(due, Some(2_000), "the deadline on the monotonic clock");
    node.advance(1_999);
    assert!(node.received().is_empty(), "not yet");
    node.advance(1_001);
    let frames = node.received();
    assert_eq!((frames[0].header.corr_id, frames[0].header.code), (2, 408));
    assert_eq!(
        node.shards[1].store.borrow().reserved_bytes(),
        0,
        "released"
    );
}

#[test]
fn a_full_channel_refuses_what_may_be_refused_and_keeps_what_must_arrive() {
    let mut node = Node::new(30);
    let addr = ObjectAddr::of(b"anything");
    let op = crate::objects::OpId {
        shard: ShardId(0),
        seq: 99,
    };
    let read = StoreOp::Read {
        op,
        addr,
        range: 0..1,
        min_len: 0,
        fetch: None,
    };
    let mut core = node.shards[0].core.borrow_mut();
    assert!(core.handle_mesh_full(MeshMsg::Op(read)).is_none());
    let commit = StoreOp::CommitPut {
        put: op,
        addr,
        body: Some(Bytes::from_static(b"x")),
    };
    assert!(core.handle_mesh_full(MeshMsg::Op(commit)).is_some());
    let done = StoreDone::Read {
        op,
        result: Err(crate::objects::StoreError::Busy(
            crate::objects::BusyCause::Mesh,
        )),
    };
    assert!(core.handle_mesh_full(MeshMsg::Done(done)).is_some());
    assert_eq!(core.counters().mesh_full, 3);
    drop(core);
    node.run();
}

#[test]
fn another_plane_s_frames_are_refused_past_their_bound_and_counted() {
    let node = Node::new(30);
    let frame = |n| Transmit {
        session: node.sid,
        app_proto_id: ronode_proto::msg::APP_GOSSIP,
        flags: Flags::EVENT,
        code: 0,
        tenant_id: 0,
        corr_id: n,
        payload: Bytes::new(),
    };
    let mut core = node.shards[0].core.borrow_mut();
    for n in 0..4 {
        assert!(core.offer(frame(n), 4), "frame {n}");
    }
    assert!(!core.offer(frame(4), 4), "the fifth is refused");
    assert_eq!(core.counters().offers_refused, 1);
    assert_eq!(core.queued_frames(), 4);
    core.next_transmit(node.sid);
    assert!(core.offer(frame(5), 4), "room again");
}
