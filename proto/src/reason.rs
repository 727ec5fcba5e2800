//! Reject and error labels: the one vocabulary shared by metrics, logs, error bodies and the
//! inspector (PROTOCOL.md sections 2.4 and 4).

use std::fmt;

/// Every label a node can put in `rejected_total{reason}` or in an error body's `reason`.
///
/// The order of the frame-level variants follows PROTOCOL.md's reject table (section 2.4); the checks run in that
/// order and the first that fails names the reject.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Reason {
    // --- frame level (PROTOCOL.md section 2, in table order) ---
    Truncated,
    BadLen,
    Oversize,
    BadVersion,
    BadFlags,
    CapOnNonStart,
    CapOutOfBounds,
    BadCode,
    BadComp,
    RatioCap,
    // --- session level ---
    BadSequence,
    UnknownApp,
    Malformed,
    // --- operations (PROTOCOL.md section 4) ---
    Unauthorized,
    Forbidden,
    NotFound,
    SlowClient,
    Quota,
    Internal,
    Busy,
    NotReady,
    Timeout,
    StoreFull,
    BadDigest,
    BadSig,
    Stale,
    BadTs,
    BadTtl,
    BadPublisher,
}

impl Reason {
    /// All labels, so metrics can expose every one at zero from the first scrape.
    pub const ALL: [Reason; 29] = [
        Reason::Truncated,
        Reason::BadLen,
        Reason::Oversize,
        Reason::BadVersion,
        Reason::BadFlags,
        Reason::CapOnNonStart,
        Reason::CapOutOfBounds,
        Reason::BadCode,
        Reason::BadComp,
        Reason::RatioCap,
        Reason::BadSequence,
        Reason::UnknownApp,
        Reason::Malformed,
        Reason::Unauthorized,
        Reason::Forbidden,
        Reason::NotFound,
        Reason::SlowClient,
        Reason::Quota,
        Reason::Internal,
        Reason::Busy,
        Reason::NotReady,
        Reason::Timeout,
        Reason::StoreFull,
        Reason::BadDigest,
        Reason::BadSig,
        Reason::Stale,
        Reason::BadTs,
        Reason::BadTtl,
        Reason::BadPublisher,
    ];

    /// The label as written on the wire, in metrics and in logs.
    pub const fn label(self) -> &'static str {
        match self {
            Reason::Truncated => "truncated",
            Reason::BadLen => "bad_len",
            Reason::Oversize => "oversize",
            Reason::BadVersion => "bad_version",
            Reason::BadFlags => "bad_flags",
            Reason::CapOnNonStart => "cap_on_non_start",
            Reason::CapOutOfBounds => "cap_out_of_bounds",
            Reason::BadCode => "bad_code",
            Reason::BadComp => "bad_comp",
            Reason::RatioCap => "ratio_cap",
            Reason::BadSequence => "bad_sequence",
            Reason::UnknownApp => "unknown_app",
            Reason::Malformed => "malformed",
            Reason::Unauthorized => "unauthorized",
            Reason::Forbidden => "forbidden",
            Reason::NotFound => "not_found",
            Reason::SlowClient => "slow_client",
            Reason::Quota => "quota",
            Reason::Internal => "internal",
            Reason::Busy => "busy",
            Reason::NotReady => "not_ready",
            Reason::Timeout => "timeout",
            Reason::StoreFull => "store_full",
            Reason::BadDigest => "bad_digest",
            Reason::BadSig => "bad_sig",
            Reason::Stale => "stale",
            Reason::BadTs => "bad_ts",
            Reason::BadTtl => "bad_ttl",
            Reason::BadPublisher => "bad_publisher",
        }
    }

    /// The status an error with this label carries. `truncated` has none on the wire (the
    /// session is closed); 400 is returned for it so callers never need an `Option`.
    pub const fn status(self) -> u16 {
        match self {
            Reason::Oversize => 413,
            Reason::Unauthorized => 401,
            Reason::Forbidden => 403,
            Reason::NotFound => 404,
            Reason::SlowClient => 408,
            Reason::Quota => 429,
            Reason::Internal => 500,
            Reason::Busy | Reason::NotReady => 503,
            Reason::Timeout => 504,
            Reason::StoreFull => 507,
            _ => 400,
        }
    }

    /// Whether a client may retry the same request later and expect success.
    pub const fn retryable(self) -> bool {
        matches!(
            self,
            Reason::Quota | Reason::Busy | Reason::NotReady | Reason::Timeout | Reason::Internal
        )
    }

    /// Whether the session is closed after this reject: every row of PROTOCOL.md's reject table (section 2.4)
    /// (frame, sequence, app and message faults) closes it; operation errors answer one request.
    pub const fn closes_session(self) -> bool {
        (self as u8) <= (Reason::Malformed as u8)
    }

    /// Parses a label back (clients map error bodies to typed errors with it).
    pub fn from_label(label: &str) -> Option<Reason> {
        Reason::ALL.into_iter().find(|r| r.label() == label)
    }
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.label())
    }
}

/// Statuses allowed in the `code` field of a RESP (PROTOCOL.md section 4).
pub const STATUSES: [u16; 13] = [
    200, 206, 400, 401, 403, 404, 408, 413, 429, 500, 503, 504, 507,
];

/// Whether `code` is a status a RESP may carry.
pub fn is_status(code: u16) -> bool {
    STATUSES.contains(&code)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_round_trip_and_are_unique() {
        for r in Reason::ALL {
            assert_eq!(Reason::from_label(r.label()), Some(r));
            assert!(is_status(r.status()), "{r} has status {}", r.status());
        }
        let mut labels: Vec<_> = Reason::ALL.iter().map(|r| r.label()).collect();
        labels.sort_unstable();
        labels.dedup();
        assert_eq!(labels.len(), Reason::ALL.len());
    }

    #[test]
    fn only_reject_table_rows_close_the_session() {
        assert!(Reason::Truncated.closes_session());
        assert!(Reason::BadSequence.closes_session());
        assert!(Reason::Malformed.closes_session());
        assert!(!Reason::Unauthorized.closes_session());
        assert!(!Reason::Forbidden.closes_session());
    }
}
