//! A shard's one clock: the monotonic milliseconds since the shard started and unix time, read
//! together, once per loop turn, and given to the sans-IO core as [`Now`].

use ronode_shards::session::Now;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

#[derive(Debug, Clone, Copy)]
pub struct Clock {
    epoch: Instant,
}

impl Clock {
    /// A clock whose monotonic origin is now.
    pub fn start() -> Clock {
        Clock {
            epoch: Instant::now(),
        }
    }

    pub fn now(&self) -> Now {
        let mono_us = self.epoch.elapsed().as_micros() as u64;
        Now {
            mono_ms: mono_us / 1000,
            mono_us,
            unix_s: SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_secs()),
        }
    }

    /// The monotonic milliseconds alone (for what needs no unix time).
    pub fn now_ms(&self) -> u64 {
        self.epoch.elapsed().as_millis() as u64
    }

    /// `at` on this clock.
    pub fn ms_of(&self, at: Instant) -> u64 {
        at.saturating_duration_since(self.epoch).as_millis() as u64
    }
}
