//! Hostile peers against a running node: each is rejected as PROTOCOL.md says, counted under its
//! label in `/metrics`, and never disturbs another session, which is served throughout.

mod common;

use common::{eventually, metric_sum, raw_session, scratch, start_local, Node, WAIT};
use ronode_client::{Client, ClientOptions};
use ronode_proto::frame::{FrameDecoder, Header};
use ronode_proto::Flags;
use std::io::{Read, Write};
use std::net::TcpStream;

/// Sends `bytes` and reads until the node closes; returns what the node sent back.
fn send_and_drain(node: &Node, bytes: &[u8]) -> Vec<u8> {
    let mut s = raw_session(node);
    s.write_all(bytes).unwrap();
    s.flush().unwrap();
    let mut back = Vec::new();
    let _ = s.read_to_end(&mut back);
    back
}

fn header(len: u32, flags: Flags) -> Header {
    Header {
        len,
        ver: 1,
        flags,
        code: 0,
        app_proto_id: 0,
        tenant_id: 0,
        cap_len: 0,
        corr_id: 1,
    }
}

fn hello_then(tail: &[u8]) -> Vec<u8> {
    let mut v = Vec::new();
    let payload = br#"{"ua":"hostile"}"#;
    v.extend_from_slice(&header(38 + payload.len() as u32, Flags::REQ).to_bytes());
    v.extend_from_slice(payload);
    v.extend_from_slice(tail);
    v
}

fn rejected(node: &Node, label: &str) -> f64 {
    metric_sum(node.admin, &format!("rejected_total{{reason=\"{label}\""))
}

#[test]
fn hostile_frames_are_rejected_counted_and_isolated() {
    let dir = scratch("hostile");
    let node = start_local(&dir, &[]);
    // A well-behaved session, open across the whole test.
    let mut good = common::client(&node);

    let mut oversize = header(1_048_577, Flags::REQ).to_bytes().to_vec();
    oversize.extend_from_slice(&[0; 64]);
    let mut unknown_flags = header(38, Flags::from_bits(0x0101)).to_bytes().to_vec();
    unknown_flags.truncate(38);
    let bomb = zstd_bomb();
    let mut comp = header((38 + bomb.len()) as u32, Flags::REQ | Flags::COMP)
        .to_bytes()
        .to_vec();
    comp[26..28].copy_from_slice(&[0, 0]);
    comp.extend_from_slice(&bomb);
    let cases: Vec<(&str, Vec<u8>)> = vec![
        (
            "bad_len",
            b"\x00\x00\x00\x05garbage that is not a frame at all....".to_vec(),
        ),
        ("oversize", hello_then(&oversize)),
        ("bad_flags", hello_then(&unknown_flags)),
        ("ratio_cap", hello_then(&comp)),
        (
            "bad_sequence",
            Header {
                code: 200,
                ..header(38, Flags::RESP)
            }
            .to_bytes()
            .to_vec(),
        ),
        ("bad_code", header(38, Flags::RESP).to_bytes().to_vec()),
    ];
    for (label, bytes) in cases {
        let before = rejected(&node, label);
        let back = send_and_drain(&node, &bytes);
        assert!(
            !back.is_empty(),
            "{label}: the node says why before closing"
        );
        eventually(
            &format!("rejected_total{{reason=\"{label}\"}} counts it"),
            || rejected(&node, label) > before,
        );
        good.ping()
            .unwrap_or_else(|e| panic!("the good session was disturbed by {label}: {e}"));
    }
    drop(node);
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn slow_handshakes_time_out_and_connections_beyond_max_conns_are_refused() {
    let dir = scratch("limits");
    let mut cmd = common::local_command(&dir, &[]);
    cmd.env("RONODE_SESSION__HANDSHAKE_TIMEOUT_MS", "500")
        .env("RONODE_SESSION__MAX_CONNS", "4");
    let node = common::start_with(cmd);
    // Two shards share max_conns = 4: at most 2 sessions each.
    let mut good = common::client(&node);

    // Slow loris: connect and never say a TLS word.
    let loris = TcpStream::connect(node.listen).unwrap();
    eventually("the handshake timeout is counted", || {
        metric_sum(
            node.admin,
            "tls_handshake_failures_total{reason=\"timeout\"",
        ) >= 1.0
    });
    drop(loris);
    good.ping().unwrap();

    // Hold many plain TCP connections: beyond the limit they are closed before any handshake.
    let held: Vec<TcpStream> = (0..12)
        .map(|_| TcpStream::connect(node.listen).unwrap())
        .collect();
    eventually(
        "connections beyond max_conns are refused and counted",
        || metric_sum(node.admin, "conns_refused_total") >= 1.0,
    );
    drop(held);
    good.ping().unwrap();
    drop(node);
    let _ = std::fs::remove_dir_all(dir);
}

fn zstd_bomb() -> Vec<u8> {
    // A megabyte of zeros compresses to a few dozen bytes: far past the 10x ratio cap.
    let zeros = vec![0u8; 1 << 20];
    let mut out = Vec::new();
    let mut enc = zstd_encoder(&mut out);
    enc.write_all(&zeros).unwrap();
    enc.finish().unwrap();
    out
}

fn zstd_encoder(out: &mut Vec<u8>) -> zstd::stream::write::Encoder<'static, &mut Vec<u8>> {
    let mut enc = zstd::stream::write::Encoder::new(out, 3).unwrap();
    enc.include_contentsize(false).unwrap();
    enc
}

#[test]
fn flooding_past_max_rps_gets_429_with_retry_after_while_others_are_served() {
    let dir = scratch("flood");
    let mut cmd = common::local_command(&dir, &[]);
    // One request a second, bursts of two: HELLO and one PING, then the bucket is empty.
    cmd.env("RONODE_SESSION__MAX_RPS", "1")
        .env("RONODE_SESSION__BURST", "2");
    let node = common::start_with(cmd);
    let opts = ClientOptions {
        timeout: WAIT,
        ..Default::default()
    };
    let mut flooder = Client::connect(node.listen, &opts).unwrap();
    // Fifty pings at once against one a second: whatever the machine's speed, most are shed.
    let shed: Vec<_> = (0..50).filter_map(|_| flooder.ping().err()).collect();
    assert!(!shed.is_empty(), "no ping was shed past max_rps");
    for err in &shed {
        let ronode_client::ClientError::Node(e) = err else {
            panic!("expected a node error, got {err}")
        };
        assert_eq!((e.status, e.label.as_str()), (429, "quota"), "{e}");
        assert!(
            e.retry_after_ms.is_some_and(|ms| ms > 0 && ms <= 1000),
            "{e:?}"
        );
    }
    // Another session has its own budget and is served.
    let mut other = Client::connect(node.listen, &opts).unwrap();
    other.ping().expect("another session is served");
    eventually("quota rejections are counted", || {
        metric_sum(node.admin, "rejected_total{reason=\"quota\"") >= 1.0
    });
    drop(node);
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn a_request_stalled_past_the_read_timeout_gets_408_slow_client() {
    let dir = scratch("slow");
    let mut cmd = common::local_command(&dir, &[]);
    cmd.env("RONODE_SESSION__READ_TIMEOUT_MS", "1000");
    let node = common::start_with(cmd);
    let mut good = common::client(&node);
    // HELLO, then a PING request whose header announces 100 payload bytes of which 10 come.
    let stalled = Header {
        corr_id: 2,
        ..header(38 + 100, Flags::REQ)
    };
    let mut bytes = stalled.to_bytes().to_vec();
    bytes.extend_from_slice(&[b' '; 10]);
    let back = send_and_drain(&node, &hello_then(&bytes));
    // The HELLO reply, then the stalled request answered 408 before the node closes.
    let mut buf = bytes::BytesMut::from(&back[..]);
    let mut decoder = FrameDecoder::new(1 << 20);
    let mut frames = Vec::new();
    while let Ok(Some(f)) = decoder.decode(&mut buf) {
        frames.push(f);
    }
    let last = frames.last().expect("the node answered before closing");
    assert_eq!(
        (last.header.corr_id, last.header.code),
        (2, 408),
        "the stalled request is answered 408"
    );
    let body: serde_json::Value = serde_json::from_slice(&last.payload).unwrap();
    assert_eq!(body["reason"], "slow_client", "{body}");
    eventually("slow_client is counted", || {
        rejected(&node, "slow_client") >= 1.0
    });
    good.ping().expect("the good session is served throughout");
    drop(node);
    let _ = std::fs::remove_dir_all(dir);
}
