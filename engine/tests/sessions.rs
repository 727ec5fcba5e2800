//! Session limits on a running node: a full work queue is answered 503 `busy` with
//! `retry_after_ms` while other sessions are served, and peer sessions (a client presenting a
//! node certificate) are handed to the shard that owns their NodeId.

mod common;

use common::{eventually, metric, metric_sum, raw_session, scratch, Node, WAIT};
use ronode_client::{Client, ClientError, ClientOptions};
use ronode_proto::control::{Control, Hello, APP_CONTROL};
use ronode_proto::frame::{FrameDecoder, FrameEncoder, OutFrame};
use ronode_proto::identity::{Identity, IdentitySeeds};
use ronode_proto::msg::objects::{Get, ObjectRequest};
use ronode_proto::msg::APP_OBJECTS;
use ronode_proto::ObjectAddr;
use ronode_shards::{shard_of, ShardId};
use std::io::{Read, Write};
use std::process::Command;

/// `ronode run` with one shard (so that one shard's work queue is what the sessions fill).
fn one_shard(dir: &std::path::Path) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_ronode"));
    cmd.args(["run", "--shards", "1", "--pin", "off"])
        .args(["--listen", "127.0.0.1:0", "--admin", "127.0.0.1:0"])
        .arg("--data-dir")
        .arg(dir)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    cmd
}

/// HELLO and then `count` pipelined GETs of `addr`, as one write.
fn hello_and_gets(addr: ObjectAddr, count: u64) -> Vec<u8> {
    let mut enc = FrameEncoder::new(1 << 20);
    let mut out = Vec::new();
    let hello = Control::Hello(Hello {
        ua: Some("greedy".into()),
        max_frame: None,
    })
    .to_vec();
    enc.encode(&OutFrame::request(APP_CONTROL, 1, &hello), &mut out)
        .unwrap();
    let mut get = Vec::new();
    ObjectRequest::Get(Get::whole(addr)).encode(&mut get);
    for corr_id in 2..2 + count {
        enc.encode(&OutFrame::request(APP_OBJECTS, corr_id, &get), &mut out)
            .unwrap();
    }
    out
}

#[test]
fn a_full_work_queue_gets_503_busy_while_others_are_served() {
    let dir = scratch("workq");
    let mut cmd = one_shard(&dir);
    // The smallest work queue; writes may wait long (the greedy sessions never read). A RAM
    // store, so that the only bound met is the work queue's (not the disk's I/O queue).
    cmd.env("RONODE_QUEUES__WORK", "256")
        .env("RONODE_STORE__KIND", "ram")
        .env("RONODE_SESSION__WRITE_TIMEOUT_MS", "60000");
    let node: Node = common::start_with(cmd);
    let opts = ClientOptions {
        timeout: WAIT,
        ..Default::default()
    };
    let mut good = Client::connect(node.listen, &opts).unwrap();
    // A 24 MiB object: more than loopback sockets buffer, so no greedy GET can complete and
    // free its place in the queue while the test looks.
    let body: Vec<u8> = (0..24u32 << 20)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8)
        .collect();
    let addr = good
        .put(&body, Some(&common::mint(&dir, "put")))
        .unwrap()
        .addr;

    // Five sessions ask for it 64 times each and read nothing: 320 GETs against a queue of 256.
    let greedy: Vec<_> = (0..5)
        .map(|_| {
            let mut s = raw_session(&node);
            s.write_all(&hello_and_gets(addr, 64)).unwrap();
            s.flush().unwrap();
            s
        })
        .collect();
    eventually("the shard's work queue fills and busy is counted", || {
        metric_sum(node.admin, "rejected_total{reason=\"busy\"") >= 1.0
    });
    let mut late = Client::connect(node.listen, &opts).unwrap();
    match late.get(&addr) {
        Err(ClientError::Node(e)) => {
            assert_eq!((e.status, e.label.as_str()), (503, "busy"), "{e}");
            assert!(e.retry_after_ms.is_some_and(|ms| ms > 0), "{e:?}");
        }
        other => panic!(
            "a GET past a full work queue must be 503 busy, got {:?}",
            other.map(|body| body.len())
        ),
    }
    good.ping().expect("another session is served throughout");
    // Once the greedy sessions go, their reads are released and GETs are served again.
    drop(greedy);
    let mut served = None;
    eventually("GETs are served again once the queue drains", || {
        served = late.get(&addr).ok();
        served.is_some()
    });
    assert_eq!(served.unwrap(), body);
    drop(node);
    let _ = std::fs::remove_dir_all(dir);
}

/// A node identity from a fixed seed, for a test peer.
fn identity(seed: u8) -> Identity {
    Identity::from_seeds(&IdentitySeeds {
        ed25519: [seed; 32],
        ml_dsa: [seed; 32],
    })
}

/// A session presenting `identity`'s node certificate, after HELLO and one PING answered.
fn peer_session(
    node: &Node,
    identity: &Identity,
) -> rustls::StreamOwned<rustls::ClientConnection, std::net::TcpStream> {
    use ronode_client::tls::{client_config, PqMode};
    let (cert, key) = ronode_proto::cert::node_certificate(identity).unwrap();
    let config = client_config(PqMode::Hybrid, None, Some((&cert, &key))).unwrap();
    let name = rustls::pki_types::ServerName::IpAddress(node.listen.ip().into());
    let conn = rustls::ClientConnection::new(config, name).unwrap();
    let tcp = std::net::TcpStream::connect(node.listen).unwrap();
    tcp.set_read_timeout(Some(WAIT)).unwrap();
    let mut s = rustls::StreamOwned::new(conn, tcp);
    let mut enc = FrameEncoder::new(1 << 20);
    let mut out = Vec::new();
    let hello = Control::Hello(Hello {
        ua: Some("peer".into()),
        max_frame: None,
    })
    .to_vec();
    enc.encode(&OutFrame::request(APP_CONTROL, 1, &hello), &mut out)
        .unwrap();
    let ping = Control::Ping(7).to_vec();
    enc.encode(&OutFrame::request(APP_CONTROL, 2, &ping), &mut out)
        .unwrap();
    s.write_all(&out).unwrap();
    s.flush().unwrap();
    // Both answers, the PONG last, on whichever shard serves the session now.
    let mut dec = FrameDecoder::new(1 << 20);
    let mut buf = bytes::BytesMut::new();
    let mut answered = 0;
    while answered < 2 {
        let mut chunk = [0u8; 4096];
        let n = s.read(&mut chunk).expect("the node answers the peer");
        assert!(n > 0, "the node closed a peer session");
        buf.extend_from_slice(&chunk[..n]);
        while let Some(f) = dec.decode(&mut buf).unwrap() {
            assert_eq!(f.header.code, 200);
            answered += 1;
            if f.header.corr_id == 2 {
                assert_eq!(Control::parse(&f.payload), Ok(Control::Pong(7)));
            }
        }
    }
    s
}

#[test]
fn peer_sessions_are_handed_to_the_shard_that_owns_their_node_id() {
    let dir = scratch("handoff");
    let node = common::start_local(&dir, &[]);
    // One test peer owned by each of the node's two shards (fixed seeds: the same every run).
    let mut by_shard: [Option<Identity>; 2] = [None, None];
    for seed in 1u8.. {
        let id = identity(seed);
        let shard = shard_of(id.node_id().as_bytes(), 2);
        by_shard[shard.0 as usize].get_or_insert(id);
        if by_shard.iter().all(Option::is_some) {
            break;
        }
    }
    // Four sessions for each: the kernel spreads the connections over both listeners, and each
    // session must end up counted on its owner's shard, served there.
    let mut sessions = Vec::new();
    for id in by_shard.iter().flatten() {
        for _ in 0..4 {
            sessions.push(peer_session(&node, id));
        }
    }
    for shard in [ShardId(0), ShardId(1)] {
        let sample = format!("overlay_sessions_active{{shard=\"{}\"}}", shard.0);
        eventually(
            &format!("{sample} counts the 4 peer sessions it owns"),
            || metric(node.admin, &sample) == 4.0,
        );
    }
    drop(sessions);
    drop(node);
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn requests_past_the_sessions_inflight_limit_get_429() {
    let dir = scratch("inflight");
    let mut cmd = common::local_command(&dir, &[]);
    cmd.env("RONODE_SESSION__INFLIGHT_FRAMES", "2");
    let node = common::start_with(cmd);
    let mut good = common::client(&node);
    assert_eq!(
        good.hello_reply().max_inflight,
        2,
        "HELLO announces the limit"
    );
    let body = vec![7u8; 1000];
    let addr = good
        .put(&body, Some(&common::mint(&dir, "put")))
        .unwrap()
        .addr;
    // Twenty GETs in one write: past two unanswered, the node answers 429 at once.
    let mut s = raw_session(&node);
    s.write_all(&hello_and_gets(addr, 20)).unwrap();
    s.flush().unwrap();
    let mut dec = FrameDecoder::new(1 << 20);
    let mut buf = bytes::BytesMut::new();
    let mut codes = std::collections::BTreeMap::new();
    while codes.len() < 21 {
        let mut chunk = [0u8; 16 * 1024];
        let n = s.read(&mut chunk).expect("the node answers every request");
        assert!(n > 0, "the node closed the session");
        buf.extend_from_slice(&chunk[..n]);
        while let Some(f) = dec.decode(&mut buf).unwrap() {
            codes.insert(f.header.corr_id, f.header.code);
        }
    }
    let quota = codes.values().filter(|&&c| c == 429).count();
    let ok = codes.values().filter(|&&c| c == 200).count();
    assert!(quota >= 1, "some GETs were past the limit: {codes:?}");
    assert_eq!(quota + ok, 21, "every other answer is a 200: {codes:?}");
    eventually("quota is counted", || {
        metric_sum(node.admin, "rejected_total{reason=\"quota\"") >= 1.0
    });
    good.ping().expect("another session is served");
    drop(node);
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn a_session_that_stops_reading_is_closed_after_the_write_timeout() {
    let dir = scratch("writeto");
    let mut cmd = common::local_command(&dir, &[]);
    cmd.env("RONODE_SESSION__WRITE_TIMEOUT_MS", "1000");
    let node = common::start_with(cmd);
    let mut good = common::client(&node);
    let body = vec![3u8; 8 << 20];
    let addr = good
        .put(&body, Some(&common::mint(&dir, "put")))
        .unwrap()
        .addr;
    // Eight GETs of 8 MiB and never a read: the node's writes stall once the sockets are full.
    let mut s = raw_session(&node);
    s.write_all(&hello_and_gets(addr, 8)).unwrap();
    s.flush().unwrap();
    eventually("the stalled writer is counted as slow_client", || {
        metric_sum(node.admin, "rejected_total{reason=\"slow_client\"") >= 1.0
    });
    good.ping().expect("another session is served throughout");
    drop(s);
    drop(node);
    let _ = std::fs::remove_dir_all(dir);
}
