//! The async SDK client: one ron/oap1 session over tokio and tokio-rustls, so applications on
//! any tokio runtime (current-thread included) can embed it; glommio is not needed.
//!
//! [`AsyncClient`] offers what the blocking [`crate::Client`] does, with the same
//! [`ClientOptions`] and [`ClientError`]s, and speaks through the same sans-IO core
//! ([`crate::conversation`]): this module only moves bytes. [`AsyncClient::get_many`] keeps
//! several GETs in flight at once (up to the node's `max_inflight`).
//!
//! The runtime needs its I/O and time drivers (`enable_all()`): every wait is bounded by
//! [`ClientOptions::timeout`].
//!
//! Every call takes `&mut self`. A call whose future is dropped before it finished may leave
//! half a frame on the wire: the session is then ended and later calls return
//! [`ClientError::Closed`].

use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::task::Poll;
use std::time::Duration;

use ronode_proto::control::HelloReply;
use ronode_proto::msg::objects::PutResp;
use ronode_proto::{NodeId, ObjectAddr};
use rustls::pki_types::ServerName;
use tokio::io::{AsyncRead, AsyncReadExt as _, AsyncWriteExt as _, ReadBuf};
use tokio::net::TcpStream;
use tokio::time::timeout;
use tokio_rustls::client::TlsStream;
use tokio_rustls::TlsConnector;

use crate::conversation::{Conversation, PutStep, Reply, Request};
use crate::error::{io_error, protocol, ClientError};
use crate::options::ClientOptions;
use crate::tls::{self, TlsError};

/// An async session with one node. See the module docs.
#[derive(Debug)]
pub struct AsyncClient {
    stream: TlsStream<TcpStream>,
    conv: Conversation,
    /// Reused for reads that must not wait (an early answer to a PUT).
    scratch: Vec<u8>,
    /// A call is under way; still set when a call starts means the last one was cancelled.
    busy: bool,
}

impl AsyncClient {
    /// Dials `addr`, runs the TLS handshake (checking the node's identity against
    /// [`ClientOptions::pin`], presenting [`ClientOptions::identity`] when set), sends HELLO and
    /// applies the negotiated limits, all within [`ClientOptions::timeout`].
    pub async fn connect(
        addr: SocketAddr,
        opts: &ClientOptions,
    ) -> Result<AsyncClient, ClientError> {
        opts.check()?;
        let config = opts.tls_config()?;
        let connecting = async {
            let tcp = TcpStream::connect(addr).await?;
            tcp.set_nodelay(true)?;
            let stream = TlsConnector::from(config)
                .connect(ServerName::from(addr.ip()), tcp)
                .await
                .map_err(|e| tls_io_error(e, opts.timeout))?;
            if stream.get_ref().1.alpn_protocol() != Some(tls::ALPN) {
                return Err(protocol("the node did not select ALPN ron/oap1"));
            }
            let mut client = AsyncClient {
                stream,
                conv: Conversation::new(opts),
                scratch: vec![0; 16 * 1024],
                busy: false,
            };
            client.call(Request::Hello).await?;
            Ok(client)
        };
        timeout(opts.timeout, connecting)
            .await
            .map_err(|_| ClientError::Timeout(opts.timeout))?
    }

    /// Sends PING and returns the round-trip time to its PONG.
    pub async fn ping(&mut self) -> Result<Duration, ClientError> {
        self.call(Request::Ping).await?.pong()
    }

    /// The size in bytes of the object at `addr` (HEAD).
    pub async fn head(&mut self, addr: &ObjectAddr) -> Result<u64, ClientError> {
        self.call(Request::Head(*addr)).await?.size()
    }

    /// The whole object at `addr`, verified: bytes that do not hash to `addr` are
    /// [`ClientError::BadDigest`].
    pub async fn get(&mut self, addr: &ObjectAddr) -> Result<Vec<u8>, ClientError> {
        self.call(Request::Get(*addr)).await?.bytes()
    }

    /// Bytes `start..end` (`end` exclusive) of the object at `addr`, answered 206; see
    /// [`crate::Client::get_range`].
    pub async fn get_range(
        &mut self,
        addr: &ObjectAddr,
        start: u64,
        end: u64,
    ) -> Result<Vec<u8>, ClientError> {
        self.call(Request::GetRange(*addr, start, end))
            .await?
            .bytes()
    }

    /// Several whole objects, their GETs pipelined (up to the node's `max_inflight` in flight).
    /// Each entry is that object's answer, verified like [`AsyncClient::get`]; the outer error
    /// is one that ended the session before every request was sent.
    pub async fn get_many(
        &mut self,
        addrs: &[ObjectAddr],
    ) -> Result<Vec<Result<Vec<u8>, ClientError>>, ClientError> {
        self.begin()?;
        let result = self.pipeline(addrs).await;
        self.settle(result)
    }

    /// Stores `bytes` under their BLAKE3 address with capability `cap`; see
    /// [`crate::Client::put`] for the early-answer rule.
    pub async fn put(&mut self, bytes: &[u8], cap: Option<&[u8]>) -> Result<PutResp, ClientError> {
        self.begin()?;
        let result = self.put_stream(bytes, cap.unwrap_or_default()).await;
        self.settle(result)
    }

    /// The negotiated key exchange group, e.g. `"X25519MLKEM768"`.
    pub fn negotiated_group(&self) -> Option<String> {
        tls::negotiated_group(self.stream.get_ref().1)
    }

    /// The node's NodeId, derived from its certificate.
    pub fn peer_node_id(&self) -> Option<NodeId> {
        tls::peer_node_id(self.stream.get_ref().1)
    }

    /// The node's HELLO reply: the negotiated `max_frame`, `max_inflight`, versions.
    pub fn hello_reply(&self) -> &HelloReply {
        self.conv.hello_reply()
    }

    /// Ends the session cleanly (TLS close_notify).
    pub async fn close(mut self) -> Result<(), ClientError> {
        let limit = self.conv.opts().timeout;
        match timeout(limit, self.stream.shutdown()).await {
            Ok(result) => result.map_err(|e| tls_io_error(e, limit)),
            Err(_) => Err(ClientError::Timeout(limit)),
        }
    }

    // --- driving the conversation ---

    fn begin(&mut self) -> Result<(), ClientError> {
        if self.busy {
            self.conv
                .end("an earlier call was cancelled before it finished".to_owned());
        }
        self.conv.check_open()?;
        self.busy = true;
        Ok(())
    }

    fn settle<T>(&mut self, result: Result<T, ClientError>) -> Result<T, ClientError> {
        self.busy = false;
        if let Err(e) = &result {
            self.conv.note(e);
        }
        result
    }

    /// Sends one request and waits for its answer.
    async fn call(&mut self, req: Request) -> Result<Reply, ClientError> {
        self.begin()?;
        let result = match self.conv.start(req) {
            Ok(corr_id) => match self.flush_out().await {
                Ok(()) => self.wait(corr_id).await,
                Err(e) => Err(e),
            },
            Err(e) => Err(e),
        };
        self.settle(result)
    }

    async fn pipeline(
        &mut self,
        addrs: &[ObjectAddr],
    ) -> Result<Vec<Result<Vec<u8>, ClientError>>, ClientError> {
        let mut results: Vec<Option<Result<Vec<u8>, ClientError>>> =
            addrs.iter().map(|_| None).collect();
        let mut in_flight: Vec<(usize, u64)> = Vec::new();
        let mut next = 0;
        while next < addrs.len() || !in_flight.is_empty() {
            while next < addrs.len() && in_flight.len() < self.conv.window() {
                in_flight.push((next, self.conv.start(Request::Get(addrs[next]))?));
                next += 1;
            }
            self.flush_out().await?;
            let before = in_flight.len();
            let conv = &mut self.conv;
            in_flight.retain(|&(i, corr_id)| match conv.take(corr_id) {
                Some(answer) => {
                    results[i] = Some(answer.and_then(Reply::bytes));
                    false
                }
                None => true,
            });
            if in_flight.len() == before {
                self.read().await?;
                self.process().await?;
            }
        }
        Ok(results.into_iter().flatten().collect())
    }

    async fn put_stream(&mut self, bytes: &[u8], cap: &[u8]) -> Result<PutResp, ClientError> {
        let mut up = self.conv.start_put(bytes, cap)?;
        loop {
            if let Err(e) = self.flush_out().await {
                // It may have answered and closed: its answer may still be readable.
                return match (e, self.wait(up.corr_id).await) {
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
            if self.try_read()? {
                self.process().await?;
            }
            if self.conv.put_step(&mut up)? != PutStep::Queued {
                break;
            }
        }
        self.wait(up.corr_id).await?.put()
    }

    /// Waits for the answer to `corr_id`, answering the node's own traffic meanwhile.
    async fn wait(&mut self, corr_id: u64) -> Result<Reply, ClientError> {
        loop {
            if let Some(answer) = self.conv.take(corr_id) {
                return answer;
            }
            self.flush_out().await?;
            self.read().await?;
            self.process().await?;
        }
    }

    async fn process(&mut self) -> Result<(), ClientError> {
        let result = self.conv.process();
        if self.conv.closing() {
            // Best effort: the farewell, then close_notify; the session ends whatever happens.
            let _ = self.flush_out().await;
            let limit = self.conv.opts().timeout;
            let _ = timeout(limit, self.stream.shutdown()).await;
        }
        result
    }

    // --- the stream ---

    /// Writes what the conversation queued and flushes it to the socket.
    async fn flush_out(&mut self) -> Result<(), ClientError> {
        let limit = self.conv.opts().timeout;
        if self.conv.has_out() {
            let buf = self.conv.take_out();
            let written = timeout(limit, self.stream.write_all(&buf)).await;
            self.conv.give_back(buf);
            bounded(written, limit)?;
        }
        bounded(timeout(limit, self.stream.flush()).await, limit)
    }

    /// Reads once (waiting, bounded by the timeout) into the conversation's buffer.
    async fn read(&mut self) -> Result<(), ClientError> {
        let limit = self.conv.opts().timeout;
        let rbuf = self.conv.read_buf();
        rbuf.reserve(16 * 1024);
        match timeout(limit, self.stream.read_buf(rbuf)).await {
            Err(_) => Err(ClientError::Timeout(limit)),
            Ok(result) => self.after_read(result.map(|n| n > 0)),
        }
    }

    /// Reads what has already arrived, never waiting; `Ok(false)` when nothing had.
    fn try_read(&mut self) -> Result<bool, ClientError> {
        if !self.conv.may_read_ahead() {
            return Ok(false);
        }
        let (stream, scratch) = (&mut self.stream, &mut self.scratch);
        // One poll: a stream with nothing ready answers Pending, which means "nothing yet".
        let polled = futures_poll_once(|cx| {
            let mut rb = ReadBuf::new(scratch);
            Pin::new(&mut *stream)
                .poll_read(cx, &mut rb)
                .map_ok(|()| rb.filled().len())
        });
        match polled {
            None => Ok(false),
            Some(Ok(n)) => {
                self.conv.read_buf().extend_from_slice(&self.scratch[..n]);
                self.after_read(Ok(n > 0)).map(|()| true)
            }
            Some(Err(e)) => self.after_read(Err(e)).map(|()| true),
        }
    }

    /// `got`: whether bytes came (`false`: the node closed the connection).
    fn after_read(&mut self, got: io::Result<bool>) -> Result<(), ClientError> {
        match got {
            Ok(true) => Ok(()),
            // A TCP close without close_notify ends the session like a clean close does.
            Ok(false) => {
                self.conv.on_eof();
                Ok(())
            }
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => {
                self.conv.on_eof();
                Ok(())
            }
            Err(e) => Err(tls_io_error(e, self.conv.opts().timeout)),
        }
    }
}

/// Polls once with a waker that does nothing: `None` when the poll was pending.
fn futures_poll_once<T>(mut poll: impl FnMut(&mut std::task::Context<'_>) -> Poll<T>) -> Option<T> {
    let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
    match poll(&mut cx) {
        Poll::Ready(v) => Some(v),
        Poll::Pending => None,
    }
}

fn bounded(
    r: Result<io::Result<()>, tokio::time::error::Elapsed>,
    limit: Duration,
) -> Result<(), ClientError> {
    match r {
        Ok(result) => result.map_err(|e| tls_io_error(e, limit)),
        Err(_) => Err(ClientError::Timeout(limit)),
    }
}

/// tokio-rustls reports TLS failures as I/O errors that carry the rustls error: typed back.
fn tls_io_error(e: io::Error, limit: Duration) -> ClientError {
    match e.get_ref().and_then(|i| i.downcast_ref::<rustls::Error>()) {
        Some(tls) => TlsError::Session(tls.clone()).into(),
        None => io_error(e, limit),
    }
}
