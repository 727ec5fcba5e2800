//! The disk store's books, in memory and without I/O: which addresses the shard holds and how
//! big they are, which of their files are being replaced by an upload, and the bytes promised to
//! uploads in progress. (Which objects were verified is not here: an object is verified while
//! the store holds its outboard, see `outboard`.) Capacity follows the store contract: room is reserved at `BeginPut` against
//! `capacity_bytes` minus what is stored and reserved; a disk store evicts nothing, so full is
//! full (`Full`, 507).

use std::collections::{BTreeMap, HashMap};

use ronode_proto::id::ObjectAddr;
use ronode_shards::objects::{Begun, OpId, StoreError};

/// One object on disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Entry {
    /// Its file's size.
    pub size: u64,
    /// Times an upload replaced its file in this run: a read that found damage quarantines the
    /// file only if it is still the one it read.
    pub generation: u64,
    /// Commits writing a new file for it right now (a quarantine then leaves the file alone:
    /// good bytes are about to replace it).
    pub replacing: u32,
}

/// See the module docs.
#[derive(Debug)]
pub struct Index {
    capacity_bytes: u64,
    used_bytes: u64,
    /// Sum of `reservations`.
    reserved_bytes: u64,
    /// Lookups only; nothing iterates it, so its order never reaches an output.
    objects: HashMap<ObjectAddr, Entry>,
    /// Uploads begun and not yet committed or aborted: bounded by the planes' `max_puts`.
    reservations: BTreeMap<OpId, u64>,
}

impl Index {
    pub fn new(capacity_bytes: u64) -> Index {
        Index {
            capacity_bytes,
            used_bytes: 0,
            reserved_bytes: 0,
            objects: HashMap::new(),
            reservations: BTreeMap::new(),
        }
    }

    /// Objects held.
    pub fn len(&self) -> usize {
        self.objects.len()
    }

    pub fn used_bytes(&self) -> u64 {
        self.used_bytes
    }

    /// Bytes promised to uploads in progress (`store_reserved_bytes`).
    pub fn reserved_bytes(&self) -> u64 {
        self.reserved_bytes
    }

    pub fn get(&self, addr: &ObjectAddr) -> Option<Entry> {
        self.objects.get(addr).copied()
    }

    /// Adds an object found at start or just written. Whether it was new (false: its file was
    /// replaced, and the size is the new file's).
    pub fn insert(&mut self, addr: ObjectAddr, size: u64) -> bool {
        if let Some(entry) = self.objects.get_mut(&addr) {
            self.used_bytes = self.used_bytes - entry.size + size;
            entry.size = size;
            entry.generation += 1;
            return false;
        }
        let entry = Entry {
            size,
            generation: 0,
            replacing: 0,
        };
        self.objects.insert(addr, entry);
        self.used_bytes += size;
        true
    }

    /// A commit starts writing a new file for `addr` (see [`Entry::replacing`]); whether the
    /// store held it.
    pub fn start_replacing(&mut self, addr: &ObjectAddr) -> bool {
        let entry = self.objects.get_mut(addr);
        let held = entry.is_some();
        if let Some(entry) = entry {
            entry.replacing += 1;
        }
        held
    }

    /// The commit [`Index::start_replacing`] announced ended.
    pub fn end_replacing(&mut self, addr: &ObjectAddr) {
        if let Some(entry) = self.objects.get_mut(addr) {
            entry.replacing = entry.replacing.saturating_sub(1);
        }
    }

    /// Drops `addr` (quarantined or gone); whether it was held.
    pub fn remove(&mut self, addr: &ObjectAddr) -> bool {
        let Some(entry) = self.objects.remove(addr) else {
            return false;
        };
        self.used_bytes -= entry.size;
        true
    }

    /// See `StoreOp::BeginPut`: `Duplicate` only when the store holds `addr` and `verified` (it
    /// can vouch for the file). An upload of an object held but not verified reserves room like
    /// any other (its commit replaces the file); the file it replaces counts as free room for it.
    pub fn begin_put(
        &mut self,
        put: OpId,
        addr: &ObjectAddr,
        size: u64,
        verified: bool,
    ) -> Result<Begun, StoreError> {
        let replaces = self.objects.get(addr).map(|e| e.size);
        if replaces.is_some() && verified {
            return Ok(Begun::Duplicate);
        }
        if size > self.capacity_bytes {
            return Err(StoreError::TooLarge {
                size,
                capacity_bytes: self.capacity_bytes,
            });
        }
        // A second BeginPut with the same id would be the caller's bug; keep the books right.
        self.release(put);
        let used = self.used_bytes - replaces.unwrap_or(0).min(self.used_bytes);
        if used + self.reserved_bytes + size > self.capacity_bytes {
            return Err(StoreError::Full {
                size,
                reserved_bytes: self.reserved_bytes,
                capacity_bytes: self.capacity_bytes,
            });
        }
        self.reservations.insert(put, size);
        self.reserved_bytes += size;
        Ok(Begun::New)
    }

    /// Uploads begun and not yet committed or aborted (what the commit queue bounds).
    pub fn uploads(&self) -> usize {
        self.reservations.len()
    }

    /// The size reserved for `put`, still held (the commit releases it once its I/O ended).
    pub fn reservation(&self, put: OpId) -> Option<u64> {
        self.reservations.get(&put).copied()
    }

    /// Gives `put`'s reservation back; its size, if it had one.
    pub fn release(&mut self, put: OpId) -> Option<u64> {
        let size = self.reservations.remove(&put)?;
        self.reserved_bytes -= size;
        Some(size)
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::id;
    use super::*;

    #[test]
    fn reservations_bound_the_store_and_nothing_is_evicted() {
        let mut ix = Index::new(100);
        let (a, b, c) = (
            ObjectAddr::of(b"a"),
            ObjectAddr::of(b"b"),
            ObjectAddr::of(b"c"),
        );
        assert!(ix.insert(a, 60), "found at start");
        assert_eq!(
            ix.get(&a),
            Some(Entry {
                size: 60,
                generation: 0,
                replacing: 0,
            })
        );
        assert_eq!(ix.begin_put(id(1), &a, 60, true), Ok(Begun::Duplicate));
        assert_eq!(
            ix.begin_put(id(2), &b, 101, false),
            Err(StoreError::TooLarge {
                size: 101,
                capacity_bytes: 100
            })
        );
        assert_eq!(ix.begin_put(id(3), &b, 30, false), Ok(Begun::New));
        assert_eq!(
            ix.begin_put(id(4), &c, 20, false),
            Err(StoreError::Full {
                size: 20,
                reserved_bytes: 30,
                capacity_bytes: 100
            }),
            "60 stored + 30 reserved leave 10"
        );
        assert_eq!(ix.reservation(id(3)), Some(30));
        assert_eq!(ix.release(id(3)), Some(30));
        assert!(ix.insert(b, 30));
        assert!(!ix.insert(b, 30), "a second commit of the same bytes");
        assert_eq!(ix.get(&b).unwrap().generation, 1);
        assert_eq!((ix.len(), ix.used_bytes(), ix.reserved_bytes()), (2, 90, 0));
        assert_eq!(ix.release(id(3)), None);

        // A file not vouched for is replaced: its own bytes count as room for the upload.
        assert_eq!(ix.begin_put(id(6), &a, 60, false), Ok(Begun::New));
        assert_eq!(ix.reserved_bytes(), 60);
        assert!(ix.start_replacing(&a));
        assert_eq!(ix.get(&a).unwrap().replacing, 1);
        assert_eq!(ix.release(id(6)), Some(60));
        assert!(!ix.insert(a, 60), "replaced, not new");
        ix.end_replacing(&a);
        assert_eq!(ix.get(&a).unwrap().replacing, 0);
        assert_eq!((ix.len(), ix.used_bytes()), (2, 90), "counted once");
        // A truncated file found at start, replaced by the whole object: the size follows.
        assert!(!ix.insert(a, 50));
        assert_eq!(ix.used_bytes(), 80);
        assert!(!ix.start_replacing(&c), "not held");

        assert!(ix.remove(&a));
        assert!(!ix.remove(&a));
        assert_eq!(ix.used_bytes(), 30);
        assert_eq!(ix.begin_put(id(5), &c, 70, false), Ok(Begun::New));
    }
}
