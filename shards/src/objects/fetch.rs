//! [`Fetcher`]: fetch on miss (PROTOCOL.md section 6.1.1), sans-IO.
//!
//! The shard that owns an address runs one. When its store misses the first read of a GET, the
//! engine hands the miss here with the peers that are up; the fetcher asks them one after
//! another, closest NodeId to the address first (XOR), at most `fetch_peers` of them, each
//! within `timeout_ms`, and verifies what comes back against the address. Concurrent misses of
//! one address share one fetch; a miss with `hops > 0` for an address already being fetched is
//! a fetch cycle and is answered "not found" at once, as is one with `hops >= MAX_FETCH_HOPS`.
//!
//! Inputs: [`Fetcher::handle_miss`], [`Fetcher::handle_answer`] (a peer's answer to a try),
//! [`Fetcher::handle_timeout`]. Outputs, drained after every input: [`Fetcher::poll_try`] (a GET
//! to send to a peer), then [`Fetcher::poll_done`] (a fetch finished, with the reads that waited
//! for it); the engine sleeps until [`Fetcher::poll_timeout`]. `W` is whatever the engine needs
//! to answer a waiting read.

use std::collections::{BTreeMap, VecDeque};

use bytes::Bytes;
use ronode_proto::id::{select_closest, NodeId, ObjectAddr};
use ronode_proto::msg::objects::MAX_FETCH_HOPS;

/// Fetch-on-miss settings (`objects.fetch_peers`, `objects.fetch_timeout_ms`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FetchConfig {
    /// Peers asked per miss; 0 turns fetching off.
    pub fetch_peers: usize,
    /// The deadline of each try.
    pub timeout_ms: u64,
    /// Fetches in progress on this shard; a miss beyond it is answered busy.
    pub max_fetches: usize,
}

impl Default for FetchConfig {
    fn default() -> FetchConfig {
        FetchConfig {
            fetch_peers: 3,
            timeout_ms: 2_000,
            max_fetches: 256,
        }
    }
}

/// One GET to send: ask `peer` for `addr`, with `hops` (one more than the miss's).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Try {
    pub id: u64,
    pub peer: NodeId,
    pub addr: ObjectAddr,
    pub hops: u8,
}

/// How a peer answered a try.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    /// 200 with these bytes (not yet verified).
    Bytes(Bytes),
    /// 404: the peer does not have it either.
    NotFound,
    /// Anything else: an error status, a broken or closed session.
    Failed,
}

/// What a miss became.
#[derive(Debug, PartialEq, Eq)]
pub enum Miss<W> {
    /// A fetch is under way; the waiter comes back with [`Done`].
    Fetching,
    /// Nothing to fetch from (no peers, too many hops, a cycle): answer not found.
    NotFound(W),
    /// Too many fetches in progress: answer busy.
    Busy(W),
}

/// A finished fetch: verified bytes, or `None` when no peer had them.
#[derive(Debug)]
pub struct Done<W> {
    pub addr: ObjectAddr,
    pub bytes: Option<Bytes>,
    pub waiters: Vec<W>,
}

/// Counters since start (`objects_fetch_total{result}`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FetchCounters {
    /// Fetches that found the object.
    pub found: u64,
    /// Fetches that asked every candidate in vain.
    pub not_found: u64,
    /// Tries answered with bytes that do not hash to the address (the peer was skipped).
    pub bad_digest: u64,
    /// Tries past their deadline.
    pub timeouts: u64,
    /// Tries that failed otherwise.
    pub failed: u64,
    /// Misses refused as part of a fetch cycle or past the hop limit.
    pub loops_refused: u64,
}

struct Fetch<W> {
    hops: u8,
    /// Peers still to ask, closest first.
    candidates: VecDeque<NodeId>,
    /// The try in flight and its deadline.
    current: Option<(u64, u64)>,
    waiters: Vec<W>,
}

/// See the module docs.
pub struct Fetcher<W> {
    config: FetchConfig,
    fetches: BTreeMap<ObjectAddr, Fetch<W>>,
    /// Try id -> address, for tries in flight.
    tries: BTreeMap<u64, ObjectAddr>,
    next_try: u64,
    out_tries: VecDeque<Try>,
    out_done: VecDeque<Done<W>>,
    counters: FetchCounters,
}

impl<W> std::fmt::Debug for Fetcher<W> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Fetcher")
            .field("fetches", &self.fetches.len())
            .field("counters", &self.counters)
            .finish()
    }
}

impl<W> Fetcher<W> {
    pub fn new(config: FetchConfig) -> Fetcher<W> {
        Fetcher {
            config,
            fetches: BTreeMap::new(),
            tries: BTreeMap::new(),
            next_try: 1,
            out_tries: VecDeque::new(),
            out_done: VecDeque::new(),
            counters: FetchCounters::default(),
        }
    }

    pub fn counters(&self) -> FetchCounters {
        self.counters
    }

    /// Fetches in progress.
    pub fn len(&self) -> usize {
        self.fetches.len()
    }

    pub fn is_empty(&self) -> bool {
        self.fetches.is_empty()
    }

    /// The store missed `addr` for a GET that travelled `hops`; `peers` are the peers up now.
    pub fn handle_miss(
        &mut self,
        addr: ObjectAddr,
        hops: u8,
        waiter: W,
        peers: &[NodeId],
        now_ms: u64,
    ) -> Miss<W> {
        if let Some(fetch) = self.fetches.get_mut(&addr) {
            if hops > 0 {
                // A request that is part of this very fetch, come back round a cycle.
                self.counters.loops_refused += 1;
                return Miss::NotFound(waiter);
            }
            fetch.waiters.push(waiter);
            return Miss::Fetching;
        }
        if hops >= MAX_FETCH_HOPS {
            self.counters.loops_refused += 1;
            return Miss::NotFound(waiter);
        }
        if peers.is_empty() || self.config.fetch_peers == 0 {
            return Miss::NotFound(waiter);
        }
        if self.fetches.len() >= self.config.max_fetches {
            return Miss::Busy(waiter);
        }
        let mut order = peers.to_vec();
        let k = select_closest(&mut order, &addr.0, self.config.fetch_peers, |p| p.0);
        order.truncate(k);
        let fetch = Fetch {
            hops,
            candidates: order.into(),
            current: None,
            waiters: vec![waiter],
        };
        self.fetches.insert(addr, fetch);
        self.next_candidate(addr, now_ms);
        Miss::Fetching
    }

    /// A peer's answer to try `id` (an answer to a try no longer in flight is ignored).
    pub fn handle_answer(&mut self, id: u64, answer: Answer, now_ms: u64) {
        let Some(addr) = self.tries.remove(&id) else {
            return;
        };
        match answer {
            Answer::Bytes(bytes) if ObjectAddr::of(&bytes) == addr => {
                self.counters.found += 1;
                self.finish(addr, Some(bytes));
                return;
            }
            Answer::Bytes(_) => self.counters.bad_digest += 1,
            Answer::NotFound => {}
            Answer::Failed => self.counters.failed += 1,
        }
        self.next_candidate(addr, now_ms);
    }

    /// Tries past their deadline go on to the next peer.
    pub fn handle_timeout(&mut self, now_ms: u64) {
        let late: Vec<(ObjectAddr, u64)> = self
            .fetches
            .iter()
            .filter_map(|(addr, f)| match f.current {
                Some((id, deadline)) if deadline <= now_ms => Some((*addr, id)),
                _ => None,
            })
            .collect();
        for (addr, id) in late {
            self.tries.remove(&id);
            self.counters.timeouts += 1;
            self.next_candidate(addr, now_ms);
        }
    }

    /// The earliest try deadline.
    pub fn poll_timeout(&self) -> Option<u64> {
        self.fetches
            .values()
            .filter_map(|f| f.current.map(|(_, d)| d))
            .min()
    }

    pub fn poll_try(&mut self) -> Option<Try> {
        self.out_tries.pop_front()
    }

    pub fn poll_done(&mut self) -> Option<Done<W>> {
        self.out_done.pop_front()
    }

    /// Asks the next candidate, or finishes the fetch empty-handed.
    fn next_candidate(&mut self, addr: ObjectAddr, now_ms: u64) {
        let fetch = self.fetches.get_mut(&addr).expect("a fetch in progress");
        let Some(peer) = fetch.candidates.pop_front() else {
            self.counters.not_found += 1;
            self.finish(addr, None);
            return;
        };
        let id = self.next_try;
        self.next_try += 1;
        fetch.current = Some((id, now_ms + self.config.timeout_ms));
        self.tries.insert(id, addr);
        self.out_tries.push_back(Try {
            id,
            peer,
            addr,
            hops: fetch.hops + 1,
        });
    }

    fn finish(&mut self, addr: ObjectAddr, bytes: Option<Bytes>) {
        let fetch = self.fetches.remove(&addr).expect("a fetch in progress");
        if let Some((id, _)) = fetch.current {
            self.tries.remove(&id);
        }
        self.out_done.push_back(Done {
            addr,
            bytes,
            waiters: fetch.waiters,
        });
    }
}

#[cfg(test)]
#[path = "tests/fetch.rs"]
mod tests;
