//! The network model: per-link latency, jitter and loss drawn from the seed, as the seeds'
//! profiles say (intra: RTT 1-3 ms, jitter +-1 ms, loss < 0.1 %; inter: RTT 20-60 ms, jitter
//! +-5 ms, loss < 0.5 %).
//!
//! Links are TCP-like streams, so a lost segment is not lost bytes: it is a retransmit, modelled
//! as extra delay (the RTO, `RTO_MIN_MS` or twice the RTT if more, plus the RTT). Per direction,
//! a connection delivers in the order sent: an arrival is never earlier than the one before it
//! (head-of-line blocking, as TCP). Resolution is 1 ms; a one-way delay is at least 1 ms.

use crate::rng::SplitMix64;

/// The smallest retransmit timeout (Linux's `TCP_RTO_MIN`).
pub const RTO_MIN_MS: u64 = 200;

/// A latency profile.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Profile {
    pub name: &'static str,
    /// Each link's RTT is drawn in `rtt_min_ms..=rtt_max_ms`.
    pub rtt_min_ms: u64,
    pub rtt_max_ms: u64,
    /// Each delivery's one-way delay moves by up to this many ms either way.
    pub jitter_ms: u64,
    /// Each link's loss rate is drawn in `0..loss_max_ppm` (parts per million).
    pub loss_max_ppm: u64,
}

impl Profile {
    /// One data centre: RTT 1-3 ms, jitter +-1 ms, loss < 0.1 %.
    pub const INTRA: Profile = Profile {
        name: "intra",
        rtt_min_ms: 1,
        rtt_max_ms: 3,
        jitter_ms: 1,
        loss_max_ppm: 1_000,
    };
    /// Across regions: RTT 20-60 ms, jitter +-5 ms, loss < 0.5 %.
    pub const INTER: Profile = Profile {
        name: "inter",
        rtt_min_ms: 20,
        rtt_max_ms: 60,
        jitter_ms: 5,
        loss_max_ppm: 5_000,
    };

    pub fn by_name(name: &str) -> Option<Profile> {
        match name {
            "intra" => Some(Profile::INTRA),
            "inter" => Some(Profile::INTER),
            _ => None,
        }
    }

    /// The parameters of the link between nodes `a` and `b` (either order: links are
    /// symmetric), a pure function of the seed and the pair, so nothing is stored per link.
    pub fn link(&self, seed: u64, a: u32, b: u32) -> Link {
        let (lo, hi) = if a <= b { (a, b) } else { (b, a) };
        let mut r = SplitMix64::new(mix(
            seed,
            PURPOSE_LINK,
            (u64::from(lo) << 32) | u64::from(hi),
        ));
        let span = (self.rtt_max_ms - self.rtt_min_ms + 1) as usize;
        let rtt_ms = self.rtt_min_ms + r.below(span) as u64;
        let loss_ppm = r.below(self.loss_max_ppm.max(1) as usize) as u64;
        Link {
            rtt_ms,
            jitter_ms: self.jitter_ms,
            loss_ppm,
        }
    }
}

/// One link's parameters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Link {
    pub rtt_ms: u64,
    pub jitter_ms: u64,
    pub loss_ppm: u64,
}

/// How one delivery went: its delay, and whether it paid a retransmit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Delay {
    pub ms: u64,
    pub retransmitted: bool,
}

impl Link {
    /// The one-way base delay: half the RTT, rounded up.
    pub fn one_way_ms(&self) -> u64 {
        self.rtt_ms.div_ceil(2)
    }

    /// The retransmit penalty: the RTO, then the segment's trip again.
    pub fn retransmit_ms(&self) -> u64 {
        RTO_MIN_MS.max(2 * self.rtt_ms) + self.rtt_ms
    }

    /// One delivery's delay, drawing from `rng` (the network's stream).
    pub fn sample(&self, rng: &mut SplitMix64) -> Delay {
        let j = self.jitter_ms;
        let moved = self.one_way_ms() + rng.below((2 * j + 1) as usize) as u64;
        let ms = moved.saturating_sub(j).max(1);
        if self.loss_ppm > 0 && (rng.below(1_000_000) as u64) < self.loss_ppm {
            Delay {
                ms: ms + self.retransmit_ms(),
                retransmitted: true,
            }
        } else {
            Delay {
                ms,
                retransmitted: false,
            }
        }
    }
}

/// What a seed is split for: each purpose (and node) gets its own stream, so that adding a draw
/// for one purpose does not move another's.
pub const PURPOSE_LINK: u64 = 1;
pub const PURPOSE_NET: u64 = 2;
pub const PURPOSE_NODE: u64 = 3;
pub const PURPOSE_SCENARIO: u64 = 4;

/// A sub-seed for (`purpose`, `n`) from `seed`: two SplitMix64 rounds over the three.
pub fn mix(seed: u64, purpose: u64, n: u64) -> u64 {
    let mut r = SplitMix64::new(seed ^ purpose.wrapping_mul(0xd6e8_feb8_6659_fd93));
    let a = r.next_u64();
    SplitMix64::new(a ^ n.wrapping_mul(0x9e37_79b9_7f4a_7c15)).next_u64()
}
