//! A session's output: frames encoded into one write buffer, large payloads kept as their own
//! `Bytes` for a vectored write, each frame recorded with the sequence tracker and counted.

use super::SessionHost;
pub use crate::limits::SHARED_PAYLOAD_MIN;
pub use crate::limits::WRITE_BATCH;
use crate::objects::Transmit;
use crate::stats::{Dir, FrameKind};
use bytes::Bytes;
use ronode_proto::control::{Control, GoAway, APP_CONTROL};
use ronode_proto::error_body::ErrorBody;
use ronode_proto::frame::{FrameEncoder, Header, OutFrame};
use ronode_proto::inbound::{Inbound, Reject};
use ronode_proto::{Flags, Kind, Reason};

#[derive(Debug)]
pub(super) struct Output {
    /// Frames to write: encoded here, except large payloads, which `shared` holds with the
    /// offset in `wbuf` they follow.
    wbuf: Vec<u8>,
    shared: Vec<(usize, Bytes)>,
    shared_bytes: usize,
    encoder: FrameEncoder,
    /// Reused for the payloads of app 0 answers.
    scratch: Vec<u8>,
    /// The highest request id answered: the `last_corr_id` of a GOAWAY other than the drain's.
    last_answered: u64,
    /// Requests whose answer's last frame is in this output (for their latency once written).
    answered: Vec<u64>,
}

impl Output {
    pub(super) fn new(max_frame: u32) -> Output {
        Output {
            // Both grow with what the session does, and are given back when it idles.
            wbuf: Vec::new(),
            shared: Vec::new(),
            shared_bytes: 0,
            encoder: FrameEncoder::new(max_frame),
            scratch: Vec::new(),
            last_answered: 0,
            answered: Vec::new(),
        }
    }

    pub(super) fn set_max_frame(&mut self, max_frame: u32) {
        self.encoder.set_max_frame(max_frame);
    }

    pub(super) fn has_room(&self) -> bool {
        self.wbuf.len() + self.shared_bytes < WRITE_BATCH
    }

    pub(super) fn pending(&self) -> (&[u8], &[(usize, Bytes)]) {
        (&self.wbuf, &self.shared)
    }

    pub(super) fn is_empty(&self) -> bool {
        self.wbuf.is_empty() && self.shared.is_empty()
    }

    pub(super) fn clear(&mut self) {
        self.answered.clear();
        self.wbuf.clear();
        self.shared.clear();
        self.shared_bytes = 0;
    }

    /// The requests whose answer ended in this output, taken.
    pub(super) fn take_answered(&mut self) -> std::vec::Drain<'_, u64> {
        self.answered.drain(..)
    }

    pub(super) fn last_answered(&self) -> u64 {
        self.last_answered
    }

    pub(super) fn release_buffers(&mut self) {
        debug_assert!(self.is_empty(), "released with output queued");
        self.wbuf = Vec::new();
        self.shared = Vec::new();
        self.scratch = Vec::new();
    }

    pub(super) fn buffer_bytes(&self) -> usize {
        self.wbuf.capacity()
            + self.scratch.capacity()
            + self.shared.capacity() * std::mem::size_of::<(usize, Bytes)>()
    }

    /// Encodes one frame and records it with the sequence tracker.
    pub(super) fn send<H: SessionHost>(
        &mut self,
        inbound: &mut Inbound,
        frame: &OutFrame<'_>,
        host: &H,
    ) {
        if !self.record(inbound, &frame.header()) {
            return;
        }
        match self.encoder.encode(frame, &mut self.wbuf) {
            Ok(n) => self.sent(frame.flags, frame.corr_id, n as u64, host),
            Err(e) => debug_assert!(false, "encoding our own frame failed: {e}"),
        }
    }

    /// Queues a frame of a plane: a small one is encoded into the write buffer, a large
    /// payload is written from its own `Bytes` after its header.
    pub(super) fn send_transmit<H: SessionHost>(
        &mut self,
        inbound: &mut Inbound,
        t: Transmit,
        host: &H,
    ) {
        if t.payload.len() < SHARED_PAYLOAD_MIN {
            return self.send(inbound, &t.out_frame(), host);
        }
        let header = t.header();
        if !self.record(inbound, &header) {
            return;
        }
        self.wbuf.extend_from_slice(&header.to_bytes());
        self.shared_bytes += t.payload.len();
        self.shared.push((self.wbuf.len(), t.payload));
        self.sent(t.flags, header.corr_id, header.len.into(), host);
    }

    /// Answers app 0's `reply` to the request `h`.
    pub(super) fn control_reply<H: SessionHost>(
        &mut self,
        inbound: &mut Inbound,
        h: &Header,
        reply: &Control,
        host: &H,
    ) {
        self.scratch.clear();
        reply.write(&mut self.scratch);
        let payload = std::mem::take(&mut self.scratch);
        let frame = OutFrame {
            tenant_id: h.tenant_id,
            ..OutFrame::response(APP_CONTROL, h.corr_id, 200, &payload)
        };
        self.send(inbound, &frame, host);
        self.scratch = payload;
    }

    /// Answers one request with an error; the session goes on.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn error<H: SessionHost>(
        &mut self,
        inbound: &mut Inbound,
        app: u16,
        corr_id: u64,
        reason: Reason,
        message: &str,
        retry_after_ms: u64,
        host: &H,
    ) {
        host.stats(|s| s.rejected(reason));
        let body = ErrorBody::new(reason, message, corr_id, retry_after_ms);
        let mut payload = Vec::new();
        body.encode(app, &mut payload);
        let frame = OutFrame::response(app, corr_id, reason.status(), &payload);
        self.send(inbound, &frame, host);
    }

    /// Queues a GOAWAY: this side answers requests up to `last_corr_id`, then closes.
    pub(super) fn goaway<H: SessionHost>(
        &mut self,
        reason: &str,
        last_corr_id: u64,
        inbound: &mut Inbound,
        host: &H,
    ) {
        let payload = Control::GoAway(GoAway {
            reason: reason.to_owned(),
            last_corr_id,
        })
        .to_vec();
        let frame = OutFrame {
            flags: Flags::EVENT,
            ..OutFrame::request(APP_CONTROL, 0, &payload)
        };
        self.send(inbound, &frame, host);
    }

    /// Answers 429 `quota` to a request past the 64 the protocol allows in flight, and only to
    /// it: the requests accepted before are answered as usual. The sequence tracker never
    /// registered it (its table is full), so the answer bypasses the tracker like a farewell.
    pub(super) fn refuse_unregistered<H: SessionHost>(
        &mut self,
        reject: &Reject,
        retry_after_ms: u64,
        host: &H,
    ) {
        let Some(h) = reject.header else { return };
        host.stats(|s| s.rejected(reject.reason));
        let body = ErrorBody::new(
            reject.reason,
            reject.detail.clone(),
            h.corr_id,
            retry_after_ms,
        );
        let mut payload = Vec::new();
        body.encode(h.app_proto_id, &mut payload);
        let frame = OutFrame {
            tenant_id: h.tenant_id,
            ..OutFrame::response(h.app_proto_id, h.corr_id, reject.reason.status(), &payload)
        };
        if let Ok(n) = self.encoder.encode(&frame, &mut self.wbuf) {
            host.stats(|s| s.frame(Dir::Out, FrameKind::Resp, n as u64));
        }
    }

    /// Counts a reject and queues its farewell (a reply or a GOAWAY, PROTOCOL.md 2.4).
    pub(super) fn farewell<H: SessionHost>(&mut self, reject: &Reject, host: &H) {
        host.stats(|s| s.rejected(reject.reason));
        let mut payload = Vec::new();
        let frame = reject.farewell(self.last_answered).frame(&mut payload);
        if let Ok(n) = self.encoder.encode(&frame, &mut self.wbuf) {
            host.stats(|s| s.frame(Dir::Out, FrameKind::Event, n as u64));
        }
    }

    /// Records a frame about to be sent with the sequence tracker, noting an answer's last
    /// frame; `false` (our own bug: never send what the peer must reject) when it breaks the
    /// rules.
    fn record(&mut self, inbound: &mut Inbound, header: &Header) -> bool {
        match inbound.tracker_mut().on_send(header) {
            Ok(progress) => {
                if header.kind() == Some(Kind::Resp) && progress.ends() {
                    self.answered.push(header.corr_id);
                }
                true
            }
            Err(reason) => {
                debug_assert!(
                    false,
                    "sending {:?} broke the sequence rules: {reason}",
                    header.flags
                );
                false
            }
        }
    }

    /// Counts a frame of `n` bytes queued for sending.
    fn sent<H: SessionHost>(&mut self, flags: Flags, corr_id: u64, n: u64, host: &H) {
        let kind = frame_kind(flags.kind().unwrap_or(Kind::Resp));
        host.stats(|s| s.frame(Dir::Out, kind, n));
        if flags.contains(Flags::RESP) {
            self.last_answered = self.last_answered.max(corr_id);
        }
    }
}

pub(super) fn frame_kind(kind: Kind) -> FrameKind {
    match kind {
        Kind::Req => FrameKind::Req,
        Kind::Resp => FrameKind::Resp,
        Kind::Event => FrameKind::Event,
    }
}
