//! Error bodies (PROTOCOL.md section 4): `{code, reason, message, retryable, corr_id}` plus
//! `retry_after_ms` on 429 and 503; JSON on apps 0-1, CBOR on apps 2-3.

use crate::reason::Reason;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorBody {
    pub code: u16,
    pub reason: String,
    pub message: String,
    pub retryable: bool,
    pub corr_id: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_after_ms: Option<u64>,
}

impl ErrorBody {
    /// The body for `reason` answering request `corr_id`. 429 and 503 always carry
    /// `retry_after_ms` (`retry_after_ms` is used for them, and ignored for the others).
    pub fn new(
        reason: Reason,
        message: impl Into<String>,
        corr_id: u64,
        retry_after_ms: u64,
    ) -> ErrorBody {
        let code = reason.status();
        ErrorBody {
            code,
            reason: reason.label().to_owned(),
            message: message.into(),
            retryable: reason.retryable(),
            corr_id,
            retry_after_ms: matches!(code, 429 | 503).then_some(retry_after_ms),
        }
    }

    /// The label as a typed reason, if it is one this crate knows.
    pub fn reason(&self) -> Option<Reason> {
        Reason::from_label(&self.reason)
    }

    /// Encodes for `app_proto_id`: JSON for apps 0 and 1, CBOR for the others.
    pub fn encode(&self, app_proto_id: u16, out: &mut Vec<u8>) {
        if uses_json(app_proto_id) {
            serde_json::to_writer(out, self).expect("JSON into a Vec");
        } else {
            ciborium::into_writer(self, out).expect("CBOR into a Vec");
        }
    }

    /// Decodes a body sent on `app_proto_id`: exactly one JSON value or CBOR item, nothing after
    /// it.
    pub fn decode(app_proto_id: u16, bytes: &[u8]) -> Result<ErrorBody, Reason> {
        if uses_json(app_proto_id) {
            serde_json::from_slice(bytes).map_err(|_| Reason::Malformed)
        } else {
            let mut rest = bytes;
            let body = ciborium::from_reader(&mut rest).map_err(|_| Reason::Malformed)?;
            if !rest.is_empty() {
                return Err(Reason::Malformed);
            }
            Ok(body)
        }
    }
}

fn uses_json(app_proto_id: u16) -> bool {
    app_proto_id <= 1
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn busy_carries_retry_after_and_round_trips_both_encodings() {
        let b = ErrorBody::new(Reason::Busy, "work queue full", 9, 250);
        assert_eq!(b.code, 503);
        assert_eq!(b.retry_after_ms, Some(250));
        assert!(b.retryable);
        for app in [0, 1, 2, 3] {
            let mut v = Vec::new();
            b.encode(app, &mut v);
            assert_eq!(ErrorBody::decode(app, &v).unwrap(), b);
            // One body is the whole payload, in both encodings.
            v.push(0);
            assert_eq!(ErrorBody::decode(app, &v), Err(Reason::Malformed));
        }
        let f = ErrorBody::new(Reason::Forbidden, "scope", 1, 250);
        assert_eq!(f.retry_after_ms, None);
        let mut v = Vec::new();
        f.encode(1, &mut v);
        assert_eq!(
            String::from_utf8(v).unwrap(),
            r#"{"code":403,"reason":"forbidden","message":"scope","retryable":false,"corr_id":1}"#
        );
    }
}
