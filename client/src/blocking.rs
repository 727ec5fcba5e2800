//! The blocking SDK client: one ron/oap1 session over `std::net::TcpStream` and rustls, one
//! request at a time.
//!
//! [`Client::connect`] dials, runs the TLS 1.3 handshake ([`crate::tls`]), sends HELLO, checks
//! the reply and applies the negotiated `max_frame`. Then [`Client::ping`], [`Client::head`],
//! [`Client::get`], [`Client::get_range`] and [`Client::put`] each send one request and wait for
//! its answer. The protocol itself (encoding, reassembly, checks) is the sans-IO core both
//! clients share ([`crate::conversation`]); this module only moves bytes. Every frame received
//! goes through the same receive pipeline the node runs ([`ronode_proto::inbound::Inbound`]):
//! a node that breaks the wire rules ends the session with [`ClientError::Protocol`].
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

use ronode_proto::control::HelloReply;
use ronode_proto::msg::gossip::{GossipEvent, GossipRequest, Subscribe, Unsubscribe};
use ronode_proto::msg::objects::PutResp;
use ronode_proto::{NodeId, ObjectAddr};
use rustls::pki_types::ServerName;
use rustls::ClientConnection;

use crate::conversation::{Conversation, PutStep, Reply, Request};
pub use crate::error::ClientError;
use crate::error::{io_error, protocol};
pub use crate::options::{ClientOptions, DEFAULT_MAX_OBJECT_BYTES, DEFAULT_TIMEOUT, DEFAULT_UA};
use crate::tls::{self, TlsError};

/// A blocking session with one node. See the module docs.
#[derive(Debug)]
pub struct Client {
    sock: TcpStream,
    tls: ClientConnection,
    conv: Conversation,
    /// While connecting: when the handshake and HELLO must be done.
    deadline: Option<Instant>,
}

impl Client {
    /// Dials `addr`, runs the TLS handshake (checking the node's identity against
    /// [`ClientOptions::pin`], presenting [`ClientOptions::identity`] when set), sends HELLO and
    /// applies the negotiated limits.
    pub fn connect(addr: SocketAddr, opts: &ClientOptions) -> Result<Client, ClientError> {
        opts.check()?;
        let config = opts.tls_config()?;
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
            conv: Conversation::new(opts),
            deadline: Some(deadline),
        };
        client.handshake()?;
        client.call(Request::Hello)?;
        client.deadline = None;
        client.sock.set_read_timeout(Some(opts.timeout))?;
        client.sock.set_write_timeout(Some(opts.timeout))?;
        Ok(client)
    }

    /// Sends PING and returns the round-trip time to its PONG.
    pub fn ping(&mut self) -> Result<Duration, ClientError> {
        self.call(Request::Ping)?.pong()
    }

    /// The size in bytes of the object at `addr` (HEAD).
    pub fn head(&mut self, addr: &ObjectAddr) -> Result<u64, ClientError> {
        self.call(Request::Head(*addr))?.size()
    }

    /// The whole object at `addr`, reassembled from its stream and verified: bytes that do not
    /// hash to `addr` are [`ClientError::BadDigest`].
    pub fn get(&mut self, addr: &ObjectAddr) -> Result<Vec<u8>, ClientError> {
        self.call(Request::Get(*addr))?.bytes()
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
        self.call(Request::GetRange(*addr, start, end))?.bytes()
    }

    /// Stores `bytes` under their BLAKE3 address: a START frame with the `put` request and
    /// `cap` (a capability token, PROTOCOL.md section 10), the body in
    /// [`ClientOptions::chunk_bytes`] frames, END. The node may answer before the body is sent
    /// (401, 403, 413, ...): when that answer arrives while body frames remain, the client stops
    /// sending and returns it, and the session, which holds an unfinished stream, is ended
    /// (later calls: [`ClientError::Closed`]). A body of one frame is always sent whole.
    pub fn put(&mut self, bytes: &[u8], cap: Option<&[u8]>) -> Result<PutResp, ClientError> {
        let result = self.put_stream(bytes, cap.unwrap_or_default());
        self.settle(result)
    }

    /// The negotiated key exchange group, e.g. `"X25519MLKEM768"`.
    /// Publishes `data` on gossip `topic` with a `scope=gossip` capability (`cap`, or none
    /// where the node's `gossip.pub_policy` is `open`); returns once the node accepted it.
    pub fn publish(
        &mut self,
        topic: &str,
        data: &[u8],
        cap: Option<&[u8]>,
    ) -> Result<(), ClientError> {
        let result = self
            .conv
            .start_publish(topic, data, cap.unwrap_or_default())
            .and_then(|corr_id| {
                self.flush_out()?;
                self.wait(corr_id)
            });
        self.settle(result)?.ok()
    }

    /// Subscribes this session to gossip `topic`: its messages arrive from now on, taken with
    /// [`Client::next_event`].
    pub fn subscribe(&mut self, topic: &str) -> Result<(), ClientError> {
        let req = GossipRequest::Subscribe(Subscribe {
            topic: topic.to_owned(),
        });
        self.gossip(&req)
    }

    pub fn unsubscribe(&mut self, topic: &str) -> Result<(), ClientError> {
        let req = GossipRequest::Unsubscribe(Unsubscribe {
            topic: topic.to_owned(),
        });
        self.gossip(&req)
    }

    /// The next gossip message of this session's subscriptions, waiting for it up to the
    /// session's timeout (`ClientError::Timeout` then).
    pub fn next_event(&mut self) -> Result<GossipEvent, ClientError> {
        loop {
            if let Some(event) = self.conv.take_event() {
                return Ok(event);
            }
            self.conv.check_open()?;
            self.flush_out()?;
            self.read_tls()?;
            self.process()?;
        }
    }

    fn gossip(&mut self, req: &GossipRequest) -> Result<(), ClientError> {
        let result = self.conv.start_gossip(req).and_then(|corr_id| {
            self.flush_out()?;
            self.wait(corr_id)
        });
        self.settle(result)?.ok()
    }

    pub fn negotiated_group(&self) -> Option<String> {
        tls::negotiated_group(&self.tls)
    }

    /// The node's NodeId, derived from its certificate.
    pub fn peer_node_id(&self) -> Option<NodeId> {
        tls::peer_node_id(&self.tls)
    }

    /// The node's HELLO reply: the negotiated `max_frame`, `max_inflight`, versions.
    pub fn hello_reply(&self) -> &HelloReply {
        self.conv.hello_reply()
    }

    /// Ends the session cleanly (TLS close_notify).
    pub fn close(mut self) -> Result<(), ClientError> {
        self.tls.send_close_notify();
        self.flush_tls()
    }

    // --- driving the conversation ---

    /// Sends one request and waits for its answer.
    fn call(&mut self, req: Request) -> Result<Reply, ClientError> {
        let result = self.conv.start(req).and_then(|corr_id| {
            self.flush_out()?;
            self.wait(corr_id)
        });
        self.settle(result)
    }

    /// Ends the session after an error that leaves it in an unknown state.
    fn settle<T>(&mut self, result: Result<T, ClientError>) -> Result<T, ClientError> {
        if let Err(e) = &result {
            self.conv.note(e);
        }
        result
    }

    fn put_stream(&mut self, bytes: &[u8], cap: &[u8]) -> Result<PutResp, ClientError> {
        let mut up = self.conv.start_put(bytes, cap)?;
        loop {
            if let Err(e) = self.flush_out() {
                // It may have answered and closed: its answer may still be readable.
                return match (e, self.wait(up.corr_id)) {
                    (ClientError::Io(e), Err(_)) => Err(ClientError::Io(e)),
                    (ClientError::Io(_), Ok(answer)) => {
                        self.conv
                            .end("the PUT body could not be sent whole".to_owned());
                        answer.put()
                    }
                    (e, _) => Err(e),
                };
            }
            // Pick up an early answer without waiting for one.
            if self.try_read_tls()? {
                self.process()?;
            }
            if self.conv.put_step(&mut up)? != PutStep::Queued {
                break;
            }
        }
        self.wait(up.corr_id)?.put()
    }

    /// Waits for the answer to `corr_id`, answering the node's own traffic meanwhile.
    fn wait(&mut self, corr_id: u64) -> Result<Reply, ClientError> {
        loop {
            if let Some(answer) = self.conv.take(corr_id) {
                return answer;
            }
            self.flush_out()?;
            self.read_tls()?;
            self.process()?;
        }
    }

    fn process(&mut self) -> Result<(), ClientError> {
        let result = self.conv.process();
        if self.conv.closing() {
            // Best effort: the farewell, then close_notify; the session ends whatever happens.
            let _ = self.flush_out();
            self.tls.send_close_notify();
            let _ = self.flush_tls();
        }
        result
    }

    /// Writes what the conversation queued into TLS and out to the socket.
    fn flush_out(&mut self) -> Result<(), ClientError> {
        if !self.conv.has_out() {
            return self.flush_tls();
        }
        let buf = self.conv.take_out();
        let result = self.write_plaintext(&buf);
        self.conv.give_back(buf);
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

    // --- TLS and the socket ---

    fn handshake(&mut self) -> Result<(), ClientError> {
        while self.tls.is_handshaking() {
            if self.tls.wants_write() {
                self.flush_tls()?;
            } else {
                self.read_tls()?;
                if self.conv.at_eof() && self.tls.is_handshaking() {
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
                self.conv.on_eof();
                Ok(())
            }
            Ok(_) => self.process_tls(),
            Err(e) => Err(self.io_error(e)),
        }
    }

    /// Reads TLS records if some have arrived; `Ok(false)` when none had.
    fn try_read_tls(&mut self) -> Result<bool, ClientError> {
        // A flood of unrequested bytes is not buffered past one frame's worth.
        if !self.conv.may_read_ahead() {
            return Ok(false);
        }
        self.sock.set_nonblocking(true)?;
        let read = self.tls.read_tls(&mut self.sock);
        self.sock.set_nonblocking(false)?;
        match read {
            Ok(0) => {
                self.conv.on_eof();
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
            let rbuf = self.conv.read_buf();
            let at = rbuf.len();
            rbuf.resize(at + n, 0);
            self.tls.reader().read_exact(&mut rbuf[at..])?;
        }
        if state.peer_has_closed() {
            self.conv.on_eof();
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
            return Err(ClientError::Timeout(self.conv.opts().timeout));
        }
        self.sock.set_read_timeout(Some(left))?;
        self.sock.set_write_timeout(Some(left))?;
        Ok(())
    }

    fn io_error(&self, e: io::Error) -> ClientError {
        io_error(e, self.conv.opts().timeout)
    }
}
