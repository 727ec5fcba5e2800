//! [`ObjectsCounters`]: what the plane did, for the shard's stats to pick up
//! (`rejected_total{reason}` among them).

use ronode_proto::reason::Reason;

/// Monotonic counters of one [`ObjectsPlane`](super::ObjectsPlane). Gauges (uploads and reads in
/// progress, buffered bytes) are methods of the plane.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectsCounters {
    /// Requests answered with an error, by label (indexed like [`Reason::ALL`]).
    refused: [u64; Reason::ALL.len()],
    /// GETs answered with the object's bytes (200 or 206).
    pub gets_served: u64,
    /// HEADs answered 200.
    pub heads_served: u64,
    /// PUTs acknowledged with `stored: true`, and with `stored: false` (deduplicated).
    pub puts_stored: u64,
    pub puts_deduplicated: u64,
    /// Body bytes taken into PUTs in progress, and sent in GET answers.
    pub bytes_in: u64,
    pub bytes_out: u64,
    /// Body bytes of PUT streams already answered (refused, failed, or dropped) and thrown away.
    pub discarded_bytes: u64,
    /// Frames not for this plane (not app 1, or not a request): the caller's routing bug.
    pub ignored_frames: u64,
}

impl Default for ObjectsCounters {
    fn default() -> ObjectsCounters {
        ObjectsCounters {
            refused: [0; Reason::ALL.len()],
            gets_served: 0,
            heads_served: 0,
            puts_stored: 0,
            puts_deduplicated: 0,
            bytes_in: 0,
            bytes_out: 0,
            discarded_bytes: 0,
            ignored_frames: 0,
        }
    }
}

fn index(reason: Reason) -> usize {
    // `Reason::ALL` lists the variants in declaration order.
    let i = reason as usize;
    debug_assert_eq!(Reason::ALL[i], reason);
    i
}

impl ObjectsCounters {
    /// Requests refused with `reason`.
    pub fn refused(&self, reason: Reason) -> u64 {
        self.refused[index(reason)]
    }

    /// Every label with its count, zeros included, in [`Reason::ALL`] order.
    pub fn refusals(&self) -> impl Iterator<Item = (Reason, u64)> + '_ {
        Reason::ALL.into_iter().zip(self.refused.iter().copied())
    }

    /// Requests refused, all labels together.
    pub fn refused_total(&self) -> u64 {
        self.refused.iter().sum()
    }

    pub(crate) fn refuse(&mut self, reason: Reason) {
        self.refused[index(reason)] += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_by_label() {
        let mut c = ObjectsCounters::default();
        for r in Reason::ALL {
            assert_eq!(c.refused(r), 0);
        }
        c.refuse(Reason::BadPublisher);
        c.refuse(Reason::Truncated);
        c.refuse(Reason::Forbidden);
        c.refuse(Reason::Forbidden);
        assert_eq!(c.refused(Reason::Forbidden), 2);
        assert_eq!(c.refused(Reason::BadPublisher), 1);
        assert_eq!(c.refused_total(), 4);
        assert_eq!(c.refusals().count(), Reason::ALL.len());
        assert_eq!(
            c.refusals().find(|(r, _)| *r == Reason::Truncated),
            Some((Reason::Truncated, 1))
        );
    }
}
