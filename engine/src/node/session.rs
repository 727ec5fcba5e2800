//! One client or peer session on a shard: TLS, then OAP/1 frames through the sans-IO receive
//! pipeline (`proto::inbound`), answered in order on the same connection (one writer).
//!
//! The loop: take every whole frame already buffered and answer it into the write buffer, add
//! what the objects plane has for this session (a bounded batch), flush the write buffer with
//! one write, then read more. Reads wait at most one shard tick, so a session notices draining,
//! its idle timeout and its read timeout without a timer of its own. While the session has
//! output queued it does not read: a peer that does not read its answers stops being served new
//! requests, and one that stalls a write past `write_timeout` is closed.
//!
//! Timers count whole frames, never bytes: a peer that trickles bytes of a TLS record or of a
//! frame it never finishes is idle (or stalled) all the while. A peer that keeps sending what
//! the node refuses is closed past a bound (`ronode_shards::refusals`).
//!
//! Draining (PROTOCOL.md 3.3): the session sends GOAWAY `draining` whose `last_corr_id` is the
//! highest request it accepted, answers every accepted request (reading on while an accepted
//! upload still sends its body), answers requests that arrive after the GOAWAY 503 `not_ready`,
//! and closes once nothing is owed; at the drain deadline it closes anyway, counted.
//!
//! Memory: buffers grow with what a session does and are given back when it goes idle (a shard
//! tick passes with nothing read, queued or buffered), so an idle session holds its TLS and
//! protocol state only. A busy one keeps them from turn to turn: no allocation per request.

use super::gossip::{self, Reply};
use super::objects::Outbox;
use super::shard::{Shard, ShardCfg};
use super::tls_conn::TlsConn;
use bytes::BytesMut;
use glommio::net::TcpStream;
use ronode_proto::control::{Control, GoAway, HelloReply, APP_CONTROL};
use ronode_proto::error_body::ErrorBody;
use ronode_proto::frame::{FrameEncoder, OutFrame};
use ronode_proto::inbound::{Inbound, Received, Reject};
use ronode_proto::limits::MAX_FRAME;
use ronode_proto::msg::{APP_GOSSIP, APP_OBJECTS};
use ronode_proto::sequence::Role;
use ronode_proto::{Flags, Kind, Reason};
use ronode_shards::limiter::TokenBucket;
use ronode_shards::objects::SessionId;
use ronode_shards::refusals::RefusalWindow;
use ronode_shards::shard_of;
use ronode_shards::stats::{App, Dir, FrameKind, TlsFailure};
use std::rc::Rc;
use std::time::Instant;

/// Plaintext a session collects from the objects plane before it writes: large enough for a
/// handful of 64 KiB chunks per write, small enough to bound each session's buffer.
const WRITE_BATCH: usize = 256 * 1024;

/// Payloads at least this long are not copied into the write buffer: rustls encrypts them from
/// the `Bytes` the store answered (a vectored write), which saves a copy of every body byte.
const SHARED_PAYLOAD_MIN: usize = 8 * 1024;

/// How a session ended, for logs and metrics.
#[derive(Debug)]
pub enum End {
    /// The peer closed between frames.
    Closed,
    /// The peer broke the protocol; the reject was counted and answered.
    Rejected(Reason),
    /// No complete request within the idle timeout.
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

/// Serves one accepted connection: the TLS handshake, then the session here or, for a peer
/// whose NodeId another shard owns, on that shard.
pub async fn serve(stream: TcpStream, shard: Rc<Shard>) -> End {
    let _ = stream.set_nodelay(true);
    let cfg = &shard.cfg;
    let handshake = glommio::timer::timeout(cfg.handshake_timeout, async {
        shard
            .acceptor
            .accept(stream)
            .await
            .map_err(glommio::GlommioError::from)
    });
    let (io, conn) = match handshake.await {
        Ok(tls) => tls.into_inner(),
        Err(e) => {
            let cause = match e {
                glommio::GlommioError::TimedOut(_) => TlsFailure::Timeout,
                _ => TlsFailure::Protocol,
            };
            shard.stats_mut(|s| s.tls_handshake_failed(cause));
            shard.stats_mut(|s| s.session_closed());
            return End::Io;
        }
    };
    // rustls refuses a client whose offered protocols miss ours, but not one that offers none.
    if conn.alpn_protocol() != Some(ronode_client::tls::ALPN) {
        shard.stats_mut(|s| s.tls_handshake_failed(TlsFailure::Alpn));
        shard.stats_mut(|s| s.session_closed());
        return End::Io;
    }
    let peer = ronode_client::tls::peer_node_id(&conn);
    let mut tls = TlsConn::new(io, Box::new(conn.into()));
    if let Some(peer) = peer {
        let owner = shard_of(peer.as_bytes(), shard.shard_count);
        if owner != shard.id {
            match shard.hand_off(owner, tls) {
                None => {
                    shard.stats_mut(|s| s.session_closed());
                    return End::HandedOff;
                }
                // No room on the way (counted): serve it here rather than drop it.
                Some(back) => tls = back,
            }
        }
    }
    serve_tls(tls, &shard).await
}

/// Serves a session whose TLS handshake is done (accepted here, or handed over by another
/// shard) to its end.
pub async fn serve_tls(tls: TlsConn, shard: &Rc<Shard>) -> End {
    // glommio arms this timer only when a write would block: no timer per write.
    tls.set_write_timeout(shard.cfg.write_timeout);
    let (id, outbox) = shard.objects.open_session(shard.cfg.send_window_frames);
    // A peer session: the session presented a node certificate (PROTOCOL.md 7.1), so it is a
    // peer whether or not this node lists it. Its EVENTs are relays, and gossip for it goes out
    // on this session while this node has no link to it; a client's EVENTs are publishes.
    let peer = tls.peer_node_id();
    if let Some(peer) = peer {
        shard.peers.session_opened(peer, id);
    }
    let mut session = Session::new(tls, &shard.cfg, shard.now_ms(), id, outbox);
    session.peer = peer;
    let end = session.run(shard).await;
    session.release_buffers(shard);
    if let Some(peer) = peer {
        shard.peers.session_closed(peer, id);
    }
    shard.objects.close_session(id);
    shard.gossip.session_closed((shard.id, id));
    shard.stats_mut(|s| s.session_closed());
    end
}

struct Session {
    tls: TlsConn,
    rbuf: BytesMut,
    /// Frames to write: encoded here, except large payloads, which `shared` holds with the
    /// offset in `wbuf` they follow.
    wbuf: Vec<u8>,
    shared: Vec<(usize, bytes::Bytes)>,
    shared_bytes: usize,
    inbound: Inbound,
    encoder: FrameEncoder,
    scratch: Vec<u8>,
    last_answered: u64,
    /// The highest request id accepted (not refused on arrival): the GOAWAY of a drain.
    last_accepted: u64,
    /// GOAWAY `draining` was sent: new requests are refused, the session closes once it owes
    /// nothing.
    goaway_sent: bool,
    /// The peer ended its input (EOF or TLS close_notify).
    eof: bool,
    /// Refusals within the current window; past the bound the session is shed.
    refusals: RefusalWindow,
    /// `max_rps` with its burst: requests past it are answered 429 `quota`.
    bucket: TokenBucket,
    /// This session in the shard's objects plane, and the frames the plane has for it.
    id: SessionId,
    outbox: Rc<Outbox>,
    /// Since when the peer has been mid-request without completing a frame (the read timeout).
    stalled_since: Option<Instant>,
    /// The NodeId of a peer session; `None` for a client.
    peer: Option<ronode_proto::id::NodeId>,
    /// The buffer bytes this session last counted in the shard's `session_buffer_bytes`.
    buffer_bytes: usize,
    /// Requests accepted and not yet answered whole, with when they were accepted: at most
    /// `session.inflight_frames` + 1 (admission refuses past it).
    accepted_at: Vec<(u64, App, Instant)>,
    /// Requests whose answer's last frame is in the write buffer: their latency
    /// (`request_latency_seconds`) is recorded once the flush that writes it succeeds.
    answered_at: Vec<(App, Instant)>,
}

impl Session {
    fn new(
        tls: TlsConn,
        cfg: &ShardCfg,
        now_ms: u64,
        id: SessionId,
        outbox: Rc<Outbox>,
    ) -> Session {
        let max_frame = cfg.max_frame;
        Session {
            tls,
            // Both grow with what the session does (see the module docs).
            rbuf: BytesMut::new(),
            wbuf: Vec::new(),
            shared: Vec::new(),
            shared_bytes: 0,
            inbound: Inbound::new(Role::Acceptor, max_frame, super::shard::SERVED_APPS),
            encoder: FrameEncoder::new(max_frame),
            scratch: Vec::new(),
            last_answered: 0,
            last_accepted: 0,
            goaway_sent: false,
            eof: false,
            refusals: RefusalWindow::default(),
            bucket: TokenBucket::new(cfg.max_rps, cfg.burst, now_ms),
            id,
            outbox,
            stalled_since: None,
            peer: None,
            buffer_bytes: 0,
            accepted_at: Vec::new(),
            answered_at: Vec::new(),
        }
    }

    async fn run(&mut self, shard: &Shard) -> End {
        // The idle timer: whole frames either way (a subscriber receiving gossip is not idle).
        let mut last_frame = Instant::now();
        loop {
            let now_ms = shard.now_ms();
            let mut progressed = false;
            loop {
                let rx = match self.inbound.poll(&mut self.rbuf) {
                    Ok(Some(rx)) => rx,
                    Ok(None) => break,
                    Err(reject) if is_past_inflight(&reject) => {
                        progressed = true;
                        self.refuse_unregistered(&reject, shard);
                        if self.refusals.refuse(now_ms) {
                            return self.shed(shard).await;
                        }
                        continue;
                    }
                    Err(reject) => return self.reject(reject, shard).await,
                };
                progressed = true;
                let h = rx.frame.header;
                let kind = frame_kind(rx.frame.kind());
                shard.stats_mut(|s| s.frame(Dir::In, kind, u64::from(h.len)));
                if h.kind() == Some(Kind::Req) && rx.progress.begins() {
                    match self.admit(&h, now_ms, shard) {
                        Admit::Accept => {
                            self.last_accepted = self.last_accepted.max(h.corr_id);
                            if let Some(app) = App::of(h.app_proto_id) {
                                self.accepted_at.push((h.corr_id, app, Instant::now()));
                            }
                        }
                        Admit::Refused { counts } => {
                            if counts && self.refusals.refuse(now_ms) {
                                return self.shed(shard).await;
                            }
                            continue;
                        }
                    }
                }
                match self.answer(rx, shard) {
                    Answered::Done => {}
                    Answered::Refused => {
                        if self.refusals.refuse(now_ms) {
                            return self.shed(shard).await;
                        }
                    }
                    Answered::Reject(reject) => return self.reject(reject, shard).await,
                }
            }
            if progressed {
                last_frame = Instant::now();
            }
            if let Some(reject) = self.read_timeout(progressed, shard) {
                return self.reject(reject, shard).await;
            }
            let mut sent = false;
            while self.wbuf.len() + self.shared_bytes < WRITE_BATCH {
                let Some(t) = shard.objects.next_transmit(self.id, &self.outbox) else {
                    break;
                };
                self.send_transmit(t, shard);
                sent = true;
            }
            if sent {
                last_frame = Instant::now();
            }
            if let Err(end) = self.flush(shard).await {
                return end;
            }
            let owed = self.inbound.tracker_mut().unanswered();
            if let Some(deadline) = shard.drain_deadline() {
                if !self.goaway_sent {
                    self.goaway_sent = true;
                    self.goaway("draining", self.last_accepted, shard);
                    continue; // written at once, by the next turn's flush
                }
                if owed == 0 {
                    let _ = self.tls.close().await;
                    return End::Drained;
                }
                if Instant::now() >= deadline {
                    // Cut: what is still owed is not answered (counted), nothing more is written.
                    shard.stats_mut(|s| s.drain_cut());
                    return End::Drained;
                }
            }
            if self.eof {
                return match self.inbound.at_eof(&self.rbuf) {
                    Ok(()) => End::Closed,
                    // Input ended inside a frame: `truncated` at once, with its farewell.
                    Err(reject) => self.reject(reject, shard).await,
                };
            }
            if owed == 0 && last_frame.elapsed() > shard.cfg.idle_timeout {
                self.goaway("idle", self.last_answered, shard);
                let _ = self.flush(shard).await;
                let _ = self.tls.close().await;
                return End::Idle;
            }
            if !self.outbox.is_empty() {
                // More to send: write it before taking new requests.
                continue;
            }
            self.count_buffers(shard);
            match self.read().await {
                // The frames already buffered are taken first, then the end is looked at.
                Ok(Some(0)) => self.eof = true,
                Ok(Some(_)) => {}
                // Woken with nothing read: by the shard's tick, or with frames to send.
                Ok(None) => {
                    if self.outbox.is_empty() && self.rbuf.is_empty() && self.wbuf.is_empty() {
                        self.release_buffers(shard);
                    }
                }
                Err(_) => return End::Io,
            }
        }
    }

    /// Whether a request that begins here is served, or refused on arrival (answered now):
    /// during a drain, past `session.inflight_frames`, past `max_rps`.
    fn admit(&mut self, h: &ronode_proto::frame::Header, now_ms: u64, shard: &Shard) -> Admit {
        let (app, corr) = (h.app_proto_id, h.corr_id);
        if self.goaway_sent {
            let message = "the node is draining: send it on another session";
            self.error(app, corr, Reason::NotReady, message, 0, shard);
            return Admit::Refused { counts: false };
        }
        // This request is already counted among the unanswered ones.
        let unanswered = self.inbound.tracker_mut().unanswered();
        if unanswered > shard.cfg.inflight as usize {
            let message = format!("more than {} requests unanswered", shard.cfg.inflight);
            let retry = shard.cfg.tick.as_millis() as u64;
            self.error(app, corr, Reason::Quota, &message, retry, shard);
            return Admit::Refused { counts: true };
        }
        if let Err(retry_after_ms) = self.bucket.try_take(now_ms) {
            self.error(
                app,
                corr,
                Reason::Quota,
                "over max_rps",
                retry_after_ms,
                shard,
            );
            return Admit::Refused { counts: true };
        }
        Admit::Accept
    }

    /// Answers 429 `quota` to a request past the 64 the protocol allows in flight, and only to
    /// it: the requests accepted before are answered as usual. The sequence tracker never
    /// registered it (its table is full), so the answer bypasses the tracker like a farewell.
    fn refuse_unregistered(&mut self, reject: &Reject, shard: &Shard) {
        let Some(h) = reject.header else { return };
        shard.stats_mut(|s| s.rejected(reject.reason));
        let retry = shard.cfg.tick.as_millis() as u64;
        let body = ErrorBody::new(reject.reason, reject.detail.clone(), h.corr_id, retry);
        let mut payload = Vec::new();
        body.encode(h.app_proto_id, &mut payload);
        let frame = OutFrame {
            tenant_id: h.tenant_id,
            ..OutFrame::response(h.app_proto_id, h.corr_id, reject.reason.status(), &payload)
        };
        if let Ok(n) = self.encoder.encode(&frame, &mut self.wbuf) {
            shard.stats_mut(|s| s.frame(Dir::Out, FrameKind::Resp, n as u64));
        }
    }

    /// Closes a session past the bound on refused requests: GOAWAY `quota`, counted.
    async fn shed(&mut self, shard: &Shard) -> End {
        shard.stats_mut(|s| s.session_shed());
        self.goaway(Reason::Quota.label(), self.last_answered, shard);
        let _ = self.flush(shard).await;
        let _ = self.tls.close().await;
        End::Shed
    }

    /// Gives every buffer back (nothing may be buffered: an idle session, or one that ended).
    /// A busy session wakes with something read or queued and keeps its buffers; one woken by
    /// the tick with nothing to do releases them, so a session that is busy now and then pays
    /// for growing them again at most once a tick.
    fn release_buffers(&mut self, shard: &Shard) {
        self.rbuf = BytesMut::new();
        self.wbuf = Vec::new();
        self.shared = Vec::new();
        self.scratch = Vec::new();
        self.tls.release_buffers();
        self.inbound.release_buffers();
        self.count_buffers(shard);
    }

    /// Brings this session's share of the shard's `session_buffer_bytes` up to date.
    fn count_buffers(&mut self, shard: &Shard) {
        let now = self.rbuf.capacity()
            + self.wbuf.capacity()
            + self.scratch.capacity()
            + self.shared.capacity() * std::mem::size_of::<(usize, bytes::Bytes)>()
            + self.tls.buffer_bytes();
        if now != self.buffer_bytes {
            let before = std::mem::replace(&mut self.buffer_bytes, now);
            shard.stats_mut(|s| s.session_buffers(before, now));
        }
    }

    /// The read timeout: a peer in the middle of a request must complete a frame within
    /// `read_timeout` of the last one (or of the moment it started), else 408 `slow_client`.
    fn read_timeout(&mut self, progressed: bool, shard: &Shard) -> Option<Reject> {
        if !self.inbound.mid_request(&self.rbuf) {
            self.stalled_since = None;
            return None;
        }
        match self.stalled_since {
            Some(since) if !progressed => {
                let timeout = shard.cfg.read_timeout;
                (since.elapsed() > timeout)
                    .then(|| self.inbound.stalled(&self.rbuf, timeout.as_millis() as u64))
            }
            _ => {
                self.stalled_since = Some(Instant::now());
                None
            }
        }
    }

    /// Reads what is there, waiting until the outbox has something (the shard's tick also
    /// wakes every session through its outbox, for its timers): `Ok(None)` when nothing came,
    /// `Ok(Some(0))` when the peer closed.
    async fn read(&mut self) -> std::io::Result<Option<usize>> {
        let outbox = self.outbox.clone();
        self.tls
            .read_or_wake(&mut self.rbuf, async move { outbox.wait().await })
            .await
    }

    /// Writes the write buffer and the shared payloads in order, within `write_timeout` (a
    /// peer that does not read is closed, counted as `slow_client`).
    async fn flush(&mut self, shard: &Shard) -> Result<(), End> {
        let written = if self.shared.is_empty() {
            if self.wbuf.is_empty() {
                return Ok(());
            }
            self.tls.write_all(&self.wbuf).await
        } else {
            let mut slices = Vec::with_capacity(2 * self.shared.len() + 1);
            let mut from = 0;
            for (at, payload) in &self.shared {
                slices.push(std::io::IoSlice::new(&self.wbuf[from..*at]));
                slices.push(std::io::IoSlice::new(payload));
                from = *at;
            }
            slices.push(std::io::IoSlice::new(&self.wbuf[from..]));
            self.tls.write_vectored_all(&slices).await
        };
        match written {
            Ok(()) => {
                self.wbuf.clear();
                self.shared.clear();
                self.shared_bytes = 0;
                if !self.answered_at.is_empty() {
                    shard.stats_mut(|s| {
                        for (app, at) in self.answered_at.drain(..) {
                            s.request_latency_us(app, at.elapsed().as_micros() as u64);
                        }
                    });
                }
                Ok(())
            }
            // The socket's write timeout (`write_timeout`, set once per session).
            Err(e) if e.kind() == std::io::ErrorKind::TimedOut => {
                shard.stats_mut(|s| s.rejected(Reason::SlowClient));
                Err(End::Rejected(Reason::SlowClient))
            }
            Err(_) => Err(End::Io),
        }
    }

    /// Encodes one frame into the write buffer and records it with the sequence tracker.
    fn send(&mut self, frame: &OutFrame<'_>, shard: &Shard) {
        if !self.record(&frame.header()) {
            return;
        }
        match self.encoder.encode(frame, &mut self.wbuf) {
            Ok(n) => self.sent(frame.flags, frame.corr_id, n as u64, shard),
            Err(e) => debug_assert!(false, "encoding our own frame failed: {e}"),
        }
    }

    /// Queues a frame of the objects or gossip plane: small ones are encoded into the write
    /// buffer, a large payload is written from its own `Bytes` after its header.
    fn send_transmit(&mut self, t: ronode_shards::objects::Transmit, shard: &Shard) {
        if t.payload.len() < SHARED_PAYLOAD_MIN {
            return self.send(&t.out_frame(), shard);
        }
        let header = t.header();
        if !self.record(&header) {
            return;
        }
        self.wbuf.extend_from_slice(&header.to_bytes());
        self.shared_bytes += t.payload.len();
        self.shared.push((self.wbuf.len(), t.payload));
        self.sent(t.flags, header.corr_id, header.len.into(), shard);
    }

    /// Records a frame about to be sent with the sequence tracker; `false` (our own bug: never
    /// send what the peer must reject) when it breaks the rules.
    fn record(&mut self, header: &ronode_proto::frame::Header) -> bool {
        match self.inbound.tracker_mut().on_send(header) {
            Ok(progress) => {
                if header.kind() == Some(Kind::Resp) && progress.ends() {
                    self.answer_done(header.corr_id);
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

    /// The last frame of the answer to `corr_id` is queued: an accepted request's latency is
    /// taken when it is written.
    fn answer_done(&mut self, corr_id: u64) {
        if let Some(i) = self.accepted_at.iter().position(|(c, _, _)| *c == corr_id) {
            let (_, app, at) = self.accepted_at.swap_remove(i);
            self.answered_at.push((app, at));
        }
    }

    /// Counts a frame of `n` bytes queued for sending.
    fn sent(&mut self, flags: Flags, corr_id: u64, n: u64, shard: &Shard) {
        let kind = frame_kind(flags.kind().unwrap_or(Kind::Resp));
        shard.stats_mut(|s| s.frame(Dir::Out, kind, n));
        if flags.contains(Flags::RESP) {
            self.last_answered = self.last_answered.max(corr_id);
        }
    }

    fn answer(&mut self, rx: Received, shard: &Shard) -> Answered {
        let h = rx.frame.header;
        if h.app_proto_id == APP_OBJECTS {
            shard.objects.handle_frame(self.id, rx, unix_now_s());
            return Answered::Done;
        }
        if h.app_proto_id == APP_GOSSIP {
            let me = (shard.id, self.id);
            match shard.gossip.handle_frame(me, self.peer, &rx, unix_now_s()) {
                Reply::None => {}
                Reply::Ok => {
                    let payload = if h.kind() == Some(Kind::Req) {
                        gossip::ok_payload()
                    } else {
                        Vec::new() // the acknowledgement of an EVENT sent with ACK_REQ
                    };
                    self.send(
                        &OutFrame {
                            tenant_id: h.tenant_id,
                            ..OutFrame::response(APP_GOSSIP, h.corr_id, 200, &payload)
                        },
                        shard,
                    );
                }
                Reply::Error(reason, message) => {
                    let answers = h.kind() == Some(Kind::Req) || h.flags.contains(Flags::ACK_REQ);
                    if answers {
                        self.error(APP_GOSSIP, h.corr_id, reason, &message, 0, shard);
                    } else {
                        shard.stats_mut(|s| s.rejected(reason));
                    }
                    return Answered::Refused;
                }
            }
            return Answered::Done;
        }
        if h.app_proto_id != APP_CONTROL || h.flags.kind() != Some(Kind::Req) {
            return Answered::Done;
        }
        let Ok(msg) = Control::parse(&rx.frame.payload) else {
            return Answered::Done;
        };
        let reply = match msg {
            Control::Hello(hello) => {
                match HelloReply::negotiate(&hello, shard.cfg.max_frame.min(MAX_FRAME)) {
                    Ok(mut reply) => {
                        reply.max_inflight = shard.cfg.inflight;
                        self.inbound.set_max_frame(reply.max_frame);
                        shard.objects.set_max_frame(self.id, reply.max_frame);
                        self.encoder.set_max_frame(reply.max_frame);
                        Control::HelloReply(reply)
                    }
                    // A reject like any of PROTOCOL.md 2.4: answered, then the session closes.
                    Err(reason) => {
                        return Answered::Reject(Reject {
                            reason,
                            header: Some(h),
                            detail: "max_frame below 4096".to_owned(),
                        })
                    }
                }
            }
            Control::Ping(n) => Control::Pong(n),
            _ => return Answered::Done,
        };
        self.scratch.clear();
        reply.write(&mut self.scratch);
        let payload = std::mem::take(&mut self.scratch);
        self.send(
            &OutFrame {
                tenant_id: h.tenant_id,
                ..OutFrame::response(APP_CONTROL, h.corr_id, 200, &payload)
            },
            shard,
        );
        self.scratch = payload;
        Answered::Done
    }

    /// Answers one request with an error; the session goes on.
    fn error(
        &mut self,
        app: u16,
        corr_id: u64,
        reason: Reason,
        message: &str,
        retry_after_ms: u64,
        shard: &Shard,
    ) {
        shard.stats_mut(|s| s.rejected(reason));
        let body =
            ronode_proto::error_body::ErrorBody::new(reason, message, corr_id, retry_after_ms);
        let mut payload = Vec::new();
        body.encode(app, &mut payload);
        self.send(
            &OutFrame::response(app, corr_id, reason.status(), &payload),
            shard,
        );
    }

    /// Queues a GOAWAY: this side answers requests up to `last_corr_id`, then closes.
    fn goaway(&mut self, reason: &str, last_corr_id: u64, shard: &Shard) {
        let payload = Control::GoAway(GoAway {
            reason: reason.to_owned(),
            last_corr_id,
        })
        .to_vec();
        let frame = OutFrame {
            flags: Flags::EVENT,
            ..OutFrame::request(APP_CONTROL, 0, &payload)
        };
        self.send(&frame, shard);
    }

    /// Counts the reject, sends the farewell frame, and ends the session.
    async fn reject(&mut self, reject: Reject, shard: &Shard) -> End {
        shard.stats_mut(|s| s.rejected(reject.reason));
        let mut payload = Vec::new();
        let frame = reject.farewell(self.last_answered).frame(&mut payload);
        if let Ok(n) = self.encoder.encode(&frame, &mut self.wbuf) {
            shard.stats_mut(|s| s.frame(Dir::Out, FrameKind::Event, n as u64));
        }
        let _ = self.flush(shard).await;
        let _ = self.tls.close().await;
        End::Rejected(reject.reason)
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

fn frame_kind(kind: Kind) -> FrameKind {
    match kind {
        Kind::Req => FrameKind::Req,
        Kind::Resp => FrameKind::Resp,
        Kind::Event => FrameKind::Event,
    }
}

/// Unix seconds, for capability expiry (read once per request) and upload deadlines.
pub(super) fn unix_now_s() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}
