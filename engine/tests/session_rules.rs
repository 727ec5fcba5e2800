//! The session rules of PROTOCOL.md sections 1-3 on a running node, as a raw client meets them:
//! timeouts that count whole frames, a bound on refused requests, the 65th request in flight,
//! a request stream abandoned after an early answer, a HELLO below the frame floor, and input
//! that ends inside a frame.

mod common;
mod wire;

use common::{eventually, metric_sum, scratch, Node};
use ronode_proto::control::Control;
use ronode_proto::frame::OutFrame;
use ronode_proto::msg::objects::{Get, ObjectRequest, Put};
use ronode_proto::msg::APP_OBJECTS;
use ronode_proto::{Flags, ObjectAddr};
use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;
use wire::{control, goaway, hello, reason, Next, Raw};

fn node_with(name: &str, env: &[(&str, &str)]) -> (Node, std::path::PathBuf) {
    let dir = scratch(name);
    let mut cmd = common::local_command(&dir, &[]);
    for (k, v) in env {
        cmd.env(k, v);
    }
    (common::start_with(cmd), dir)
}

/// A raw session after HELLO and its 200.
fn greeted(node: &Node) -> Raw {
    let mut raw = Raw::connect(node);
    let mut out = Vec::new();
    raw.frame(&control(1, &hello(None)), &mut out);
    raw.send(&out);
    let f = raw.frame_or_panic("the HELLO reply");
    assert_eq!((f.header.corr_id, f.header.code), (1, 200));
    raw
}

fn rejected(node: &Node, label: &str) -> f64 {
    metric_sum(node.admin, &format!("rejected_total{{reason=\"{label}\""))
}

#[test]
fn a_session_dribbling_bytes_of_a_record_is_closed_by_the_idle_timeout() {
    let (node, dir) = node_with("dribble", &[("RONODE_SESSION__IDLE_TIMEOUT_MS", "5000")]);
    let mut raw = greeted(&node);
    // The header of a 16 KiB TLS record, then one byte of it every 200 ms: never a frame.
    let mut tcp = raw.s.sock.try_clone().unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let dribbler = {
        let stop = stop.clone();
        std::thread::spawn(move || {
            if tcp.write_all(&[0x17, 0x03, 0x03, 0x40, 0x00]).is_err() {
                return;
            }
            while !stop.load(Ordering::Relaxed) {
                if tcp.write_all(&[0x42]).is_err() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(200));
            }
        })
    };
    raw.s
        .sock
        .set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    let f = raw.frame_or_panic("closing the dribbling session (idle timeout 5 s)");
    let g = goaway(&f).unwrap_or_else(|| panic!("expected GOAWAY idle, got {:?}", f.header));
    assert_eq!(g.reason, "idle");
    assert!(matches!(raw.next(), Next::Closed), "closed after GOAWAY");
    stop.store(true, Ordering::Relaxed);
    dribbler.join().unwrap();
    drop(node);
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn a_request_flood_is_closed_after_the_bound_on_refused_requests() {
    // One request a second: past the HELLO, nearly every GET is answered 429 (one a second
    // may find a token and be answered 404: not a refusal).
    let (node, dir) = node_with(
        "hello-flood",
        &[
            ("RONODE_SESSION__MAX_RPS", "1"),
            ("RONODE_SESSION__BURST", "1"),
        ],
    );
    let mut raw = greeted(&node);
    let (mut refused, mut closed_by) = (0u32, None);
    let mut corr = 2u64;
    let mut get = Vec::new();
    ObjectRequest::Get(Get::whole(ObjectAddr::of(b"never stored"))).encode(&mut get);
    // Lockstep rounds of 64 (a window of requests in flight) so neither side's buffers fill.
    'rounds: for _ in 0..64 {
        let mut out = Vec::new();
        for _ in 0..64 {
            raw.frame(&OutFrame::request(APP_OBJECTS, corr, &get), &mut out);
            corr += 1;
        }
        raw.send(&out);
        for _ in 0..64 {
            match raw.next() {
                Next::Frame(f) if f.header.code == 429 => refused += 1,
                Next::Frame(f) if f.header.code == 404 => {}
                Next::Frame(f) => {
                    closed_by = Some(goaway(&f).unwrap_or_else(|| {
                        panic!("expected 429, 404 or GOAWAY, got {:?}", f.header)
                    }));
                    break 'rounds;
                }
                Next::Closed => panic!("closed without a GOAWAY after {refused} refusals"),
            }
        }
    }
    let g = closed_by.unwrap_or_else(|| panic!("still open after {refused} GETs were refused 429"));
    assert_eq!(g.reason, "quota", "{g:?}");
    assert!(
        (1024..=1024 + 64).contains(&refused),
        "closed after {refused} refusals, the bound is 1024"
    );
    assert!(matches!(raw.next(), Next::Closed), "closed after GOAWAY");
    eventually(
        "the closed session is counted in sessions_shed_total",
        || metric_sum(node.admin, "sessions_shed_total") >= 1.0,
    );
    // Another session is served: its HELLO (the one request its budget allows) is answered.
    drop(common::client(&node));
    drop(node);
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn the_65th_request_in_flight_is_refused_alone_and_the_64_are_answered() {
    let (node, dir) = node_with("inflight65", &[]);
    let mut good = common::client(&node);
    let addr = good
        .put(&[5u8; 1000], Some(&common::mint(&dir, "put")))
        .unwrap()
        .addr;
    let mut raw = Raw::connect(&node);
    // HELLO and 65 GETs in one write (one TLS record): all 65 are in flight at once.
    let mut get = Vec::new();
    ObjectRequest::Get(Get::whole(addr)).encode(&mut get);
    let mut out = Vec::new();
    raw.frame(&control(1, &hello(None)), &mut out);
    for corr in 2..=66 {
        raw.frame(&OutFrame::request(APP_OBJECTS, corr, &get), &mut out);
    }
    raw.send(&out);
    let mut codes = std::collections::BTreeMap::new();
    while codes.len() < 66 {
        let f = raw.frame_or_panic(&format!("answering all 66 requests ({codes:?})"));
        if f.header.code == 429 {
            assert_eq!(reason(&f), "quota");
        }
        codes.insert(f.header.corr_id, f.header.code);
    }
    let refused: Vec<u64> = codes
        .iter()
        .filter(|(_, &c)| c == 429)
        .map(|(&k, _)| k)
        .collect();
    assert_eq!(
        refused,
        vec![66],
        "the 65th GET alone is refused: {codes:?}"
    );
    assert_eq!(codes.values().filter(|&&c| c == 200).count(), 65);
    // The session goes on.
    let mut out = Vec::new();
    raw.frame(&control(67, &Control::Ping(9).to_vec()), &mut out);
    raw.send(&out);
    let f = raw.frame_or_panic("the PING after the refusal");
    assert_eq!(Control::parse(&f.payload), Ok(Control::Pong(9)));
    drop(node);
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn a_put_stream_abandoned_after_an_early_answer_is_not_timed_out() {
    let (node, dir) = node_with("abandoned", &[("RONODE_SESSION__READ_TIMEOUT_MS", "1000")]);
    let mut raw = greeted(&node);
    let body = [1u8; 100];
    let mut put = Vec::new();
    ObjectRequest::Put(Put {
        addr: ObjectAddr::of(&body),
        size: 100,
    })
    .encode(&mut put);
    // A PUT without a capability (401 on its START), with part of its body already sent.
    let mut out = Vec::new();
    let start = OutFrame {
        flags: Flags::REQ | Flags::START,
        ..OutFrame::request(APP_OBJECTS, 2, &put)
    };
    raw.frame(&start, &mut out);
    raw.frame(&OutFrame::request(APP_OBJECTS, 2, &body[..50]), &mut out);
    raw.send(&out);
    let f = raw.frame_or_panic("the early answer");
    assert_eq!((f.header.corr_id, f.header.code), (2, 401));
    // The client stops the stream (PROTOCOL.md 2.3). Well past the read timeout it is still
    // served: the node waits for nothing from it.
    std::thread::sleep(Duration::from_millis(2500));
    let mut out = Vec::new();
    raw.frame(&control(3, &Control::Ping(3).to_vec()), &mut out);
    raw.send(&out);
    let f = raw.frame_or_panic("the PING after the abandoned stream");
    assert_eq!(
        Control::parse(&f.payload),
        Ok(Control::Pong(3)),
        "got {:?} {:?}",
        f.header,
        goaway(&f)
    );
    assert_eq!(rejected(&node, "slow_client"), 0.0);
    drop(node);
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn a_hello_below_the_frame_floor_is_refused_and_the_session_closed() {
    let (node, dir) = node_with("hello-floor", &[]);
    let mut raw = Raw::connect(&node);
    let mut out = Vec::new();
    raw.frame(&control(1, &hello(Some(1024))), &mut out);
    raw.frame(&control(2, &Control::Ping(2).to_vec()), &mut out);
    raw.send(&out);
    let f = raw.frame_or_panic("the answer to the HELLO");
    assert_eq!((f.header.corr_id, f.header.code), (1, 400));
    assert_eq!(reason(&f), "malformed");
    match raw.next() {
        Next::Closed => {}
        Next::Frame(f) => panic!(
            "every reject closes (2.4), but the node sent {:?} {:?}",
            f.header,
            Control::parse(&f.payload)
        ),
    }
    eventually("malformed is counted", || {
        rejected(&node, "malformed") >= 1.0
    });
    // At the floor itself the session is served.
    let mut raw = Raw::connect(&node);
    let mut out = Vec::new();
    raw.frame(&control(1, &hello(Some(4096))), &mut out);
    raw.send(&out);
    let f = raw.frame_or_panic("the HELLO reply at the floor");
    assert_eq!(f.header.code, 200);
    match Control::parse(&f.payload) {
        Ok(Control::HelloReply(r)) => assert_eq!(r.max_frame, 4096),
        other => panic!("expected a HELLO reply, got {other:?}"),
    }
    drop(node);
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn input_ending_inside_a_frame_then_close_notify_is_truncated_at_once() {
    // A read timeout longer than the test waits: only `truncated` can explain the answer.
    let (node, dir) = node_with("truncated", &[("RONODE_SESSION__READ_TIMEOUT_MS", "60000")]);
    let mut raw = greeted(&node);
    // A PING whose header announces 100 payload bytes, of which 10 come; then close_notify.
    let mut out = Vec::new();
    raw.frame(&control(2, &[b' '; 100]), &mut out);
    out.truncate(out.len() - 90);
    raw.send(&out);
    raw.s.conn.send_close_notify();
    raw.s.flush().unwrap();
    raw.s
        .sock
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let f = raw.frame_or_panic("the farewell");
    let g = goaway(&f).unwrap_or_else(|| panic!("expected GOAWAY truncated, got {:?}", f.header));
    assert_eq!(g.reason, "truncated");
    assert!(matches!(raw.next(), Next::Closed));
    eventually("truncated is counted", || {
        rejected(&node, "truncated") >= 1.0
    });
    assert_eq!(rejected(&node, "slow_client"), 0.0);
    drop(node);
    let _ = std::fs::remove_dir_all(dir);
}
