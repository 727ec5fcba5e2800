//! The receive side of a session, sans-IO: every row of PROTOCOL.md's reject table (section 2.4) in its order.
//!
//! [`Inbound::poll`] takes frames off the session's read buffer and runs, for each, the
//! frame-level checks ([`FrameDecoder`]), the stream and exchange rules ([`SequenceTracker`]),
//! whether the node serves the app (`unknown_app`), and whether the payload is a valid message of
//! its app at its place in the stream (`malformed`). The first failure is returned as a
//! [`Reject`]; the session then sends [`Reject::farewell`] and closes.
//!
//! What is checked as a message, per app (frames with APP_E2E are never inspected):
//! - app 0: every frame is a whole message: REQ is HELLO or PING, RESP 200 a HELLO reply or PONG,
//!   EVENT a GOAWAY, an error RESP a JSON error body.
//! - app 1: the first frame of a REQ is a GET, HEAD or PUT request; later frames of a PUT are body
//!   bytes. An error RESP (whole, or the END of a stream) carries a JSON error body.
//! - app 2: EVENTs are whole gossip messages; REQs whole gossip requests; RESP 200 is `{"ok":true}`.
//! - app 3: REQs are whole DHT requests.
//! - apps 2-3: an error RESP carries a CBOR error body.
//!
//! Success bodies of RESPs on apps 1 and 3 depend on the request they answer, so the requester
//! checks them (the SDK), not this pipeline. A whole RESP 200 with an empty payload is accepted on
//! every app: it is the acknowledgement of an EVENT sent with ACK_REQ.
//!
//! Every [`Reject`] closes the session but one: `quota` on a REQ, a request past the
//! `max_inflight` the tracker holds. The node answers that request 429 alone (it was never
//! registered, so the answer bypasses the tracker) and goes on; see PROTOCOL.md 2.3.

use crate::control::{Control, GoAway, APP_CONTROL};
use crate::error_body::ErrorBody;
use crate::flags::{Flags, Kind};
use crate::frame::{Frame, FrameDecoder, Header, OutFrame};
use crate::limits::HEADER_LEN;
use crate::msg::dht::DhtRequest;
use crate::msg::gossip::{GossipEvent, GossipOk, GossipRequest};
use crate::msg::objects::ObjectRequest;
use crate::msg::{APP_DHT, APP_GOSSIP, APP_OBJECTS};
use crate::reason::Reason;
use crate::sequence::{Progress, Role, SequenceTracker};
use bytes::BytesMut;

/// The set of app_proto_ids a node serves (ids below 64).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ServedApps(u64);

impl ServedApps {
    /// Control, objects, gossip and DHT: what a full node serves.
    pub const NODE: ServedApps = ServedApps::of(&[APP_CONTROL, APP_OBJECTS, APP_GOSSIP, APP_DHT]);

    pub const fn of(apps: &[u16]) -> ServedApps {
        let mut bits = 0u64;
        let mut i = 0;
        while i < apps.len() {
            assert!(apps[i] < 64, "app ids above 63 are not supported");
            bits |= 1 << apps[i];
            i += 1;
        }
        ServedApps(bits)
    }

    pub const fn contains(self, app: u16) -> bool {
        app < 64 && self.0 & (1 << app) != 0
    }
}

/// A frame that passed every check, with what it did to its stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Received {
    pub frame: Frame,
    pub progress: Progress,
}

/// Why the session must close: the label, the header of the offending frame when it could be
/// read, and an explanation for logs.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{reason}: {detail}")]
pub struct Reject {
    pub reason: Reason,
    pub header: Option<Header>,
    pub detail: String,
}

/// The last frame a session sends before closing on a reject.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Farewell {
    /// The offending frame was a well-formed REQ: answer it with the error.
    Respond {
        app_proto_id: u16,
        corr_id: u64,
        body: ErrorBody,
    },
    /// Otherwise: a control GOAWAY whose reason is the label.
    GoAway(GoAway),
}

impl Farewell {
    /// The frame to send, with its payload written into `payload`. It bypasses the sequence
    /// tracker: the offending request was never registered, and the session closes after it.
    pub fn frame<'a>(&self, payload: &'a mut Vec<u8>) -> OutFrame<'a> {
        payload.clear();
        match self {
            Farewell::Respond {
                app_proto_id,
                corr_id,
                body,
            } => {
                body.encode(*app_proto_id, payload);
                OutFrame::response(*app_proto_id, *corr_id, body.code, payload)
            }
            Farewell::GoAway(g) => {
                Control::GoAway(g.clone()).write(payload);
                OutFrame {
                    flags: Flags::EVENT,
                    ..OutFrame::request(APP_CONTROL, 0, payload)
                }
            }
        }
    }
}

impl Reject {
    fn new(reason: Reason, header: Option<Header>, detail: impl Into<String>) -> Reject {
        Reject {
            reason,
            header,
            detail: detail.into(),
        }
    }

    /// What to send before closing. `last_corr_id` is the highest request id this side answered.
    pub fn farewell(&self, last_corr_id: u64) -> Farewell {
        match self.header {
            Some(h)
                if h.check(u32::MAX).is_ok_and(|k| k == Kind::Req)
                    && self.reason != Reason::Truncated =>
            {
                Farewell::Respond {
                    app_proto_id: h.app_proto_id,
                    corr_id: h.corr_id,
                    body: ErrorBody::new(self.reason, self.detail.clone(), h.corr_id, 0),
                }
            }
            _ => Farewell::GoAway(GoAway {
                reason: self.reason.label().to_owned(),
                last_corr_id,
            }),
        }
    }
}

/// Receive pipeline of one session; see the module docs.
#[derive(Debug)]
pub struct Inbound {
    decoder: FrameDecoder,
    tracker: SequenceTracker,
    served: ServedApps,
}

impl Inbound {
    pub fn new(role: Role, max_frame: u32, served: ServedApps) -> Inbound {
        Inbound {
            decoder: FrameDecoder::new(max_frame),
            tracker: SequenceTracker::new(role),
            served,
        }
    }

    /// Applies a `max_frame` negotiated by HELLO (only ever lowers it).
    pub fn set_max_frame(&mut self, max_frame: u32) {
        self.decoder.set_max_frame(max_frame);
    }

    /// Gives back the decoder's decompression memory (see [`FrameDecoder::release_buffers`]).
    pub fn release_buffers(&mut self) {
        self.decoder.release_buffers();
    }

    /// The sequence tracker, for recording the frames this side sends.
    pub fn tracker_mut(&mut self) -> &mut SequenceTracker {
        &mut self.tracker
    }

    /// Takes the next whole frame off `buf` and checks it; `Ok(None)` means more bytes are needed.
    pub fn poll(&mut self, buf: &mut BytesMut) -> Result<Option<Received>, Reject> {
        let header = buf.first_chunk::<HEADER_LEN>().map(Header::parse);
        let frame = match self.decoder.decode(buf) {
            Ok(Some(frame)) => frame,
            Ok(None) => return Ok(None),
            Err(e) => return Err(Reject::new(e.reason(), header, e.to_string())),
        };
        let h = frame.header;
        let progress = self
            .tracker
            .on_receive(&h, &frame.payload)
            .map_err(|r| Reject::new(r, Some(h), sequence_detail(r, &h)))?;
        if !self.served.contains(h.app_proto_id) {
            return Err(Reject::new(
                Reason::UnknownApp,
                Some(h),
                format!("app_proto_id {} is not served here", h.app_proto_id),
            ));
        }
        check_message(&frame, progress).map_err(|r| {
            Reject::new(
                r,
                Some(h),
                format!("not a valid message of app {}", h.app_proto_id),
            )
        })?;
        Ok(Some(Received { frame, progress }))
    }

    /// Whether the peer is in the middle of sending: part of a frame is buffered, or a request
    /// stream it opened is not closed yet. While this holds the engine runs the read timeout.
    pub fn mid_request(&self, buf: &BytesMut) -> bool {
        !buf.is_empty() || self.tracker.receiving()
    }

    /// The reject for a peer that stopped mid-request for longer than the read timeout
    /// (`slow_client`, 408): answered on the stalled request when its header has arrived.
    pub fn stalled(&self, buf: &BytesMut, timeout_ms: u64) -> Reject {
        let header = buf.first_chunk::<HEADER_LEN>().map(Header::parse);
        Reject::new(
            Reason::SlowClient,
            header,
            format!("no progress on a started request within {timeout_ms} ms"),
        )
    }

    /// At end of input: bytes left over mean the peer stopped inside a frame (`truncated`).
    pub fn at_eof(&self, buf: &BytesMut) -> Result<(), Reject> {
        if buf.is_empty() {
            return Ok(());
        }
        let header = buf.first_chunk::<HEADER_LEN>().map(Header::parse);
        Err(Reject::new(
            Reason::Truncated,
            header,
            format!("connection ended {} bytes into a frame", buf.len()),
        ))
    }
}

fn sequence_detail(reason: Reason, h: &Header) -> String {
    match reason {
        Reason::Quota => format!(
            "more than {} requests unanswered",
            crate::limits::MAX_INFLIGHT
        ),
        _ => format!(
            "{:?} frame with corr_id {} breaks the stream rules",
            h.flags, h.corr_id
        ),
    }
}

/// Whether the payload is a valid message of its app at its place in the stream.
fn check_message(frame: &Frame, progress: Progress) -> Result<(), Reason> {
    let h = &frame.header;
    if h.flags.contains(Flags::APP_E2E) {
        return Ok(());
    }
    let p = &frame.payload[..];
    let kind = frame.kind();
    let is_error = kind == Kind::Resp && h.code >= 400;
    let whole = progress == Progress::Whole;
    let ok = |r: Result<(), Reason>| r.map_err(|_| Reason::Malformed);
    // The acknowledgement of an EVENT sent with ACK_REQ: RESP 200, empty payload, on any app.
    if kind == Kind::Resp && h.code == 200 && p.is_empty() && whole {
        return Ok(());
    }
    match h.app_proto_id {
        APP_CONTROL => {
            if !whole {
                return Err(Reason::Malformed);
            }
            if is_error {
                return ok(ErrorBody::decode(APP_CONTROL, p).map(drop));
            }
            let msg = Control::parse(p)?;
            let fits = matches!(
                (kind, &msg),
                (Kind::Req, Control::Hello(_) | Control::Ping(_))
                    | (Kind::Resp, Control::HelloReply(_) | Control::Pong(_))
                    | (Kind::Event, Control::GoAway(_))
            );
            fits.then_some(()).ok_or(Reason::Malformed)
        }
        APP_OBJECTS => match kind {
            Kind::Req if progress.begins() => ok(ObjectRequest::decode(p).map(drop)),
            Kind::Req => Ok(()),
            Kind::Resp if is_error && progress.ends() => {
                ok(ErrorBody::decode(APP_OBJECTS, p).map(drop))
            }
            Kind::Resp => Ok(()),
            Kind::Event => Err(Reason::Malformed),
        },
        APP_GOSSIP => match kind {
            _ if !whole => Err(Reason::Malformed),
            Kind::Event => ok(GossipEvent::decode(p).map(drop)),
            Kind::Req => ok(GossipRequest::decode(p).map(drop)),
            Kind::Resp if is_error => ok(ErrorBody::decode(APP_GOSSIP, p).map(drop)),
            Kind::Resp => ok(GossipOk::decode(p).map(drop)),
        },
        APP_DHT => match kind {
            Kind::Req if whole => ok(DhtRequest::decode(p).map(drop)),
            Kind::Req | Kind::Event => Err(Reason::Malformed),
            Kind::Resp if is_error && progress.ends() => {
                ok(ErrorBody::decode(APP_DHT, p).map(drop))
            }
            Kind::Resp => Ok(()),
        },
        // An app served here but unknown to this crate: the caller validates it.
        _ => Ok(()),
    }
}
