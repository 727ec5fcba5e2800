//! Fetch on miss: peer order, verification, deadlines, coalescing and loop refusal.

use super::*;

fn peer(n: u8) -> NodeId {
    NodeId([n; 32])
}

fn cfg() -> FetchConfig {
    FetchConfig {
        fetch_peers: 3,
        timeout_ms: 100,
        max_fetches: 2,
    }
}

fn tries(f: &mut Fetcher<u32>) -> Vec<Try> {
    std::iter::from_fn(|| f.poll_try()).collect()
}

#[test]
fn asks_the_closest_peers_in_turn_and_skips_wrong_bytes() {
    let body = Bytes::from_static(b"the object");
    let addr = ObjectAddr::of(&body);
    let mut f = Fetcher::new(cfg());
    let peers: Vec<NodeId> = (0..6).map(|n| peer(n * 40)).collect();
    assert_eq!(f.handle_miss(addr, 0, 7, &peers, 0), Miss::Fetching);
    // The expected order: XOR distance of each NodeId to the address.
    let mut by_distance = peers.clone();
    by_distance.sort_by_key(|p| p.distance(&addr.0));
    let first = tries(&mut f);
    assert_eq!(first.len(), 1, "one peer at a time");
    assert_eq!((first[0].peer, first[0].hops), (by_distance[0], 1));

    f.handle_answer(
        first[0].id,
        Answer::Bytes(Bytes::from_static(b"forged")),
        10,
    );
    assert_eq!(f.counters().bad_digest, 1);
    let second = tries(&mut f);
    assert_eq!(second[0].peer, by_distance[1]);
    f.handle_answer(second[0].id, Answer::NotFound, 20);
    let third = tries(&mut f);
    assert_eq!(third[0].peer, by_distance[2]);
    f.handle_answer(third[0].id, Answer::Bytes(body.clone()), 30);
    let done = f.poll_done().expect("found");
    assert_eq!(
        (done.addr, done.bytes, done.waiters),
        (addr, Some(body), vec![7])
    );
    assert_eq!(f.counters().found, 1);
    assert!(f.is_empty());
}

#[test]
fn a_try_past_its_deadline_moves_on_and_late_answers_are_ignored() {
    let body = Bytes::from_static(b"late");
    let addr = ObjectAddr::of(&body);
    let mut f = Fetcher::new(cfg());
    f.handle_miss(addr, 0, 1, &[peer(1), peer(2)], 0);
    let first = tries(&mut f)[0];
    assert_eq!(f.poll_timeout(), Some(100));
    f.handle_timeout(99);
    assert!(f.poll_try().is_none(), "not yet");
    f.handle_timeout(100);
    assert_eq!(f.counters().timeouts, 1);
    let second = tries(&mut f)[0];
    assert_ne!(first.peer, second.peer);
    // The first peer answers after all: too late, ignored.
    f.handle_answer(first.id, Answer::Bytes(body.clone()), 150);
    assert!(f.poll_done().is_none());
    f.handle_answer(second.id, Answer::Failed, 160);
    let done = f.poll_done().expect("no peer left");
    assert_eq!((done.bytes, done.waiters), (None, vec![1]));
    assert_eq!((f.counters().failed, f.counters().not_found), (1, 1));
}

#[test]
fn misses_share_a_fetch_and_cycles_and_hop_limits_are_refused() {
    let addr = ObjectAddr::of(b"shared");
    let mut f = Fetcher::new(cfg());
    assert_eq!(f.handle_miss(addr, 0, 1, &[peer(1)], 0), Miss::Fetching);
    assert_eq!(f.handle_miss(addr, 0, 2, &[peer(1)], 0), Miss::Fetching);
    assert_eq!(tries(&mut f).len(), 1, "one fetch for both");
    // The same address asked by a peer while we fetch it: a cycle.
    assert_eq!(f.handle_miss(addr, 1, 3, &[peer(1)], 0), Miss::NotFound(3));
    let other = ObjectAddr::of(b"other");
    assert_eq!(
        f.handle_miss(other, MAX_FETCH_HOPS, 4, &[peer(1)], 0),
        Miss::NotFound(4)
    );
    assert_eq!(f.counters().loops_refused, 2);
    assert_eq!(
        f.handle_miss(other, 0, 5, &[], 0),
        Miss::NotFound(5),
        "no peers"
    );
    assert_eq!(f.handle_miss(other, 2, 6, &[peer(2)], 0), Miss::Fetching);
    assert_eq!(tries(&mut f)[0].hops, 3);
    assert_eq!(
        f.handle_miss(ObjectAddr::of(b"third"), 0, 7, &[peer(1)], 0),
        Miss::Busy(7),
        "max_fetches"
    );
    f.handle_timeout(100);
    f.handle_timeout(200);
    let mut waiters: Vec<u32> = std::iter::from_fn(|| f.poll_done())
        .flat_map(|d| d.waiters)
        .collect();
    waiters.sort_unstable();
    assert_eq!(waiters, vec![1, 2, 6]);
}
