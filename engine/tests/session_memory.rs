//! Memory per session (issue 15, item 10): a session that has been busy and then idles gives
//! its buffers back, so that many idle TLS sessions fit in little memory.
//!
//! Why RSS is not too noisy here: every session does the same work (a PUT of 128 KiB, a GET of
//! 512 KiB) and then idles, in batches; the baseline is taken after a first batch did the same,
//! so one-time costs (the read cache, allocator arenas, stats) are paid before it. A session that
//! keeps its buffers holds their touched pages (the read buffer a PUT filled, the ciphertext of
//! a 256 KiB write batch: more than 256 KiB each), so growth per session is several times the
//! bound; one that releases them leaves the pages free for the next batch to reuse, and what
//! stays per session is its TLS and protocol state (well under the bound). Nothing depends on
//! how fast anything runs: each batch is waited for (bounded) through `session_buffer_bytes`.

mod common;

use common::{bytes, eventually, mint, scratch, start_local, WAIT};
use ronode_client::{Client, ClientOptions};
use ronode_proto::ObjectAddr;

/// Sessions measured, and how many work at once.
const SESSIONS: usize = 200;
const BATCH: usize = 20;
/// Growth of the node's RSS per idle session allowed (the goal is 32 KiB; see the module docs).
const BOUND_PER_SESSION: u64 = 64 * 1024;

/// The node's resident set, from /proc.
fn rss_bytes(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let kib: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS in /proc/PID/status");
    kib * 1024
}

/// Opens `n` sessions, each PUTting `put` and GETting `get` back, and keeps them open.
fn busy_then_idle(
    node: &common::Node,
    n: usize,
    put: &[u8],
    cap: &[u8],
    get: &ObjectAddr,
) -> Vec<Client> {
    let opts = ClientOptions {
        timeout: WAIT,
        ..Default::default()
    };
    (0..n)
        .map(|_| {
            let mut c = Client::connect(node.listen, &opts).expect("TLS + HELLO");
            c.put(put, Some(cap)).expect("PUT");
            assert_eq!(c.get(get).expect("GET").len(), 512 * 1024);
            c
        })
        .collect()
}

/// The sum over the shards of the samples of `family` in one /metrics text.
fn sum(metrics: &str, family: &str) -> f64 {
    let prefix = format!("{family}{{");
    metrics
        .lines()
        .filter(|l| l.starts_with(&prefix))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

/// Waits until the node counts `sessions` open and none of them holds a buffer, in one scrape
/// (so the buffer gauge read is from after the last session opened, not a stale zero).
fn wait_released(node: &common::Node, sessions: usize, what: &str) {
    eventually(what, || {
        let (_, body) = common::http_get(node.admin, "/metrics");
        assert!(
            body.contains("# TYPE session_buffer_bytes gauge"),
            "/metrics has no session_buffer_bytes gauge"
        );
        sum(&body, "overlay_sessions_active") == sessions as f64
            && sum(&body, "session_buffer_bytes") == 0.0
    });
}

#[test]
fn idle_sessions_give_their_buffers_back() {
    let dir = scratch("session-memory");
    let node = start_local(&dir, &[]);
    let cap = mint(&dir, "put");
    let big = bytes(512 * 1024, 7);
    let small = bytes(128 * 1024, 8);
    let addr = {
        let opts = ClientOptions {
            timeout: WAIT,
            ..Default::default()
        };
        let mut c = Client::connect(node.listen, &opts).unwrap();
        c.put(&big, Some(&cap)).unwrap().addr
    };
    let pid = node.child.id();

    let mut held = busy_then_idle(&node, BATCH, &small, &cap, &addr);
    wait_released(&node, held.len(), "the warm-up sessions' buffers released");
    let before = rss_bytes(pid);
    for batch in 0..SESSIONS / BATCH {
        held.extend(busy_then_idle(&node, BATCH, &small, &cap, &addr));
        let what = format!("batch {batch}'s buffers released");
        wait_released(&node, held.len(), &what);
    }
    let after = rss_bytes(pid);
    let per_session = after.saturating_sub(before) / SESSIONS as u64;
    eprintln!(
        "RSS {before} -> {after} bytes over {SESSIONS} idle sessions: {per_session} bytes each"
    );
    assert!(
        per_session <= BOUND_PER_SESSION,
        "each idle session costs {per_session} bytes of RSS (bound {BOUND_PER_SESSION}); \
         RSS {before} -> {after}"
    );
    // Still open, and the node still answers on them.
    for c in held.iter_mut().step_by(37) {
        c.ping().expect("an idle session still answers");
    }
}
