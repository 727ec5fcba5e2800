//! The blocking SDK client: one ron/oap1 session over `std::net::TcpStream` and rustls, one
//! request at a time.
//!
//! [`Client::connect`] dials, runs the TLS 1.3 handshake ([`crate::tls`]), sends HELLO, checks
//! the reply and applies the negotiated `max_frame`. Then [`Client::ping`], [`Client::head`],
//! [`Client::get`], [`Client::get_range`] and [`Client::put`] each send one request and wait for
//! its answer. Every frame received goes through the same receive pipeline the node runs
//! ([`ronode_proto::inbound::Inbound`]): a node that breaks the wire rules ends the session with
//! [`ClientError::Protocol`].
//!
//! A whole GET is verified against its address: bytes that do not hash to it are
//! [`ClientError::BadDigest`], never a success.
//!
//! After an error that leaves the session in an unknown state (I/O, TLS, protocol, timeout, a
//! GOAWAY, or a reject that closes the session), every later call returns
//! [`ClientError::Closed`]: connect again.

use std::io::{self, Read as _, Write as _};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use ronode_proto::control::{Control, GoAway, Hello, HelloReply, APP_CONTROL};
use ronode_proto::error_body::ErrorBody;
use ronode_proto::frame::{Frame, VERSION};
use ronode_proto::inbound::{Inbound, Received, Reject, ServedApps};
use ronode_proto::limits::{
    CHUNK_BYTES, HEADER_LEN, MAX_CAP_BYTES, MAX_FRAME, MAX_UA_BYTES, MIN_NEGOTIATED_FRAME,
};
use ronode_proto::msg::objects::{
    ByteRange, Get, Head, HeadResp, ObjectRequest, Put, PutResp, STATUS_OK, STATUS_PARTIAL,
};
use ronode_proto::msg::APP_OBJECTS;
use ronode_proto::sequence::{Progress, Role};
use ronode_proto::{Flags, FrameEncoder, Kind, NodeId, ObjectAddr, OutFrame, Reason};
use rustls::pki_types::ServerName;
use rustls::ClientConnection;

use crate::error::NodeError;
use crate::tls::{self, PqMode, TlsError};

/// The user agent sent in HELLO unless [`ClientOptions::ua`] says otherwise.
pub const DEFAULT_UA: &str = concat!("ronode-client/", env!("CARGO_PKG_VERSION"));
/// Default bound on each wait for the node.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);
/// Default largest answer [`Client::get`] reassembles: the node's default `objects.max_bytes`.
pub const DEFAULT_MAX_OBJECT_BYTES: u64 = 256 * 1024 * 1024;

/// How to connect, and the session's settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientOptions {
    /// Key exchange groups offered (default [`PqMode::Hybrid`]).
    pub pq_mode: PqMode,
    /// When set, the node's certificate must carry this NodeId (the `ADDR#NodeId` form).
    pub pin: Option<NodeId>,
    /// User agent sent in HELLO, at most 256 bytes.
    pub ua: String,
    /// Bound on each wait: connecting, the TLS handshake and HELLO together, then every read
    /// and write of a request. A transfer that keeps moving is never cut.
    pub timeout: Duration,
    /// `tenant_id` written in every frame (0: unspecified). Capabilities may be bound to one.
    pub tenant_id: u128,
    /// Body bytes per frame of a PUT (default 64 KiB; capped by the negotiated `max_frame`).
    pub chunk_bytes: usize,
    /// Largest answer [`Client::get`] and [`Client::get_range`] accept.
    pub max_object_bytes: u64,
}

impl Default for ClientOptions {
    fn default() -> ClientOptions {
        ClientOptions {
            pq_mode: PqMode::Hybrid,
            pin: None,
            ua: DEFAULT_UA.to_owned(),
            timeout: DEFAULT_TIMEOUT,
            tenant_id: 0,
            chunk_bytes: CHUNK_BYTES,
            max_object_bytes: DEFAULT_MAX_OBJECT_BYTES,
        }
    }
}

/// What went wrong with a call.
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
    /// The node did not answer (or accept bytes) within [`ClientOptions::timeout`].
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
    fn ends_session(&self) -> bool {
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

/// A blocking session with one node. See the module docs.
#[derive(Debug)]
pub struct Client {
    sock: TcpStream,
    tls: ClientConnection,
    inbound: Inbound,
    encoder: FrameEncoder,
    /// Plaintext read from TLS, not yet taken as frames.
    rbuf: BytesMut,
    /// Encoded frame on its way into TLS.
    wbuf: Vec<u8>,
    next_corr_id: u64,
    hello: HelloReply,
    opts: ClientOptions,
    /// The node closed the connection (TCP or TLS close_notify).
    eof: bool,
    goaway: Option<GoAway>,
    /// Why the session cannot be used any more.
    ended: Option<String>,
    /// While connecting: when the handshake and HELLO must be done.
    deadline: Option<Instant>,
}

impl Client {
    /// Dials `addr`, runs the TLS handshake (checking the node's identity against
    /// [`ClientOptions::pin`]), sends HELLO and applies the negotiated limits.
    pub fn connect(addr: SocketAddr, opts: &ClientOptions) -> Result<Client, ClientError> {
        check_options(opts)?;
        let config = tls::client_config(opts.pq_mode, opts.pin, None)?;
        let tls =
            ClientConnection::new(config, ServerName::from(addr.ip())).map_err(TlsError::Config)?;
        // Connecting, the handshake and HELLO share one deadline.
        let deadline = Instant::now() + opts.timeout;
        let sock = TcpStream::connect_timeout(&addr, opts.timeout)
            .map_err(|e| io_error(e, opts.timeout))?;
        sock.set_nodelay(true)?;
        let mut client = Client {
            sock,
            tls,
            inbound: Inbound::new(
                Role::Dialer,
                MAX_FRAME,
                ServedApps::of(&[APP_CONTROL, APP_OBJECTS]),
            ),
            encoder: FrameEncoder::new(MAX_FRAME),
            rbuf: BytesMut::with_capacity(64 * 1024),
            wbuf: Vec::with_capacity(64 * 1024),
            next_corr_id: 1,
            hello: HelloReply::default(),
            opts: opts.clone(),
            eof: false,
            goaway: None,
            ended: None,
            deadline: Some(deadline),
        };
        client.handshake()?;
        client.hello()?;
        client.deadline = None;
        client.sock.set_read_timeout(Some(opts.timeout))?;
        client.sock.set_write_timeout(Some(opts.timeout))?;
        Ok(client)
    }

    /// Sends PING and returns the round-trip time to its PONG.
    pub fn ping(&mut self) -> Result<Duration, ClientError> {
        self.run(|c| {
            let corr_id = c.next_corr_id();
            let payload = Control::Ping(corr_id).to_vec();
            let sent = Instant::now();
            c.send(&c.request_frame(APP_CONTROL, corr_id, &payload))?;
            let answer = c.answer_frame(corr_id)?;
            let body = whole_answer(answer, STATUS_OK)?;
            match Control::parse(&body) {
                Ok(Control::Pong(n)) if n == corr_id => Ok(sent.elapsed()),
                _ => Err(protocol(format!(
                    "PING {corr_id} answered by {:?}",
                    String::from_utf8_lossy(&body)
                ))),
            }
        })
    }

    /// The size in bytes of the object at `addr` (HEAD).
    pub fn head(&mut self, addr: &ObjectAddr) -> Result<u64, ClientError> {
        self.run(|c| {
            let corr_id = c.object_request(&ObjectRequest::Head(Head { addr: *addr }))?;
            let body = whole_answer(c.answer_frame(corr_id)?, STATUS_OK)?;
            HeadResp::decode(&body)
                .map(|h| h.size)
                .map_err(|_| protocol("HEAD answered by something other than {\"size\": u64}"))
        })
    }

    /// The whole object at `addr`, reassembled from its stream and verified: bytes that do not
    /// hash to `addr` are [`ClientError::BadDigest`].
    pub fn get(&mut self, addr: &ObjectAddr) -> Result<Vec<u8>, ClientError> {
        self.run(|c| {
            let corr_id = c.object_request(&ObjectRequest::Get(Get::whole(*addr)))?;
            let body = c.read_body(corr_id, STATUS_OK)?;
            let actual = ObjectAddr::of(&body);
            if actual != *addr {
                return Err(ClientError::BadDigest {
                    expected: *addr,
                    actual,
                });
            }
            Ok(body)
        })
    }

    /// Bytes `start..end` (`end` exclusive) of the object at `addr`, answered 206: the part of
    /// the range inside the object (empty when `start` is at or past its end). A part cannot be
    /// checked against the address; [`Client::get`] verifies a whole object.
    pub fn get_range(
        &mut self,
        addr: &ObjectAddr,
        start: u64,
        end: u64,
    ) -> Result<Vec<u8>, ClientError> {
        if start >= end {
            return Err(ClientError::InvalidRequest(format!(
                "range {start}..{end} is empty or inverted"
            )));
        }
        self.run(|c| {
            let corr_id = c.object_request(&ObjectRequest::Get(Get {
                addr: *addr,
                range: Some(ByteRange { start, end }),
                hops: 0,
            }))?;
            let body = c.read_body(corr_id, STATUS_PARTIAL)?;
            if body.len() as u64 > end - start {
                return Err(protocol(format!(
                    "range {start}..{end} answered with {} bytes",
                    body.len()
                )));
            }
            Ok(body)
        })
    }

    /// Stores `bytes` under their BLAKE3 address: a START frame with the `put` request and
    /// `cap` (a capability token, WIRE.md section 4), the body in
    /// [`ClientOptions::chunk_bytes`] frames, END. The node may answer before the body is sent
    /// (401, 403, 413, ...): when that answer arrives while body frames remain, the client stops
    /// sending and returns it, and the session, which holds an unfinished stream, is ended
    /// (later calls: [`ClientError::Closed`]). A body of one frame is always sent whole.
    pub fn put(&mut self, bytes: &[u8], cap: Option<&[u8]>) -> Result<PutResp, ClientError> {
        let cap = cap.unwrap_or_default();
        if cap.len() > MAX_CAP_BYTES {
            return Err(ClientError::InvalidRequest(format!(
                "capability of {} bytes is over the {MAX_CAP_BYTES}-byte limit",
                cap.len()
            )));
        }
        self.run(|c| c.put_stream(bytes, cap))
    }

    /// The negotiated key exchange group, e.g. `"X25519MLKEM768"`.
    pub fn negotiated_group(&self) -> Option<String> {
        tls::negotiated_group(&self.tls)
    }

    /// The node's NodeId, derived from its certificate.
    pub fn peer_node_id(&self) -> Option<NodeId> {
        tls::peer_node_id(&self.tls)
    }

    /// The node's HELLO reply: the negotiated `max_frame`, `max_inflight`, versions.
    pub fn hello_reply(&self) -> &HelloReply {
        &self.hello
    }

    /// Ends the session cleanly (TLS close_notify).
    pub fn close(mut self) -> Result<(), ClientError> {
        self.tls.send_close_notify();
        self.flush_tls()
    }

    // --- requests ---

    /// Runs one call unless the session is over; ends the session after an error that leaves
    /// it in an unknown state.
    fn run<T>(
        &mut self,
        call: impl FnOnce(&mut Client) -> Result<T, ClientError>,
    ) -> Result<T, ClientError> {
        if let Some(why) = &self.ended {
            return Err(ClientError::Closed(why.clone()));
        }
        if let Some(g) = &self.goaway {
            return Err(ClientError::Closed(goaway_text(g)));
        }
        let result = call(self);
        if let Err(e) = &result {
            if e.ends_session() && self.ended.is_none() {
                self.ended = Some(format!("an earlier call failed: {e}"));
            }
        }
        result
    }

    fn next_corr_id(&mut self) -> u64 {
        let id = self.next_corr_id;
        self.next_corr_id += 1;
        id
    }

    fn request_frame<'a>(&self, app: u16, corr_id: u64, payload: &'a [u8]) -> OutFrame<'a> {
        OutFrame {
            tenant_id: self.opts.tenant_id,
            ..OutFrame::request(app, corr_id, payload)
        }
    }

    /// Sends a one-frame objects request; returns its corr_id.
    fn object_request(&mut self, req: &ObjectRequest) -> Result<u64, ClientError> {
        let corr_id = self.next_corr_id();
        let mut payload = Vec::new();
        req.encode(&mut payload);
        self.send(&self.request_frame(APP_OBJECTS, corr_id, &payload))?;
        Ok(corr_id)
    }

    fn hello(&mut self) -> Result<(), ClientError> {
        let corr_id = self.next_corr_id();
        let payload = Control::Hello(Hello {
            ua: Some(self.opts.ua.clone()),
            max_frame: None,
        })
        .to_vec();
        self.send(&self.request_frame(APP_CONTROL, corr_id, &payload))?;
        let body = whole_answer(self.answer_frame(corr_id)?, STATUS_OK)?;
        let reply = match Control::parse(&body) {
            Ok(Control::HelloReply(reply)) => reply,
            _ => {
                return Err(protocol(format!(
                    "HELLO answered by {:?}",
                    String::from_utf8_lossy(&body)
                )))
            }
        };
        if !reply.versions.contains(&VERSION) {
            return Err(protocol(format!(
                "node speaks versions {:?}, not {VERSION}",
                reply.versions
            )));
        }
        if !(MIN_NEGOTIATED_FRAME..=MAX_FRAME).contains(&reply.max_frame) {
            return Err(protocol(format!(
                "HELLO reply max_frame {} is outside {MIN_NEGOTIATED_FRAME}..={MAX_FRAME}",
                reply.max_frame
            )));
        }
        self.encoder.set_max_frame(reply.max_frame);
        self.inbound.set_max_frame(reply.max_frame);
        self.hello = reply;
        Ok(())
    }

    fn put_stream(&mut self, bytes: &[u8], cap: &[u8]) -> Result<PutResp, ClientError> {
        let addr = ObjectAddr::of(bytes);
        let size = bytes.len() as u64;
        let corr_id = self.next_corr_id();
        let mut request = Vec::new();
        ObjectRequest::Put(Put { addr, size }).encode(&mut request);
        let start = OutFrame {
            flags: Flags::REQ | Flags::START,
            cap,
            ..self.request_frame(APP_OBJECTS, corr_id, &request)
        };
        if bytes.is_empty() {
            self.send(&OutFrame {
                flags: Flags::REQ | Flags::START | Flags::END,
                ..start
            })?;
            return put_answer(self.answer_frame(corr_id)?, addr, size);
        }
        self.send(&start)?;
        let chunk = self.chunk_bytes();
        let chunks = bytes.len().div_ceil(chunk);
        for (i, part) in bytes.chunks(chunk).enumerate() {
            // The node may answer before the body is complete: stop sending then. The first
            // body frame goes right after the START frame, so a body of one frame is always
            // sent whole.
            let mut early = match i {
                0 => None,
                _ => self.poll_answer_frame(corr_id)?,
            };
            if early.is_none() {
                let flags = if i + 1 == chunks {
                    Flags::REQ | Flags::END
                } else {
                    Flags::REQ
                };
                let frame = OutFrame {
                    flags,
                    cap: &[],
                    payload: part,
                    ..start
                };
                match self.send(&frame) {
                    Ok(()) => continue,
                    // It may have answered and closed: its answer may still be readable.
                    Err(ClientError::Io(e)) => match self.answer_frame(corr_id) {
                        Ok(answer) => early = Some(answer),
                        Err(_) => return Err(ClientError::Io(e)),
                    },
                    Err(e) => return Err(e),
                }
            }
            if let Some(answer) = early {
                self.ended = Some(format!(
                    "the PUT with corr_id {corr_id} was answered before its body was sent, \
                     leaving its stream unfinished"
                ));
                return put_answer(answer, addr, size);
            }
        }
        put_answer(self.answer_frame(corr_id)?, addr, size)
    }

    /// Body bytes per PUT frame: the option, within what a frame without a cap can carry.
    fn chunk_bytes(&self) -> usize {
        let max_payload = self.hello.max_frame as usize - HEADER_LEN;
        self.opts.chunk_bytes.clamp(1, max_payload)
    }

    /// Reads a RESP message answering `corr_id` whose frames carry status `want`, one frame or
    /// a START..END stream, into one buffer (at most [`ClientOptions::max_object_bytes`]).
    fn read_body(&mut self, corr_id: u64, want: u16) -> Result<Vec<u8>, ClientError> {
        let mut body = Vec::new();
        loop {
            let Received { frame, progress } = self.answer_frame(corr_id)?;
            let code = frame.header.code;
            if code >= 400 {
                return Err(error_answer(&frame, progress));
            }
            if code != want {
                return Err(protocol(format!(
                    "answer to {corr_id} has status {code}, want {want}"
                )));
            }
            if (body.len() + frame.payload.len()) as u64 > self.opts.max_object_bytes {
                return Err(protocol(format!(
                    "answer to {corr_id} passes max_object_bytes ({})",
                    self.opts.max_object_bytes
                )));
            }
            body.extend_from_slice(&frame.payload);
            if progress.ends() {
                return Ok(body);
            }
        }
    }

    // --- frames ---

    /// Records `frame` with the sequence tracker and writes it out.
    fn send(&mut self, frame: &OutFrame<'_>) -> Result<(), ClientError> {
        self.inbound
            .tracker_mut()
            .on_send(&frame.header())
            .map_err(|r| protocol(format!("this client broke the stream rules ({r})")))?;
        self.write_frame(frame)
    }

    fn write_frame(&mut self, frame: &OutFrame<'_>) -> Result<(), ClientError> {
        let mut buf = std::mem::take(&mut self.wbuf);
        buf.clear();
        let result = match self.encoder.encode(frame, &mut buf) {
            Ok(_) => self.write_plaintext(&buf),
            Err(e) => Err(protocol(format!("cannot encode a frame: {e}"))),
        };
        self.wbuf = buf;
        result
    }

    fn write_plaintext(&mut self, mut data: &[u8]) -> Result<(), ClientError> {
        while !data.is_empty() {
            // rustls takes what its send buffer allows; the rest waits for the socket.
            let n = self.tls.writer().write(data)?;
            data = &data[n..];
            self.flush_tls()?;
        }
        Ok(())
    }

    /// The next frame answering `corr_id`, waiting for it.
    fn answer_frame(&mut self, corr_id: u64) -> Result<Received, ClientError> {
        loop {
            // Waiting, `next_frame` returns a frame or an error.
            if let Some(received) = self.next_frame(true)? {
                if let Some(answer) = self.route(received, corr_id)? {
                    return Ok(answer);
                }
            }
        }
    }

    /// A frame answering `corr_id` if one has already arrived; never waits.
    fn poll_answer_frame(&mut self, corr_id: u64) -> Result<Option<Received>, ClientError> {
        while let Some(received) = self.try_next_frame()? {
            if let Some(answer) = self.route(received, corr_id)? {
                return Ok(Some(answer));
            }
        }
        Ok(None)
    }

    /// Returns the frame if it answers `corr_id`; handles the node's control traffic (PING,
    /// GOAWAY) on the way; anything else is a protocol error.
    fn route(&mut self, received: Received, corr_id: u64) -> Result<Option<Received>, ClientError> {
        let h = received.frame.header;
        let kind = received.frame.kind();
        if kind == Kind::Resp && h.corr_id == corr_id {
            return Ok(Some(received));
        }
        if h.app_proto_id == APP_CONTROL {
            match (kind, Control::parse(&received.frame.payload)) {
                (Kind::Event, Ok(Control::GoAway(g))) => {
                    let unanswered = g.last_corr_id < corr_id;
                    let text = goaway_text(&g);
                    self.goaway = Some(g);
                    if unanswered {
                        return Err(ClientError::Closed(text));
                    }
                    return Ok(None);
                }
                (Kind::Req, Ok(Control::Ping(n))) => {
                    let pong = Control::Pong(n).to_vec();
                    let frame = OutFrame {
                        tenant_id: h.tenant_id,
                        ..OutFrame::response(APP_CONTROL, h.corr_id, STATUS_OK, &pong)
                    };
                    self.send(&frame)?;
                    return Ok(None);
                }
                _ => {}
            }
        }
        Err(protocol(format!(
            "unexpected {kind:?} frame (app {}, corr_id {}) while waiting for the answer to {corr_id}",
            h.app_proto_id, h.corr_id
        )))
    }

    /// The next checked frame, waiting for bytes as needed.
    fn next_frame(&mut self, wait: bool) -> Result<Option<Received>, ClientError> {
        loop {
            match self.inbound.poll(&mut self.rbuf) {
                Ok(Some(received)) => return Ok(Some(received)),
                Ok(None) => {}
                Err(reject) => return Err(self.reject(reject)),
            }
            if self.eof {
                let why = match self.inbound.at_eof(&self.rbuf) {
                    Ok(()) => "the node closed the connection".to_owned(),
                    Err(r) => format!("the node closed the connection inside a frame ({r})"),
                };
                return Err(ClientError::Closed(why));
            }
            let got_bytes = if wait {
                self.read_tls()?;
                true
            } else {
                self.try_read_tls()?
            };
            if !got_bytes {
                return Ok(None);
            }
        }
    }

    fn try_next_frame(&mut self) -> Result<Option<Received>, ClientError> {
        self.next_frame(false)
    }

    /// The node sent a frame the wire rules reject: send the farewell the rules ask for, close,
    /// and report it.
    fn reject(&mut self, reject: Reject) -> ClientError {
        let last = self.next_corr_id.saturating_sub(1);
        let mut payload = Vec::new();
        let frame = reject.farewell(last).frame(&mut payload);
        // Best effort: the session ends whatever happens to these bytes.
        let _ = self.write_frame(&frame);
        self.tls.send_close_notify();
        let _ = self.flush_tls();
        protocol(format!(
            "the node sent a frame the wire rules reject: {reject}"
        ))
    }

    // --- TLS and the socket ---

    fn handshake(&mut self) -> Result<(), ClientError> {
        while self.tls.is_handshaking() {
            if self.tls.wants_write() {
                self.flush_tls()?;
            } else {
                self.read_tls()?;
                if self.eof && self.tls.is_handshaking() {
                    return Err(ClientError::Closed(
                        "the node closed the connection during the TLS handshake".to_owned(),
                    ));
                }
            }
        }
        self.flush_tls()?;
        if self.tls.alpn_protocol() != Some(tls::ALPN) {
            return Err(protocol("the node did not select ALPN ron/oap1"));
        }
        Ok(())
    }

    /// Reads TLS records once (waiting) and moves their plaintext to the read buffer.
    fn read_tls(&mut self) -> Result<(), ClientError> {
        self.bound_wait()?;
        match self.tls.read_tls(&mut self.sock) {
            Ok(0) => {
                self.eof = true;
                Ok(())
            }
            Ok(_) => self.process_tls(),
            Err(e) => Err(self.io_error(e)),
        }
    }

    /// Reads TLS records if some have arrived; `Ok(false)` when none had.
    fn try_read_tls(&mut self) -> Result<bool, ClientError> {
        // A flood of unrequested bytes is not buffered past one frame's worth.
        if self.rbuf.len() > self.hello.max_frame as usize {
            return Ok(false);
        }
        self.sock.set_nonblocking(true)?;
        let read = self.tls.read_tls(&mut self.sock);
        self.sock.set_nonblocking(false)?;
        match read {
            Ok(0) => {
                self.eof = true;
                Ok(true)
            }
            Ok(_) => self.process_tls().map(|()| true),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(false),
            Err(e) => Err(self.io_error(e)),
        }
    }

    fn process_tls(&mut self) -> Result<(), ClientError> {
        let state = match self.tls.process_new_packets() {
            Ok(state) => state,
            Err(e) => {
                // Send the alert rustls queued, then report.
                let _ = self.flush_tls();
                return Err(TlsError::Session(e).into());
            }
        };
        let n = state.plaintext_bytes_to_read();
        if n > 0 {
            let at = self.rbuf.len();
            self.rbuf.resize(at + n, 0);
            self.tls.reader().read_exact(&mut self.rbuf[at..])?;
        }
        if state.peer_has_closed() {
            self.eof = true;
        }
        Ok(())
    }

    fn flush_tls(&mut self) -> Result<(), ClientError> {
        while self.tls.wants_write() {
            self.bound_wait()?;
            if let Err(e) = self.tls.write_tls(&mut self.sock) {
                return Err(self.io_error(e));
            }
        }
        Ok(())
    }

    /// While connecting, bounds the next socket wait by what is left before the deadline
    /// (afterwards every wait is bounded by the timeout, set once).
    fn bound_wait(&mut self) -> Result<(), ClientError> {
        let Some(deadline) = self.deadline else {
            return Ok(());
        };
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(ClientError::Timeout(self.opts.timeout));
        }
        self.sock.set_read_timeout(Some(left))?;
        self.sock.set_write_timeout(Some(left))?;
        Ok(())
    }

    fn io_error(&self, e: io::Error) -> ClientError {
        io_error(e, self.opts.timeout)
    }
}

fn check_options(opts: &ClientOptions) -> Result<(), ClientError> {
    let invalid = |what: String| Err(ClientError::InvalidRequest(what));
    if opts.ua.len() > MAX_UA_BYTES {
        return invalid(format!(
            "ua of {} bytes is over {MAX_UA_BYTES}",
            opts.ua.len()
        ));
    }
    if opts.timeout.is_zero() {
        return invalid("timeout must be above zero".to_owned());
    }
    if opts.chunk_bytes == 0 {
        return invalid("chunk_bytes must be above zero".to_owned());
    }
    Ok(())
}

fn io_error(e: io::Error, timeout: Duration) -> ClientError {
    match e.kind() {
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut => ClientError::Timeout(timeout),
        _ => ClientError::Io(e),
    }
}

fn protocol(what: impl Into<String>) -> ClientError {
    ClientError::Protocol(what.into())
}

fn goaway_text(g: &GoAway) -> String {
    format!(
        "the node sent GOAWAY (reason {:?}, last_corr_id {})",
        g.reason, g.last_corr_id
    )
}

/// The error an answer with status 400 or more carries: one whole frame, or a stream's END.
fn error_answer(frame: &Frame, progress: Progress) -> ClientError {
    let code = frame.header.code;
    if !progress.ends() {
        return protocol(format!(
            "status {code} on a frame that does not end its answer"
        ));
    }
    match ErrorBody::decode(frame.app_proto_id(), &frame.payload) {
        Ok(body) => ClientError::Node(NodeError::from_body(body)),
        Err(_) => protocol(format!("status {code} with an unreadable error body")),
    }
}

/// The payload of a one-frame answer with status `want`.
fn whole_answer(answer: Received, want: u16) -> Result<Bytes, ClientError> {
    let Received { frame, progress } = answer;
    let code = frame.header.code;
    if code >= 400 {
        return Err(error_answer(&frame, progress));
    }
    if progress != Progress::Whole {
        return Err(protocol(format!(
            "a one-frame answer was expected (status {code}, corr_id {})",
            frame.header.corr_id
        )));
    }
    if code != want {
        return Err(protocol(format!("status {code}, want {want}")));
    }
    Ok(frame.payload)
}

fn put_answer(answer: Received, addr: ObjectAddr, size: u64) -> Result<PutResp, ClientError> {
    let body = whole_answer(answer, STATUS_OK)?;
    let resp = PutResp::decode(&body)
        .map_err(|_| protocol("PUT answered by something other than {addr, size, stored}"))?;
    if resp.addr != addr || resp.size != size {
        return Err(protocol(format!(
            "PUT of {addr} ({size} bytes) acknowledged as {} ({} bytes)",
            resp.addr, resp.size
        )));
    }
    Ok(resp)
}
