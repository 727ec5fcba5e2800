//! The admin plane tells the truth: `request_latency_seconds` counts every request a session
//! accepted once its answer is written, and the bounded queues' gauges are back at 0 when the
//! node is idle.

mod common;

use common::{bytes, client, eventually, metric_sum, mint, scratch, start_local};
use ronode_proto::ObjectAddr;

#[test]
fn answered_requests_feed_request_latency_and_queues_drain_to_zero() {
    let dir = scratch("surface");
    let node = start_local(&dir, &[]);
    let cap = mint(&dir, "put");
    let data = bytes(200 * 1024, 3);
    let mut c = client(&node);
    c.put(&data, Some(&cap)).expect("PUT");
    let got = c.get(&ObjectAddr::of(&data)).expect("GET");
    assert!(got == data);
    // HELLO, then PUT and GET: requests accepted and answered, by app.
    eventually(
        "request_latency_seconds counts the answered requests by app",
        || {
            metric_sum(node.admin, "request_latency_seconds_count{app=\"control\"") >= 1.0
                && metric_sum(node.admin, "request_latency_seconds_count{app=\"objects\"") >= 2.0
        },
    );
    let sum = metric_sum(node.admin, "request_latency_seconds_sum{");
    assert!(sum > 0.0, "latencies sum to {sum} s");
    drop(c);
    eventually("queue_depth back at 0", || {
        metric_sum(node.admin, "queue_depth{") == 0.0
    });
    assert_eq!(metric_sum(node.admin, "queue_dropped_total{"), 0.0);
    let _ = node.sigterm_and_wait();
    let _ = std::fs::remove_dir_all(dir);
}
