//! Per-session request rate limiting: a token bucket over explicit time (milliseconds passed in),
//! so the simulator and the node run the same arithmetic.

/// A token bucket: `rate_per_s` tokens a second, holding at most `burst`. Tokens are kept in
/// thousandths so that low rates refill smoothly without floating point.
#[derive(Debug, Clone)]
pub struct TokenBucket {
    rate_per_s: u64,
    burst_milli: u64,
    milli_tokens: u64,
    last_ms: u64,
}

impl TokenBucket {
    /// A full bucket at time `now_ms`. `rate_per_s` and `burst` are at least 1.
    pub fn new(rate_per_s: u32, burst: u32, now_ms: u64) -> TokenBucket {
        let burst_milli = u64::from(burst.max(1)) * 1000;
        TokenBucket {
            rate_per_s: u64::from(rate_per_s.max(1)),
            burst_milli,
            milli_tokens: burst_milli,
            last_ms: now_ms,
        }
    }

    /// Takes one token, or says how many milliseconds until one is there (the `retry_after_ms`
    /// of a 429).
    pub fn try_take(&mut self, now_ms: u64) -> Result<(), u64> {
        let elapsed = now_ms.saturating_sub(self.last_ms);
        self.last_ms = self.last_ms.max(now_ms);
        // rate tokens/s = rate milli-tokens/ms.
        self.milli_tokens =
            (self.milli_tokens + elapsed.saturating_mul(self.rate_per_s)).min(self.burst_milli);
        if self.milli_tokens >= 1000 {
            self.milli_tokens -= 1000;
            Ok(())
        } else {
            Err((1000 - self.milli_tokens).div_ceil(self.rate_per_s).max(1))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn burst_then_rate() {
        let mut b = TokenBucket::new(10, 3, 0);
        assert!(
            (0..3).all(|_| b.try_take(0).is_ok()),
            "the burst is there at once"
        );
        assert_eq!(b.try_take(0), Err(100), "one token every 100 ms at 10/s");
        assert_eq!(b.try_take(40), Err(60));
        assert!(b.try_take(100).is_ok());
        assert!(b.try_take(100).is_err());
    }

    #[test]
    fn refill_is_capped_by_the_burst_and_time_never_goes_back() {
        let mut b = TokenBucket::new(1000, 2, 0);
        assert!(b.try_take(0).is_ok() && b.try_take(0).is_ok());
        // An hour idle refills only the burst.
        assert!(b.try_take(3_600_000).is_ok() && b.try_take(3_600_000).is_ok());
        assert!(b.try_take(3_600_000).is_err());
        // A clock read that went backwards adds nothing.
        assert!(b.try_take(10).is_err());
        assert!(b.try_take(3_600_001).is_ok());
    }

    #[test]
    fn slow_rates_still_refill() {
        let mut b = TokenBucket::new(1, 1, 0);
        assert!(b.try_take(0).is_ok());
        assert_eq!(b.try_take(1), Err(999));
        assert!(b.try_take(1000).is_ok());
    }
}
