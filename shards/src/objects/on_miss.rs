//! [`OnMiss`]: fetch on miss wrapped around a shard's store (PROTOCOL.md section 6.1.1), sans-IO.
//!
//! The shard that owns an address runs one, between its store and the planes the store answers.
//! It remembers the first read of each GET ([`OnMiss::handle_op`]); when the store answers such
//! a read "not found" (or "quarantined": a miss like any other), the miss goes to the
//! [`Fetcher`] instead of back to the plane ([`OnMiss::handle_done`]). The fetcher's tries go
//! out to peers, their answers come back ([`OnMiss::handle_answer`]), and a verified object
//! answers every read that waited for it, sliced to each read's range. With `cache_fetched`
//! the object is then written to the store like an upload (begin, then commit), under op ids of
//! its own ([`CACHE_OP_BIT`]) so that their completions come back here, never to a plane.
//!
//! Outputs, drained after every input: [`OnMiss::poll`] ([`MissOut`]: a try for a peer, an
//! answer to a read, an operation for the store); the driver wakes it at
//! [`OnMiss::poll_timeout`] ([`OnMiss::handle_timeout`]).
//!
//! Bounds: reads remembered are those the store has in progress (bounded by the planes'
//! `max_reads` and the mesh); fetches by `FetchConfig::max_fetches`; objects being cached by
//! [`MAX_CACHING`] (past it a fetched object is served but not kept).

use std::collections::{BTreeMap, VecDeque};
use std::ops::Range;

use bytes::Bytes;
use ronode_proto::id::{NodeId, ObjectAddr};

use super::fetch::{Answer, FetchConfig, FetchCounters, Fetcher, Miss, Try};
use super::store::clamp;
use super::{Begun, BusyCause, OpId, ReadChunk, StoreDone, StoreError, StoreOp};
pub use crate::limits::MAX_CACHING;
use crate::ShardId;

/// Ids of the store operations that cache fetched objects: the planes number theirs from 1, so
/// these never meet theirs.
pub const CACHE_OP_BIT: u64 = 1 << 63;

/// A read waiting for a fetch.
#[derive(Debug, Clone)]
struct ReadWaiter {
    op: OpId,
    addr: ObjectAddr,
    range: Range<u64>,
    hops: u8,
}

/// What fetch on miss asks its driver to do.
#[derive(Debug)]
pub enum MissOut {
    /// Send this GET to a peer; its answer comes back through [`OnMiss::handle_answer`].
    Try(Try),
    /// The answer to a read: on to the plane that issued it, like any store completion.
    Answer(StoreDone),
    /// An operation for this shard's store (caching a fetched object); its completion comes
    /// back through [`OnMiss::handle_done`].
    Store(StoreOp),
}

/// See the module docs.
#[derive(Debug)]
pub struct OnMiss {
    shard: ShardId,
    fetcher: Fetcher<ReadWaiter>,
    /// First reads of GETs, by op, until the store answered them.
    fetchable: BTreeMap<OpId, ReadWaiter>,
    /// Fetched objects being written to the store, by the op that began the write.
    caching: BTreeMap<OpId, (ObjectAddr, Bytes)>,
    next_cache_op: u64,
    cache_fetched: bool,
    out: VecDeque<MissOut>,
}

impl OnMiss {
    pub fn new(shard: ShardId, config: FetchConfig, cache_fetched: bool) -> OnMiss {
        OnMiss {
            shard,
            fetcher: Fetcher::new(config),
            fetchable: BTreeMap::new(),
            caching: BTreeMap::new(),
            next_cache_op: 0,
            cache_fetched,
            out: VecDeque::new(),
        }
    }

    /// Counters since start, for `objects_fetch_total{result}`.
    pub fn counters(&self) -> FetchCounters {
        self.fetcher.counters()
    }

    /// An operation about to run on this shard's store: the first read of a GET (it carries
    /// the GET's `hops`) is remembered, so that a miss can be fetched.
    pub fn handle_op(&mut self, op: &StoreOp) {
        if let StoreOp::Read {
            op,
            addr,
            range,
            fetch: Some(hops),
            ..
        } = op
        {
            let waiter = ReadWaiter {
                op: *op,
                addr: *addr,
                range: range.clone(),
                hops: *hops,
            };
            self.fetchable.insert(*op, waiter);
        }
    }

    /// A completion of this shard's store. `Some` goes on to the plane that issued it; `None`
    /// was taken here: a miss being fetched, or a step of caching. `up` (the peers up now) is
    /// asked only for a miss.
    pub fn handle_done(
        &mut self,
        done: StoreDone,
        up: impl FnOnce() -> Vec<NodeId>,
        now_ms: u64,
    ) -> Option<StoreDone> {
        let id = done.id();
        if id.seq & CACHE_OP_BIT != 0 {
            self.cache_step(done);
            return None;
        }
        let StoreDone::Read { op, result } = &done else {
            return Some(done);
        };
        let waiter = self.fetchable.remove(op);
        match (waiter, result) {
            // A quarantined object is a miss like any other (PROTOCOL.md section 6.1.1).
            (Some(waiter), Err(e @ (StoreError::NotFound(_) | StoreError::Corrupt(_)))) => {
                let answer = e.clone();
                let (addr, hops) = (waiter.addr, waiter.hops);
                match self.fetcher.handle_miss(addr, hops, waiter, &up(), now_ms) {
                    Miss::Fetching => {}
                    Miss::NotFound(w) => self.answer(&w, Err(answer)),
                    Miss::Busy(w) => self.answer(&w, Err(StoreError::Busy(BusyCause::Fetches))),
                }
                None
            }
            _ => Some(done),
        }
    }

    /// A peer's answer to one of this shard's tries.
    pub fn handle_answer(&mut self, try_id: u64, answer: Answer, now_ms: u64) {
        self.fetcher.handle_answer(try_id, answer, now_ms);
    }

    /// Moves tries past their deadline on.
    pub fn handle_timeout(&mut self, now_ms: u64) {
        if self.poll_timeout().is_some_and(|t| t <= now_ms) {
            self.fetcher.handle_timeout(now_ms);
        }
    }

    /// When [`OnMiss::handle_timeout`] is next due.
    pub fn poll_timeout(&self) -> Option<u64> {
        self.fetcher.poll_timeout()
    }

    /// The next output, in order: answers and store operations already decided, then the
    /// fetcher's tries, then its finished fetches (turned into answers and caching).
    pub fn poll(&mut self) -> Option<MissOut> {
        loop {
            if let Some(out) = self.out.pop_front() {
                return Some(out);
            }
            if let Some(t) = self.fetcher.poll_try() {
                return Some(MissOut::Try(t));
            }
            let done = self.fetcher.poll_done()?;
            match done.bytes {
                Some(bytes) => {
                    for w in &done.waiters {
                        let range = clamp(&w.range, bytes.len() as u64);
                        let chunk = ReadChunk {
                            object_size: bytes.len() as u64,
                            bytes: bytes.slice(range.start as usize..range.end as usize),
                        };
                        self.answer(w, Ok(chunk));
                    }
                    if self.cache_fetched && self.caching.len() < MAX_CACHING {
                        self.cache(done.addr, bytes);
                    }
                }
                None => {
                    for w in &done.waiters {
                        self.answer(w, Err(StoreError::NotFound(w.addr)));
                    }
                }
            }
        }
    }

    fn answer(&mut self, w: &ReadWaiter, result: Result<ReadChunk, StoreError>) {
        let done = StoreDone::Read { op: w.op, result };
        self.out.push_back(MissOut::Answer(done));
    }

    /// Writes a fetched object to the store, like an upload: begin, then commit.
    fn cache(&mut self, addr: ObjectAddr, bytes: Bytes) {
        let put = OpId {
            shard: self.shard,
            seq: CACHE_OP_BIT | self.next_cache_op,
        };
        self.next_cache_op += 1;
        let size = bytes.len() as u64;
        self.caching.insert(put, (addr, bytes));
        let op = StoreOp::BeginPut { put, addr, size };
        self.out.push_back(MissOut::Store(op));
    }

    /// The store answered a step of caching: commit after a begin that reserved room; stop
    /// otherwise (already held, no room: the object was served all the same).
    fn cache_step(&mut self, done: StoreDone) {
        let id = done.id();
        let entry = self.caching.remove(&id);
        if let (
            StoreDone::BeginPut {
                put,
                result: Ok(Begun::New),
            },
            Some((addr, bytes)),
        ) = (done, entry)
        {
            let body = Some(bytes);
            self.out
                .push_back(MissOut::Store(StoreOp::CommitPut { put, addr, body }));
        }
    }
}
