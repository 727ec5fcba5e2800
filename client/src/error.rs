//! Typed errors for SDK users, built from the wire's labels (PROTOCOL.md sections 2.4 and 4):
//! [`NodeError`] is what a node answered, [`ClientError`] what a call of either client returns.

use std::io;
use std::time::Duration;

use ronode_proto::error_body::ErrorBody;
use ronode_proto::{ObjectAddr, Reason};

use crate::tls::TlsError;

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

/// What went wrong with a call (of the blocking or the async client).
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The node answered with an error status (404 `not_found`, 401 `unauthorized`, ...).
    #[error("node answered {0}")]
    Node(#[from] NodeError),
    #[error("I/O error: {0}")]
    Io(#[from] io::Error),
    #[error(transparent)]
    Tls(#[from] TlsError),
    /// The node broke the protocol (or answered something this client cannot read).
    #[error("protocol error: {0}")]
    Protocol(String),
    /// The reassembled object does not hash to the address asked for.
    #[error("bad_digest: the object's bytes hash to {actual}, not to {expected}")]
    BadDigest {
        expected: ObjectAddr,
        actual: ObjectAddr,
    },
    /// The node did not answer (or accept bytes) within the options' `timeout`.
    #[error("timed out: nothing from the node within {0:?}")]
    Timeout(Duration),
    /// The session is over: the node closed it or sent GOAWAY, or an earlier error ended it.
    #[error("session closed: {0}")]
    Closed(String),
    /// The call's arguments cannot make a valid request; nothing was sent.
    #[error("invalid request: {0}")]
    InvalidRequest(String),
}

impl ClientError {
    /// The wire label behind this error, when there is one: the node's, or `bad_digest`.
    pub fn reason(&self) -> Option<Reason> {
        match self {
            ClientError::Node(e) => e.reason,
            ClientError::BadDigest { .. } => Some(Reason::BadDigest),
            _ => None,
        }
    }

    /// Whether the node said it does not hold the object (404 `not_found`).
    pub fn is_not_found(&self) -> bool {
        matches!(self, ClientError::Node(e) if e.is_not_found())
    }

    /// Whether the session cannot be used after this error.
    pub(crate) fn ends_session(&self) -> bool {
        match self {
            // Rejects of the wire's table close the session; `oversize` is also the per-object
            // limit of a PUT, which answers one request only.
            ClientError::Node(e) => e
                .reason
                .is_some_and(|r| r.closes_session() && r != Reason::Oversize),
            ClientError::BadDigest { .. } | ClientError::InvalidRequest(_) => false,
            _ => true,
        }
    }
}

pub(crate) fn protocol(what: impl Into<String>) -> ClientError {
    ClientError::Protocol(what.into())
}

/// A socket error as the caller sees it: a wait that ran out is [`ClientError::Timeout`].
pub(crate) fn io_error(e: io::Error, timeout: Duration) -> ClientError {
    match e.kind() {
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut => ClientError::Timeout(timeout),
        _ => ClientError::Io(e),
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
