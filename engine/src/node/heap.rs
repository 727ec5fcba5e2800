//! Giving memory back to the system after a burst of sessions ends.
//!
//! glibc's malloc keeps freed memory in its arenas: after 10,000 sessions closed, the node's RSS
//! stayed where the burst left it (measured with `scripts/session-memory.sh`). Each shard
//! estimates what its sessions hold (their buffers, plus [`SESSION_STATE_BYTES`] each) every
//! tick; once that fell [`TRIM_AFTER_BYTES`] below its peak since the last trim, it asks malloc
//! to return its free pages (`malloc_trim`). A busy node keeps its peak and never trims; a
//! burst that ends trims once.

use std::cell::Cell;

/// Roughly what an idle session holds besides its buffers: its TLS state and receive floor,
/// its task, socket wrapper and protocol state (about 13 KiB measured; rounded up).
pub const SESSION_STATE_BYTES: u64 = 16 * 1024;

/// How far the estimate must fall below its peak before a trim: rare enough that the trim's
/// cost (a walk of malloc's free lists) does not matter, and a burst of about a thousand
/// sessions, or 16 MiB of buffers, is returned.
pub const TRIM_AFTER_BYTES: u64 = 16 * 1024 * 1024;

/// One shard's trim state (see the module docs).
#[derive(Debug, Default)]
pub struct HeapTrim {
    peak: Cell<u64>,
}

impl HeapTrim {
    /// Called every tick with what the shard's sessions hold now (estimated): trims when that
    /// fell far enough below the peak. Returns whether it trimmed.
    pub fn tick(&self, held: u64) -> bool {
        let peak = self.peak.get().max(held);
        if peak - held >= TRIM_AFTER_BYTES {
            self.peak.set(held);
            trim();
            true
        } else {
            self.peak.set(peak);
            false
        }
    }
}

#[cfg(all(target_os = "linux", target_env = "gnu"))]
#[allow(unsafe_code)]
fn trim() {
    // SAFETY: malloc_trim takes no pointers; it only walks the allocator's own free lists
    // (under their locks) and madvises whole free pages away.
    unsafe {
        libc::malloc_trim(0);
    }
}

/// Other allocators (musl) give memory back on their own terms.
#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn trim() {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trims_once_when_a_burst_ends_and_never_while_busy() {
        let t = HeapTrim::default();
        // Growing and steady: no trim.
        for held in [0, 1 << 20, 64 << 20, 64 << 20, 60 << 20] {
            assert!(!t.tick(held), "{held}");
        }
        // The burst ends: one trim, then none until a new peak falls again.
        assert!(t.tick(1 << 20));
        assert!(!t.tick(1 << 20));
        assert!(!t.tick(10 << 20));
        assert!(!t.tick(0));
        assert!(!t.tick(20 << 20));
        assert!(t.tick(2 << 20));
    }
}
