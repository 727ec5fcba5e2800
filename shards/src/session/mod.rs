//! One OAP/1 session as a sans-IO state machine: every decision a served session makes, with
//! no socket, no TLS and no clock. The engine's driver (and a simulator) moves bytes and time
//! in and executes what comes out.
//!
//! # What it decides
//! - **Receiving**: whole frames through `proto::inbound` (limits, sequence rules, rejects with
//!   their farewell); a request past the 64 the protocol tracks is refused alone (429).
//! - **Admission** of each request that begins: 503 `not_ready` after the drain's GOAWAY, 429
//!   `quota` past `inflight` unanswered or past the `max_rps` token bucket. Refusals count
//!   towards a bound ([`crate::refusals`]); past it the session is shed (GOAWAY `quota`).
//! - **Dispatch** by app: app 0 (HELLO negotiation, PING) here; objects and gossip frames go to
//!   their planes through [`SessionHost`], the one interface a plane plugs in by.
//! - **Timers**, all on one monotonic millisecond clock passed in ([`Now`]): the read timeout
//!   (mid-request, a frame must complete within `read_timeout_ms` of the last: 408), the idle
//!   timeout (no whole frame either way for `idle_timeout_ms` and nothing owed: GOAWAY `idle`),
//!   and the drain (PROTOCOL.md 3.3: GOAWAY `draining` naming the highest accepted request,
//!   every accepted request answered, cut at the deadline, counted).
//!
//! # Driving it (one loop turn)
//! 1. [`SessionCore::handle_input`] with the bytes read so far (whole frames are taken from the
//!    buffer); an [`Ending`] means: write what is queued, then close.
//! 2. While [`SessionCore::has_room`], [`SessionCore::queue_transmit`] the planes' frames.
//! 3. Write [`SessionCore::output`], then [`SessionCore::written`].
//! 4. [`SessionCore::after_flush`]: [`Turn::Again`] (more was queued: back to 3), an
//!    [`Turn::End`], or [`Turn::Read`]: wait for bytes (or the shard's tick), and back to 1.
//!    [`SessionCore::handle_eof`] when the peer ended its input.

mod answer;
mod out;
#[cfg(test)]
pub(crate) mod tests;

use crate::gossip::Reply;
use crate::limiter::TokenBucket;
use crate::objects::{SessionId, Transmit};
use crate::refusals::RefusalWindow;
use crate::stats::{App, Dir, ShardStats};
use bytes::BytesMut;
use ronode_proto::id::NodeId;
use ronode_proto::inbound::{Inbound, Received, Reject, ServedApps};
use ronode_proto::sequence::Role;
use ronode_proto::{Kind, Reason};

use out::Output;
pub use out::{SHARED_PAYLOAD_MIN, WRITE_BATCH};

/// The apps a node serves today: control, objects and gossip. DHT joins as its plane lands;
/// until then its frames are answered `unknown_app`, truthfully.
pub const SERVED_APPS: ServedApps = ServedApps::of(&[
    ronode_proto::control::APP_CONTROL,
    ronode_proto::msg::APP_OBJECTS,
    ronode_proto::msg::APP_GOSSIP,
]);

/// A session's settings (the `[session]` knobs a session applies).
#[derive(Debug, Clone)]
pub struct SessionCfg {
    /// The node's frame limit; a HELLO may lower it for the session.
    pub max_frame: u32,
    /// Requests a session may have unanswered (`session.inflight_frames`); beyond, 429.
    pub inflight: u32,
    /// Per-session request rate (token bucket) and its burst.
    pub max_rps: u32,
    pub burst: u32,
    /// A peer mid-request must complete a frame within this (408 `slow_client`).
    pub read_timeout_ms: u64,
    /// No whole frame either way for this long, with nothing owed: GOAWAY `idle`.
    pub idle_timeout_ms: u64,
    /// The `retry_after_ms` of a request refused past the in-flight window (the driver looks
    /// at its sessions once per tick).
    pub retry_after_ms: u64,
}

/// Time, read once per loop turn by the driver.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Now {
    /// Monotonic milliseconds (any fixed origin): every timer.
    pub mono_ms: u64,
    /// The same clock in microseconds: latencies.
    pub mono_us: u64,
    /// Unix seconds: capability expiry.
    pub unix_s: u64,
}

/// How a session ended, for logs and metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum End {
    /// The peer closed between frames.
    Closed,
    /// The peer broke the protocol; the reject was counted and answered.
    Rejected(Reason),
    /// No complete frame within the idle timeout.
    Idle,
    /// The node is draining; GOAWAY was sent, then what was accepted answered (or the drain
    /// deadline passed).
    Drained,
    /// Too many refused requests; GOAWAY `quota` was sent.
    Shed,
    /// A socket or TLS error (the peer went away mid-frame, a reset, a failed handshake).
    Io,
    /// A peer session given to the shard that owns its NodeId.
    HandedOff,
}

/// The session ends: the driver writes what is queued (a farewell, a GOAWAY), sends TLS
/// close_notify when `close_notify`, and drops the connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ending {
    pub end: End,
    pub close_notify: bool,
}

/// What the driver does after a write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Turn {
    /// Something was queued (a GOAWAY): write again before reading.
    Again,
    /// Wait for input (or the shard's tick).
    Read,
    End(Ending),
}

/// What a session needs from its shard: counters, and the planes it hands frames to. Each
/// plane plugs in here by one method.
pub trait SessionHost {
    /// Updates the shard's counters.
    fn stats(&self, f: impl FnOnce(&mut ShardStats));
    /// A frame of app 1 for the objects plane (its answers come back as [`Transmit`]s).
    fn objects_frame(&self, session: SessionId, rx: Received, now: Now);
    /// A frame of app 2 for the gossip plane; `peer` is the NodeId of a peer session.
    fn gossip_frame(
        &self,
        session: SessionId,
        peer: Option<NodeId>,
        rx: &Received,
        unix_s: u64,
    ) -> Reply;
    /// HELLO negotiated a frame limit: the planes size what they send this session by it.
    fn set_max_frame(&self, session: SessionId, max_frame: u32);
}

/// One served session's protocol state; see the module docs.
#[derive(Debug)]
pub struct SessionCore {
    id: SessionId,
    /// The NodeId of a peer session; `None` for a client.
    peer: Option<NodeId>,
    inbound: Inbound,
    out: Output,
    /// The highest request id accepted (not refused on arrival): the GOAWAY of a drain.
    last_accepted: u64,
    /// GOAWAY `draining` was sent: new requests are refused, the session closes once it owes
    /// nothing.
    goaway_sent: bool,
    /// The peer ended its input (EOF or TLS close_notify).
    eof: bool,
    refusals: RefusalWindow,
    bucket: TokenBucket,
    /// Since when the peer has been mid-request without completing a frame (the read timeout).
    stalled_since_ms: Option<u64>,
    /// The last whole frame either way (the idle timer: a subscriber receiving gossip is not
    /// idle).
    last_frame_ms: u64,
    /// Requests accepted and not yet answered whole, with when (µs) they were accepted: at
    /// most `inflight` + 1 (admission refuses past it).
    accepted_at: Vec<(u64, App, u64)>,
}

impl SessionCore {
    pub fn new(
        cfg: &SessionCfg,
        served: ServedApps,
        id: SessionId,
        peer: Option<NodeId>,
        now_ms: u64,
    ) -> SessionCore {
        SessionCore {
            id,
            peer,
            inbound: Inbound::new(Role::Acceptor, cfg.max_frame, served),
            out: Output::new(cfg.max_frame),
            last_accepted: 0,
            goaway_sent: false,
            eof: false,
            refusals: RefusalWindow::default(),
            bucket: TokenBucket::new(cfg.max_rps, cfg.burst, now_ms),
            stalled_since_ms: None,
            last_frame_ms: now_ms,
            accepted_at: Vec::new(),
        }
    }

    pub fn id(&self) -> SessionId {
        self.id
    }

    pub fn peer(&self) -> Option<NodeId> {
        self.peer
    }

    /// Takes every whole frame in `rbuf` and answers it (or hands it to its plane), then looks
    /// at the read timeout. `Some` ends the session, its farewell queued.
    pub fn handle_input<H: SessionHost>(
        &mut self,
        rbuf: &mut BytesMut,
        now: Now,
        cfg: &SessionCfg,
        host: &H,
    ) -> Option<Ending> {
        let now_ms = now.mono_ms;
        let mut progressed = false;
        loop {
            let rx = match self.inbound.poll(rbuf) {
                Ok(Some(rx)) => rx,
                Ok(None) => break,
                Err(reject) if is_past_inflight(&reject) => {
                    progressed = true;
                    self.out
                        .refuse_unregistered(&reject, cfg.retry_after_ms, host);
                    if self.refusals.refuse(now_ms) {
                        return Some(self.shed(host));
                    }
                    continue;
                }
                Err(reject) => return Some(self.reject(reject, host)),
            };
            progressed = true;
            let h = rx.frame.header;
            let kind = out::frame_kind(rx.frame.kind());
            host.stats(|s| s.frame(Dir::In, kind, u64::from(h.len)));
            if h.kind() == Some(Kind::Req) && rx.progress.begins() {
                match self.admit(&h, now_ms, cfg, host) {
                    Admit::Accept => {
                        self.last_accepted = self.last_accepted.max(h.corr_id);
                        if let Some(app) = App::of(h.app_proto_id) {
                            self.accepted_at.push((h.corr_id, app, now.mono_us));
                        }
                    }
                    Admit::Refused { counts } => {
                        if counts && self.refusals.refuse(now_ms) {
                            return Some(self.shed(host));
                        }
                        continue;
                    }
                }
            }
            match self.answer(rx, now, cfg, host) {
                Answered::Done => {}
                Answered::Refused => {
                    if self.refusals.refuse(now_ms) {
                        return Some(self.shed(host));
                    }
                }
                Answered::Reject(reject) => return Some(self.reject(reject, host)),
            }
        }
        if progressed {
            self.last_frame_ms = now_ms;
        }
        self.read_timeout(rbuf, progressed, now_ms, cfg)
            .map(|reject| self.reject(reject, host))
    }

    /// Whether the write batch has room for another frame of the planes.
    pub fn has_room(&self) -> bool {
        self.out.has_room()
    }

    /// Queues a frame a plane has for this session.
    pub fn queue_transmit<H: SessionHost>(&mut self, t: Transmit, now: Now, host: &H) {
        self.out.send_transmit(&mut self.inbound, t, host);
        self.last_frame_ms = now.mono_ms;
    }

    /// What to write, in order: `bytes`, with each shared payload written from its own
    /// `Bytes` after the offset in `bytes` it follows (a vectored write that copies no body).
    pub fn output(&self) -> (&[u8], &[(usize, bytes::Bytes)]) {
        self.out.pending()
    }

    /// The whole output was written (at `now`): the requests whose answers it ended count
    /// in `request_latency_seconds`, from their acceptance to this write.
    pub fn written<H: SessionHost>(&mut self, now: Now, host: &H) {
        for corr_id in self.out.take_answered() {
            if let Some(i) = self.accepted_at.iter().position(|(c, ..)| *c == corr_id) {
                let (_, app, at) = self.accepted_at.swap_remove(i);
                host.stats(|s| s.request_latency_us(app, now.mono_us.saturating_sub(at)));
            }
        }
        self.out.clear();
    }

    /// The peer ended its input (EOF or close_notify): looked at by the next
    /// [`SessionCore::after_flush`], once the frames already buffered were taken.
    pub fn handle_eof(&mut self) {
        self.eof = true;
    }

    /// The decisions after a write: the drain (`drain_deadline_ms` is set once the node
    /// drains), the peer's end of input, the idle timeout.
    pub fn after_flush<H: SessionHost>(
        &mut self,
        rbuf: &BytesMut,
        now: Now,
        drain_deadline_ms: Option<u64>,
        cfg: &SessionCfg,
        host: &H,
    ) -> Turn {
        let owed = self.inbound.tracker_mut().unanswered();
        if let Some(deadline) = drain_deadline_ms {
            if !self.goaway_sent {
                self.goaway_sent = true;
                self.out
                    .goaway("draining", self.last_accepted, &mut self.inbound, host);
                return Turn::Again;
            }
            if owed == 0 {
                return Turn::End(Ending {
                    end: End::Drained,
                    close_notify: true,
                });
            }
            if now.mono_ms >= deadline {
                // Cut: what is still owed is not answered (counted), nothing more is written.
                host.stats(|s| s.drain_cut());
                return Turn::End(Ending {
                    end: End::Drained,
                    close_notify: false,
                });
            }
        }
        if self.eof {
            return Turn::End(match self.inbound.at_eof(rbuf) {
                Ok(()) => Ending {
                    end: End::Closed,
                    close_notify: false,
                },
                // Input ended inside a frame: `truncated` at once, with its farewell.
                Err(reject) => self.reject(reject, host),
            });
        }
        if owed == 0 && now.mono_ms.saturating_sub(self.last_frame_ms) > cfg.idle_timeout_ms {
            let last = self.out.last_answered();
            self.out.goaway("idle", last, &mut self.inbound, host);
            return Turn::End(Ending {
                end: End::Idle,
                close_notify: true,
            });
        }
        Turn::Read
    }

    /// Gives back the buffers an idle session does not need (the driver's, and TLS's, are its
    /// own). Nothing may be queued.
    pub fn release_buffers(&mut self) {
        self.out.release_buffers();
        self.inbound.release_buffers();
    }

    /// Bytes this session's output buffers hold (for `session_buffer_bytes`).
    pub fn buffer_bytes(&self) -> usize {
        self.out.buffer_bytes()
    }

    /// Whether anything is queued to write.
    pub fn has_output(&self) -> bool {
        !self.out.is_empty()
    }

    /// Whether a request that begins here is served, or refused on arrival (answered now):
    /// during a drain, past `inflight`, past `max_rps`.
    fn admit<H: SessionHost>(
        &mut self,
        h: &ronode_proto::frame::Header,
        now_ms: u64,
        cfg: &SessionCfg,
        host: &H,
    ) -> Admit {
        let (app, corr) = (h.app_proto_id, h.corr_id);
        let inbound = &mut self.inbound;
        if self.goaway_sent {
            let message = "the node is draining: send it on another session";
            self.out
                .error(inbound, app, corr, Reason::NotReady, message, 0, host);
            return Admit::Refused { counts: false };
        }
        // This request is already counted among the unanswered ones.
        if inbound.tracker_mut().unanswered() > cfg.inflight as usize {
            let message = format!("more than {} requests unanswered", cfg.inflight);
            let retry = cfg.retry_after_ms;
            self.out
                .error(inbound, app, corr, Reason::Quota, &message, retry, host);
            return Admit::Refused { counts: true };
        }
        if let Err(retry) = self.bucket.try_take(now_ms) {
            self.out.error(
                inbound,
                app,
                corr,
                Reason::Quota,
                "over max_rps",
                retry,
                host,
            );
            return Admit::Refused { counts: true };
        }
        Admit::Accept
    }

    /// Closes a session past the bound on refused requests: GOAWAY `quota`, counted.
    fn shed<H: SessionHost>(&mut self, host: &H) -> Ending {
        host.stats(|s| s.session_shed());
        let last = self.out.last_answered();
        self.out
            .goaway(Reason::Quota.label(), last, &mut self.inbound, host);
        Ending {
            end: End::Shed,
            close_notify: true,
        }
    }

    /// Counts the reject and queues its farewell; the session ends.
    fn reject<H: SessionHost>(&mut self, reject: Reject, host: &H) -> Ending {
        self.out.farewell(&reject, host);
        Ending {
            end: End::Rejected(reject.reason),
            close_notify: true,
        }
    }

    /// The read timeout: a peer in the middle of a request must complete a frame within
    /// `read_timeout_ms` of the last one (or of the moment it started), else 408 `slow_client`.
    fn read_timeout(
        &mut self,
        rbuf: &BytesMut,
        progressed: bool,
        now_ms: u64,
        cfg: &SessionCfg,
    ) -> Option<Reject> {
        if !self.inbound.mid_request(rbuf) {
            self.stalled_since_ms = None;
            return None;
        }
        match self.stalled_since_ms {
            Some(since) if !progressed => (now_ms.saturating_sub(since) > cfg.read_timeout_ms)
                .then(|| self.inbound.stalled(rbuf, cfg.read_timeout_ms)),
            _ => {
                self.stalled_since_ms = Some(now_ms);
                None
            }
        }
    }
}

/// What a request that begins met on arrival.
enum Admit {
    Accept,
    /// Answered with an error at once; `counts` towards the bound on refusals.
    Refused {
        counts: bool,
    },
}

/// What answering a frame came to.
enum Answered {
    /// Answered, or handed to its plane.
    Done,
    /// Refused (answered with an error, or counted unanswered): counts towards the bound.
    Refused,
    /// A reject: the session closes with its farewell.
    Reject(Reject),
}

/// A request past the 64 the sequence tracker holds (`quota`): refused alone, the session goes
/// on. `quota` on any other frame (an EVENT asking an ACK) stays a reject that closes.
fn is_past_inflight(reject: &Reject) -> bool {
    reject.reason == Reason::Quota && reject.header.is_some_and(|h| h.kind() == Some(Kind::Req))
}
