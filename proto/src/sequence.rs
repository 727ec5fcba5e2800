//! Message streams and request/response pairing (PROTOCOL.md section 2, "Kinds and sequences"),
//! tracked per direction, kind and corr_id.
//!
//! One [`SequenceTracker`] lives in each session. Feed it every frame received
//! ([`SequenceTracker::on_receive`]) and every frame sent ([`SequenceTracker::on_send`]):
//! - START (or START|END) opens a stream for (kind, corr_id); opening one that is open is
//!   `bad_sequence`. A frame with neither START nor END continues the open stream, or is a whole
//!   message when none is open. END closes the open stream; END with none open is `bad_sequence`.
//! - Each side numbers its own requests. A REQ (or an EVENT with ACK_REQ) opens an exchange in
//!   the sender's numbering; the RESP that answers it carries the same corr_id and closes the
//!   exchange when its message ends. A RESP for an exchange that was never opened is
//!   `bad_sequence`; so is a request reusing the corr_id of one still unanswered.
//! - On the accepting side, the first frame must be a control HELLO request, and no later frame
//!   may be one (HELLO is sent once per session).
//!
//! Tables are bounded: more than [`MAX_INFLIGHT`] unanswered requests from the peer is `quota`
//! (the HELLO reply told it the limit); more than [`MAX_OPEN_STREAMS`] open streams is
//! `bad_sequence`.

use crate::control::{Control, APP_CONTROL};
use crate::flags::{Flags, Kind};
use crate::frame::Header;
use crate::limits::{MAX_INFLIGHT, MAX_OPEN_STREAMS};
use crate::reason::Reason;

/// Which end of the connection this tracker serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Accepted the connection: expects HELLO first.
    Acceptor,
    /// Dialled: sends HELLO first.
    Dialer,
}

/// What a frame did to its stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Progress {
    /// First frame of a message that continues.
    Opened,
    /// A middle frame.
    Continued,
    /// Last frame of a multi-frame message.
    Closed,
    /// A whole one-frame message.
    Whole,
}

impl Progress {
    /// Whether this frame begins a message.
    pub fn begins(self) -> bool {
        matches!(self, Progress::Opened | Progress::Whole)
    }
    /// Whether this frame ends a message.
    pub fn ends(self) -> bool {
        matches!(self, Progress::Closed | Progress::Whole)
    }
}

/// Open streams of one direction: (kind, corr_id) pairs, a small bounded set.
#[derive(Debug, Default)]
struct Streams {
    open: Vec<(Kind, u64)>,
}

impl Streams {
    fn advance(&mut self, kind: Kind, flags: Flags, corr_id: u64) -> Result<Progress, Reason> {
        let pos = self.open.iter().position(|&k| k == (kind, corr_id));
        let (start, end) = (flags.contains(Flags::START), flags.contains(Flags::END));
        match (start, end, pos) {
            (true, _, Some(_)) => Err(Reason::BadSequence),
            (true, true, None) => Ok(Progress::Whole),
            (true, false, None) => {
                if self.open.len() >= MAX_OPEN_STREAMS {
                    return Err(Reason::BadSequence);
                }
                self.open.push((kind, corr_id));
                Ok(Progress::Opened)
            }
            (false, false, Some(_)) => Ok(Progress::Continued),
            (false, false, None) => Ok(Progress::Whole),
            (false, true, Some(i)) => {
                self.open.swap_remove(i);
                Ok(Progress::Closed)
            }
            (false, true, None) => Err(Reason::BadSequence),
        }
    }
}

/// Unanswered requests in one side's numbering.
#[derive(Debug, Default)]
struct Exchanges {
    pending: Vec<u64>,
}

impl Exchanges {
    fn open(&mut self, corr_id: u64, limit_reason: Reason) -> Result<(), Reason> {
        if self.pending.contains(&corr_id) {
            return Err(Reason::BadSequence);
        }
        if self.pending.len() >= MAX_INFLIGHT {
            return Err(limit_reason);
        }
        self.pending.push(corr_id);
        Ok(())
    }

    fn answer(&mut self, corr_id: u64, ends: bool) -> Result<(), Reason> {
        let i = self
            .pending
            .iter()
            .position(|&c| c == corr_id)
            .ok_or(Reason::BadSequence)?;
        if ends {
            self.pending.swap_remove(i);
        }
        Ok(())
    }
}

/// Sequence state of one session; see the module docs.
#[derive(Debug)]
pub struct SequenceTracker {
    role: Role,
    hello_seen: bool,
    inbound: Streams,
    outbound: Streams,
    /// Requests the peer sent that this side has not finished answering.
    theirs: Exchanges,
    /// Requests this side sent that the peer has not finished answering.
    ours: Exchanges,
}

impl SequenceTracker {
    pub fn new(role: Role) -> SequenceTracker {
        SequenceTracker {
            role,
            hello_seen: role == Role::Dialer,
            inbound: Streams::default(),
            outbound: Streams::default(),
            theirs: Exchanges::default(),
            ours: Exchanges::default(),
        }
    }

    /// Checks a received frame (already past the frame-level checks) against the sequence
    /// rules and records it. `payload` is only looked at for the acceptor's first frame.
    pub fn on_receive(&mut self, header: &Header, payload: &[u8]) -> Result<Progress, Reason> {
        let kind = header.kind().ok_or(Reason::BadFlags)?;
        let is_hello = || {
            header.app_proto_id == APP_CONTROL
                && kind == Kind::Req
                && matches!(Control::parse(payload), Ok(Control::Hello(_)))
        };
        if !self.hello_seen {
            if !is_hello() {
                return Err(Reason::BadSequence);
            }
            self.hello_seen = true;
        } else if self.role == Role::Acceptor && is_hello() {
            // HELLO once per session: the limits it negotiated are in force (the decoders
            // only ever lower them), so a second one could only announce values that are not.
            return Err(Reason::BadSequence);
        }
        if kind == Kind::Req && header.flags.contains(Flags::START) {
            self.forget_abandoned_stream();
        }
        let progress = self.inbound.advance(kind, header.flags, header.corr_id)?;
        match kind {
            Kind::Resp => self.ours.answer(header.corr_id, progress.ends())?,
            Kind::Req if progress.begins() => self.theirs.open(header.corr_id, Reason::Quota)?,
            Kind::Event if progress.begins() && header.flags.contains(Flags::ACK_REQ) => {
                self.theirs.open(header.corr_id, Reason::Quota)?
            }
            _ => {}
        }
        Ok(progress)
    }

    /// Records a frame this side is about to send. An error here is this side's own bug (or a
    /// caller that must wait: `quota` when [`MAX_INFLIGHT`] requests are already unanswered).
    pub fn on_send(&mut self, header: &Header) -> Result<Progress, Reason> {
        let kind = header.kind().ok_or(Reason::BadFlags)?;
        let progress = self.outbound.advance(kind, header.flags, header.corr_id)?;
        match kind {
            Kind::Resp => self.theirs.answer(header.corr_id, progress.ends())?,
            Kind::Req if progress.begins() => self.ours.open(header.corr_id, Reason::Quota)?,
            Kind::Event if progress.begins() && header.flags.contains(Flags::ACK_REQ) => {
                self.ours.open(header.corr_id, Reason::Quota)?
            }
            _ => {}
        }
        Ok(progress)
    }

    /// Requests received and not yet fully answered.
    pub fn unanswered(&self) -> usize {
        self.theirs.pending.len()
    }

    /// Whether this side waits for more of a request: a request stream from the peer is open
    /// (started, not yet ended) and its request is not answered yet. A stream answered early
    /// (PROTOCOL.md 2.3: a PUT refused on its START) is one the peer may stop sending.
    pub fn receiving(&self) -> bool {
        self.inbound
            .open
            .iter()
            .any(|&(kind, corr)| kind == Kind::Req && self.theirs.pending.contains(&corr))
    }

    /// Makes room for a new request stream when the table is full: a stream whose request was
    /// answered early and that the peer stopped sending is forgotten (its late frames, if any
    /// still come, then read as whole messages and are refused on their own).
    fn forget_abandoned_stream(&mut self) {
        if self.inbound.open.len() < MAX_OPEN_STREAMS {
            return;
        }
        let pending = &self.theirs.pending;
        if let Some(i) = self
            .inbound
            .open
            .iter()
            .position(|&(kind, corr)| kind == Kind::Req && !pending.contains(&corr))
        {
            self.inbound.open.remove(i);
        }
    }

    /// Requests sent and not yet fully answered.
    pub fn outstanding(&self) -> usize {
        self.ours.pending.len()
    }

    pub fn role(&self) -> Role {
        self.role
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h(flags: Flags, app: u16, corr: u64) -> Header {
        Header {
            len: 38,
            ver: 1,
            flags,
            code: if flags.contains(Flags::RESP) { 200 } else { 0 },
            app_proto_id: app,
            tenant_id: 0,
            cap_len: 0,
            corr_id: corr,
        }
    }

    fn after_hello() -> SequenceTracker {
        let mut t = SequenceTracker::new(Role::Acceptor);
        t.on_receive(&h(Flags::REQ, 0, 1), br#"{"ua":null}"#)
            .unwrap();
        t.on_send(&h(Flags::RESP, 0, 1)).unwrap();
        t
    }

    #[test]
    fn hello_must_come_first() {
        let mut t = SequenceTracker::new(Role::Acceptor);
        assert_eq!(
            t.on_receive(&h(Flags::REQ, 1, 1), b""),
            Err(Reason::BadSequence)
        );
        let mut t = SequenceTracker::new(Role::Acceptor);
        assert_eq!(
            t.on_receive(&h(Flags::REQ, 0, 1), br#"{"ping":1}"#),
            Err(Reason::BadSequence)
        );
        assert_eq!(after_hello().unanswered(), 0);
    }

    #[test]
    fn a_second_hello_is_bad_sequence() {
        let mut t = after_hello();
        assert_eq!(
            t.on_receive(&h(Flags::REQ, 0, 2), br#"{"ping":1}"#),
            Ok(Progress::Whole)
        );
        assert_eq!(
            t.on_receive(&h(Flags::REQ, 0, 3), br#"{"ua":"again"}"#),
            Err(Reason::BadSequence)
        );
        let mut t = after_hello();
        assert_eq!(
            t.on_receive(&h(Flags::REQ, 0, 3), br#"{"max_frame":8192,"ua":null}"#),
            Err(Reason::BadSequence)
        );
    }

    #[test]
    fn streams_open_continue_close() {
        let mut t = after_hello();
        let s = Flags::REQ | Flags::START;
        assert_eq!(t.on_receive(&h(s, 1, 5), b""), Ok(Progress::Opened));
        assert_eq!(
            t.on_receive(&h(s, 1, 5), b""),
            Err(Reason::BadSequence),
            "START while open"
        );
        let mut t = after_hello();
        t.on_receive(&h(s, 1, 5), b"").unwrap();
        assert_eq!(
            t.on_receive(&h(Flags::REQ, 1, 5), b""),
            Ok(Progress::Continued)
        );
        assert_eq!(
            t.on_receive(&h(Flags::REQ | Flags::END, 1, 5), b""),
            Ok(Progress::Closed)
        );
        assert_eq!(
            t.on_receive(&h(Flags::REQ | Flags::END, 1, 6), b""),
            Err(Reason::BadSequence),
            "END with none open"
        );
    }

    #[test]
    fn responses_need_a_request() {
        let mut t = after_hello();
        assert_eq!(
            t.on_receive(&h(Flags::RESP, 1, 77), b""),
            Err(Reason::BadSequence)
        );
        let mut t = after_hello();
        t.on_send(&h(Flags::REQ, 1, 77)).unwrap();
        assert_eq!(t.outstanding(), 1);
        t.on_receive(&h(Flags::RESP | Flags::START, 1, 77), b"")
            .unwrap();
        assert_eq!(t.outstanding(), 1, "stream still open");
        t.on_receive(&h(Flags::RESP | Flags::END, 1, 77), b"")
            .unwrap();
        assert_eq!(t.outstanding(), 0);
        assert_eq!(
            t.on_receive(&h(Flags::RESP, 1, 77), b""),
            Err(Reason::BadSequence),
            "answered twice"
        );
    }

    #[test]
    fn a_stream_answered_early_is_not_waited_for_and_makes_room() {
        let mut t = after_hello();
        let s = Flags::REQ | Flags::START;
        t.on_receive(&h(s, 1, 5), b"").unwrap();
        assert!(t.receiving(), "the request is waited for");
        t.on_send(&h(Flags::RESP, 1, 5)).unwrap();
        assert!(!t.receiving(), "answered early: nothing more is waited for");
        assert_eq!(
            t.on_receive(&h(Flags::REQ, 1, 5), b""),
            Ok(Progress::Continued),
            "its late frames still continue it"
        );
        // Fill the table with streams answered early: each new START makes room.
        for corr in 100..100 + 2 * MAX_OPEN_STREAMS as u64 {
            assert_eq!(t.on_receive(&h(s, 1, corr), b""), Ok(Progress::Opened));
            t.on_send(&h(Flags::RESP, 1, corr)).unwrap();
        }
        // Streams still waited for are never forgotten: past the bound, bad_sequence.
        let mut t = after_hello();
        for corr in 0..MAX_OPEN_STREAMS as u64 {
            t.on_receive(&h(s, 1, 200 + corr), b"").unwrap();
        }
        assert_eq!(t.on_receive(&h(s, 1, 1), b""), Err(Reason::BadSequence));
    }

    #[test]
    fn ack_req_events_expect_a_response_and_inflight_is_bounded() {
        let mut t = after_hello();
        t.on_receive(&h(Flags::EVENT | Flags::ACK_REQ, 2, 3), b"")
            .unwrap();
        assert_eq!(t.unanswered(), 1);
        t.on_send(&h(Flags::RESP, 2, 3)).unwrap();
        assert_eq!(t.unanswered(), 0);
        t.on_receive(&h(Flags::EVENT, 2, 4), b"").unwrap();
        assert_eq!(t.unanswered(), 0, "plain events need no answer");
        for corr in 0..MAX_INFLIGHT as u64 {
            t.on_receive(&h(Flags::REQ, 1, 100 + corr), b"").unwrap();
        }
        assert_eq!(t.on_receive(&h(Flags::REQ, 1, 1), b""), Err(Reason::Quota));
        assert_eq!(
            t.on_receive(&h(Flags::REQ, 1, 100), b""),
            Err(Reason::BadSequence),
            "corr_id reused"
        );
    }
}
