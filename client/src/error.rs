//! Typed errors for SDK users, built from the wire's labels (WIRE.md sections 2 and 5).

use ronode_proto::error_body::ErrorBody;
use ronode_proto::Reason;

/// An error a node answered with: its status, its label as a typed [`Reason`], and what the
/// node said. `retry_after_ms` is set on 429 and 503.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{status} {label}: {message}")]
pub struct NodeError {
    pub status: u16,
    /// The label as sent, kept even when this SDK does not know it (newer nodes may add labels).
    pub label: String,
    /// The label as a typed reason, when this SDK knows it.
    pub reason: Option<Reason>,
    pub message: String,
    pub retryable: bool,
    pub retry_after_ms: Option<u64>,
}

impl NodeError {
    pub fn from_body(body: ErrorBody) -> NodeError {
        NodeError {
            status: body.code,
            reason: body.reason(),
            label: body.reason,
            message: body.message,
            retryable: body.retryable,
            retry_after_ms: body.retry_after_ms,
        }
    }

    /// Whether this is `not_found` (404).
    pub fn is_not_found(&self) -> bool {
        self.reason == Some(Reason::NotFound)
    }

    /// Whether the node shed the request (429 `quota`, 503 `busy` or `not_ready`) and asks the
    /// caller to come back after `retry_after_ms`.
    pub fn is_shed(&self) -> bool {
        matches!(self.status, 429 | 503)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn maps_known_and_unknown_labels() {
        let e = NodeError::from_body(ErrorBody::new(Reason::Quota, "slow down", 4, 120));
        assert_eq!(e.reason, Some(Reason::Quota));
        assert!(e.is_shed() && e.retryable);
        assert_eq!(e.retry_after_ms, Some(120));
        assert_eq!(e.to_string(), "429 quota: slow down");

        let mut body = ErrorBody::new(Reason::NotFound, "no such object", 5, 0);
        assert!(NodeError::from_body(body.clone()).is_not_found());
        body.reason = "some_future_label".into();
        let e = NodeError::from_body(body);
        assert_eq!(e.reason, None);
        assert_eq!(e.label, "some_future_label");
    }
}
