//! Peer sessions are symmetric for gossip: with two nodes where only A lists B as a peer (A
//! dials, B accepts), a subscriber on each node gets what a publisher on the other publishes.
//! Publishes need a capability (`gossip.pub_policy = "token"`), so a relay only gets through
//! when the receiving node takes it as a relay from a peer (one that proved its NodeId), not as
//! a client's publish.

mod common;

use common::{eventually, metric_sum, mint, Member, Node, WAIT};
use ronode_client::{Client, ClientOptions};
use std::sync::mpsc;
use std::time::{Duration, Instant};

const TOPIC: &str = "oneway";
/// Between two publishes while waiting for the first to arrive (the planes learn a new peer on
/// their next tick, so the first messages may find it not yet known).
const REPUBLISH: Duration = Duration::from_millis(200);

fn opts() -> ClientOptions {
    ClientOptions {
        timeout: WAIT,
        ..Default::default()
    }
}

fn start(m: &Member, peers: &[&Member]) -> Node {
    let mut cmd = m.command(peers);
    cmd.env("RONODE_SESSION__IDLE_TIMEOUT_MS", "60000")
        .env("RONODE_GOSSIP__PUB_POLICY", "token");
    common::start_with(cmd)
}

/// A subscriber to `TOPIC` on `node`, reading in a thread: what it receives comes out of the
/// returned channel (the thread ends with the node).
fn subscriber(node: &Node) -> mpsc::Receiver<Vec<u8>> {
    let mut sub = Client::connect(node.listen, &opts()).unwrap();
    sub.subscribe(TOPIC).unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        while let Ok(ev) = sub.next_event() {
            if tx.send(ev.data).is_err() {
                return;
            }
        }
    });
    rx
}

/// Publishes `prefix #k` on `from` (with `from`'s capability) until `to_sub` receives one of
/// them, within `WAIT`.
fn flows(what: &str, from: &Node, cap: &[u8], to_sub: &mpsc::Receiver<Vec<u8>>, prefix: &str) {
    let mut publisher = Client::connect(from.listen, &opts()).unwrap();
    let deadline = Instant::now() + WAIT;
    for k in 0.. {
        assert!(
            Instant::now() < deadline,
            "{what}: none of {k} messages published reached the other node's subscriber within \
             {WAIT:?}"
        );
        let data = format!("{prefix} #{k}");
        publisher
            .publish(TOPIC, data.as_bytes(), Some(cap))
            .unwrap();
        while let Ok(got) = to_sub.recv_timeout(REPUBLISH) {
            if got.starts_with(prefix.as_bytes()) {
                return;
            }
        }
    }
}

#[test]
fn gossip_flows_both_ways_when_only_one_node_lists_the_other() {
    let a = Member::new("oneway-a");
    let b = Member::new("oneway-b");
    // B lists nobody; A lists B.
    let node_b = start(&b, &[]);
    let node_a = start(&a, &[&b]);
    eventually("A's link to B is up", || {
        metric_sum(node_a.admin, "overlay_peers{state=\"up\"") == 1.0
    });
    assert_eq!(metric_sum(node_b.admin, "overlay_peers{state=\"up\""), 0.0);
    let (cap_a, cap_b) = (mint(&a.dir, "gossip"), mint(&b.dir, "gossip"));
    let sub_a = subscriber(&node_a);
    let sub_b = subscriber(&node_b);

    // A to B: over the link A dialled; B takes it as a relay from A, not as a publish.
    flows("A -> B", &node_a, &cap_a, &sub_b, "from A");
    // B to A: over the session A dialled to B, the only one between them.
    flows("B -> A", &node_b, &cap_b, &sub_a, "from B");

    // Both were relays, not refused publishes.
    for node in [&node_a, &node_b] {
        eventually("each node counts its eager pushes to the other", || {
            metric_sum(node.admin, "gossip_messages_total{event=\"relayed\"") >= 1.0
        });
    }
    assert_eq!(
        metric_sum(node_b.admin, "rejected_total{reason=\"unauthorized\""),
        0.0,
        "B refused A's relays as publishes without a capability"
    );
    let _ = node_a.sigterm_and_wait();
    let _ = node_b.sigterm_and_wait();
    let _ = std::fs::remove_dir_all(&a.dir);
    let _ = std::fs::remove_dir_all(&b.dir);
}
