//! [`Transmit`]: one frame a session should send, with its payload as `Bytes` (a GET body frame
//! is a slice of the stored object, a gossip EVENT a buffer shared by every subscriber), ready
//! for `FrameEncoder` or a vectored write.

use bytes::Bytes;
use ronode_proto::error_body::ErrorBody;
use ronode_proto::flags::Flags;
use ronode_proto::frame::{Header, OutFrame};
use ronode_proto::msg::APP_OBJECTS;
use ronode_proto::reason::Reason;

use super::SessionId;

/// A frame for `session`: a RESP on app 1 from the objects plane, or an EVENT or RESP on app 2
/// from the gossip plane. It carries no capability; `tenant_id` echoes the request's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transmit {
    pub session: SessionId,
    /// The app the frame belongs to ([`APP_OBJECTS`] for everything the objects plane sends).
    pub app_proto_id: u16,
    /// RESP, plus START / END for the frames of a streamed body.
    pub flags: Flags,
    /// The status (200, 206, or an error's).
    pub code: u16,
    pub tenant_id: u128,
    pub corr_id: u64,
    pub payload: Bytes,
}

impl Transmit {
    /// The frame, for [`FrameEncoder::encode`](ronode_proto::frame::FrameEncoder::encode).
    pub fn out_frame(&self) -> OutFrame<'_> {
        OutFrame {
            flags: self.flags,
            code: self.code,
            app_proto_id: self.app_proto_id,
            tenant_id: self.tenant_id,
            corr_id: self.corr_id,
            cap: &[],
            payload: &self.payload,
        }
    }

    /// The header as sent uncompressed: for a vectored write of `header().to_bytes()` then
    /// `payload`, and for the session's `SequenceTracker::on_send`.
    pub fn header(&self) -> Header {
        self.out_frame().header()
    }
}

/// Who a response goes to: the request's session, corr_id and tenant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ReplyTo {
    pub session: SessionId,
    pub corr_id: u64,
    pub tenant_id: u128,
}

impl ReplyTo {
    pub fn frame(&self, flags: Flags, code: u16, payload: Bytes) -> Transmit {
        Transmit {
            session: self.session,
            app_proto_id: APP_OBJECTS,
            flags,
            code,
            tenant_id: self.tenant_id,
            corr_id: self.corr_id,
            payload,
        }
    }

    /// The error answer: a whole RESP frame, or with `flags` RESP|END the end of an open stream.
    pub fn error(
        &self,
        flags: Flags,
        reason: Reason,
        message: impl Into<String>,
        retry_after_ms: u64,
    ) -> Transmit {
        let body = ErrorBody::new(reason, message, self.corr_id, retry_after_ms);
        let mut out = Vec::with_capacity(160);
        body.encode(APP_OBJECTS, &mut out);
        self.frame(flags, body.code, Bytes::from(out))
    }
}
