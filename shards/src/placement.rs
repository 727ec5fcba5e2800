//! Placement: which shard owns an id. A range partition of the top bits of the 32-byte id, so
//! each shard owns one contiguous slice of the keyspace and XOR-close ids live together
//! (ARCHITECTURE.md section 1).

use std::fmt;

/// Index of a shard, `0..shard_count`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ShardId(pub u16);

impl fmt::Display for ShardId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// The shard owning `id` among `shard_count` shards: the top 64 bits of the id, scaled onto
/// `0..shard_count`. Shard `s` owns ids whose top 64 bits lie in
/// `[ceil(s * 2^64 / n), ceil((s + 1) * 2^64 / n))`, a contiguous range, for any `n` (not only
/// powers of two).
///
/// # Panics
/// If `shard_count` is 0: a node always has at least one shard.
pub fn shard_of(id: &[u8; 32], shard_count: u16) -> ShardId {
    assert!(shard_count > 0, "shard_count must be at least 1");
    let top = u64::from_be_bytes(id[..8].try_into().expect("8 bytes"));
    ShardId(((u128::from(top) * u128::from(shard_count)) >> 64) as u16)
}

/// The smallest id prefix (top 64 bits) that `shard` owns among `shard_count`.
pub fn range_start(shard: ShardId, shard_count: u16) -> u64 {
    assert!(
        shard.0 < shard_count,
        "shard {shard} out of 0..{shard_count}"
    );
    let s = u128::from(shard.0);
    let n = u128::from(shard_count);
    // ceil(s * 2^64 / n), computed without overflow.
    (s << 64).div_ceil(n) as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id_with_top(top: u64) -> [u8; 32] {
        let mut id = [0xffu8; 32];
        id[..8].copy_from_slice(&top.to_be_bytes());
        id
    }

    #[test]
    fn one_shard_owns_everything() {
        assert_eq!(shard_of(&[0u8; 32], 1), ShardId(0));
        assert_eq!(shard_of(&[0xffu8; 32], 1), ShardId(0));
    }

    #[test]
    fn ranges_are_contiguous_and_cover_the_space() {
        for n in [1u16, 2, 3, 5, 7, 16, 64, 1000] {
            assert_eq!(shard_of(&id_with_top(0), n), ShardId(0));
            assert_eq!(shard_of(&id_with_top(u64::MAX), n), ShardId(n - 1));
            for s in 0..n {
                let start = range_start(ShardId(s), n);
                assert_eq!(shard_of(&id_with_top(start), n), ShardId(s), "n={n} s={s}");
                if s > 0 {
                    assert_eq!(
                        shard_of(&id_with_top(start - 1), n),
                        ShardId(s - 1),
                        "n={n} s={s}"
                    );
                }
            }
        }
    }

    #[test]
    fn power_of_two_counts_use_the_top_bits() {
        // With 4 shards, the top two bits name the shard.
        for (top_byte, shard) in [(0x00u8, 0u16), (0x40, 1), (0x80, 2), (0xc0, 3), (0xff, 3)] {
            let mut id = [0u8; 32];
            id[0] = top_byte;
            assert_eq!(shard_of(&id, 4), ShardId(shard));
        }
    }

    #[test]
    fn xor_close_ids_share_a_shard() {
        let mut a = [0u8; 32];
        a[0] = 0x5a;
        let mut b = a;
        b[31] ^= 1;
        assert_eq!(shard_of(&a, 8), shard_of(&b, 8));
    }
}
