//! Fetch on miss around the store ([`OnMiss`]): which completions it takes, what it asks for.

use crate::objects::fetch::Answer;
use crate::objects::on_miss::{MissOut, OnMiss, CACHE_OP_BIT};
use crate::objects::{Begun, FetchConfig, OpId, StoreDone, StoreError, StoreOp};
use crate::ShardId;
use bytes::Bytes;
use ronode_proto::id::{NodeId, ObjectAddr};

fn op(seq: u64) -> OpId {
    OpId {
        shard: ShardId(0),
        seq,
    }
}

fn first_read(seq: u64, addr: ObjectAddr, range: std::ops::Range<u64>) -> StoreOp {
    StoreOp::Read {
        op: op(seq),
        addr,
        range,
        min_len: 0,
        fetch: Some(0),
    }
}

fn miss(seq: u64, addr: ObjectAddr) -> StoreDone {
    StoreDone::Read {
        op: op(seq),
        result: Err(StoreError::NotFound(addr)),
    }
}

fn outputs(m: &mut OnMiss) -> Vec<MissOut> {
    std::iter::from_fn(|| m.poll()).collect()
}

fn peers() -> Vec<NodeId> {
    vec![NodeId([7; 32])]
}

#[test]
fn a_miss_of_a_first_read_is_fetched_answered_in_range_and_cached() {
    let mut m = OnMiss::new(ShardId(0), FetchConfig::default(), true);
    let body = Bytes::from_static(b"hello, fetched world");
    let addr = ObjectAddr::of(&body);
    m.handle_op(&first_read(1, addr, 7..14));
    assert!(m.handle_done(miss(1, addr), peers, 0).is_none(), "taken");
    let out = outputs(&mut m);
    let [MissOut::Try(t)] = &out[..] else {
        panic!("one try, got {out:?}")
    };
    assert_eq!((t.peer, t.addr, t.hops), (NodeId([7; 32]), addr, 1));
    m.handle_answer(t.id, Answer::Bytes(body.clone()), 5);
    let out = outputs(&mut m);
    let [MissOut::Answer(StoreDone::Read {
        op: o,
        result: Ok(chunk),
    }), MissOut::Store(StoreOp::BeginPut { put, size, .. })] = &out[..]
    else {
        panic!("the read answered then the object cached, got {out:?}")
    };
    assert_eq!(*o, op(1));
    assert_eq!((&chunk.bytes[..], chunk.object_size), (&b"fetched"[..], 20));
    assert_ne!(put.seq & CACHE_OP_BIT, 0);
    assert_eq!(*size, 20);
    let begun = StoreDone::BeginPut {
        put: *put,
        result: Ok(Begun::New),
    };
    assert!(
        m.handle_done(begun, peers, 6).is_none(),
        "caching is its own"
    );
    let out = outputs(&mut m);
    assert!(
        matches!(&out[..], [MissOut::Store(StoreOp::CommitPut { body: Some(b), .. })] if *b == body),
        "{out:?}"
    );
}

#[test]
fn other_completions_go_on_and_peers_are_asked_only_for_a_miss() {
    let mut m = OnMiss::new(ShardId(0), FetchConfig::default(), false);
    let addr = ObjectAddr::of(b"x");
    let no_peers_asked =
        || -> Vec<NodeId> { panic!("peers asked for a completion that is no miss") };
    // A miss of a read that was not a GET's first: the plane's to answer.
    assert!(m.handle_done(miss(3, addr), no_peers_asked, 0).is_some());
    m.handle_op(&first_read(4, addr, 0..1));
    let found = StoreDone::Read {
        op: op(4),
        result: Err(StoreError::Busy(crate::objects::BusyCause::Fetches)),
    };
    assert!(m.handle_done(found, no_peers_asked, 0).is_some());
    assert!(outputs(&mut m).is_empty());
}

#[test]
fn a_miss_with_no_peer_up_is_answered_with_the_stores_answer() {
    let mut m = OnMiss::new(ShardId(0), FetchConfig::default(), true);
    let addr = ObjectAddr::of(b"y");
    m.handle_op(&first_read(5, addr, 0..1));
    let quarantined = StoreDone::Read {
        op: op(5),
        result: Err(StoreError::Corrupt(addr)),
    };
    assert!(m.handle_done(quarantined, Vec::new, 0).is_none());
    let out = outputs(&mut m);
    assert!(
        matches!(
            &out[..],
            [MissOut::Answer(StoreDone::Read {
                result: Err(StoreError::Corrupt(_)),
                ..
            })]
        ),
        "{out:?}"
    );
}

#[test]
fn a_fetch_nobody_answers_ends_not_found_at_its_deadline() {
    let config = FetchConfig {
        fetch_peers: 1,
        timeout_ms: 100,
        ..FetchConfig::default()
    };
    let mut m = OnMiss::new(ShardId(0), config, true);
    let addr = ObjectAddr::of(b"z");
    m.handle_op(&first_read(6, addr, 0..1));
    assert!(m.handle_done(miss(6, addr), peers, 0).is_none());
    assert!(matches!(&outputs(&mut m)[..], [MissOut::Try(_)]));
    assert_eq!(m.poll_timeout(), Some(100));
    m.handle_timeout(99);
    assert!(outputs(&mut m).is_empty(), "not yet due");
    m.handle_timeout(100);
    let out = outputs(&mut m);
    assert!(
        matches!(
            &out[..],
            [MissOut::Answer(StoreDone::Read {
                result: Err(StoreError::NotFound(_)),
                ..
            })]
        ),
        "{out:?}"
    );
    assert_eq!(m.counters().timeouts, 1);
}
