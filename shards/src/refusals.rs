//! The bound on refused requests per session: a client that keeps sending what the node refuses
//! (a flood of requests past `max_rps` answered 429, gossip EVENTs refused unanswered) costs the
//! node work on every one and is never disconnected by any single refusal. Past
//! [`MAX_REFUSALS`] refusals within [`REFUSAL_WINDOW_MS`] the session is closed (GOAWAY
//! `quota`, counted in `sessions_shed_total`). Time is passed in, as for the token bucket.
//!
//! The bound is far above what an honest client meets: one that honours `retry_after_ms` with
//! its 64 requests in flight is refused at most about 64 times per retry, a few hundred in a
//! window; a flood passes it within milliseconds.

pub use crate::limits::{MAX_REFUSALS, REFUSAL_WINDOW_MS};

/// Counts one session's refusals in fixed windows (the first refusal after a window ended opens
/// the next one).
#[derive(Debug, Clone, Default)]
pub struct RefusalWindow {
    since_ms: u64,
    count: u32,
}

impl RefusalWindow {
    /// Counts a refusal at `now_ms`: true when the session is past the bound and must close.
    pub fn refuse(&mut self, now_ms: u64) -> bool {
        if self.count == 0 || now_ms.saturating_sub(self.since_ms) >= REFUSAL_WINDOW_MS {
            self.since_ms = now_ms;
            self.count = 0;
        }
        self.count = self.count.saturating_add(1);
        self.count > MAX_REFUSALS
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_flood_passes_the_bound_and_a_trickle_never_does() {
        let mut w = RefusalWindow::default();
        for i in 0..MAX_REFUSALS {
            assert!(
                !w.refuse(1_000 + u64::from(i % 7)),
                "refusal {i} is within the bound"
            );
        }
        assert!(w.refuse(1_010), "one more within the window passes it");

        // The same number spread over more than a window each time: never.
        let mut w = RefusalWindow::default();
        let step = REFUSAL_WINDOW_MS / u64::from(MAX_REFUSALS) + 1;
        for i in 0..10 * u64::from(MAX_REFUSALS) {
            assert!(!w.refuse(i * step), "refusal {i} spread out");
        }
    }
}
