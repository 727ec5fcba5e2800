//! The store contract: the operations the plane asks of an object store ([`StoreOp`]), their
//! completions ([`StoreDone`]), and the synchronous [`ObjectStore`] trait that a store living in
//! RAM implements so that [`StoreOp::execute`] can run an operation on the spot.
//!
//! A store that does I/O (the engine's disk store on glommio DMA files) does not implement the
//! trait: it takes the same [`StoreOp`]s, runs them as tasks, and hands each [`StoreDone`] back to
//! the plane when its I/O finished. The semantics below are the contract for both.

use std::ops::Range;

use bytes::Bytes;
use ronode_proto::id::ObjectAddr;
use ronode_proto::reason::Reason;

use super::OpId;

/// What a [`StoreOp::Read`] brought back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReadChunk {
    /// The whole object's size in bytes (the plane learns it from the first read of a GET).
    pub object_size: u64,
    /// The bytes at offsets `clamp(range, object_size).start ..`, a prefix of the clamped range
    /// (see [`StoreOp::Read`] for how long it must be).
    pub bytes: Bytes,
}

/// How a store took a [`StoreOp::BeginPut`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Begun {
    /// Room for `size` bytes is reserved for this upload until its commit or abort.
    New,
    /// The store already holds the address: nothing was reserved, and the plane only checks
    /// the body's digest before answering `stored: false`.
    Duplicate,
}

/// How a [`StoreOp::CommitPut`] ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Committed {
    /// Whether this commit wrote the object (false: the store already held it).
    pub stored: bool,
}

/// Why a store operation failed. Each maps onto the label the plane answers with
/// ([`StoreError::reason`]).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StoreError {
    /// The store does not hold the address (404 `not_found`; 503 `busy` for the commit of a
    /// duplicate evicted while its body was checked).
    #[error("no object {0}")]
    NotFound(ObjectAddr),
    /// An object larger than the whole store (507 `store_full`).
    #[error("an object of {size} bytes is larger than the store ({capacity_bytes} bytes)")]
    TooLarge { size: u64, capacity_bytes: u64 },
    /// No room now (507 `store_full`): `reserved_bytes` of the store's `capacity_bytes` are
    /// promised to uploads in progress (a RAM store evicts every other object before this).
    #[error(
        "the store cannot take {size} more bytes: {reserved_bytes} of its {capacity_bytes} \
         bytes are held for uploads in progress"
    )]
    Full {
        size: u64,
        reserved_bytes: u64,
        capacity_bytes: u64,
    },
    /// The stored bytes do not hash to their address: the store quarantined the object and no
    /// longer holds it (counted by the store). It is a miss from then on, so it is answered like
    /// one, 404 `not_found` (not retryable), with this message saying why; a GET's first read
    /// falls through to fetch on miss like any miss.
    #[error("object {0} failed verification and was quarantined: this node no longer holds it")]
    Corrupt(ObjectAddr),
    /// The disk refused the write (ENOSPC, EDQUOT, a short write): 507 `store_full`, not
    /// retryable, counted by the store; nothing of the upload is left behind.
    #[error("the disk is full: {0}")]
    NoSpace(String),
    /// Not now, try again (503 `busy`, retryable); the cause says what happened.
    #[error("{0}")]
    Busy(BusyCause),
    /// A local I/O fault (500 `internal`).
    #[error("store I/O failed: {0}")]
    Io(String),
}

impl StoreError {
    /// The label the plane answers with.
    pub fn reason(&self) -> Reason {
        match self {
            StoreError::NotFound(_) | StoreError::Corrupt(_) => Reason::NotFound,
            StoreError::TooLarge { .. } | StoreError::Full { .. } | StoreError::NoSpace(_) => {
                Reason::StoreFull
            }
            StoreError::Io(_) => Reason::Internal,
            StoreError::Busy(_) => Reason::Busy,
        }
    }
}

/// Why an operation was answered 503 `busy`: the message a client reads says what happened
/// (only some of them are a full queue).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum BusyCause {
    /// The store's queue of reads waiting for an I/O place is full.
    #[error("the store's read queue is full")]
    ReadQueue,
    /// The store's commit queue is full: as many uploads begun and not finished as it admits.
    #[error("the store's commit queue is full")]
    CommitQueue,
    /// The channel to the shard that owns the address is full.
    #[error("the channel to the shard that owns this object is full")]
    Mesh,
    /// As many fetches from peers in progress on this shard as it allows.
    #[error("too many fetches from peers in progress on this shard")]
    Fetches,
    /// A read found the object's file damaged while an upload was replacing that file (or had
    /// just replaced it): the good bytes are (about to be) in place, so nothing is quarantined.
    #[error("the object's file was being replaced by an upload while this read checked it; read it again")]
    Replaced,
}

/// The part of `range` inside an object of `size` bytes: `min(start, e)..e` with
/// `e = min(end, size)` (PROTOCOL.md section 6.1; empty when `start >= size`).
pub fn clamp(range: &Range<u64>, size: u64) -> Range<u64> {
    let end = range.end.min(size);
    range.start.min(end)..end
}

/// A store operation the plane asks for. Every operation names the address it is about, so an
/// engine with several shards routes it to the store of `shard_of(addr)` (the operation is then
/// the bounded cross-shard message) and routes its [`StoreDone`] back by `OpId::shard`.
///
/// Order: the operations of one upload (same `put`) must run in the order the plane emitted them
/// (`BeginPut`, then `CommitPut` or `AbortPut`); anything else may run concurrently and complete
/// in any order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreOp {
    /// The size of `addr`, or `None` when the store does not hold it (HEAD). A store answers only
    /// sizes it has checked: a disk store answers from its index for an object verified since
    /// it started, and hashes any other first (`Corrupt` on a mismatch, like a read).
    Stat { op: OpId, addr: ObjectAddr },
    /// Bytes of `addr` at `clamp(range, size)` (GET). The store answers a prefix of that clamped
    /// range: all of it, or at least `min_len` bytes, a multiple of `min_len` (a disk store bounds
    /// its read window this way; the plane asks again for the rest). A RAM store answers all of it
    /// as a slice of the stored `Bytes`, without copying. A store never answers bytes that do not
    /// hash to the address: a disk store checks every piece it reads against the object's
    /// verified outboard (hashing the whole object first when it holds none) and answers
    /// `Corrupt` on a mismatch, also in the middle of a GET.
    ///
    /// `fetch` is `Some(hops)` on the first read of a GET, where `hops` is the GET's: a store that
    /// misses may then fetch the object from peers (PROTOCOL.md section 6.1.1) and answer from
    /// what it fetched. Later reads of the same GET carry `None`.
    Read {
        op: OpId,
        addr: ObjectAddr,
        range: Range<u64>,
        min_len: u64,
        fetch: Option<u8>,
    },
    /// Announces an upload of `size` bytes for `addr`: `Duplicate` when the store holds it and
    /// can vouch for its bytes (a disk store: verified since it started), otherwise room is
    /// reserved (`New`; the commit then writes the object, replacing a file the store could not
    /// vouch for) or refused (`TooLarge`, `Full`). A RAM store evicts nothing here: it evicts at
    /// commit, so a body that fails its digest costs no other object.
    BeginPut {
        put: OpId,
        addr: ObjectAddr,
        size: u64,
    },
    /// Commits a verified upload. `body: Some(bytes)`: the plane checked that `bytes` are the
    /// `size` bytes begun and hash to `addr`; the store makes them durable (a disk store: write
    /// a temporary file, fsync, rename, fsync the directory) and only then completes, releasing
    /// the reservation. `body: None`: the upload was a [`Begun::Duplicate`] whose body checked
    /// out; the store confirms it still holds `addr` (`NotFound` when it was evicted meanwhile).
    /// A commit that fails releases the reservation all the same.
    CommitPut {
        put: OpId,
        addr: ObjectAddr,
        body: Option<Bytes>,
    },
    /// Drops an upload: releases its reservation (and a disk store's temporary file). No
    /// completion; a no-op for an upload the store does not know (a duplicate, or one whose
    /// `BeginPut` failed).
    AbortPut { put: OpId, addr: ObjectAddr },
}

impl StoreOp {
    /// The address the operation is about (to route it to the shard that owns it).
    pub fn addr(&self) -> &ObjectAddr {
        match self {
            StoreOp::Stat { addr, .. }
            | StoreOp::Read { addr, .. }
            | StoreOp::BeginPut { addr, .. }
            | StoreOp::CommitPut { addr, .. }
            | StoreOp::AbortPut { addr, .. } => addr,
        }
    }

    /// The id its completion will carry (for `AbortPut`, the upload's id; it has no completion).
    pub fn id(&self) -> OpId {
        match *self {
            StoreOp::Stat { op, .. } | StoreOp::Read { op, .. } => op,
            StoreOp::BeginPut { put, .. }
            | StoreOp::CommitPut { put, .. }
            | StoreOp::AbortPut { put, .. } => put,
        }
    }

    /// Runs the operation on a synchronous store and returns its completion (`None` for
    /// `AbortPut`). What an engine with a RAM store does with every operation the plane emits.
    pub fn execute<S: ObjectStore + ?Sized>(self, store: &mut S) -> Option<StoreDone> {
        Some(match self {
            StoreOp::Stat { op, addr } => StoreDone::Stat {
                op,
                result: Ok(store.size(&addr)),
            },
            StoreOp::Read {
                op, addr, range, ..
            } => StoreDone::Read {
                op,
                result: store.read(&addr, range),
            },
            StoreOp::BeginPut { put, addr, size } => StoreDone::BeginPut {
                put,
                result: store.begin_put(put, &addr, size),
            },
            StoreOp::CommitPut { put, addr, body } => StoreDone::CommitPut {
                put,
                result: store.commit_put(put, &addr, body),
            },
            StoreOp::AbortPut { put, .. } => {
                store.abort_put(put);
                return None;
            }
        })
    }
}

/// The completion of a [`StoreOp`], handed to
/// [`ObjectsPlane::handle_store_done`](super::ObjectsPlane::handle_store_done).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreDone {
    /// `Ok(None)`: the store does not hold the address.
    Stat {
        op: OpId,
        result: Result<Option<u64>, StoreError>,
    },
    Read {
        op: OpId,
        result: Result<ReadChunk, StoreError>,
    },
    BeginPut {
        put: OpId,
        result: Result<Begun, StoreError>,
    },
    CommitPut {
        put: OpId,
        result: Result<Committed, StoreError>,
    },
}

impl StoreDone {
    /// The id of the operation this completes (routes it back to `OpId::shard`).
    pub fn id(&self) -> OpId {
        match *self {
            StoreDone::Stat { op, .. } | StoreDone::Read { op, .. } => op,
            StoreDone::BeginPut { put, .. } | StoreDone::CommitPut { put, .. } => put,
        }
    }

    /// The completion an engine hands back for `op` when it could not queue it (`why`: a full
    /// mesh channel or I/O queue): [`StoreError::Busy`]. `None` for `AbortPut` and `CommitPut`, which
    /// must not be dropped: an engine keeps them until they can be queued (an abort releases a
    /// reservation; a commit carries a body the client has sent whole and the store admitted at
    /// `BeginPut`, which is where an upload is refused for want of room).
    pub fn busy(op: &StoreOp, why: BusyCause) -> Option<StoreDone> {
        Some(match *op {
            StoreOp::Stat { op, .. } => StoreDone::Stat {
                op,
                result: Err(StoreError::Busy(why)),
            },
            StoreOp::Read { op, .. } => StoreDone::Read {
                op,
                result: Err(StoreError::Busy(why)),
            },
            StoreOp::BeginPut { put, .. } => StoreDone::BeginPut {
                put,
                result: Err(StoreError::Busy(why)),
            },
            StoreOp::CommitPut { .. } | StoreOp::AbortPut { .. } => return None,
        })
    }
}

/// A store whose operations complete synchronously (the RAM store, test doubles). Its index
/// (addresses and sizes) and its data are both in memory.
pub trait ObjectStore {
    /// The most bytes of objects the store holds (`store.capacity_bytes`).
    fn capacity_bytes(&self) -> u64;
    /// Bytes of the objects it holds now.
    fn used_bytes(&self) -> u64;
    /// The size of `addr`, if held.
    fn size(&self, addr: &ObjectAddr) -> Option<u64>;
    /// Whether it holds `addr`.
    fn contains(&self, addr: &ObjectAddr) -> bool {
        self.size(addr).is_some()
    }
    /// The bytes at `clamp(range, size)` of `addr`, all of them (see [`StoreOp::Read`]).
    fn read(&mut self, addr: &ObjectAddr, range: Range<u64>) -> Result<ReadChunk, StoreError>;
    /// See [`StoreOp::BeginPut`].
    fn begin_put(&mut self, put: OpId, addr: &ObjectAddr, size: u64) -> Result<Begun, StoreError>;
    /// See [`StoreOp::CommitPut`].
    fn commit_put(
        &mut self,
        put: OpId,
        addr: &ObjectAddr,
        body: Option<Bytes>,
    ) -> Result<Committed, StoreError>;
    /// See [`StoreOp::AbortPut`].
    fn abort_put(&mut self, put: OpId);
    /// Removes `addr`; whether it was held. (Operators and quarantine; no request removes.)
    fn remove(&mut self, addr: &ObjectAddr) -> bool;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clamp_follows_the_protocol() {
        assert_eq!(clamp(&(6..100), 11), 6..11);
        assert_eq!(clamp(&(2..5), 100), 2..5);
        assert_eq!(clamp(&(20..30), 11), 11..11);
        assert_eq!(clamp(&(0..u64::MAX), 0), 0..0);
    }

    #[test]
    fn errors_map_to_labels() {
        let a = ObjectAddr::of(b"abc");
        assert_eq!(StoreError::NotFound(a).reason(), Reason::NotFound);
        assert_eq!(
            StoreError::NotFound(a).to_string(),
            "no object b3:6437b3ac38465133ffb63b75273a8db548c558465d79db03fd359c6cd5bd9d85"
        );
        assert_eq!(
            StoreError::TooLarge {
                size: 2,
                capacity_bytes: 1
            }
            .reason(),
            Reason::StoreFull
        );
        assert_eq!(StoreError::Corrupt(a).reason(), Reason::NotFound);
        assert!(StoreError::Corrupt(a).to_string().contains("quarantined"));
        assert_eq!(
            StoreError::NoSpace("ENOSPC".into()).reason(),
            Reason::StoreFull
        );
        assert_eq!(StoreError::Busy(BusyCause::Mesh).reason(), Reason::Busy);
        assert_eq!(StoreError::Io("eio".into()).reason(), Reason::Internal);
    }
}
