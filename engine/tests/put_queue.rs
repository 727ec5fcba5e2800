//! PUTs under concurrency on a two-shard disk node: commits wait for a disk place in a bounded
//! queue instead of being refused once their body was sent whole.

mod common;

use common::{bytes, client, metric_sum, mint, scratch, start_local};
use ronode_proto::ObjectAddr;
use std::sync::{Arc, Barrier};

/// Sessions putting at once: more than the 16 disk places of a shard, on both shards.
const PUTTERS: usize = 40;
/// Objects each session puts, one after the other.
const ROUNDS: u64 = 3;
/// Big enough that a commit's write and fsync overlap the others'.
const OBJECT_BYTES: usize = 256 * 1024;

/// The `k`th object of the test, different for every `k` (`bytes` takes odd seeds apart).
fn object(k: u64) -> Vec<u8> {
    bytes(OBJECT_BYTES, 2 * k + 1)
}

#[test]
fn forty_parallel_puts_on_a_disk_node_all_succeed() {
    let dir = scratch("put-queue");
    let node = start_local(&dir, &[]);
    let cap = Arc::new(mint(&dir, "put"));
    let node = Arc::new(node);
    let start = Arc::new(Barrier::new(PUTTERS));
    let threads: Vec<_> = (0..PUTTERS)
        .map(|i| {
            let (node, cap, start) = (node.clone(), cap.clone(), start.clone());
            std::thread::spawn(move || {
                let mut c = client(&node);
                let objects: Vec<Vec<u8>> =
                    (0..ROUNDS).map(|r| object(i as u64 * ROUNDS + r)).collect();
                start.wait();
                let mut failures = Vec::new();
                for data in &objects {
                    match c.put(data, Some(&cap)) {
                        Ok(resp) => {
                            assert_eq!((resp.addr, resp.stored), (ObjectAddr::of(data), true))
                        }
                        Err(e) => {
                            failures.push(format!("session {i}: {e}"));
                            // The session may have ended with the refusal: a fresh one.
                            c = client(&node);
                        }
                    }
                }
                failures
            })
        })
        .collect();
    let failures: Vec<String> = threads
        .into_iter()
        .flat_map(|t| t.join().expect("a putter panicked"))
        .collect();
    assert!(
        failures.is_empty(),
        "{} of {} PUTs failed, first: {:?}",
        failures.len(),
        PUTTERS as u64 * ROUNDS,
        failures.first()
    );
    let busy = metric_sum(node.admin, "rejected_total{reason=\"busy\"");
    assert_eq!(busy, 0.0, "no PUT was shed");
    let mut c = client(&node);
    for i in 0..PUTTERS as u64 * ROUNDS {
        let data = object(i);
        let got = c
            .get(&ObjectAddr::of(&data))
            .expect("an acknowledged PUT is there");
        assert!(got == data, "object {i} reads back whole");
    }
    let _ = std::fs::remove_dir_all(dir);
}
