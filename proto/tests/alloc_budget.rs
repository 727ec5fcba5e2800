//! The DHT hot path's allocation budget: decoding a FIND_NODE request, selecting the K closest of
//! 1,000 stored NodeInfos into a reused scratch, and encoding the response into a reused output
//! buffer must make fewer than 2 heap allocations (it makes none).
//!
//! A counting global allocator sees every thread of this test binary, so this file holds this one
//! test, and counting is switched on only for the measuring thread (a thread-local flag).
#![allow(unsafe_code)]

use ronode_proto::id::{select_closest, NodeId};
use ronode_proto::limits::K;
use ronode_proto::msg::dht::{DhtRequest, FindNode, FindNodeRespRef, NodeInfo};
use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::sync::atomic::{AtomicUsize, Ordering};

struct Counting;

static ALLOCS: AtomicUsize = AtomicUsize::new(0);

thread_local! {
    static COUNTING: Cell<bool> = const { Cell::new(false) };
}

fn note() {
    // `try_with`: the flag may be gone while a thread is being torn down.
    if COUNTING.try_with(Cell::get).unwrap_or(false) {
        ALLOCS.fetch_add(1, Ordering::Relaxed);
    }
}

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        note();
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        note();
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        note();
        unsafe { System.realloc(ptr, layout, new_size) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// Counts the allocations `f` makes on this thread.
fn count_allocs<R>(f: impl FnOnce() -> R) -> (R, usize) {
    ALLOCS.store(0, Ordering::SeqCst);
    COUNTING.with(|c| c.set(true));
    let r = f();
    COUNTING.with(|c| c.set(false));
    (r, ALLOCS.load(Ordering::SeqCst))
}

fn table(n: usize) -> Vec<NodeInfo> {
    let mut x = 0x9e37_79b9_7f4a_7c15u64;
    let mut next = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    (0..n)
        .map(|i| {
            let mut id = [0u8; 32];
            for chunk in id.chunks_mut(8) {
                chunk.copy_from_slice(&next().to_be_bytes());
            }
            NodeInfo {
                id: NodeId(id),
                addrs: vec![
                    format!("10.{}.{}.{}:7000", i >> 16 & 255, i >> 8 & 255, i & 255),
                    format!("[2001:db8::{i:x}]:7000"),
                ],
                asn: Some(64_512 + (i % 97) as u32),
                last_seen: Some(1_700_000_000 + i as u64),
            }
        })
        .collect()
}

/// One request as a node serves it: decode, select into the reused scratch of table indices
/// (which a shard can keep between requests), encode into the reused output buffer. Returns the
/// number of nodes in the answer.
fn serve(req: &[u8], table: &[NodeInfo], scratch: &mut Vec<u32>, out: &mut Vec<u8>) -> usize {
    let target = match DhtRequest::decode(req).expect("valid request") {
        DhtRequest::FindNode(FindNode { target }) => target,
        other => panic!("not FIND_NODE: {other:?}"),
    };
    scratch.clear();
    scratch.extend(0..table.len() as u32);
    let n = select_closest(scratch, &target, K, |&i| table[i as usize].id.0);
    out.clear();
    FindNodeRespRef {
        closest: scratch[..n].iter().map(|&i| &table[i as usize]),
    }
    .encode(out);
    n
}

#[test]
fn find_node_round_makes_fewer_than_two_allocations() {
    let table = table(1_000);
    let mut req = Vec::new();
    DhtRequest::FindNode(FindNode {
        target: *table[123].id.as_bytes(),
    })
    .encode(&mut req);

    let mut scratch: Vec<u32> = Vec::new();
    let mut out: Vec<u8> = Vec::new();
    // Warm-up: the scratch and the output buffer grow to their working size.
    assert_eq!(serve(&req, &table, &mut scratch, &mut out), K);

    // The same request again, and a request for another target.
    let mut req2 = Vec::with_capacity(64);
    DhtRequest::FindNode(FindNode {
        target: *table[999].id.as_bytes(),
    })
    .encode(&mut req2);
    let mut out2 = Vec::with_capacity(out.capacity());

    let (n, allocs) = count_allocs(|| serve(&req, &table, &mut scratch, &mut out));
    let (n2, allocs2) = count_allocs(|| serve(&req2, &table, &mut scratch, &mut out2));
    println!(
        "FIND_NODE decode + select {K} of {} + encode ({} bytes): {allocs} and {allocs2} allocations",
        table.len(),
        out.len()
    );
    assert_eq!((n, n2), (K, K));
    assert!(allocs < 2, "{allocs} allocations");
    assert!(allocs2 < 2, "{allocs2} allocations");

    // The answer decodes, holds the closest node first, and the allocator really counts.
    let resp = ronode_proto::msg::dht::FindNodeResp::decode(&out).unwrap();
    assert_eq!(resp.closest.len(), K);
    assert_eq!(resp.closest[0], table[123]);
    let (_, counted) = count_allocs(|| std::hint::black_box(vec![0u8; 16]));
    assert_eq!(counted, 1, "the counting allocator must see allocations");
}
