//! The session core on virtual time: bytes in, frames out, no socket and no clock.

use super::*;
use crate::objects::Transmit;
use crate::refusals::MAX_REFUSALS;
use crate::ShardId;
use bytes::{Bytes, BytesMut};
use ronode_proto::control::{Control, Hello, APP_CONTROL};
use ronode_proto::frame::{Frame, FrameDecoder, FrameEncoder, OutFrame};
use ronode_proto::msg::gossip::{GossipRequest, Subscribe};
use ronode_proto::msg::objects::{Get, ObjectRequest};
use ronode_proto::msg::{APP_GOSSIP, APP_OBJECTS};
use ronode_proto::{Flags, ObjectAddr};
use std::cell::RefCell;

const SERVED: ServedApps = ServedApps::of(&[APP_CONTROL, APP_OBJECTS, APP_GOSSIP]);

fn cfg() -> SessionCfg {
    SessionCfg {
        max_frame: 1 << 20,
        inflight: 64,
        max_rps: 10_000,
        burst: 10_000,
        read_timeout_ms: 5_000,
        idle_timeout_ms: 60_000,
        retry_after_ms: 100,
    }
}

/// The planes, as a session sees them: objects frames are recorded and left unanswered.
struct Host {
    stats: RefCell<ShardStats>,
    objects: RefCell<Vec<u64>>,
    max_frame: RefCell<Option<u32>>,
}

impl Host {
    fn new() -> Host {
        Host {
            stats: RefCell::new(ShardStats::new(ShardId(0))),
            objects: RefCell::new(Vec::new()),
            max_frame: RefCell::new(None),
        }
    }
}

impl SessionHost for Host {
    fn stats(&self, f: impl FnOnce(&mut ShardStats)) {
        f(&mut self.stats.borrow_mut());
    }
    fn objects_frame(&self, _: SessionId, rx: Received, _: Now) {
        self.objects.borrow_mut().push(rx.frame.header.corr_id);
    }
    fn gossip_frame(&self, _: SessionId, _: Option<NodeId>, _: &Received, _: u64) -> Reply {
        Reply::Ok
    }
    fn set_max_frame(&self, _: SessionId, max_frame: u32) {
        *self.max_frame.borrow_mut() = Some(max_frame);
    }
}

/// A session with its peer's side: frames encoded in, frames decoded out.
struct Wire {
    core: SessionCore,
    host: Host,
    cfg: SessionCfg,
    rbuf: BytesMut,
    enc: FrameEncoder,
    dec: FrameDecoder,
    now_ms: u64,
}

impl Wire {
    fn new(cfg: SessionCfg) -> Wire {
        Wire {
            core: SessionCore::new(&cfg, SERVED, SessionId(1), None, 0),
            host: Host::new(),
            cfg,
            rbuf: BytesMut::new(),
            enc: FrameEncoder::new(1 << 20),
            dec: FrameDecoder::new(1 << 20),
            now_ms: 0,
        }
    }

    fn now(&self) -> Now {
        Now {
            mono_ms: self.now_ms,
            mono_us: self.now_ms * 1000,
            unix_s: 1_700_000_000,
        }
    }

    fn put(&mut self, frame: &OutFrame<'_>) {
        let mut out = Vec::new();
        self.enc.encode(frame, &mut out).unwrap();
        self.rbuf.extend_from_slice(&out);
    }

    fn input(&mut self) -> Option<Ending> {
        let now = self.now();
        self.core
            .handle_input(&mut self.rbuf, now, &self.cfg, &self.host)
    }

    fn after_flush(&mut self, deadline: Option<u64>) -> Turn {
        let now = self.now();
        self.core
            .after_flush(&self.rbuf, now, deadline, &self.cfg, &self.host)
    }

    /// Everything the core queued, as frames; the output is then written.
    fn frames(&mut self) -> Vec<Frame> {
        let mut wire = output_bytes(&self.core);
        self.core.written(self.now(), &self.host);
        let mut frames = Vec::new();
        while let Some(f) = self.dec.decode(&mut wire).unwrap() {
            frames.push(f);
        }
        assert!(wire.is_empty(), "the output ends on a frame boundary");
        frames
    }

    fn hello(&mut self, corr: u64, max_frame: Option<u32>) {
        let payload = Control::Hello(Hello {
            ua: Some("test".into()),
            max_frame,
        })
        .to_vec();
        self.put(&OutFrame::request(APP_CONTROL, corr, &payload));
    }

    fn ping(&mut self, corr: u64) {
        let payload = Control::Ping(corr).to_vec();
        self.put(&OutFrame::request(APP_CONTROL, corr, &payload));
    }

    fn get(&mut self, corr: u64) {
        let mut payload = Vec::new();
        ObjectRequest::Get(Get::whole(ObjectAddr::of(b"x"))).encode(&mut payload);
        self.put(&OutFrame::request(APP_OBJECTS, corr, &payload));
    }

    /// A greeted session (its HELLO answered and written).
    fn greeted(cfg: SessionCfg) -> Wire {
        let mut w = Wire::new(cfg);
        w.hello(1, None);
        assert_eq!(w.input(), None);
        assert_eq!(w.frames()[0].header.code, 200);
        w
    }
}

/// What `core` has to write, as the bytes on the wire (shared payloads in their places).
pub(crate) fn output_bytes(core: &SessionCore) -> BytesMut {
    let (bytes, shared) = core.output();
    let mut wire = BytesMut::new();
    let mut from = 0;
    for (at, payload) in shared {
        wire.extend_from_slice(&bytes[from..*at]);
        wire.extend_from_slice(payload);
        from = *at;
    }
    wire.extend_from_slice(&bytes[from..]);
    wire
}

/// The objects plane's 404 answer to request `corr_id`, as it would queue it.
fn not_found(corr_id: u64) -> Transmit {
    Transmit {
        session: SessionId(1),
        app_proto_id: APP_OBJECTS,
        flags: Flags::RESP,
        code: 404,
        tenant_id: 0,
        corr_id,
        payload: Bytes::from_static(b"{}"),
    }
}

fn goaway(f: &Frame) -> GoAway {
    match Control::parse(&f.payload) {
        Ok(Control::GoAway(g)) => g,
        other => panic!("expected a GOAWAY, got {other:?} ({:?})", f.header),
    }
}

use ronode_proto::control::GoAway;

fn reason(f: &Frame) -> String {
    let text = std::str::from_utf8(&f.payload).expect("a JSON error body");
    let at = text.find("\"reason\":\"").expect("a reason") + 10;
    text[at..].split('"').next().unwrap().to_owned()
}

#[test]
fn hello_is_answered_with_the_negotiated_limits_and_the_planes_told() {
    let mut w = Wire::new(cfg());
    w.hello(42, Some(8192));
    assert_eq!(w.input(), None);
    let frames = w.frames();
    assert_eq!(frames.len(), 1);
    let f = &frames[0];
    assert_eq!((f.header.corr_id, f.header.code), (42, 200));
    match Control::parse(&f.payload) {
        Ok(Control::HelloReply(r)) => {
            assert_eq!((r.max_frame, r.max_inflight), (8192, 64));
        }
        other => panic!("expected a HELLO reply, got {other:?}"),
    }
    assert_eq!(*w.host.max_frame.borrow(), Some(8192));
    assert_eq!(w.after_flush(None), Turn::Read);
}

#[test]
fn a_hello_below_the_frame_floor_is_answered_and_ends_the_session() {
    let mut w = Wire::new(cfg());
    w.hello(7, Some(1000));
    let ending = w.input().expect("the session ends");
    assert_eq!(ending.end, End::Rejected(Reason::Malformed));
    let f = &w.frames()[0];
    assert_eq!((f.header.corr_id, f.header.code), (7, 400));
}

#[test]
fn a_second_hello_is_bad_sequence() {
    let mut w = Wire::greeted(cfg());
    w.hello(2, None);
    let ending = w.input().expect("the session ends");
    assert_eq!(ending.end, End::Rejected(Reason::BadSequence));
    assert_eq!(w.frames()[0].header.code, 400);
}

#[test]
fn ping_is_answered_pong() {
    let mut w = Wire::greeted(cfg());
    w.ping(9);
    assert_eq!(w.input(), None);
    let f = &w.frames()[0];
    assert_eq!(Control::parse(&f.payload), Ok(Control::Pong(9)));
}

#[test]
fn requests_past_max_rps_are_refused_and_a_flood_of_them_sheds_the_session() {
    let mut w = Wire::greeted(SessionCfg {
        max_rps: 1,
        burst: 1,
        ..cfg()
    });
    // The HELLO took the only token; every PING of this instant is refused 429.
    let mut refused = 0u32;
    let mut corr = 2;
    let ending = loop {
        for _ in 0..64 {
            w.ping(corr);
            corr += 1;
        }
        let ending = w.input();
        for f in w.frames() {
            if f.header.code == 429 {
                assert_eq!(reason(&f), "quota");
                refused += 1;
            }
        }
        if let Some(ending) = ending {
            break ending;
        }
        assert!(
            refused <= MAX_REFUSALS,
            "still open after {refused} refusals"
        );
    };
    assert_eq!(ending.end, End::Shed);
    // The refusal past the bound is answered too, then the session is shed.
    assert_eq!(refused, MAX_REFUSALS + 1);
    assert_eq!(w.host.stats.borrow().counters().sessions_shed(), 1);
}

#[test]
fn the_65th_request_in_flight_is_refused_alone() {
    let mut w = Wire::greeted(cfg());
    for corr in 2..=66 {
        w.get(corr);
    }
    assert_eq!(w.input(), None, "the session goes on");
    assert_eq!(w.host.objects.borrow().len(), 64, "64 GETs reach the plane");
    let frames = w.frames();
    assert_eq!(frames.len(), 1);
    assert_eq!((frames[0].header.corr_id, frames[0].header.code), (66, 429));
}

#[test]
fn an_idle_session_gets_goaway_idle_once_nothing_is_owed() {
    let mut w = Wire::greeted(cfg());
    w.get(2);
    assert_eq!(w.input(), None);
    w.now_ms = 60_001;
    assert_eq!(w.after_flush(None), Turn::Read, "a request is still owed");
    w.core.queue_transmit(not_found(2), w.now(), &w.host);
    assert_eq!(w.frames()[0].header.code, 404);
    assert_eq!(w.after_flush(None), Turn::Read, "a frame was just sent");
    w.now_ms = 120_002;
    let Turn::End(ending) = w.after_flush(None) else {
        panic!("idle past the timeout")
    };
    assert_eq!(ending.end, End::Idle);
    let g = goaway(&w.frames()[0]);
    assert_eq!((g.reason.as_str(), g.last_corr_id), ("idle", 2));
}

#[test]
fn a_drain_answers_what_was_accepted_and_refuses_what_comes_after() {
    let mut w = Wire::greeted(cfg());
    w.get(2);
    w.get(3);
    assert_eq!(w.input(), None);
    let deadline = Some(10_000);
    assert_eq!(w.after_flush(deadline), Turn::Again);
    let g = goaway(&w.frames()[0]);
    assert_eq!((g.reason.as_str(), g.last_corr_id), ("draining", 3));
    w.get(4);
    assert_eq!(w.input(), None);
    let f = &w.frames()[0];
    assert_eq!((f.header.corr_id, f.header.code), (4, 503));
    assert_eq!(reason(f), "not_ready");
    assert_eq!(w.after_flush(deadline), Turn::Read, "2 and 3 are owed");
    for corr in [2, 3] {
        w.core.queue_transmit(not_found(corr), w.now(), &w.host);
    }
    assert_eq!(w.frames().len(), 2);
    assert_eq!(
        w.after_flush(deadline),
        Turn::End(Ending {
            end: End::Drained,
            close_notify: true
        })
    );
    assert_eq!(w.host.stats.borrow().counters().drain_cut(), 0);
}

#[test]
fn a_drain_cuts_at_its_deadline_and_counts_it() {
    let mut w = Wire::greeted(cfg());
    w.get(2);
    assert_eq!(w.input(), None);
    assert_eq!(w.after_flush(Some(500)), Turn::Again);
    w.frames();
    w.now_ms = 500;
    assert_eq!(
        w.after_flush(Some(500)),
        Turn::End(Ending {
            end: End::Drained,
            close_notify: false
        })
    );
    assert_eq!(w.host.stats.borrow().counters().drain_cut(), 1);
}

#[test]
fn a_request_stalled_mid_frame_past_the_read_timeout_is_408() {
    let mut w = Wire::greeted(cfg());
    w.get(2);
    let whole = w.rbuf.split();
    w.rbuf.extend_from_slice(&whole[..whole.len() - 3]);
    assert_eq!(w.input(), None);
    w.now_ms = 5_000;
    assert_eq!(w.input(), None, "exactly the timeout is still in time");
    w.now_ms = 5_001;
    let ending = w.input().expect("past the read timeout");
    assert_eq!(ending.end, End::Rejected(Reason::SlowClient));
    let f = &w.frames()[0];
    assert_eq!((f.header.corr_id, f.header.code), (2, 408));
}

#[test]
fn input_ending_inside_a_frame_is_truncated() {
    let mut w = Wire::greeted(cfg());
    w.ping(2);
    let whole = w.rbuf.split();
    w.rbuf.extend_from_slice(&whole[..5]);
    assert_eq!(w.input(), None);
    w.core.handle_eof();
    let Turn::End(ending) = w.after_flush(None) else {
        panic!("the input ended")
    };
    assert_eq!(ending.end, End::Rejected(Reason::Truncated));
    assert_eq!(goaway(&w.frames()[0]).reason, "truncated");
}

#[test]
fn gossip_requests_are_answered_ok() {
    let mut w = Wire::greeted(cfg());
    let mut payload = Vec::new();
    let subscribe = Subscribe { topic: "t".into() };
    GossipRequest::Subscribe(subscribe).encode(&mut payload);
    w.put(&OutFrame::request(APP_GOSSIP, 2, &payload));
    assert_eq!(w.input(), None);
    let f = &w.frames()[0];
    assert_eq!((f.header.app_proto_id, f.header.code), (APP_GOSSIP, 200));
}

#[test]
fn the_same_inputs_give_the_same_bytes() {
    let run = || {
        let mut w = Wire::greeted(SessionCfg {
            max_rps: 3,
            burst: 2,
            ..cfg()
        });
        let mut out = Vec::new();
        for corr in 2..40 {
            w.ping(corr);
            w.now_ms += 97;
            assert_eq!(w.input(), None);
            let (bytes, _) = w.core.output();
            out.extend_from_slice(bytes);
            w.core.written(w.now(), &w.host);
        }
        out
    };
    assert_eq!(run(), run());
}

#[test]
fn a_request_s_latency_runs_from_its_acceptance_to_the_write_of_its_answer() {
    let mut w = Wire::greeted(cfg());
    let before = w.host.stats.borrow().latency(App::Objects).count();
    w.now_ms = 1_000;
    w.get(2);
    assert_eq!(w.input(), None);
    w.now_ms = 1_250;
    w.core.queue_transmit(not_found(2), w.now(), &w.host);
    w.now_ms = 1_500;
    assert_eq!(w.frames().len(), 1, "written at 1,500 ms");
    let stats = w.host.stats.borrow();
    assert_eq!(stats.latency(App::Objects).count(), before + 1);
    assert_eq!(
        stats.latency(App::Objects).quantile_us(1.0) / 1000,
        500,
        "500 ms, to the write"
    );
}
