//! [`DiskStore`]: a shard's durable object store on glommio DMA files, holding the objects whose
//! address the shard owns (`shard_of`). It follows the store contract of
//! `ronode_shards::objects::store`; the layout on disk is in [`layout`].
//!
//! - **Start** ([`DiskStore::open`]): the node has run [`layout::prepare`] (directories made,
//!   `tmp/` emptied of torn uploads); each shard lists its fan-out directories and indexes every
//!   file named as an address it owns, by size, without hashing ([`index`]). Other names are
//!   moved to `quarantine/` and counted.
//! - **Index-only operations** complete on the spot, with no I/O: `Stat`, `BeginPut`
//!   (reserve against `capacity_bytes`; no eviction, so full is `Full`), `AbortPut`, and the
//!   `CommitPut` of a duplicate. Running them synchronously is also what keeps an upload's order
//!   (`BeginPut` before its commit or abort).
//! - **I/O operations** return a future the engine runs as a task: `CommitPut` with a body
//!   (write to `tmp/`, fsync, rename, fsync the directory, then complete and release the
//!   reservation) and `Read`. At most [`MAX_IO_OPS`] run at once per shard, so memory stays
//!   bounded by that many buffers; beyond that a commit completes `Busy` (503) at once, and a
//!   read waits for a place, up to [`MAX_QUEUED_READS`] reads (then `Busy`).
//! - **Reads**: an object not verified since start is hashed first (BLAKE3 of the whole file
//!   against its address and indexed size). A mismatch, or a short or long file, moves the file
//!   to `quarantine/`, drops it from the index, counts it and answers `Corrupt` (500; the next
//!   GET is a 404). A verified object answers one window of the range ([`window`]), copied once
//!   from the DMA buffer into `Bytes`.
//!
//! - **Read cache**: O_DIRECT reads bypass the page cache, so the store keeps its own: objects
//!   read whole (at most one window) and objects just written are held, verified, in a bounded
//!   LRU ([`RamStore`], `store.cache_bytes` split over the shards, each object at most an eighth
//!   of it). A read of a cached object completes on the spot from memory, without I/O or a copy.
//!
//! A quarantine rename is not fsynced: if a crash undoes it, the file is indexed again at the
//! next start and refused again on its first read.

mod index;
mod io;
pub mod layout;

use std::cell::{Cell, RefCell};
use std::future::Future;
use std::ops::Range;
use std::path::PathBuf;
use std::pin::Pin;
use std::rc::Rc;

use bytes::Bytes;
use ronode_proto::id::ObjectAddr;
use ronode_shards::objects::store::clamp;
use ronode_shards::objects::{
    Committed, ObjectStore, OpId, RamStore, ReadChunk, StoreDone, StoreError, StoreOp,
};
use ronode_shards::stats::StoreUsage;
use ronode_shards::ShardId;

use index::{Entry, Index};

/// Reads waiting for an I/O place; one more is answered `Busy` (503).
pub const MAX_QUEUED_READS: usize = 512;

/// Disk operations (commits and reads) a shard runs at once; one more commit is answered
/// `Busy`, one more read waits (up to [`MAX_QUEUED_READS`]).
/// Each holds one buffer of at most `READ_WINDOW` bytes (a write or hash chunk is smaller).
pub const MAX_IO_OPS: usize = 16;

/// Most bytes one read answers when the range is longer: a GET streams from one window at a time.
pub const READ_WINDOW: u64 = 1024 * 1024;

/// What [`DiskStore::start`] made of an operation.
pub enum Started {
    /// Completed from the index (`None` for `AbortPut`).
    Done(Option<StoreDone>),
    /// Needs I/O: run the future as a task on this shard; it yields the completion.
    Io(Pin<Box<dyn Future<Output = StoreDone>>>),
}

/// See the module docs.
pub struct DiskStore {
    shard: ShardId,
    /// The objects directory.
    root: PathBuf,
    index: RefCell<Index>,
    /// [`MAX_IO_OPS`] places for disk I/O.
    io_places: Rc<glommio::sync::Semaphore>,
    /// Reads started and waiting for a place.
    queued_reads: Rc<Cell<usize>>,
    quarantined: Cell<u64>,
    /// Verified objects held in memory (see the module docs).
    cache: RefCell<RamStore>,
}

/// One of the [`MAX_IO_OPS`] places, given back when the operation's future ends or is dropped.
struct Slot(#[allow(dead_code)] glommio::sync::StaticPermit);

/// A read's place in the queue of reads waiting for I/O, given back when it gets a place or is
/// dropped.
struct Queued(Rc<Cell<usize>>);

impl Queued {
    fn new(count: &Rc<Cell<usize>>) -> Queued {
        count.set(count.get() + 1);
        Queued(count.clone())
    }
}

impl Drop for Queued {
    fn drop(&mut self) {
        self.0.set(self.0.get() - 1);
    }
}

/// The part of `range` (already clamped to the object) one read answers: all of it when it is
/// at most the window, otherwise the largest multiple of `min_len` within [`READ_WINDOW`] (and
/// at least `min_len`), as `StoreOp::Read` asks.
pub fn window(range: Range<u64>, min_len: u64) -> Range<u64> {
    let min_len = min_len.max(1);
    let most = (READ_WINDOW / min_len).max(1) * min_len;
    range.start..range.end.min(range.start.saturating_add(most))
}

impl DiskStore {
    /// Opens shard `shard`'s store under `root` (prepared by [`layout::prepare`]): indexes its
    /// objects from names and sizes and quarantines stray names. Blocking; runs before the
    /// shard serves.
    pub fn open(
        root: PathBuf,
        shard: ShardId,
        shard_count: u16,
        capacity_bytes: u64,
        cache_bytes: u64,
    ) -> std::io::Result<DiskStore> {
        let scan = layout::scan(&root, shard, shard_count)?;
        let mut index = Index::new(capacity_bytes);
        for (addr, size) in scan.objects {
            index.insert(addr, size, false);
        }
        let mut quarantined = 0;
        for stray in scan.strays {
            let name = stray.file_name().unwrap_or_default().to_string_lossy();
            std::fs::rename(&stray, layout::quarantine_path(&root, &name))?;
            quarantined += 1;
        }
        Ok(DiskStore {
            shard,
            root,
            index: RefCell::new(index),
            io_places: Rc::new(glommio::sync::Semaphore::new(MAX_IO_OPS as u64)),
            queued_reads: Rc::new(Cell::new(0)),
            quarantined: Cell::new(quarantined),
            cache: RefCell::new(RamStore::new(cache_bytes)),
        })
    }

    pub fn usage(&self) -> StoreUsage {
        let index = self.index.borrow();
        StoreUsage {
            objects: index.len() as u64,
            bytes: index.used_bytes(),
            quarantined: self.quarantined.get(),
        }
    }

    /// Takes an operation: completes it from the index, or returns the I/O to run.
    pub fn start(self: &Rc<Self>, op: StoreOp) -> Started {
        let done = |done| Started::Done(Some(done));
        let mut index = self.index.borrow_mut();
        match op {
            StoreOp::Stat { op, addr } => done(StoreDone::Stat {
                op,
                result: Ok(index.get(&addr).map(|e| e.size)),
            }),
            StoreOp::BeginPut { put, addr, size } => done(StoreDone::BeginPut {
                put,
                result: index.begin_put(put, &addr, size),
            }),
            StoreOp::AbortPut { put, .. } => {
                index.release(put);
                Started::Done(None)
            }
            StoreOp::CommitPut {
                put,
                addr,
                body: None,
            } => done(StoreDone::CommitPut {
                put,
                result: match index.get(&addr) {
                    Some(_) => Ok(Committed { stored: false }),
                    None => Err(StoreError::NotFound(addr)),
                },
            }),
            StoreOp::CommitPut {
                put,
                addr,
                body: Some(body),
            } => {
                let refused = match index.reservation(put) {
                    None => Some(Err(StoreError::Io(format!("upload {put} was never begun")))),
                    Some(n) if n != body.len() as u64 => Some(Err(StoreError::Io(format!(
                        "upload {put} began with {n} bytes but commits {}",
                        body.len()
                    )))),
                    // Another upload of the same bytes committed first.
                    Some(_) if index.get(&addr).is_some() => Some(Ok(Committed { stored: false })),
                    Some(_) => None,
                };
                let slot = if refused.is_none() { self.slot() } else { None };
                match (refused, slot) {
                    (None, Some(slot)) => {
                        Started::Io(Box::pin(self.clone().commit(slot, put, addr, body)))
                    }
                    (refused, _) => {
                        index.release(put);
                        done(StoreDone::CommitPut {
                            put,
                            result: refused.unwrap_or(Err(StoreError::Busy)),
                        })
                    }
                }
            }
            StoreOp::Read {
                op,
                addr,
                range,
                min_len,
                ..
            } => {
                let Some(entry) = index.get(&addr) else {
                    return done(StoreDone::Read {
                        op,
                        result: Err(StoreError::NotFound(addr)),
                    });
                };
                if let Ok(chunk) = self.cache.borrow_mut().read(&addr, range.clone()) {
                    return done(StoreDone::Read {
                        op,
                        result: Ok(chunk),
                    });
                }
                // Reads wait for an I/O place in a bounded queue (a burst of GETs for a cold
                // object is served, not refused); past the queue, busy.
                if self.queued_reads.get() >= MAX_QUEUED_READS {
                    return done(StoreDone::Read {
                        op,
                        result: Err(StoreError::Busy),
                    });
                }
                let queued = Queued::new(&self.queued_reads);
                let me = self.clone();
                Started::Io(Box::pin(async move {
                    let slot = me.wait_for_slot().await;
                    drop(queued);
                    // The object may have come into the cache while this read waited.
                    let cached = me.cache.borrow_mut().read(&addr, range.clone());
                    if let Ok(chunk) = cached {
                        return StoreDone::Read {
                            op,
                            result: Ok(chunk),
                        };
                    }
                    me.read(slot, op, addr, entry, range, min_len).await
                }))
            }
        }
    }

    /// An I/O place, waiting for one to free up.
    async fn wait_for_slot(&self) -> Slot {
        let permit = self.io_places.acquire_static_permit(1).await;
        Slot(permit.expect("the store never closes its semaphore"))
    }

    fn slot(&self) -> Option<Slot> {
        self.io_places.try_acquire_static_permit(1).ok().map(Slot)
    }

    async fn commit(
        self: Rc<Self>,
        _slot: Slot,
        put: OpId,
        addr: ObjectAddr,
        body: Bytes,
    ) -> StoreDone {
        let tmp = layout::tmp_path(&self.root, self.shard, put);
        let dest = layout::object_path(&self.root, &addr);
        let written = io::write_durably(&tmp, &dest, &body).await;
        let mut index = self.index.borrow_mut();
        index.release(put);
        if written.is_ok() {
            self.cache(addr, &body);
        }
        let result = match written {
            Ok(()) => Ok(Committed {
                stored: index.insert(addr, body.len() as u64, true),
            }),
            Err(e) => Err(StoreError::Io(format!("writing {addr}: {e}"))),
        };
        StoreDone::CommitPut { put, result }
    }

    async fn read(
        self: Rc<Self>,
        _slot: Slot,
        op: OpId,
        addr: ObjectAddr,
        entry: Entry,
        range: Range<u64>,
        min_len: u64,
    ) -> StoreDone {
        let path = layout::object_path(&self.root, &addr);
        let result = async {
            if !entry.verified {
                match io::verify(&path, &addr, entry.size).await {
                    Ok(true) => self.index.borrow_mut().mark_verified(&addr),
                    Ok(false) => return Err(self.quarantine(&addr).await),
                    Err(e) => return Err(self.io_failed(&addr, e)),
                }
            }
            let want = window(clamp(&range, entry.size), min_len);
            let whole = want == (0..entry.size);
            let bytes = if want.is_empty() {
                Bytes::new()
            } else {
                io::read_range(&path, want)
                    .await
                    .map_err(|e| self.io_failed(&addr, e))?
            };
            if whole {
                self.cache(addr, &bytes);
            }
            Ok(ReadChunk {
                object_size: entry.size,
                bytes,
            })
        }
        .await;
        StoreDone::Read { op, result }
    }

    /// Keeps a verified object in the read cache when it is small enough to be worth it.
    fn cache(&self, addr: ObjectAddr, bytes: &Bytes) {
        let mut cache = self.cache.borrow_mut();
        if bytes.len() as u64 <= cache.capacity_bytes() / 8 {
            cache.insert(addr, bytes.clone());
        }
    }

    /// Moves `addr`'s file to quarantine and forgets it (counted once, by whichever read found
    /// it first). The rename comes first: while the index still holds the address, no upload of
    /// it writes a new file that the rename could carry away.
    async fn quarantine(&self, addr: &ObjectAddr) -> StoreError {
        let name = hex::encode(addr.as_bytes());
        let from = layout::object_path(&self.root, addr);
        let moved = glommio::io::rename(&from, layout::quarantine_path(&self.root, &name)).await;
        self.cache.borrow_mut().remove(addr);
        if self.index.borrow_mut().remove(addr) {
            self.quarantined.set(self.quarantined.get() + 1);
            if let Err(e) = moved {
                tracing::error!(shard = %self.shard, %addr, "quarantining: {e}");
            }
        }
        StoreError::Corrupt(*addr)
    }

    /// An I/O error on an indexed object: a file gone from under the store is forgotten (404);
    /// anything else is a local fault.
    fn io_failed(&self, addr: &ObjectAddr, e: std::io::Error) -> StoreError {
        if e.kind() == std::io::ErrorKind::NotFound {
            self.index.borrow_mut().remove(addr);
            return StoreError::NotFound(*addr);
        }
        StoreError::Io(format!("reading {addr}: {e}"))
    }
}

#[cfg(test)]
mod tests;
