//! [`SplitMix64`]: the small seeded PRNG for the choices the node core makes at random (gossip's
//! eager-push peers, dial backoff jitter). Seeded at construction (from configuration and the
//! shard), never from global state, so a run with the same seed and inputs makes the same
//! choices (ARCHITECTURE.md rule 8). Not cryptographic: these choices need spread, not secrecy.

/// SplitMix64 (Steele, Lea, Flood 2014): one 64-bit state, full period, good enough mixing for
/// sampling, and any seed (0 included) is fine.
#[derive(Debug, Clone)]
pub struct SplitMix64 {
    state: u64,
}

impl SplitMix64 {
    pub fn new(seed: u64) -> SplitMix64 {
        SplitMix64 { state: seed }
    }

    pub fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A number in `0..n` (`n` > 0), by multiply-shift (Lemire), whose bias is below 2^-32 for
    /// the small `n` used here.
    pub fn below(&mut self, n: usize) -> usize {
        debug_assert!(n > 0);
        ((u128::from(self.next_u64()) * n as u128) >> 64) as usize
    }

    /// Keeps a uniformly chosen `k` of `items` (all of them when there are no more than `k`),
    /// in the order chosen: a partial Fisher-Yates shuffle, `k` draws.
    pub fn choose<T>(&mut self, items: &mut Vec<T>, k: usize) {
        let k = k.min(items.len());
        for i in 0..k {
            let j = i + self.below(items.len() - i);
            items.swap(i, j);
        }
        items.truncate(k);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reproducible_and_spread() {
        let mut a = SplitMix64::new(7);
        let mut b = SplitMix64::new(7);
        assert_eq!(
            (0..8).map(|_| a.next_u64()).collect::<Vec<_>>(),
            (0..8).map(|_| b.next_u64()).collect::<Vec<_>>()
        );
        // Reference value of SplitMix64 seeded with 0.
        assert_eq!(SplitMix64::new(0).next_u64(), 0xe220_a839_7b1d_cdaf);
        let mut hits = [0u32; 5];
        let mut r = SplitMix64::new(1);
        for _ in 0..5_000 {
            hits[r.below(5)] += 1;
        }
        assert!(hits.iter().all(|&h| (850..1150).contains(&h)), "{hits:?}");
    }

    #[test]
    fn choose_takes_distinct_items() {
        let mut r = SplitMix64::new(3);
        for k in 0..6 {
            let mut v: Vec<u32> = (0..4).collect();
            r.choose(&mut v, k);
            assert_eq!(v.len(), k.min(4));
            let mut s = v.clone();
            s.sort_unstable();
            s.dedup();
            assert_eq!(s.len(), v.len());
        }
    }
}
