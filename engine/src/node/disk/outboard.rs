//! Verified outboards: what lets the disk store check every byte it reads against the object's
//! address without hashing the whole object on each read.
//!
//! An object is cut into aligned [`PIECE`]-byte pieces (the last may be shorter). Each piece of
//! an object of more than one piece is a subtree of the object's BLAKE3 tree (an aligned
//! power-of-two run of chunks), so its chaining value (CV) is computed from its bytes and its
//! offset alone, and the CVs of all the pieces merge into the root, which is the address. An
//! [`Outboard`] is that CV list, built while the whole object is hashed once ([`Builder`]) and
//! kept only when it merges into the address: from then on any piece read from disk is checked
//! against its CV ([`Outboard::check`]), so a range is verified by reading only the pieces it
//! touches. An object of one piece (at most [`PIECE`] bytes) has no CVs: its one piece is checked
//! against the address itself.
//!
//! The outboard depends on the address only (the bytes are fixed by it), never on a particular
//! file: a file replaced by a re-upload is checked against the same outboard.
//!
//! [`Outboards`] holds them per shard in an LRU bounded by bytes ([`OUTBOARD_CACHE_BYTES`]); an
//! object whose outboard was evicted is hashed whole again before it is served.

use std::collections::{BTreeMap, HashMap};
use std::rc::Rc;

use blake3::hazmat::{
    merge_subtrees_non_root, merge_subtrees_root, ChainingValue, HasherExt, Mode,
};
use ronode_proto::id::ObjectAddr;

/// Bytes per verified piece: a power of two and a multiple of BLAKE3's 1 KiB chunk, equal to
/// the default `chunk_bytes`, so a GET stream's windows start on piece boundaries and reading
/// whole pieces costs nothing extra; a range GET reads at most one piece more at each end.
pub const PIECE: u64 = 64 * 1024;

/// Bytes of outboards one shard keeps (CVs plus [`ENTRY_OVERHEAD`] per object): 32 bytes per
/// 64 KiB piece, so 8 MiB covers about 16 GiB of objects per shard.
pub const OUTBOARD_CACHE_BYTES: u64 = 8 * 1024 * 1024;

/// What an outboard costs beyond its CVs (its map entries and header), for the bound.
const ENTRY_OVERHEAD: u64 = 96;

/// The pieces of an object of `size` bytes.
pub fn pieces(size: u64) -> u64 {
    size.div_ceil(PIECE)
}

/// The piece-aligned cover of `start..end` inside an object of `size` bytes.
pub fn cover(start: u64, end: u64, size: u64) -> std::ops::Range<u64> {
    let first = start / PIECE * PIECE;
    let last = end.next_multiple_of(PIECE).min(size);
    first..last.max(first)
}

/// The CVs of an object's pieces, proven against its address. See the module docs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outboard {
    addr: ObjectAddr,
    size: u64,
    /// One per piece when there are at least two; empty for an object of one piece.
    cvs: Box<[ChainingValue]>,
}

/// A piece whose bytes do not match its CV (or a piece of the wrong length).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BadPiece(pub u64);

impl Outboard {
    pub fn size(&self) -> u64 {
        self.size
    }

    /// Bytes it counts against [`OUTBOARD_CACHE_BYTES`].
    pub fn cost(&self) -> u64 {
        self.cvs.len() as u64 * 32 + ENTRY_OVERHEAD
    }

    /// The outboard of `bytes`, when they are the object `addr`.
    pub fn of_bytes(addr: &ObjectAddr, bytes: &[u8]) -> Option<Outboard> {
        let mut b = Builder::new(bytes.len() as u64);
        for piece in bytes.chunks(PIECE as usize) {
            b.update(piece);
        }
        b.finish(addr)
    }

    /// Checks `bytes`, the whole pieces starting at piece-aligned offset `start` (the last may be
    /// the object's shorter tail).
    pub fn check(&self, start: u64, bytes: &[u8]) -> Result<(), BadPiece> {
        let first = start / PIECE;
        if !start.is_multiple_of(PIECE) {
            return Err(BadPiece(first));
        }
        let end = start + bytes.len() as u64;
        if end > self.size {
            return Err(BadPiece(pieces(self.size)));
        }
        if self.cvs.is_empty() {
            // One piece: it is the whole object.
            let whole = bytes.len() as u64 == self.size;
            if whole && blake3::hash(bytes).as_bytes() == self.addr.as_bytes() {
                return Ok(());
            }
            return Err(BadPiece(0));
        }
        for (i, piece) in bytes.chunks(PIECE as usize).enumerate() {
            let index = first + i as u64;
            let expect_len = PIECE.min(self.size - index * PIECE);
            if piece.len() as u64 != expect_len
                || piece_cv(index, piece) != self.cvs[index as usize]
            {
                return Err(BadPiece(index));
            }
        }
        Ok(())
    }
}

/// The CV of piece `index` of an object of more than one piece.
fn piece_cv(index: u64, bytes: &[u8]) -> ChainingValue {
    blake3::Hasher::new()
        .set_input_offset(index * PIECE)
        .update(bytes)
        .finalize_non_root()
}

/// Merges the CVs of consecutive pieces into their subtree's CV, or into the root hash when they
/// are the whole object: BLAKE3's tree puts the largest power of two of pieces that leaves at
/// least one piece on the left.
fn merge(cvs: &[ChainingValue], root: bool) -> ChainingValue {
    debug_assert!(cvs.len() >= 2 || !root);
    if cvs.len() == 1 {
        return cvs[0];
    }
    // The largest power of two below the count.
    let left = 1usize << (usize::BITS - 1 - (cvs.len() - 1).leading_zeros());
    let (l, r) = (merge(&cvs[..left], false), merge(&cvs[left..], false));
    if root {
        *merge_subtrees_root(&l, &r, Mode::Hash).as_bytes()
    } else {
        merge_subtrees_non_root(&l, &r, Mode::Hash)
    }
}

/// Hashes an object of a known size as its bytes arrive in order, in any slicing, keeping the
/// CV of each piece; [`Builder::finish`] proves them against the address.
pub struct Builder {
    size: u64,
    /// Bytes taken so far.
    taken: u64,
    /// The hasher of the piece being filled.
    piece: blake3::Hasher,
    cvs: Vec<ChainingValue>,
}

impl Builder {
    pub fn new(size: u64) -> Builder {
        let n = pieces(size);
        Builder {
            size,
            taken: 0,
            piece: blake3::Hasher::new(),
            cvs: Vec::with_capacity(if n > 1 { n as usize } else { 0 }),
        }
    }

    /// Bytes taken so far.
    pub fn taken(&self) -> u64 {
        self.taken
    }

    /// Takes the next bytes; more than the announced size are ignored (and fail `finish`).
    pub fn update(&mut self, mut bytes: &[u8]) {
        let multi = pieces(self.size) > 1;
        while !bytes.is_empty() && self.taken < self.size {
            let in_piece = self.taken % PIECE;
            if in_piece == 0 && self.taken > 0 && multi {
                // The previous piece is full and more follows: close it.
                self.cvs.push(self.piece.finalize_non_root());
                self.piece = blake3::Hasher::new();
                self.piece.set_input_offset(self.taken);
            }
            let n = ((PIECE - in_piece) as usize)
                .min(bytes.len())
                .min((self.size - self.taken) as usize);
            self.piece.update(&bytes[..n]);
            self.taken += n as u64;
            bytes = &bytes[n..];
        }
        if !bytes.is_empty() {
            self.taken = u64::MAX; // longer than announced
        }
    }

    /// The outboard, when exactly `size` bytes were taken and they hash to `addr`.
    pub fn finish(mut self, addr: &ObjectAddr) -> Option<Outboard> {
        if self.taken != self.size {
            return None;
        }
        let root = if pieces(self.size) <= 1 {
            *self.piece.finalize().as_bytes()
        } else {
            self.cvs.push(self.piece.finalize_non_root());
            merge(&self.cvs, true)
        };
        (root == *addr.as_bytes()).then(|| Outboard {
            addr: *addr,
            size: self.size,
            cvs: self.cvs.into_boxed_slice(),
        })
    }
}

/// The outboards a shard holds, least recently used first out once their cost passes the bound.
pub struct Outboards {
    capacity_bytes: u64,
    used_bytes: u64,
    tick: u64,
    held: HashMap<ObjectAddr, (Rc<Outboard>, u64)>,
    /// Use order: tick -> address.
    order: BTreeMap<u64, ObjectAddr>,
}

impl Outboards {
    pub fn new(capacity_bytes: u64) -> Outboards {
        Outboards {
            capacity_bytes,
            used_bytes: 0,
            tick: 0,
            held: HashMap::new(),
            order: BTreeMap::new(),
        }
    }

    /// `addr`'s outboard, if held (and marks it used).
    pub fn get(&mut self, addr: &ObjectAddr) -> Option<Rc<Outboard>> {
        self.tick += 1;
        let (ob, tick) = self.held.get_mut(addr)?;
        self.order.remove(tick);
        *tick = self.tick;
        self.order.insert(self.tick, *addr);
        Some(ob.clone())
    }

    /// Whether `addr`'s outboard is held, without touching the use order.
    pub fn contains(&self, addr: &ObjectAddr) -> bool {
        self.held.contains_key(addr)
    }

    /// Keeps `ob`, evicting the least recently used outboards beyond the bound.
    pub fn insert(&mut self, ob: Rc<Outboard>) {
        let addr = ob.addr;
        self.remove(&addr);
        let cost = ob.cost();
        if cost > self.capacity_bytes {
            return;
        }
        while self.used_bytes + cost > self.capacity_bytes {
            let Some((_, old)) = self.order.pop_first() else {
                break;
            };
            if let Some((gone, _)) = self.held.remove(&old) {
                self.used_bytes -= gone.cost();
            }
        }
        self.tick += 1;
        self.used_bytes += cost;
        self.order.insert(self.tick, addr);
        self.held.insert(addr, (ob, self.tick));
    }

    pub fn remove(&mut self, addr: &ObjectAddr) {
        if let Some((ob, tick)) = self.held.remove(addr) {
            self.order.remove(&tick);
            self.used_bytes -= ob.cost();
        }
    }

    #[cfg(test)]
    pub fn used_bytes(&self) -> u64 {
        self.used_bytes
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn data(n: u64, seed: u8) -> Vec<u8> {
        (0..n)
            .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed) ^ (i >> 11) as u8)
            .collect()
    }

    #[test]
    fn piece_cvs_merge_into_the_address_for_every_shape() {
        let p = PIECE;
        for size in [
            0,
            1,
            1024,
            1025,
            p - 1,
            p,
            p + 1,
            2 * p,
            3 * p - 5,
            5 * p + 7,
            16 * p,
            17 * p + 1,
        ] {
            let bytes = data(size, 7);
            let addr = ObjectAddr::of(&bytes);
            let ob = Outboard::of_bytes(&addr, &bytes)
                .unwrap_or_else(|| panic!("size {size}: the CVs do not merge into the address"));
            assert_eq!(ob.size(), size);
            let n = pieces(size);
            assert_eq!(
                ob.cvs.len() as u64,
                if n > 1 { n } else { 0 },
                "size {size}"
            );

            // The same outboard whatever the slicing of the input.
            let mut b = Builder::new(size);
            for part in bytes.chunks(7_777) {
                b.update(part);
            }
            assert_eq!(b.finish(&addr).as_ref(), Some(&ob), "size {size}");

            // Every piece checks out, alone and together; a flipped byte in any piece does not.
            assert_eq!(ob.check(0, &bytes), Ok(()), "size {size}");
            for i in 0..n {
                let piece = cover(i * p, i * p + 1, size);
                let slice = &bytes[piece.start as usize..piece.end as usize];
                assert_eq!(
                    ob.check(piece.start, slice),
                    Ok(()),
                    "size {size} piece {i}"
                );
                let mut bad = slice.to_vec();
                let at = bad.len() / 2;
                bad[at] ^= 1;
                assert_eq!(ob.check(piece.start, &bad), Err(BadPiece(i)), "size {size}");
                if slice.len() > 1 {
                    let short = &slice[..slice.len() - 1];
                    assert!(
                        ob.check(piece.start, short).is_err(),
                        "short piece, size {size}"
                    );
                }
            }
            assert!(ob.check(1, &bytes[1.min(bytes.len())..]).is_err() || size == 0);

            // Other bytes, or a wrong length, are not the object.
            let other = data(size, 8);
            assert!(size == 0 || Outboard::of_bytes(&addr, &other).is_none());
            let mut longer = bytes.clone();
            longer.push(0);
            assert_eq!(Outboard::of_bytes(&addr, &longer), None, "size {size}");
            let mut b = Builder::new(size);
            b.update(&longer);
            assert_eq!(b.finish(&addr), None, "size {size}: longer input");
        }
    }

    #[test]
    fn covers_are_piece_aligned_and_clamped() {
        assert_eq!(cover(0, 1, 10), 0..10);
        assert_eq!(cover(PIECE + 3, PIECE + 4, 10 * PIECE), PIECE..2 * PIECE);
        assert_eq!(cover(PIECE, 3 * PIECE, 10 * PIECE), PIECE..3 * PIECE);
        assert_eq!(cover(PIECE - 1, PIECE + 1, PIECE + 9), 0..PIECE + 9);
        assert_eq!(cover(5, 5, 0), 0..0);
    }

    #[test]
    fn the_cache_is_bounded_by_bytes_and_evicts_the_least_recently_used() {
        let obs: Vec<Rc<Outboard>> = (0..4u8)
            .map(|seed| {
                let bytes = data(3 * PIECE, seed);
                Rc::new(Outboard::of_bytes(&ObjectAddr::of(&bytes), &bytes).unwrap())
            })
            .collect();
        let cost = obs[0].cost();
        let mut cache = Outboards::new(3 * cost);
        for ob in &obs[..3] {
            cache.insert(ob.clone());
        }
        assert_eq!(cache.used_bytes(), 3 * cost);
        assert!(cache.get(&obs[0].addr).is_some(), "touch the oldest");
        cache.insert(obs[3].clone());
        assert_eq!(cache.used_bytes(), 3 * cost, "one evicted to make room");
        assert!(
            !cache.contains(&obs[1].addr),
            "the least recently used goes"
        );
        assert!(cache.contains(&obs[0].addr) && cache.contains(&obs[3].addr));
        cache.remove(&obs[0].addr);
        assert_eq!(cache.used_bytes(), 2 * cost);
        let mut tiny = Outboards::new(cost - 1);
        tiny.insert(obs[0].clone());
        assert!(!tiny.contains(&obs[0].addr), "larger than the whole bound");
        assert_eq!(tiny.used_bytes(), 0);
    }
}
