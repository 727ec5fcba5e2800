//! Session limits on a running node: a full work queue is answered 503 `busy` with
//! `retry_after_ms` while other sessions are served, and peer sessions (a client presenting a
//! node certificate) are handed to the shard that owns their NodeId.

mod common;

use common::{eventually, metric_sum, raw_session, scratch, Node, WAIT};
use ronode_client::{Client, ClientError, ClientOptions};
use ronode_proto::control::{Control, Hello, APP_CONTROL};
use ronode_proto::frame::{FrameEncoder, OutFrame};
use ronode_proto::msg::objects::{Get, ObjectRequest};
use ronode_proto::msg::APP_OBJECTS;
use ronode_proto::ObjectAddr;
use std::io::Write;
use std::process::Command;

fn mint(dir: &std::path::Path, scope: &str) -> Vec<u8> {
    let out = Command::new(env!("CARGO_BIN_EXE_ronode"))
        .args(["cap", "mint", "--scope", scope, "--ttl", "1h", "--data-dir"])
        .arg(dir)
        .output()
        .unwrap();
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    hex::decode(text.lines().last().unwrap()).unwrap()
}

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
    ObjectRequest::Get(Get { addr, range: None }).encode(&mut get);
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
    // The smallest work queue; writes may wait long (the greedy sessions never read).
    cmd.env("RONODE_QUEUES__WORK", "256")
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
    let addr = good.put(&body, Some(&mint(&dir, "put"))).unwrap().addr;

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
        other => panic!("a GET past a full work queue must be 503 busy, got {other:?}"),
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
