//! [`RamStore`]: the amnesia node's store, objects as `Bytes` in memory, bounded by bytes and
//! evicting the least recently used object when a new one needs room.
//!
//! Serving never copies: a read answers a slice of the stored `Bytes`. Evicting an object that a
//! GET is still streaming is safe and never cuts the answer short: the store drops its own
//! reference, the GET's slice keeps the memory alive until its last frame is sent, and the store
//! accounts the bytes free at once. The memory a node really holds can therefore pass
//! `capacity_bytes` by the objects evicted while being read, at most
//! `ObjectsConfig::max_reads` x `ObjectsConfig::max_bytes` (in practice far less).
//!
//! Determinism: the index is a `HashMap` used for lookups only; recency is a `BTreeMap` from a
//! use counter (not a clock) to the address, so the eviction order depends only on the sequence of
//! operations.

use std::collections::{BTreeMap, HashMap};
use std::ops::Range;

use bytes::Bytes;
use ronode_proto::id::ObjectAddr;

use super::store::{clamp, Begun, Committed, ObjectStore, ReadChunk, StoreError};
use super::OpId;

/// Counters of a [`RamStore`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RamStats {
    /// Objects written by a commit.
    pub stored: u64,
    /// Commits and begins that found the object already held.
    pub duplicates: u64,
    /// Objects evicted to make room, and their bytes.
    pub evictions: u64,
    pub evicted_bytes: u64,
}

#[derive(Debug)]
struct Entry {
    bytes: Bytes,
    /// Key of this object in `recency`.
    last_use: u64,
}

/// A bounded LRU object store in memory; see the module docs.
#[derive(Debug)]
pub struct RamStore {
    capacity_bytes: u64,
    used_bytes: u64,
    /// Sum of `reservations`: bytes promised to uploads in progress; never over the capacity.
    reserved_bytes: u64,
    objects: HashMap<ObjectAddr, Entry>,
    /// Least recently used first.
    recency: BTreeMap<u64, ObjectAddr>,
    /// Uploads begun and not yet committed or aborted. Bounded by the planes feeding the store
    /// (each has at most `ObjectsConfig::max_puts` uploads in progress).
    reservations: BTreeMap<OpId, u64>,
    use_counter: u64,
    stats: RamStats,
}

impl RamStore {
    /// An empty store holding at most `capacity_bytes` of objects.
    pub fn new(capacity_bytes: u64) -> RamStore {
        RamStore {
            capacity_bytes,
            used_bytes: 0,
            reserved_bytes: 0,
            objects: HashMap::new(),
            recency: BTreeMap::new(),
            reservations: BTreeMap::new(),
            use_counter: 0,
            stats: RamStats::default(),
        }
    }

    pub fn stats(&self) -> RamStats {
        self.stats
    }

    /// Objects held.
    pub fn len(&self) -> usize {
        self.objects.len()
    }

    pub fn is_empty(&self) -> bool {
        self.objects.is_empty()
    }

    /// Bytes promised to uploads in progress.
    pub fn reserved_bytes(&self) -> u64 {
        self.reserved_bytes
    }

    /// The held objects, least recently used first.
    pub fn lru_order(&self) -> impl Iterator<Item = &ObjectAddr> + '_ {
        self.recency.values()
    }

    /// Holds `bytes` as `addr` outside any upload (the disk store's read cache fills itself
    /// this way), evicting the least recently used objects for room. The caller vouches that the
    /// bytes hash to `addr`. `false` when it was held already or is larger than the whole store.
    pub fn insert(&mut self, addr: ObjectAddr, bytes: Bytes) -> bool {
        let size = bytes.len() as u64;
        if self.objects.contains_key(&addr) || size > self.capacity_bytes {
            return false;
        }
        self.reserved_bytes += size;
        self.evict_for_reservations();
        self.reserved_bytes -= size;
        self.used_bytes += size;
        self.use_counter += 1;
        self.recency.insert(self.use_counter, addr);
        let last_use = self.use_counter;
        self.objects.insert(addr, Entry { bytes, last_use });
        self.stats.stored += 1;
        true
    }

    /// Marks `addr` most recently used.
    fn touch(&mut self, addr: &ObjectAddr) {
        if let Some(entry) = self.objects.get_mut(addr) {
            self.recency.remove(&entry.last_use);
            self.use_counter += 1;
            entry.last_use = self.use_counter;
            self.recency.insert(self.use_counter, *addr);
        }
    }

    /// Evicts least recently used objects until `used + reserved <= capacity`. Always succeeds:
    /// reservations alone never pass the capacity.
    fn evict_for_reservations(&mut self) {
        while self.used_bytes + self.reserved_bytes > self.capacity_bytes {
            let Some((_, victim)) = self.recency.pop_first() else {
                break;
            };
            let entry = self
                .objects
                .remove(&victim)
                .expect("recency lists held objects");
            let size = entry.bytes.len() as u64;
            self.used_bytes -= size;
            self.stats.evictions += 1;
            self.stats.evicted_bytes += size;
        }
    }

    fn release(&mut self, put: OpId) -> Option<u64> {
        let size = self.reservations.remove(&put)?;
        self.reserved_bytes -= size;
        Some(size)
    }
}

impl ObjectStore for RamStore {
    fn capacity_bytes(&self) -> u64 {
        self.capacity_bytes
    }

    fn used_bytes(&self) -> u64 {
        self.used_bytes
    }

    fn size(&self, addr: &ObjectAddr) -> Option<u64> {
        self.objects.get(addr).map(|e| e.bytes.len() as u64)
    }

    fn read(&mut self, addr: &ObjectAddr, range: Range<u64>) -> Result<ReadChunk, StoreError> {
        let entry = self.objects.get(addr).ok_or(StoreError::NotFound(*addr))?;
        let object_size = entry.bytes.len() as u64;
        let r = clamp(&range, object_size);
        let bytes = entry.bytes.slice(r.start as usize..r.end as usize);
        self.touch(addr);
        Ok(ReadChunk { object_size, bytes })
    }

    fn begin_put(&mut self, put: OpId, addr: &ObjectAddr, size: u64) -> Result<Begun, StoreError> {
        if self.objects.contains_key(addr) {
            self.touch(addr);
            self.stats.duplicates += 1;
            return Ok(Begun::Duplicate);
        }
        if size > self.capacity_bytes {
            return Err(StoreError::TooLarge {
                size,
                capacity_bytes: self.capacity_bytes,
            });
        }
        if self.reserved_bytes + size > self.capacity_bytes {
            return Err(StoreError::Full {
                size,
                reserved_bytes: self.reserved_bytes,
                capacity_bytes: self.capacity_bytes,
            });
        }
        // A second BeginPut with the same id would be the caller's bug; keep the books right.
        self.release(put);
        self.reservations.insert(put, size);
        self.reserved_bytes += size;
        Ok(Begun::New)
    }

    fn commit_put(
        &mut self,
        put: OpId,
        addr: &ObjectAddr,
        body: Option<Bytes>,
    ) -> Result<Committed, StoreError> {
        let Some(body) = body else {
            // A duplicate whose body checked out: still here?
            if !self.objects.contains_key(addr) {
                return Err(StoreError::NotFound(*addr));
            }
            self.touch(addr);
            return Ok(Committed { stored: false });
        };
        let reserved = self
            .release(put)
            .ok_or_else(|| StoreError::Io(format!("upload {put} was never begun")))?;
        if reserved != body.len() as u64 {
            return Err(StoreError::Io(format!(
                "upload {put} began with {reserved} bytes but commits {}",
                body.len()
            )));
        }
        if self.objects.contains_key(addr) {
            // Another upload of the same object committed first.
            self.touch(addr);
            self.stats.duplicates += 1;
            return Ok(Committed { stored: false });
        }
        // Room for the new object as if it were still reserved, then move it to `used`.
        self.reserved_bytes += reserved;
        self.evict_for_reservations();
        self.reserved_bytes -= reserved;
        self.used_bytes += reserved;
        self.use_counter += 1;
        self.recency.insert(self.use_counter, *addr);
        self.objects.insert(
            *addr,
            Entry {
                bytes: body,
                last_use: self.use_counter,
            },
        );
        self.stats.stored += 1;
        Ok(Committed { stored: true })
    }

    fn abort_put(&mut self, put: OpId) {
        self.release(put);
    }

    fn remove(&mut self, addr: &ObjectAddr) -> bool {
        let Some(entry) = self.objects.remove(addr) else {
            return false;
        };
        self.recency.remove(&entry.last_use);
        self.used_bytes -= entry.bytes.len() as u64;
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::placement::ShardId;

    fn id(seq: u64) -> OpId {
        OpId {
            shard: ShardId(0),
            seq,
        }
    }

    fn put(store: &mut RamStore, seq: u64, body: &[u8]) -> Result<Committed, StoreError> {
        let addr = ObjectAddr::of(body);
        match store.begin_put(id(seq), &addr, body.len() as u64)? {
            Begun::New => store.commit_put(id(seq), &addr, Some(Bytes::copy_from_slice(body))),
            Begun::Duplicate => store.commit_put(id(seq), &addr, None),
        }
    }

    #[test]
    fn stores_reads_slices_and_dedups() {
        let mut s = RamStore::new(100);
        assert_eq!(
            put(&mut s, 1, b"hello world"),
            Ok(Committed { stored: true })
        );
        let a = ObjectAddr::of(b"hello world");
        assert_eq!(s.size(&a), Some(11));
        assert_eq!(s.used_bytes(), 11);
        let chunk = s.read(&a, 6..100).unwrap();
        assert_eq!(chunk.object_size, 11);
        assert_eq!(&chunk.bytes[..], b"world");
        assert_eq!(&s.read(&a, 20..30).unwrap().bytes[..], b"");
        assert_eq!(
            put(&mut s, 2, b"hello world"),
            Ok(Committed { stored: false })
        );
        assert_eq!(s.used_bytes(), 11);
        assert_eq!(s.stats().duplicates, 1);
        let missing = ObjectAddr::of(b"abc");
        assert_eq!(s.read(&missing, 0..1), Err(StoreError::NotFound(missing)));
        assert!(s.remove(&a));
        assert!(!s.remove(&a));
        assert_eq!(s.used_bytes(), 0);
        assert!(s.is_empty());
    }

    #[test]
    fn insert_outside_an_upload_evicts_and_refuses_what_cannot_fit() {
        let mut s = RamStore::new(10);
        let (a, b) = (Bytes::from_static(b"aaaaaa"), Bytes::from_static(b"bbbbbb"));
        assert!(s.insert(ObjectAddr::of(&a), a.clone()));
        assert!(!s.insert(ObjectAddr::of(&a), a.clone()), "held already");
        assert!(s.insert(ObjectAddr::of(&b), b.clone()));
        assert!(!s.contains(&ObjectAddr::of(&a)), "the older one made room");
        assert_eq!(s.used_bytes(), 6);
        assert!(
            !s.insert(ObjectAddr::of(b"x"), Bytes::from(vec![0; 11])),
            "larger than all"
        );
    }

    #[test]
    fn reads_share_the_stored_memory() {
        let mut s = RamStore::new(100);
        put(&mut s, 1, b"0123456789").unwrap();
        let a = ObjectAddr::of(b"0123456789");
        let x = s.read(&a, 0..10).unwrap().bytes;
        let y = s.read(&a, 2..4).unwrap().bytes;
        assert_eq!(y.as_ptr(), x[2..].as_ptr());
    }

    #[test]
    fn evicts_least_recently_used_at_commit() {
        let mut s = RamStore::new(30);
        let (a, b, c) = (vec![1u8; 10], vec![2u8; 10], vec![3u8; 10]);
        for (i, body) in [&a, &b, &c].into_iter().enumerate() {
            put(&mut s, i as u64, body).unwrap();
        }
        // Reading `a` makes `b` the least recently used.
        s.read(&ObjectAddr::of(&a), 0..1).unwrap();
        let d = vec![4u8; 15];
        // Beginning evicts nothing; the commit evicts `b` then `c`.
        assert_eq!(s.begin_put(id(9), &ObjectAddr::of(&d), 15), Ok(Begun::New));
        assert_eq!(s.len(), 3);
        s.commit_put(id(9), &ObjectAddr::of(&d), Some(Bytes::from(d.clone())))
            .unwrap();
        assert!(!s.contains(&ObjectAddr::of(&b)));
        assert!(!s.contains(&ObjectAddr::of(&c)));
        assert!(s.contains(&ObjectAddr::of(&a)));
        assert_eq!(s.used_bytes(), 25);
        assert_eq!(s.stats().evictions, 2);
        assert_eq!(s.stats().evicted_bytes, 20);
        let order: Vec<_> = s.lru_order().copied().collect();
        assert_eq!(order, vec![ObjectAddr::of(&a), ObjectAddr::of(&d)]);
    }

    #[test]
    fn refuses_what_cannot_fit() {
        let mut s = RamStore::new(20);
        let big = ObjectAddr::of(&[0u8; 21]);
        assert_eq!(
            s.begin_put(id(1), &big, 21),
            Err(StoreError::TooLarge {
                size: 21,
                capacity_bytes: 20
            })
        );
        let x = ObjectAddr::of(b"x");
        assert_eq!(s.begin_put(id(2), &x, 15), Ok(Begun::New));
        // Reservations are never evicted.
        let y = ObjectAddr::of(b"y");
        assert_eq!(
            s.begin_put(id(3), &y, 6),
            Err(StoreError::Full {
                size: 6,
                reserved_bytes: 15,
                capacity_bytes: 20
            })
        );
        s.abort_put(id(2));
        assert_eq!(s.reserved_bytes(), 0);
        assert_eq!(s.begin_put(id(3), &y, 6), Ok(Begun::New));
        // A commit must bring the bytes it began with.
        assert!(matches!(
            s.commit_put(id(3), &y, Some(Bytes::from_static(b"y"))),
            Err(StoreError::Io(_))
        ));
        assert_eq!(s.reserved_bytes(), 0);
        // A duplicate commit of an object no longer held.
        assert_eq!(s.commit_put(id(4), &x, None), Err(StoreError::NotFound(x)));
    }
}
