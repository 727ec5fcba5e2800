//! Fetch on miss on the shard that owns an address (PROTOCOL.md section 6.1.1): the engine side
//! of the sans-IO [`Fetcher`].
//!
//! The first read of a GET carries the GET's `hops`; when the store answers it "not found", the
//! miss goes to the fetcher instead of back to the plane. The fetcher's tries travel to the
//! peers through [`Peers`] (the link of a peer lives on the shard that owns its NodeId), their
//! answers come back here, and a verified object answers every read that waited for it (and is
//! written to the store when `objects.cache_fetched`).

use super::objects::Objects;
use super::peers::Peers;
use bytes::Bytes;
use ronode_proto::id::ObjectAddr;
use ronode_shards::objects::fetch::{Answer, Fetcher, Miss};
use ronode_shards::objects::store::clamp;
use ronode_shards::objects::{
    Begun, BusyCause, FetchConfig, OpId, ReadChunk, StoreDone, StoreError, StoreOp,
};
use std::cell::{Cell, RefCell};
use std::collections::BTreeMap;
use std::ops::Range;
use std::rc::Rc;
use std::time::Instant;

/// Ids of the store operations that cache fetched objects: the plane numbers its own from 1, so
/// these never meet its.
const CACHE_OP_BIT: u64 = 1 << 63;

/// A read waiting for a fetch.
#[derive(Debug, Clone)]
pub struct ReadWaiter {
    op: OpId,
    addr: ObjectAddr,
    range: Range<u64>,
    hops: u8,
}

/// The fetch state of one shard's objects runtime.
pub struct FetchState {
    fetcher: RefCell<Fetcher<ReadWaiter>>,
    /// First reads of GETs, by op, until the store answered them.
    fetchable: RefCell<BTreeMap<OpId, ReadWaiter>>,
    /// Fetched objects being written to the store, by the op that began the write.
    caching: RefCell<BTreeMap<OpId, (ObjectAddr, Bytes)>>,
    next_cache_op: Cell<u64>,
    cache_fetched: bool,
    peers: RefCell<Option<Rc<Peers>>>,
    epoch: Instant,
}

impl FetchState {
    pub fn new(config: FetchConfig, cache_fetched: bool) -> FetchState {
        FetchState {
            fetcher: RefCell::new(Fetcher::new(config)),
            fetchable: RefCell::new(BTreeMap::new()),
            caching: RefCell::new(BTreeMap::new()),
            next_cache_op: Cell::new(0),
            cache_fetched,
            peers: RefCell::new(None),
            epoch: Instant::now(),
        }
    }

    fn now_ms(&self) -> u64 {
        self.epoch.elapsed().as_millis() as u64
    }
}

impl Objects {
    /// Connects fetch on miss to the shard's peers; their answers come back here.
    pub fn attach_peers(self: &Rc<Self>, peers: Rc<Peers>) {
        let me = Rc::downgrade(self);
        peers.set_sink(Box::new(move |try_id, answer| {
            if let Some(me) = me.upgrade() {
                me.handle_fetch_answer(try_id, answer);
            }
        }));
        *self.fetch.peers.borrow_mut() = Some(peers);
    }

    /// Fetch counters since start, for `objects_fetch_total{result}`.
    pub fn fetch_counters(&self) -> ronode_shards::objects::fetch::FetchCounters {
        self.fetch.fetcher.borrow().counters()
    }

    /// Remembers the first read of a GET, so that a miss can be fetched.
    pub(super) fn note_fetchable(&self, op: &StoreOp) {
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
            self.fetch.fetchable.borrow_mut().insert(*op, waiter);
        }
    }

    /// Takes the completions fetch on miss owns: a miss of a fetchable read (handed to the
    /// fetcher) and the store's answers to caching. Everything else goes on.
    pub(super) fn intercept(&self, done: StoreDone) -> Option<StoreDone> {
        let id = done.id();
        if id.seq & CACHE_OP_BIT != 0 {
            self.cache_step(done);
            return None;
        }
        let StoreDone::Read { op, result } = &done else {
            return Some(done);
        };
        let waiter = self.fetch.fetchable.borrow_mut().remove(op);
        match (waiter, result) {
            // A quarantined object is a miss like any other (PROTOCOL.md section 6.1.1).
            (Some(waiter), Err(e @ (StoreError::NotFound(_) | StoreError::Corrupt(_)))) => {
                let answer = e.clone();
                self.fetch_miss(waiter, answer);
                None
            }
            _ => Some(done),
        }
    }

    /// `miss` is the store's answer, given to the GET when no peer can be asked.
    fn fetch_miss(&self, waiter: ReadWaiter, answer: StoreError) {
        let up = match self.fetch.peers.borrow().as_ref() {
            Some(peers) => peers.up(),
            None => Vec::new(),
        };
        let now = self.fetch.now_ms();
        let (addr, hops) = (waiter.addr, waiter.hops);
        let miss = self
            .fetch
            .fetcher
            .borrow_mut()
            .handle_miss(addr, hops, waiter, &up, now);
        match miss {
            Miss::Fetching => self.drain_fetch(),
            Miss::NotFound(w) => self.answer_read(&w, Err(answer)),
            Miss::Busy(w) => self.answer_read(&w, Err(StoreError::Busy(BusyCause::Fetches))),
        }
    }

    /// A peer's answer to one of this shard's tries.
    fn handle_fetch_answer(&self, try_id: u64, answer: Answer) {
        let now = self.fetch.now_ms();
        self.fetch
            .fetcher
            .borrow_mut()
            .handle_answer(try_id, answer, now);
        self.drain_fetch();
        self.drain();
    }

    /// Moves tries past their deadline on (the shard calls it every tick).
    pub fn handle_fetch_timeout(&self) {
        let now = self.fetch.now_ms();
        let due = self
            .fetch
            .fetcher
            .borrow()
            .poll_timeout()
            .is_some_and(|t| t <= now);
        if due {
            self.fetch.fetcher.borrow_mut().handle_timeout(now);
            self.drain_fetch();
            self.drain();
        }
    }

    /// Sends the fetcher's tries and answers the reads of finished fetches.
    fn drain_fetch(&self) {
        loop {
            let t = self.fetch.fetcher.borrow_mut().poll_try();
            let Some(t) = t else { break };
            let peers = self.fetch.peers.borrow().clone();
            match peers {
                Some(peers) => peers.send_try(t),
                None => {
                    let now = self.fetch.now_ms();
                    let mut f = self.fetch.fetcher.borrow_mut();
                    f.handle_answer(t.id, Answer::Failed, now);
                }
            }
        }
        loop {
            let done = self.fetch.fetcher.borrow_mut().poll_done();
            let Some(done) = done else { break };
            match done.bytes {
                Some(bytes) => {
                    for w in &done.waiters {
                        let range = clamp(&w.range, bytes.len() as u64);
                        let chunk = ReadChunk {
                            object_size: bytes.len() as u64,
                            bytes: bytes.slice(range.start as usize..range.end as usize),
                        };
                        self.answer_read(w, Ok(chunk));
                    }
                    if self.fetch.cache_fetched {
                        self.cache(done.addr, bytes);
                    }
                }
                None => {
                    for w in &done.waiters {
                        self.answer_read(w, Err(StoreError::NotFound(w.addr)));
                    }
                }
            }
        }
    }

    fn answer_read(&self, w: &ReadWaiter, result: Result<ReadChunk, StoreError>) {
        self.complete(StoreDone::Read { op: w.op, result });
    }

    /// Writes a fetched object to the store, like an upload: begin, then commit.
    fn cache(&self, addr: ObjectAddr, bytes: Bytes) {
        let seq = self.fetch.next_cache_op.get();
        self.fetch.next_cache_op.set(seq + 1);
        let put = OpId {
            shard: self.shard_id(),
            seq: CACHE_OP_BIT | seq,
        };
        let size = bytes.len() as u64;
        self.fetch.caching.borrow_mut().insert(put, (addr, bytes));
        self.execute(StoreOp::BeginPut { put, addr, size });
    }

    /// The store answered a step of caching: commit after a begin that reserved room; stop
    /// otherwise (already held, no room: the object was served all the same).
    fn cache_step(&self, done: StoreDone) {
        match done {
            StoreDone::BeginPut {
                put,
                result: Ok(Begun::New),
            } => {
                let entry = self.fetch.caching.borrow_mut().remove(&put);
                if let Some((addr, bytes)) = entry {
                    let body = Some(bytes);
                    self.execute(StoreOp::CommitPut { put, addr, body });
                }
            }
            other => {
                self.fetch.caching.borrow_mut().remove(&other.id());
            }
        }
    }
}
