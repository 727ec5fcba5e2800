//! Plane tests: store limits, sessions and bounds, an asynchronous store.

use bytes::Bytes;
use ronode_proto::flags::Flags;
use ronode_proto::frame::OutFrame;
use ronode_proto::id::ObjectAddr;
use ronode_proto::msg::objects::{Get, Head, ObjectRequest};
use ronode_proto::msg::APP_OBJECTS;
use ronode_proto::reason::Reason;

use super::*;

// ---------------------------------------------------------------------------------------------
// Store limits

#[test]
fn full_store_evicts_the_least_recently_used_object() {
    let mut n = Node::new(config(), 700 * 1024);
    n.connect(S1);
    let (a, b, c) = (
        body(300 * 1024, 1),
        body(300 * 1024, 2),
        body(300 * 1024, 3),
    );
    n.put(S1, 1, &a).put();
    n.put(S1, 2, &b).put();
    // Reading `a` makes `b` the least recently used.
    assert_eq!(n.get(S1, 3, ObjectAddr::of(&a)).body(), a);
    assert!(n.put(S1, 4, &c).put().stored);
    assert_eq!(n.get(S1, 5, ObjectAddr::of(&b)).reason(), Reason::NotFound);
    assert_eq!(n.get(S1, 6, ObjectAddr::of(&a)).body(), a);
    assert_eq!(n.get(S1, 7, ObjectAddr::of(&c)).body(), c);
    assert_eq!(n.store.stats().evictions, 1);
    assert!(n.store.used_bytes() <= n.store.capacity_bytes());

    // An object larger than the store: 507 at the START frame.
    let big = body(701 * 1024, 4);
    n.start_put(S1, 8, ObjectAddr::of(&big), big.len() as u64, &put_cap());
    let got = n.take(S1, 8);
    assert_eq!((got.code(), got.reason()), (507, Reason::StoreFull));
    assert_eq!(
        got.error().message,
        "an object of 717824 bytes is larger than the store (716800 bytes)"
    );
    assert_eq!(n.plane.counters().refused(Reason::StoreFull), 1);
    assert_eq!(n.plane.inflight_put_bytes(), 0);
}

#[test]
fn reservations_in_progress_make_the_store_full() {
    let mut n = Node::new(config(), 500 * 1024);
    n.connect(S1);
    let (a, b) = (body(300 * 1024, 1), body(300 * 1024, 2));
    n.start_put(S1, 1, ObjectAddr::of(&a), a.len() as u64, &put_cap());
    n.start_put(S1, 2, ObjectAddr::of(&b), b.len() as u64, &put_cap());
    let got = n.take(S1, 2);
    assert_eq!(got.reason(), Reason::StoreFull);
    for (i, part) in a.chunks(CLIENT_FRAME).enumerate() {
        n.put_frame(S1, 1, part, (i + 1) * CLIENT_FRAME >= a.len());
    }
    assert!(n.take(S1, 1).put().stored);
}

#[test]
fn an_object_evicted_while_streaming_is_still_served_whole() {
    // The GET holds the stored `Bytes`: eviction drops the store's reference only.
    let mut n = Node::new(config(), 4 << 20);
    n.connect(S1);
    let (a, b) = (body(3 << 20, 1), body(3 << 20, 2));
    n.put(S1, 1, &a).put();
    n.auto_pump = false;
    n.request(
        S1,
        2,
        ObjectRequest::Get(Get::whole(ObjectAddr::of(&a))),
        &[],
    );
    for _ in 0..3 {
        assert!(n.pump_one());
    }
    n.auto_pump = true;
    // The PUT's answer comes first; the stream goes on after it.
    assert!(n.put(S1, 3, &b).put().stored);
    assert!(!n.store.contains(&ObjectAddr::of(&a)));
    assert_eq!(n.store.stats().evictions, 1);
    n.pump();
    let got = n.take(S1, 2);
    assert_eq!(got.body(), a);
    assert_eq!(got.frames.len(), 48);
    assert_eq!(n.get(S1, 4, ObjectAddr::of(&a)).reason(), Reason::NotFound);
}

// ---------------------------------------------------------------------------------------------
// Sessions and bounds

#[test]
fn a_closed_session_drops_its_uploads() {
    let mut n = Node::default_node();
    n.connect(S1);
    n.connect(S2);
    let data = body(300 * 1024, 8);
    n.start_put(S1, 1, ObjectAddr::of(&data), data.len() as u64, &put_cap());
    n.put_frame(S1, 1, &data[..CLIENT_FRAME], false);
    assert_eq!(n.plane.puts_in_progress(), 1);
    assert_eq!(n.plane.inflight_put_bytes(), data.len() as u64);
    assert_eq!(n.store.reserved_bytes(), data.len() as u64);
    n.close(S1);
    assert_eq!(n.plane.puts_in_progress(), 0);
    assert_eq!(n.plane.inflight_put_bytes(), 0);
    assert_eq!(n.store.reserved_bytes(), 0);
    assert!(n.store.is_empty());
    assert_eq!(n.plane.poll_timeout(), None);
    // Another session is served, the same object included.
    assert!(n.put(S2, 1, &data).put().stored);
}

#[test]
fn busy_when_the_in_progress_budget_is_spent() {
    let mut n = Node::new(
        ObjectsConfig {
            max_bytes: 1 << 20,
            max_inflight_put_bytes: 3 << 19,
            ..config()
        },
        64 << 20,
    );
    n.connect(S1);
    n.connect(S2);
    let (a, b) = (body(1 << 20, 1), body(1 << 20, 2));
    n.start_put(S1, 1, ObjectAddr::of(&a), a.len() as u64, &put_cap());
    n.start_put(S2, 1, ObjectAddr::of(&b), b.len() as u64, &put_cap());
    let got = n.take(S2, 1);
    assert_eq!((got.code(), got.reason()), (503, Reason::Busy));
    let e = got.error();
    assert_eq!(e.retry_after_ms, Some(250));
    assert!(e.retryable);
    // Small uploads still fit.
    assert!(n.put(S2, 2, &b[..1000]).put().stored);
    for (i, part) in a.chunks(CLIENT_FRAME).enumerate() {
        n.put_frame(S1, 1, part, (i + 1) * CLIENT_FRAME >= a.len());
    }
    assert!(n.take(S1, 1).put().stored);
    assert!(n.put(S2, 3, &b).put().stored);
    assert_eq!(n.plane.counters().refused(Reason::Busy), 1);
}

#[test]
fn uploads_per_session_and_per_shard_are_bounded() {
    let mut n = Node::new(
        ObjectsConfig {
            max_puts_per_session: 2,
            max_puts: 3,
            ..config()
        },
        64 << 20,
    );
    n.connect(S1);
    n.connect(S2);
    for corr in 1..=3 {
        let data = body(10, corr as u8);
        n.start_put(S1, corr, ObjectAddr::of(&data), 10, &put_cap());
    }
    let got = n.take(S1, 3);
    assert_eq!((got.code(), got.reason()), (429, Reason::Quota));
    assert_eq!(got.error().retry_after_ms, Some(250));
    for corr in 1..=2 {
        let data = body(10, 100 + corr as u8);
        n.start_put(S2, corr, ObjectAddr::of(&data), 10, &put_cap());
    }
    assert!(!n.answered(S2, 1));
    assert_eq!(n.take(S2, 2).reason(), Reason::Busy);
    assert_eq!(n.plane.puts_in_progress(), 3);
}

#[test]
fn interleaved_uploads_of_one_session_are_independent() {
    let mut n = Node::default_node();
    n.connect(S1);
    let (a, b) = (body(250_000, 1), body(250_000, 2));
    n.start_put(S1, 1, ObjectAddr::of(&a), a.len() as u64, &put_cap());
    n.start_put(S1, 2, ObjectAddr::of(&b), b.len() as u64, &put_cap());
    let wrong = ObjectAddr::of(b"not b");
    n.start_put(S1, 3, wrong, b.len() as u64, &put_cap());
    for (i, (pa, pb)) in a
        .chunks(CLIENT_FRAME)
        .zip(b.chunks(CLIENT_FRAME))
        .enumerate()
    {
        let last = (i + 1) * CLIENT_FRAME >= a.len();
        n.put_frame(S1, 2, pb, last);
        n.put_frame(S1, 3, pb, last);
        n.put_frame(S1, 1, pa, last);
    }
    assert!(n.take(S1, 1).put().stored);
    assert!(n.take(S1, 2).put().stored);
    assert_eq!(n.take(S1, 3).reason(), Reason::BadDigest);
    assert_eq!(n.get(S1, 4, ObjectAddr::of(&a)).body(), a);
}

#[test]
fn slow_uploads_time_out() {
    let mut n = Node::default_node();
    n.connect(S1);
    let data = body(1000, 1);
    n.start_put(S1, 1, ObjectAddr::of(&data), 1000, &put_cap());
    n.put_frame(S1, 1, &data[..10], false);
    let deadline = NOW + DEFAULT_PUT_TIMEOUT_S;
    assert_eq!(n.plane.poll_timeout(), Some(deadline));
    n.plane.handle_timeout(deadline - 1);
    n.pump();
    assert!(!n.answered(S1, 1));
    n.plane.handle_timeout(deadline);
    n.pump();
    let got = n.take(S1, 1);
    assert_eq!((got.code(), got.reason()), (408, Reason::SlowClient));
    assert_eq!(n.store.reserved_bytes(), 0);
    assert_eq!(n.plane.poll_timeout(), None);
    n.put_frame(S1, 1, &data[10..], true);
    assert!(!n.answered(S1, 1));
}

#[test]
fn a_blocked_session_waits_while_others_are_served() {
    let mut n = Node::default_node();
    n.connect(S1);
    n.connect(S2);
    let data = body(300 * 1024, 1);
    n.put(S1, 1, &data).put();
    n.plane.set_session_blocked(S1, true);
    n.request(
        S1,
        2,
        ObjectRequest::Get(Get::whole(ObjectAddr::of(&data))),
        &[],
    );
    assert!(!n.answered(S1, 2));
    assert_eq!(n.get(S2, 1, ObjectAddr::of(&data)).body(), data);
    n.plane.set_session_blocked(S1, false);
    n.pump();
    assert_eq!(n.take(S1, 2).body(), data);
}

#[test]
fn body_frames_follow_the_negotiated_max_frame() {
    let mut n = Node::default_node();
    n.connect(S1);
    n.plane.set_session_max_frame(S1, 4096);
    let data = body(300 * 1024, 1);
    n.put(S1, 1, &data).put();
    let got = n.get(S1, 2, ObjectAddr::of(&data));
    assert_eq!(got.body(), data);
    assert!(got.raw.iter().all(|r| r.len() <= 4096));
    assert_eq!(got.frames.len(), data.len().div_ceil(4096 - 38));
}

#[test]
fn get_and_head_must_be_one_frame_messages() {
    let mut n = Node::default_node();
    n.connect(S1);
    let mut payload = Vec::new();
    ObjectRequest::Head(Head {
        addr: ObjectAddr::of(b"x"),
    })
    .encode(&mut payload);
    n.send(
        S1,
        &OutFrame {
            flags: Flags::REQ | Flags::START,
            code: 0,
            app_proto_id: APP_OBJECTS,
            tenant_id: 0,
            corr_id: 1,
            cap: &[],
            payload: &payload,
        },
    );
    assert_eq!(n.take(S1, 1).reason(), Reason::Malformed);
    n.put_frame(S1, 1, b"trailing", true);
    assert!(!n.answered(S1, 1));
}

// ---------------------------------------------------------------------------------------------
// An asynchronous store (the disk store's shape)

#[test]
fn completions_may_arrive_after_later_frames() {
    let mut n = Node::default_node();
    n.sync_store = false;
    n.connect(S1);
    let data = body(300 * 1024, 1);
    let addr = ObjectAddr::of(&data);
    n.start_put(S1, 1, addr, data.len() as u64, &put_cap());
    for (i, part) in data.chunks(CLIENT_FRAME).enumerate() {
        n.put_frame(S1, 1, part, (i + 1) * CLIENT_FRAME >= data.len());
    }
    // Only BeginPut was emitted: the commit waits for it.
    assert!(matches!(n.held.as_slice(), [StoreOp::BeginPut { .. }]));
    assert!(!n.answered(S1, 1));
    let begin = n.held.remove(0);
    n.execute(begin);
    n.run_ops();
    assert!(matches!(
        n.held.as_slice(),
        [StoreOp::CommitPut { body: Some(_), .. }]
    ));
    let commit = n.held.remove(0);
    n.execute(commit);
    n.pump();
    assert!(n.take(S1, 1).put().stored);

    // A duplicate found out after the whole body arrived: committed without a body.
    n.start_put(S1, 2, addr, data.len() as u64, &put_cap());
    for (i, part) in data.chunks(CLIENT_FRAME).enumerate() {
        n.put_frame(S1, 2, part, (i + 1) * CLIENT_FRAME >= data.len());
    }
    let begin = n.held.remove(0);
    n.execute(begin);
    n.run_ops();
    assert!(matches!(
        n.held.as_slice(),
        [StoreOp::CommitPut { body: None, .. }]
    ));
    assert_eq!(n.plane.inflight_put_bytes(), 0);
    let commit = n.held.remove(0);
    n.execute(commit);
    n.pump();
    assert!(!n.take(S1, 2).put().stored);
}

#[test]
fn a_session_closed_during_store_work_leaves_nothing_behind() {
    let mut n = Node::default_node();
    n.sync_store = false;
    n.connect(S1);
    let (a, b) = (body(1000, 1), body(1000, 2));
    // Upload 1 is still beginning; upload 2 is committing.
    n.start_put(S1, 1, ObjectAddr::of(&a), 1000, &put_cap());
    n.start_put(S1, 2, ObjectAddr::of(&b), 1000, &put_cap());
    n.put_frame(S1, 2, &b, true);
    let begin2 = n.held.remove(1);
    n.execute(begin2);
    n.run_ops();
    assert!(matches!(n.held[1], StoreOp::CommitPut { .. }));
    n.close(S1);
    // The first upload's BeginPut is followed by its AbortPut.
    assert!(matches!(
        n.held.as_slice(),
        [
            StoreOp::BeginPut { .. },
            StoreOp::CommitPut { .. },
            StoreOp::AbortPut { .. }
        ]
    ));
    assert_eq!(n.plane.puts_in_progress(), 1);
    for op in std::mem::take(&mut n.held) {
        n.execute(op);
    }
    assert_eq!(n.plane.puts_in_progress(), 0);
    assert_eq!(n.plane.inflight_put_bytes(), 0);
    assert_eq!(n.store.reserved_bytes(), 0);
    // The committing upload was stored, unanswered; the other left nothing.
    assert!(n.store.contains(&ObjectAddr::of(&b)));
    assert!(!n.store.contains(&ObjectAddr::of(&a)));
}

#[test]
fn windowed_reads_and_a_failure_mid_stream() {
    let mut n = Node::default_node();
    n.connect(S1);
    let data = body(3 << 20, 1);
    n.put(S1, 1, &data).put();
    // A store answering two frames' worth per read.
    n.read_window = Some(2);
    let got = n.get(S1, 2, ObjectAddr::of(&data));
    assert_eq!(got.body(), data);
    assert_eq!(got.frames.len(), 48);
    let got = n.get_with(S1, 3, ObjectAddr::of(&data), Some((1, 1_000_000)), &[]);
    assert_eq!(got.body(), &data[1..1_000_000]);

    // The third read fails: the open stream ends with the error.
    n.reads_before_failure = Some(2);
    let got = n.get(S1, 4, ObjectAddr::of(&data));
    assert_eq!(got.frames.len(), 5);
    let flags = got.flags();
    assert_eq!(flags[0], Flags::RESP | Flags::START);
    assert_eq!(flags[4], Flags::RESP | Flags::END);
    assert_eq!(got.frames[0].header.code, 200);
    assert_eq!((got.code(), got.reason()), (500, Reason::Internal));
    assert_eq!(got.error().message, "store I/O failed: injected");
    // Before anything was sent, a failure is one whole error frame.
    n.reads_before_failure = Some(0);
    let got = n.get(S1, 5, ObjectAddr::of(&data));
    assert_eq!(got.flags(), vec![Flags::RESP]);
    assert_eq!(got.reason(), Reason::Internal);
    assert_eq!(n.plane.reads_in_progress(), 0);
}

#[test]
fn a_store_that_cannot_queue_answers_busy() {
    let mut n = Node::default_node();
    n.sync_store = false;
    n.connect(S1);
    n.request(
        S1,
        1,
        ObjectRequest::Get(Get::whole(ObjectAddr::of(b"x"))),
        &[],
    );
    n.request(
        S1,
        2,
        ObjectRequest::Head(Head {
            addr: ObjectAddr::of(b"x"),
        }),
        &[],
    );
    n.start_put(S1, 3, ObjectAddr::of(b"x"), 1, &put_cap());
    for op in std::mem::take(&mut n.held) {
        let done = StoreDone::busy(&op, BusyCause::Mesh).expect("not an abort");
        assert_eq!(done.id(), op.id());
        n.plane.handle_store_done(done);
    }
    n.pump();
    for corr in 1..=3 {
        let got = n.take(S1, corr);
        assert_eq!((got.code(), got.reason()), (503, Reason::Busy));
    }
    assert_eq!(n.plane.puts_in_progress() + n.plane.reads_in_progress(), 0);
}

#[test]
fn frames_of_other_apps_are_ignored() {
    let mut n = Node::default_node();
    n.connect(S1);
    let peer = n.peers.get_mut(&S1).unwrap();
    let ping = Control::Ping(1).to_vec();
    let rx = Node::through(
        &mut peer.client_in,
        &mut peer.client_enc,
        &mut peer.node_in,
        &OutFrame::request(APP_CONTROL, 9, &ping),
    );
    n.plane.handle_frame(S1, rx, NOW);
    assert_eq!(n.plane.poll_transmit(), None);
    assert_eq!(n.plane.counters().ignored_frames, 1);
}

#[test]
fn runs_are_deterministic() {
    fn run() -> (Vec<Vec<u8>>, ObjectsCounters) {
        let mut n = Node::new(config(), 1 << 20);
        n.connect(S1);
        n.connect(S2);
        let mut raw = Vec::new();
        for i in 0..6u64 {
            let data = body(200_000 + i as usize, i as u8);
            let s = if i % 2 == 0 { S1 } else { S2 };
            raw.extend(n.put(s, i + 1, &data).raw);
            raw.extend(n.get(s, i + 100, ObjectAddr::of(&data)).raw);
        }
        for i in 0..6u64 {
            let data = body(200_000 + i as usize, i as u8);
            raw.extend(n.get(S1, i + 200, ObjectAddr::of(&data)).raw);
        }
        (raw, n.plane.counters().clone())
    }
    assert_eq!(run(), run());
}

#[test]
fn transmits_carry_no_capability_and_echo_the_tenant() {
    let t = Transmit {
        session: S1,
        app_proto_id: APP_OBJECTS,
        flags: Flags::RESP,
        code: 200,
        tenant_id: 0xaa,
        corr_id: 3,
        payload: Bytes::from_static(b"x"),
    };
    let h = t.header();
    assert_eq!((h.len, h.cap_len, h.app_proto_id), (39, 0, APP_OBJECTS));
    assert_eq!(h.tenant_id, 0xaa);
}
