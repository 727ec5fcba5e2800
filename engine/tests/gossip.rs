//! Gossip over five real nodes on loopback, full mesh, `gossip.relay_fanout` 2, for several
//! RNG seeds: every subscriber gets each of 100 messages exactly once (and no duplicate in a
//! quiet spell after them), no node eagerly pushes a message to more than 2 peers, and a burst
//! past the topic budget is shed and counted. Prints the delivery latency (publish to receipt)
//! p50 / p99 across the five nodes.

mod common;

use common::{eventually, metric_sum, Member, Node, WAIT};
use ronode_client::{Client, ClientError, ClientOptions};
use std::collections::BTreeMap;
use std::sync::mpsc;
use std::time::{Duration, Instant};

const NODES: usize = 5;
const MESSAGES: usize = 100;

fn opts() -> ClientOptions {
    ClientOptions {
        timeout: WAIT,
        ..Default::default()
    }
}

/// Five nodes, each configured with the other four as peers, all of them up. They start
/// together (a node dialling one not yet listening waits out a redial backoff of 1 s and
/// more, so the closer the starts, the sooner the mesh is whole).
fn mesh(name: &str, seed: u64) -> Vec<Node> {
    let members: Vec<Member> = std::thread::scope(|s| {
        let joins: Vec<_> = (0..NODES)
            .map(|i| s.spawn(move || Member::new(&format!("gossip-{name}-{i}"))))
            .collect();
        joins.into_iter().map(|j| j.join().unwrap()).collect()
    });
    let commands: Vec<_> = members
        .iter()
        .map(|m| {
            let others: Vec<&Member> = members.iter().filter(|o| o.id != m.id).collect();
            let mut cmd = m.command(&others);
            cmd.env("RONODE_GOSSIP__RELAY_FANOUT", "2")
                .env("RONODE_SESSION__IDLE_TIMEOUT_MS", "60000")
                .env("RONODE_GOSSIP__SEED", seed.to_string())
                .env("RONODE_GOSSIP__PUB_POLICY", "open")
                .env("RONODE_GOSSIP__IHAVE_INTERVAL_MS", "200")
                .env("RONODE_GOSSIP__TOPIC_RATE_PER_S", "20")
                .env("RONODE_GOSSIP__TOPIC_BURST", "150");
            cmd
        })
        .collect();
    let nodes: Vec<Node> = std::thread::scope(|s| {
        let joins: Vec<_> = commands
            .into_iter()
            .map(|cmd| s.spawn(move || common::start_with(cmd)))
            .collect();
        joins.into_iter().map(|j| j.join().unwrap()).collect()
    });
    for node in &nodes {
        eventually("every peer is up", || {
            metric_sum(node.admin, "overlay_peers{state=\"up\"") == (NODES - 1) as f64
        });
    }
    // The planes learn the peers that are up on their next tick (100 ms).
    std::thread::sleep(Duration::from_millis(500));
    nodes
}

fn gossip(node: &Node, event: &str) -> f64 {
    metric_sum(
        node.admin,
        &format!("gossip_messages_total{{event=\"{event}\""),
    )
}

fn quantile(sorted: &[Duration], q: f64) -> Duration {
    sorted[((sorted.len() - 1) as f64 * q).round() as usize]
}

/// Published once every subscriber has every message and a quiet spell has passed: a reader
/// stops at it, so a duplicate that comes in the spell is counted.
const END: &[u8] = b"end of the run";
const QUIET: Duration = Duration::from_millis(1_500);

#[test]
fn every_subscriber_gets_every_message_once_with_a_bounded_fanout() {
    let mut latencies = Vec::new();
    for seed in [1u64, 7, 42] {
        let nodes = mesh(&format!("s{seed}"), seed);
        let (tx, rx) = mpsc::channel();
        let (all_tx, all_rx) = mpsc::channel();
        let mut readers = Vec::new();
        for (i, node) in nodes.iter().enumerate() {
            let mut sub = Client::connect(node.listen, &opts()).unwrap();
            sub.subscribe("news").unwrap();
            let (tx, all_tx) = (tx.clone(), all_tx.clone());
            readers.push(std::thread::spawn(move || {
                let mut got: BTreeMap<Vec<u8>, (usize, Instant)> = BTreeMap::new();
                loop {
                    let ev = sub.next_event().unwrap_or_else(|e| {
                        panic!("subscriber {i}: {e} after {} messages", got.len())
                    });
                    assert_eq!(ev.topic, "news");
                    if ev.data == END {
                        break;
                    }
                    got.entry(ev.data).or_insert((0, Instant::now())).0 += 1;
                    if got.len() == MESSAGES && got.values().all(|(n, _)| *n == 1) {
                        let _ = all_tx.send(i);
                    }
                }
                tx.send((i, got)).unwrap();
            }));
        }
        drop((tx, all_tx));
        let mut publishers: Vec<Client> = nodes
            .iter()
            .map(|n| Client::connect(n.listen, &opts()).unwrap())
            .collect();
        let mut sent = BTreeMap::new();
        for m in 0..MESSAGES {
            let data = format!("seed {seed} message {m}").into_bytes();
            sent.insert(data.clone(), Instant::now());
            publishers[m % NODES].publish("news", &data, None).unwrap();
        }
        let deadline = Instant::now() + WAIT;
        let mut complete = std::collections::BTreeSet::new();
        while complete.len() < NODES {
            let left = deadline.saturating_duration_since(Instant::now());
            match all_rx.recv_timeout(left) {
                Ok(i) => drop(complete.insert(i)),
                Err(_) => panic!(
                    "seed {seed}: within {WAIT:?} only subscribers {complete:?} had each of \
                     the {MESSAGES} messages exactly once"
                ),
            }
        }
        std::thread::sleep(QUIET);
        publishers[0].publish("news", END, None).unwrap();
        for (i, got) in rx.iter() {
            assert_eq!(got.len(), MESSAGES, "seed {seed}: node {i} missed messages");
            for (data, (n, at)) in got {
                assert_eq!(n, 1, "seed {seed}: node {i} got a message {n} times");
                latencies.push(at - sent[&data]);
            }
        }
        for r in readers {
            r.join().unwrap();
        }
        // The end marker is a message too.
        let total = MESSAGES + 1;
        for (i, node) in nodes.iter().enumerate() {
            eventually("each node delivered each message to its subscriber", || {
                gossip(node, "delivered") == total as f64
            });
            // Each node takes each message in once: it pushes it to at most relay_fanout peers.
            let relayed = gossip(node, "relayed");
            assert!(
                relayed <= (2 * total) as f64,
                "seed {seed}: node {i} relayed {relayed} eager pushes for {total} messages"
            );
        }
        let published: f64 = nodes.iter().map(|n| gossip(n, "published")).sum();
        assert_eq!(published, total as f64);
    }
    latencies.sort();
    println!(
        "gossip delivery latency over 5 nodes ({} deliveries): p50 {:?}, p99 {:?}",
        latencies.len(),
        quantile(&latencies, 0.50),
        quantile(&latencies, 0.99)
    );
}

#[test]
fn a_burst_past_the_topic_budget_is_shed_and_counted() {
    let nodes = mesh("burst", 3);
    let mut publisher = Client::connect(nodes[0].listen, &opts()).unwrap();
    let (mut accepted, mut shed) = (0, 0);
    for m in 0..400 {
        match publisher.publish("burst", format!("b{m}").as_bytes(), None) {
            Ok(()) => accepted += 1,
            Err(ClientError::Node(e)) if e.status == 429 => shed += 1,
            Err(e) => panic!("publish {m}: {e}"),
        }
    }
    // 150 of burst, plus 20 a second while the loop ran.
    assert!(
        shed > 0 && accepted >= 150,
        "accepted {accepted}, shed {shed}"
    );
    eventually("the shed publishes are counted", || {
        gossip(&nodes[0], "budget_shed") >= f64::from(shed)
    });
}

#[test]
fn publishing_needs_a_gossip_capability_under_the_token_policy() {
    let m = Member::new("gossip-token");
    let node = m.start(&[]);
    let mut client = Client::connect(node.listen, &opts()).unwrap();
    match client.publish("t", b"x", None) {
        Err(ClientError::Node(e)) => assert_eq!(e.status, 401),
        other => panic!("{other:?}"),
    }
    match client.publish("t", b"x", Some(&common::mint(&m.dir, "put"))) {
        Err(ClientError::Node(e)) => assert_eq!(e.status, 403),
        other => panic!("{other:?}"),
    }
    client
        .publish("t", b"x", Some(&common::mint(&m.dir, "gossip")))
        .unwrap();
}
