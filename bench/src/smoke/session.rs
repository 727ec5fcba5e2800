//! The session driver: one glommio task per TLS session, rustls driven by hand.
//!
//! Per loop turn a session encodes every request that is due (open loop) or that its depth
//! allows (flat out) into one plaintext buffer, hands it to rustls in one write and the socket in
//! one send, then waits for bytes (bounded by the next due time and the run's end), decrypts
//! them and parses the plaintext where rustls holds it ([`std::io::BufRead`]), so answer bytes
//! are never copied into a frame buffer.

use std::cell::RefCell;
use std::io::{self, BufRead as _, Write as _};
use std::net::SocketAddr;
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail};
use futures_lite::future;
use futures_lite::io::{AsyncReadExt as _, AsyncWriteExt as _};
use glommio::net::TcpStream;
use ronode_proto::control::{Control, Hello, APP_CONTROL};
use ronode_proto::msg::objects::{Get, ObjectRequest};
use ronode_proto::msg::APP_OBJECTS;
use ronode_proto::{FrameEncoder, ObjectAddr, OutFrame};
use rustls::pki_types::ServerName;
use rustls::{ClientConfig, ClientConnection};

use super::parse::{HttpParser, OapParser};
use super::tracker::{Expect, Stats, Tracker};

/// Bytes read from the socket at once.
const READ_BUF: usize = 256 * 1024;
/// Pause before a failed session reconnects.
const RECONNECT_PAUSE: Duration = Duration::from_millis(100);

/// What one request looks like on the wire.
#[derive(Debug, Clone)]
pub enum Wire {
    /// An OAP/1 GET frame; its corr_id (bytes 30..38) is patched per request.
    Oap { get_frame: Vec<u8> },
    /// A whole HTTP/1.1 GET request.
    Http { request: Vec<u8> },
}

/// corr_id of the HELLO each OAP/1 session sends first; GETs count up from it.
const HELLO_CORR: u64 = 1;

impl Wire {
    /// A GET of `addr` over OAP/1.
    pub fn oap(addr: &ObjectAddr) -> Wire {
        let mut payload = Vec::new();
        ObjectRequest::Get(Get::whole(*addr)).encode(&mut payload);
        let mut get_frame = Vec::new();
        FrameEncoder::new(ronode_proto::limits::MAX_FRAME)
            .encode(&OutFrame::request(APP_OBJECTS, 0, &payload), &mut get_frame)
            .expect("a GET frame encodes");
        Wire::Oap { get_frame }
    }

    /// A keep-alive GET of `path` from `host`.
    pub fn http(host: &str, path: &str) -> Wire {
        let request =
            format!("GET {path} HTTP/1.1\r\nHost: {host}\r\nUser-Agent: overlay-smoke\r\n\r\n");
        Wire::Http {
            request: request.into_bytes(),
        }
    }

    fn is_oap(&self) -> bool {
        matches!(self, Wire::Oap { .. })
    }

    fn encode(&self, corr_id: u64, out: &mut Vec<u8>) {
        match self {
            Wire::Oap { get_frame } => {
                let at = out.len();
                out.extend_from_slice(get_frame);
                out[at + 30..at + 38].copy_from_slice(&corr_id.to_be_bytes());
            }
            Wire::Http { request } => out.extend_from_slice(request),
        }
    }
}

/// Where and how to connect.
#[derive(Debug, Clone)]
pub struct Target {
    pub addr: SocketAddr,
    pub server_name: ServerName<'static>,
    pub config: Arc<ClientConfig>,
    pub wire: Wire,
}

/// The load: sessions, depth, pacing, and the run's clock.
#[derive(Debug, Clone, Copy)]
pub struct Plan {
    pub conns: usize,
    pub depth: usize,
    /// Requests per second over all sessions; 0: flat out.
    pub rate: f64,
    pub start: Instant,
    pub end: Instant,
}

/// One TLS connection: the socket, rustls, and reused buffers.
#[derive(Debug)]
pub struct Conn {
    sock: TcpStream,
    pub tls: ClientConnection,
    rbuf: Vec<u8>,
    wbuf: Vec<u8>,
    plain: Vec<u8>,
}

enum Parser {
    Oap(OapParser),
    Http(HttpParser),
}

impl Conn {
    /// TCP connect and the full TLS handshake.
    pub async fn connect(target: &Target) -> anyhow::Result<Conn> {
        let sock = TcpStream::connect(target.addr)
            .await
            .map_err(|e| anyhow!("connecting to {}: {e}", target.addr))?;
        sock.set_nodelay(true)
            .map_err(|e| anyhow!("TCP_NODELAY: {e}"))?;
        let tls = ClientConnection::new(Arc::clone(&target.config), target.server_name.clone())?;
        let mut conn = Conn {
            sock,
            tls,
            rbuf: vec![0; READ_BUF],
            wbuf: Vec::with_capacity(16 * 1024),
            plain: Vec::with_capacity(16 * 1024),
        };
        while conn.tls.is_handshaking() {
            if conn.tls.wants_write() {
                conn.flush().await?;
                continue;
            }
            let n = conn.sock.read(&mut conn.rbuf).await?;
            if n == 0 {
                bail!("the server closed the connection during the TLS handshake");
            }
            let mut input = &conn.rbuf[..n];
            while !input.is_empty() {
                conn.tls.read_tls(&mut input)?;
                conn.tls.process_new_packets()?;
            }
        }
        conn.flush().await?;
        Ok(conn)
    }

    /// Sends HELLO and waits for its 200.
    pub async fn hello(&mut self, stats: &RefCell<Stats>, expect: Expect) -> anyhow::Result<()> {
        let payload = Control::Hello(Hello {
            ua: Some("overlay-smoke".to_owned()),
            max_frame: None,
        })
        .to_vec();
        FrameEncoder::new(ronode_proto::limits::MAX_FRAME)
            .encode(
                &OutFrame::request(APP_CONTROL, HELLO_CORR, &payload),
                &mut self.plain,
            )
            .map_err(|e| anyhow!("HELLO: {e}"))?;
        let mut tracker = Tracker::new(stats, expect);
        tracker.push(HELLO_CORR, Instant::now(), true);
        self.send_plain().await?;
        let mut parser = Parser::Oap(OapParser::default());
        while tracker.control_done == 0 {
            let n = self.read(None).await?.expect("no timer");
            self.absorb(n, &mut parser, &mut tracker)?;
        }
        Ok(())
    }

    /// The negotiated cipher suite and key-exchange group, as rustls names them.
    pub fn negotiated(&self) -> (String, String) {
        let suite = self
            .tls
            .negotiated_cipher_suite()
            .map(|s| format!("{:?}", s.suite()))
            .unwrap_or_default();
        let group = self
            .tls
            .negotiated_key_exchange_group()
            .map(|g| format!("{:?}", g.name()))
            .unwrap_or_default();
        (suite, group)
    }

    /// Best-effort TLS close_notify.
    pub async fn close(mut self) {
        self.tls.send_close_notify();
        let _ = self.flush().await;
    }

    async fn send_plain(&mut self) -> anyhow::Result<()> {
        self.tls.writer().write_all(&self.plain)?;
        self.plain.clear();
        self.flush().await
    }

    async fn flush(&mut self) -> anyhow::Result<()> {
        while self.tls.wants_write() {
            self.tls.write_tls(&mut self.wbuf)?;
        }
        if !self.wbuf.is_empty() {
            self.sock.write_all(&self.wbuf).await?;
            self.wbuf.clear();
        }
        Ok(())
    }

    /// Reads once; `Ok(None)` when `wait` passed first.
    async fn read(&mut self, wait: Option<Duration>) -> anyhow::Result<Option<usize>> {
        let read = async { Some(self.sock.read(&mut self.rbuf).await) };
        let got = match wait {
            None => read.await,
            Some(d) => {
                future::or(read, async {
                    glommio::timer::sleep(d).await;
                    None
                })
                .await
            }
        };
        match got {
            None => Ok(None),
            Some(Ok(0)) => bail!("the server closed the connection"),
            Some(Ok(n)) => Ok(Some(n)),
            Some(Err(e)) => Err(e.into()),
        }
    }

    /// Decrypts `n` bytes of `rbuf` and parses the plaintext in place.
    fn absorb(
        &mut self,
        n: usize,
        parser: &mut Parser,
        tracker: &mut Tracker<'_>,
    ) -> anyhow::Result<()> {
        tracker.now = Instant::now();
        let mut input = &self.rbuf[..n];
        while !input.is_empty() {
            self.tls.read_tls(&mut input)?;
            let state = self.tls.process_new_packets()?;
            loop {
                let mut reader = self.tls.reader();
                let chunk = match reader.fill_buf() {
                    Ok([]) => bail!("the server closed the TLS session"),
                    Ok(chunk) => chunk,
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                    Err(e) => return Err(e.into()),
                };
                let len = chunk.len();
                match parser {
                    Parser::Oap(p) => p.feed(chunk, tracker),
                    Parser::Http(p) => p.feed(chunk, tracker),
                }
                .map_err(|e| anyhow!("bad answer: {e}"))?;
                reader.consume(len);
            }
            if state.peer_has_closed() {
                bail!("the server closed the TLS session");
            }
        }
        Ok(())
    }
}

/// One session's whole run: connect (and HELLO), then send and read until the plan's end,
/// reconnecting after failures (each request in flight then counts as an error).
pub async fn run_session(
    index: usize,
    target: Rc<Target>,
    plan: Plan,
    stats: Rc<RefCell<Stats>>,
    expect: Expect,
) -> Option<(String, String)> {
    let interval = if plan.rate > 0.0 {
        Duration::from_secs_f64(plan.conns as f64 / plan.rate)
    } else {
        Duration::ZERO
    };
    // Sessions' schedules interleave: session i starts i/rate seconds in.
    let mut next_due = plan.start
        + if plan.rate > 0.0 {
            Duration::from_secs_f64(index as f64 / plan.rate)
        } else {
            Duration::ZERO
        };
    let mut corr_id = HELLO_CORR + 1;
    let mut negotiated = None;
    while Instant::now() < plan.end {
        let mut conn = match Conn::connect(&target).await {
            Ok(c) => c,
            Err(e) => {
                stats
                    .borrow_mut()
                    .error(1, || format!("session {index}: {e:#}"));
                glommio::timer::sleep(RECONNECT_PAUSE).await;
                continue;
            }
        };
        if target.wire.is_oap() {
            if let Err(e) = conn.hello(&stats, expect).await {
                stats
                    .borrow_mut()
                    .error(1, || format!("session {index}: HELLO: {e:#}"));
                glommio::timer::sleep(RECONNECT_PAUSE).await;
                continue;
            }
        }
        negotiated.get_or_insert_with(|| conn.negotiated());
        let mut tracker = Tracker::new(&stats, expect);
        let mut parser = match target.wire {
            Wire::Oap { .. } => Parser::Oap(OapParser::default()),
            Wire::Http { .. } => Parser::Http(HttpParser::default()),
        };
        let result = drive(
            &mut conn,
            &target.wire,
            plan,
            interval,
            &mut next_due,
            &mut corr_id,
            &mut parser,
            &mut tracker,
        )
        .await;
        match result {
            Ok(()) => {
                conn.close().await;
                break;
            }
            Err(e) => {
                let lost = tracker.fail_all();
                stats
                    .borrow_mut()
                    .error(lost.max(1), || format!("session {index}: {e:#}"));
                glommio::timer::sleep(RECONNECT_PAUSE).await;
            }
        }
    }
    negotiated
}

#[allow(clippy::too_many_arguments)]
async fn drive(
    conn: &mut Conn,
    wire: &Wire,
    plan: Plan,
    interval: Duration,
    next_due: &mut Instant,
    corr_id: &mut u64,
    parser: &mut Parser,
    tracker: &mut Tracker<'_>,
) -> anyhow::Result<()> {
    let open_loop = plan.rate > 0.0;
    loop {
        // A socket that always has bytes never makes a read wait: let the other sessions and
        // the monitor run when this task has had its time slice.
        glommio::yield_if_needed().await;
        let now = Instant::now();
        if now >= plan.end {
            return Ok(());
        }
        let mut sent = 0;
        while tracker.in_flight() < plan.depth && (!open_loop || *next_due <= now) {
            let scheduled = if open_loop { *next_due } else { now };
            wire.encode(*corr_id, &mut conn.plain);
            tracker.push(*corr_id, scheduled, false);
            *corr_id += 1;
            sent += 1;
            if open_loop {
                *next_due += interval;
            }
        }
        if sent > 0 {
            conn.send_plain().await?;
        }
        let until_end = plan.end.saturating_duration_since(now);
        if tracker.in_flight() == 0 {
            // Open loop, nothing in flight: sleep to the next due time.
            let d = next_due.saturating_duration_since(now).min(until_end);
            glommio::timer::sleep(d).await;
            continue;
        }
        let wait = if open_loop && tracker.in_flight() < plan.depth {
            next_due.saturating_duration_since(now).min(until_end)
        } else {
            until_end
        };
        if let Some(n) = conn.read(Some(wait)).await? {
            conn.absorb(n, parser, tracker)?;
        }
    }
}
