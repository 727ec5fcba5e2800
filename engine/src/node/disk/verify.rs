//! The disk store's checked reads (see the module docs of `disk`): a read or a HEAD first gets
//! the object's verified outboard (held, or built by hashing the whole file), a read then checks
//! every piece it read against it, and anything that does not match quarantines the object.

use std::ops::Range;
use std::rc::Rc;

use bytes::Bytes;
use ronode_proto::id::ObjectAddr;
use ronode_shards::objects::store::clamp;
use ronode_shards::objects::{BusyCause, ObjectStore, OpId, ReadChunk, StoreDone, StoreError};

use super::index::Entry;
use super::io::{self, Mismatch};
use super::outboard::{self, BadPiece, Outboard, PIECE};
use super::{layout, window, DiskStore, Slot};

impl DiskStore {
    /// A HEAD of an object not verified in this run: its size once its whole file hashed to
    /// its address.
    pub(super) async fn stat(self: Rc<Self>, _slot: Slot, op: OpId, addr: ObjectAddr) -> StoreDone {
        let result = self
            .verified(&addr)
            .await
            .map(|(entry, _)| Some(entry.size));
        StoreDone::Stat { op, result }
    }

    /// One window of `range` (see [`window`]), every byte of it checked against the outboard.
    pub(super) async fn read(
        self: Rc<Self>,
        _slot: Slot,
        op: OpId,
        addr: ObjectAddr,
        range: Range<u64>,
        min_len: u64,
    ) -> StoreDone {
        let result = async {
            let (entry, ob) = self.verified(&addr).await?;
            let size = entry.size;
            let want = window(clamp(&range, size), min_len);
            if want.is_empty() {
                return Ok(ReadChunk {
                    object_size: size,
                    bytes: Bytes::new(),
                });
            }
            // Whole pieces: a piece is checked only whole.
            let cover = outboard::cover(want.start, want.end, size);
            let path = layout::object_path(&self.root, &addr);
            let pieces = match io::read_range(&path, cover.clone()).await {
                Ok(pieces) => pieces,
                Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => {
                    let why = format!("its file was cut short: {e}");
                    return Err(self.quarantine(&addr, &entry, why));
                }
                Err(e) => return Err(self.io_failed(&addr, e)),
            };
            if let Err(BadPiece(i)) = ob.check(cover.start, &pieces) {
                let why = format!(
                    "bytes {}.. (piece {i}) do not match its verified outboard",
                    i * PIECE
                );
                return Err(self.quarantine(&addr, &entry, why));
            }
            let from = (want.start - cover.start) as usize;
            let bytes = pieces.slice(from..from + (want.end - want.start) as usize);
            if want == (0..size) {
                self.cache(addr, &bytes);
            }
            Ok(ReadChunk {
                object_size: size,
                bytes,
            })
        }
        .await;
        StoreDone::Read { op, result }
    }

    /// `addr`'s index entry and verified outboard: the one held, or one built now by hashing
    /// the whole file (which quarantines a file that is not the object).
    async fn verified(&self, addr: &ObjectAddr) -> Result<(Entry, Rc<Outboard>), StoreError> {
        let entry = self.index.borrow().get(addr);
        let Some(entry) = entry else {
            return Err(StoreError::NotFound(*addr));
        };
        let held = self.outboards.borrow_mut().get(addr);
        if let Some(ob) = held.filter(|ob| ob.size() == entry.size) {
            return Ok((entry, ob));
        }
        let path = layout::object_path(&self.root, addr);
        match io::hash_outboard(&path, addr, entry.size).await {
            Ok(Ok(ob)) => {
                let ob = Rc::new(ob);
                self.outboards.borrow_mut().insert(ob.clone());
                Ok((entry, ob))
            }
            Ok(Err(Mismatch::Size { found })) => {
                let why = format!("its file has {found} bytes, not {}", entry.size);
                Err(self.quarantine(addr, &entry, why))
            }
            Ok(Err(Mismatch::Digest)) => {
                let why = "its file does not hash to its address".to_owned();
                Err(self.quarantine(addr, &entry, why))
            }
            Err(e) => Err(self.io_failed(addr, e)),
        }
    }

    /// Moves `addr`'s file to quarantine and forgets it (counted once, by whichever read found
    /// it first), unless an upload replaced the file since `seen` was read or is replacing it
    /// now: good bytes are (about to be) in place, so the damage this read saw is answered
    /// `Busy` (503, a retry reads the new file).
    ///
    /// The rename is a blocking `std::fs::rename` on purpose: it and the index update then
    /// happen in one step of this shard, so no commit's rename can slip in between and have its
    /// good file carried away. It is one metadata operation, and quarantines are rare.
    pub(super) fn quarantine(&self, addr: &ObjectAddr, seen: &Entry, why: String) -> StoreError {
        let mut index = self.index.borrow_mut();
        let Some(now) = index.get(addr) else {
            return StoreError::Corrupt(*addr); // another read quarantined it first
        };
        if now.generation != seen.generation || now.replacing > 0 {
            return StoreError::Busy(BusyCause::Replaced);
        }
        let name = hex::encode(addr.as_bytes());
        let from = layout::object_path(&self.root, addr);
        if let Err(e) = std::fs::rename(&from, layout::quarantine_path(&self.root, &name)) {
            tracing::error!(shard = %self.shard, %addr, "quarantining: {e}");
        }
        index.remove(addr);
        self.outboards.borrow_mut().remove(addr);
        self.cache.borrow_mut().remove(addr);
        self.quarantined.set(self.quarantined.get() + 1);
        tracing::warn!(shard = %self.shard, %addr, "quarantined: {why}");
        StoreError::Corrupt(*addr)
    }

    /// An I/O error on an indexed object: a file gone from under the store is forgotten (404);
    /// anything else is a local fault.
    fn io_failed(&self, addr: &ObjectAddr, e: std::io::Error) -> StoreError {
        if e.kind() == std::io::ErrorKind::NotFound {
            self.index.borrow_mut().remove(addr);
            self.outboards.borrow_mut().remove(addr);
            self.cache.borrow_mut().remove(addr);
            return StoreError::NotFound(*addr);
        }
        StoreError::Io(format!("reading {addr}: {e}"))
    }
}
