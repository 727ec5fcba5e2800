//! [`Backoff`]: how long a peer waits before the next dial.

use crate::rng::SplitMix64;

/// Jittered exponential backoff (see the module docs of [`super`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    pub initial_ms: u64,
    pub max_ms: u64,
}

impl Default for Backoff {
    /// 1 s doubling up to 5 min (issue 9).
    fn default() -> Backoff {
        Backoff {
            initial_ms: 1_000,
            max_ms: 300_000,
        }
    }
}

impl Backoff {
    /// The wait after the `failures`-th failure in a row (`failures >= 1`): uniform in
    /// `[d/2, d]`, `d = min(max_ms, initial_ms * 2^(failures-1))`.
    pub fn delay_ms(&self, failures: u32, rng: &mut SplitMix64) -> u64 {
        let shift = failures.saturating_sub(1).min(40);
        let d = self
            .initial_ms
            .saturating_mul(1u64 << shift)
            .min(self.max_ms)
            .max(1);
        d / 2 + rng.below((d - d / 2 + 1) as usize) as u64
    }
}
