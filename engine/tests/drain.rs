//! SIGTERM drains (PROTOCOL.md 3.3): every session gets GOAWAY, every request the node accepted
//! before it is answered whole (uploads still sending their body included), then the node
//! closes the sessions and exits 0.

mod common;
mod wire;

use common::{scratch, Node};
use ronode_proto::frame::OutFrame;
use ronode_proto::msg::objects::{Get, ObjectRequest, Put};
use ronode_proto::msg::APP_OBJECTS;
use ronode_proto::{Flags, ObjectAddr};
use std::sync::mpsc;
use std::time::{Duration, Instant};
use wire::{control, goaway, hello, Next, Raw};

const SESSIONS: usize = 8;
/// The streamed object: more than loopback sockets buffer, so no GET can be over before the
/// signal while its client does not read.
const BIG: usize = 4 << 20;
/// Each session's upload: half sent before the signal, half after the GOAWAY.
const HALF: usize = 32 * 1024;

/// What one session saw from the signal to the node's close.
struct Seen {
    goaway_last_corr: Option<u64>,
    get_bytes: Vec<u8>,
    get_code: u16,
    get_ended: bool,
    put_code: Option<u16>,
}

fn session(
    node: &Node,
    big: ObjectAddr,
    cap: &[u8],
    seed: u64,
    ready: mpsc::Sender<()>,
    go: mpsc::Receiver<()>,
) -> Seen {
    let mut raw = Raw::connect(node);
    let body = common::bytes(2 * HALF, seed);
    let mut put = Vec::new();
    ObjectRequest::Put(Put {
        addr: ObjectAddr::of(&body),
        size: body.len() as u64,
    })
    .encode(&mut put);
    let mut get = Vec::new();
    ObjectRequest::Get(Get::whole(big)).encode(&mut get);
    // HELLO, the PUT's START and first half, then the GET: once the GET's first frame is back,
    // the node has accepted both requests.
    let mut out = Vec::new();
    raw.frame(&control(1, &hello(None)), &mut out);
    let start = OutFrame {
        flags: Flags::REQ | Flags::START,
        cap,
        ..OutFrame::request(APP_OBJECTS, 2, &put)
    };
    raw.frame(&start, &mut out);
    raw.frame(&OutFrame::request(APP_OBJECTS, 2, &body[..HALF]), &mut out);
    raw.frame(&OutFrame::request(APP_OBJECTS, 3, &get), &mut out);
    raw.send(&out);
    let mut seen = Seen {
        goaway_last_corr: None,
        get_bytes: Vec::new(),
        get_code: 0,
        get_ended: false,
        put_code: None,
    };
    let take = |seen: &mut Seen, f: ronode_proto::frame::Frame| {
        if let Some(g) = goaway(&f) {
            assert_eq!(g.reason, "draining", "{g:?}");
            seen.goaway_last_corr = Some(g.last_corr_id);
        } else if f.header.corr_id == 3 {
            seen.get_code = f.header.code;
            seen.get_bytes.extend_from_slice(&f.payload);
            seen.get_ended |= f.header.flags.contains(Flags::END);
        } else if f.header.corr_id == 2 {
            seen.put_code = Some(f.header.code);
        }
    };
    loop {
        let f = raw.frame_or_panic("the GET's first frame");
        let got_get = f.header.corr_id == 3;
        take(&mut seen, f);
        if got_get {
            break;
        }
    }
    ready.send(()).unwrap();
    go.recv().unwrap();
    // Read on (the GET streams meanwhile) until the GOAWAY, then finish the upload.
    while seen.goaway_last_corr.is_none() {
        match raw.next() {
            Next::Frame(f) => take(&mut seen, f),
            Next::Closed => return seen,
        }
    }
    let mut out = Vec::new();
    let end = OutFrame {
        flags: Flags::REQ | Flags::END,
        ..OutFrame::request(APP_OBJECTS, 2, &body[HALF..])
    };
    raw.frame(&end, &mut out);
    raw.send(&out);
    for f in raw.until_closed() {
        take(&mut seen, f);
    }
    seen
}

#[test]
fn sigterm_drains_every_session_answering_what_it_accepted() {
    let dir = scratch("drain");
    let mut cmd = common::local_command(&dir, &[]);
    // The clients do not read until the signal: the node's writes may wait that long.
    cmd.env("RONODE_DRAIN_TIMEOUT_MS", "25000")
        .env("RONODE_SESSION__WRITE_TIMEOUT_MS", "25000");
    let mut node = common::start_with(cmd);
    let big_body = common::bytes(BIG, 7);
    let cap = common::mint(&dir, "put");
    let big = common::client(&node)
        .put(&big_body, Some(&cap))
        .unwrap()
        .addr;

    let (ready_tx, ready_rx) = mpsc::channel();
    let mut gos = Vec::new();
    let seen: Vec<Seen> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..SESSIONS)
            .map(|i| {
                let (go_tx, go_rx) = mpsc::channel();
                gos.push(go_tx);
                let (node, cap, ready) = (&node, &cap, ready_tx.clone());
                scope.spawn(move || session(node, big, cap, i as u64 + 100, ready, go_rx))
            })
            .collect();
        for _ in 0..SESSIONS {
            ready_rx
                .recv_timeout(common::WAIT)
                .expect("every session has its requests accepted");
        }
        let killed = std::process::Command::new("kill")
            .args(["-TERM", &node.child.id().to_string()])
            .status()
            .unwrap();
        assert!(killed.success());
        for go in &gos {
            go.send(()).unwrap();
        }
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });

    let deadline = Instant::now() + common::WAIT;
    let status = loop {
        if let Some(status) = node.child.try_wait().unwrap() {
            break status;
        }
        assert!(
            Instant::now() < deadline,
            "the node did not exit after the drain"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    for (i, s) in seen.iter().enumerate() {
        let last = s
            .goaway_last_corr
            .unwrap_or_else(|| panic!("session {i} never got the GOAWAY"));
        assert!(
            last >= 3,
            "session {i}: last_corr_id {last} leaves out accepted requests"
        );
        assert_eq!(s.get_code, 200, "session {i}: the GET's status");
        assert!(
            s.get_ended && s.get_bytes.len() == BIG,
            "session {i}: the streaming GET was cut at {} of {BIG} bytes",
            s.get_bytes.len()
        );
        assert!(
            s.get_bytes == big_body,
            "session {i}: the GET's bytes differ"
        );
        assert_eq!(
            s.put_code,
            Some(200),
            "session {i}: the PUT was not answered 200"
        );
    }
    assert_eq!(status.code(), Some(0), "a drained node exits 0");
    let _ = std::fs::remove_dir_all(dir);
}
