//! [`DiskStore`]: a shard's durable object store on glommio DMA files, holding the objects whose
//! address the shard owns (`shard_of`). It follows the store contract of
//! `ronode_shards::objects::store`; the layout on disk is in [`layout`].
//!
//! - **Start** ([`DiskStore::open`]): the node has run [`layout::prepare`] (directories made,
//!   `tmp/` emptied of torn uploads); each shard lists its fan-out directories and indexes every
//!   file named as an address it owns, by size, without hashing ([`index`]). Other names are
//!   moved to `quarantine/` and counted.
//! - **Index-only operations** complete on the spot, with no I/O: `Stat` of a verified object
//!   (or of one not held), `BeginPut` (reserve against `capacity_bytes`; no eviction, so full
//!   is `Full`; past the commit queue's bound, `Busy`: [`queue`]), `AbortPut`, and the `CommitPut` of a duplicate. Running them synchronously is
//!   also what keeps an upload's order (`BeginPut` before its commit or abort).
//! - **I/O operations** return a future the engine runs as a task: `CommitPut` with a body
//!   (write to `tmp/`, fsync, rename, fsync the directory, then complete and release the
//!   reservation), `Read`, and the `Stat` of an object not verified in this run. At most
//!   [`MAX_IO_OPS`] run at once per shard, so memory stays bounded by that many buffers; beyond
//!   that a commit waits for a place (its upload was admitted at `BeginPut`, so it is never
//!   refused for want of one), and a read or a `Stat` waits for a place, up to
//!   [`MAX_QUEUED_READS`] of them (then `Busy`).
//! - **Reads never answer bytes that do not hash to the address** ([`verify`]). The store keeps
//!   a *verified outboard* per object ([`outboard`]): the BLAKE3 chaining values of its aligned
//!   64 KiB pieces, proven to merge into the address. It is built whenever the store has the
//!   whole object in hand: from the body at commit, or by hashing the whole file when a read or
//!   a HEAD meets an object whose outboard it does not hold (first touched since start, or
//!   evicted from the bounded [`outboard::Outboards`]). Every read from disk reads whole pieces
//!   and checks each against its CV before answering, so a range is verified too, and damage
//!   done to a file at any time is caught by the next read that touches it. An object is
//!   *verified* exactly while its outboard is held.
//! - **Damage** (a piece or the whole hash not matching, a file shorter than indexed, cut short
//!   while read): the file moves to `quarantine/`, the object leaves the index and the outboard
//!   cache, the store counts it and answers `Corrupt`: a miss (404 `not_found`, saying it was
//!   quarantined; a GET's first read falls through to fetch on miss). A GET whose stream is
//!   already open ends with that error in its END frame: no byte of a damaged piece is sent.
//! - **Uploads of a held object**: `BeginPut` is `Duplicate` only for a verified object; for
//!   one the store cannot vouch for, the upload proceeds and its commit writes the file again
//!   (tmp, fsync, rename over the old file, directory fsync) from the bytes just received.
//! - **Disk full** (ENOSPC, EDQUOT, a short write): the commit removes its temporary file,
//!   releases its reservation, leaves the index alone, counts it and answers `NoSpace` (507).
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
mod outboard;
mod queue;
mod verify;

use std::cell::{Cell, RefCell};
use std::future::Future;
use std::ops::Range;
use std::path::PathBuf;
use std::pin::Pin;
use std::rc::Rc;

use bytes::Bytes;
use ronode_proto::id::ObjectAddr;
use ronode_shards::objects::{
    BusyCause, Committed, ObjectStore, OpId, RamStore, StoreDone, StoreError, StoreOp,
};
use ronode_shards::stats::StoreUsage;
use ronode_shards::ShardId;

use index::Index;
use outboard::{Outboard, Outboards, OUTBOARD_CACHE_BYTES};

/// Reads waiting for an I/O place; one more is answered `Busy` (503).
pub const MAX_QUEUED_READS: usize = 512;

/// Disk operations (commits and reads) a shard runs at once; one more waits for a place (reads
/// up to [`MAX_QUEUED_READS`], commits as many as [`queue::MAX_QUEUED_COMMITS`] admits).
/// Each holds one buffer of at most `READ_WINDOW` bytes plus a piece at each end (a write or
/// hash chunk is smaller).
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
    /// Uploads refused because the disk was full.
    disk_full: Cell<u64>,
    /// Reads refused past [`MAX_QUEUED_READS`] and uploads refused past
    /// [`queue::MAX_QUEUED_COMMITS`] (503 `busy`).
    work_refused: Cell<u64>,
    /// Verified objects held in memory (see the module docs).
    cache: RefCell<RamStore>,
    /// The outboards of the verified objects, bounded by [`OUTBOARD_CACHE_BYTES`].
    outboards: RefCell<Outboards>,
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
            index.insert(addr, size);
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
            disk_full: Cell::new(0),
            work_refused: Cell::new(0),
            cache: RefCell::new(RamStore::new(cache_bytes)),
            outboards: RefCell::new(Outboards::new(OUTBOARD_CACHE_BYTES)),
        })
    }

    pub fn usage(&self) -> StoreUsage {
        let index = self.index.borrow();
        StoreUsage {
            objects: index.len() as u64,
            bytes: index.used_bytes(),
            quarantined: self.quarantined.get(),
            disk_full: self.disk_full.get(),
            reserved: index.reserved_bytes(),
        }
    }

    /// The store's bounded work queues, for `queue_depth{queue="work"}` and
    /// `queue_dropped_total{queue="work"}`: reads waiting for an I/O place plus uploads begun
    /// and not yet committed or aborted, and how many of either were refused since start.
    pub fn work(&self) -> (u64, u64) {
        let depth = self.queued_reads.get() + self.index.borrow().uploads();
        (depth as u64, self.work_refused.get())
    }

    /// Takes an operation: completes it from the index, or returns the I/O to run.
    pub fn start(self: &Rc<Self>, op: StoreOp) -> Started {
        let done = |done| Started::Done(Some(done));
        let mut index = self.index.borrow_mut();
        match op {
            // A size is answered from the index only once the object is verified in this run.
            StoreOp::Stat { op, addr } => match index.get(&addr) {
                Some(_) if !self.outboards.borrow().contains(&addr) => {
                    let busy = StoreDone::Stat {
                        op,
                        result: Err(StoreError::Busy(BusyCause::ReadQueue)),
                    };
                    self.queue_io(busy, move |me, slot| me.stat(slot, op, addr))
                }
                entry => done(StoreDone::Stat {
                    op,
                    result: Ok(entry.map(|e| e.size)),
                }),
            },
            StoreOp::BeginPut { put, addr, size } => {
                let verified = self.outboards.borrow().contains(&addr);
                let result = queue::begin_put(&mut index, put, &addr, size, verified);
                if matches!(result, Err(StoreError::Busy(_))) {
                    self.work_refused.set(self.work_refused.get() + 1);
                }
                done(StoreDone::BeginPut { put, result })
            }
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
                    // Another upload of the same bytes committed first (or a read verified the
                    // file meanwhile): nothing to write.
                    Some(_) if self.outboards.borrow().contains(&addr) => {
                        Some(Ok(Committed { stored: false }))
                    }
                    Some(_) => None,
                };
                match refused {
                    None => {
                        let me = self.clone();
                        Started::Io(Box::pin(async move {
                            let slot = me.wait_for_slot().await;
                            me.commit(slot, put, addr, body).await
                        }))
                    }
                    Some(result) => {
                        index.release(put);
                        done(StoreDone::CommitPut { put, result })
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
                if index.get(&addr).is_none() {
                    return done(StoreDone::Read {
                        op,
                        result: Err(StoreError::NotFound(addr)),
                    });
                }
                if let Ok(chunk) = self.cache.borrow_mut().read(&addr, range.clone()) {
                    return done(StoreDone::Read {
                        op,
                        result: Ok(chunk),
                    });
                }
                let busy = StoreDone::Read {
                    op,
                    result: Err(StoreError::Busy(BusyCause::ReadQueue)),
                };
                self.queue_io(busy, move |me, slot| async move {
                    // The object may have come into the cache while this read waited.
                    let cached = me.cache.borrow_mut().read(&addr, range.clone());
                    if let Ok(chunk) = cached {
                        return StoreDone::Read {
                            op,
                            result: Ok(chunk),
                        };
                    }
                    me.read(slot, op, addr, range, min_len).await
                })
            }
        }
    }

    /// Queues a read or a HEAD that needs I/O: it waits for an I/O place in a bounded queue (a
    /// burst of GETs for a cold object is served, not refused); past the queue, `busy`.
    fn queue_io<F, Fut>(self: &Rc<Self>, busy: StoreDone, run: F) -> Started
    where
        F: FnOnce(Rc<Self>, Slot) -> Fut + 'static,
        Fut: Future<Output = StoreDone> + 'static,
    {
        if self.queued_reads.get() >= MAX_QUEUED_READS {
            self.work_refused.set(self.work_refused.get() + 1);
            return Started::Done(Some(busy));
        }
        let queued = Queued::new(&self.queued_reads);
        let me = self.clone();
        Started::Io(Box::pin(async move {
            let slot = me.wait_for_slot().await;
            drop(queued);
            run(me, slot).await
        }))
    }

    /// An I/O place, waiting for one to free up.
    async fn wait_for_slot(&self) -> Slot {
        let permit = self.io_places.acquire_static_permit(1).await;
        Slot(permit.expect("the store never closes its semaphore"))
    }

    async fn commit(
        self: Rc<Self>,
        _slot: Slot,
        put: OpId,
        addr: ObjectAddr,
        body: Bytes,
    ) -> StoreDone {
        // Another upload of the same bytes may have committed (or a read verified the file)
        // while this one waited: nothing to write.
        if self.outboards.borrow().contains(&addr) {
            self.index.borrow_mut().release(put);
            let result = Ok(Committed { stored: false });
            return StoreDone::CommitPut { put, result };
        }
        let tmp = layout::tmp_path(&self.root, self.shard, put);
        let dest = layout::object_path(&self.root, &addr);
        // A file held but not verified is being replaced: a read that finds it damaged
        // meanwhile leaves it for this commit to overwrite.
        let replaces = self.index.borrow_mut().start_replacing(&addr);
        let written = io::write_durably(&tmp, &dest, &body).await;
        let mut index = self.index.borrow_mut();
        if replaces {
            index.end_replacing(&addr);
        }
        index.release(put);
        let result = match written {
            Ok(()) => {
                self.cache(addr, &body);
                // The plane checked that the body hashes to the address: its outboard is
                // proven here, without reading the file back.
                if let Some(ob) = Outboard::of_bytes(&addr, &body) {
                    self.outboards.borrow_mut().insert(Rc::new(ob));
                }
                let new = index.insert(addr, body.len() as u64);
                Ok(Committed {
                    stored: new || replaces,
                })
            }
            Err(e) if io::is_no_space(&e) => {
                self.disk_full.set(self.disk_full.get() + 1);
                Err(StoreError::NoSpace(format!(
                    "writing {addr} ({} bytes): {e}",
                    body.len()
                )))
            }
            Err(e) => Err(StoreError::Io(format!("writing {addr}: {e}"))),
        };
        StoreDone::CommitPut { put, result }
    }

    /// Keeps a verified object in the read cache when it is small enough to be worth it.
    fn cache(&self, addr: ObjectAddr, bytes: &Bytes) {
        let mut cache = self.cache.borrow_mut();
        if bytes.len() as u64 <= cache.capacity_bytes() / 8 {
            cache.insert(addr, bytes.clone());
        }
    }
}

#[cfg(test)]
mod tests;
