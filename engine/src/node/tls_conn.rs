//! [`TlsConn`]: a TLS 1.3 connection (a session accepted, or a peer dialled) driven by hand over
//! a glommio `TcpStream`.
//!
//! The handshake runs through `futures_rustls`; the session then takes the socket and the
//! rustls connection apart ([`TlsConn::new`]) and drives them itself, for three reasons:
//! - a session can be handed to another shard: the parts are what crosses (the socket as a
//!   duplicated fd, the connection state (`Send`) as it is, with any bytes it already read);
//! - the receive path decrypts straight into the session's frame buffer (no intermediate copy),
//!   and the send path turns a whole write buffer into TLS records and writes them with one
//!   socket write;
//! - an idle connection holds no buffer of its own: ciphertext is read into one buffer per
//!   shard thread ([`RX_SCRATCH`]) and handed to rustls within the same poll, so a connection
//!   waiting in a read owns nothing but its TLS state ([`TlsConn::release_buffers`] gives the
//!   rest back).
//!
//! Reads are cancel-safe: glommio keeps a read in progress on the stream, not in the future, and
//! ciphertext is handed to rustls only once a read completed.

use bytes::BytesMut;
use futures_lite::{AsyncRead, AsyncWriteExt};
use glommio::net::TcpStream;
use rustls::Connection;
use std::cell::RefCell;
use std::io;
use std::pin::Pin;
use std::task::Poll;

/// Ciphertext asked of the socket per read: a few TLS records.
const READ_CHUNK: usize = 64 * 1024;

thread_local! {
    /// Where every connection of this shard thread reads ciphertext into. One suffices: a read
    /// lands here and is handed to rustls within the poll that made it (nothing stays here
    /// across an await), and a shard runs one task at a time. Sessions then cost no receive
    /// buffer while they wait, which is most of their life.
    static RX_SCRATCH: RefCell<Box<[u8]>> = RefCell::new(vec![0; READ_CHUNK].into_boxed_slice());
}

/// See the module docs.
pub struct TlsConn {
    io: TcpStream,
    /// Boxed: a session moves as a value (between tasks and shards), the state is a kilobyte.
    conn: Box<Connection>,
    /// Ciphertext ready to be written; grows while the connection is busy, released when idle.
    tx: Vec<u8>,
}

/// A reader that has nothing yet: lets rustls shrink its receive buffer without reading.
struct NothingYet;

impl io::Read for NothingYet {
    fn read(&mut self, _: &mut [u8]) -> io::Result<usize> {
        Err(io::ErrorKind::WouldBlock.into())
    }
}

impl TlsConn {
    pub fn new(io: TcpStream, mut conn: Box<Connection>) -> TlsConn {
        // The session bounds what it writes (its write buffer); rustls need not bound it again.
        conn.set_buffer_limit(None);
        TlsConn {
            io,
            conn,
            tx: Vec::new(),
        }
    }

    /// Gives back the memory an idle connection need not hold: the ciphertext write buffer, and
    /// rustls' receive buffer down to its floor (rustls shrinks it when it is asked to read
    /// with nothing partial in it; the read finds nothing and changes nothing else). Call it
    /// only between writes; the next read or write grows what it needs again.
    pub fn release_buffers(&mut self) {
        self.tx = Vec::new();
        // WouldBlock, or "buffer full" when plaintext is waiting: either way nothing was read.
        let _ = self.conn.read_tls(&mut NothingYet);
    }

    /// Bytes of buffer this connection holds outside rustls (for `session_buffer_bytes`).
    pub fn buffer_bytes(&self) -> usize {
        self.tx.capacity()
    }

    pub fn socket(&self) -> &TcpStream {
        &self.io
    }

    /// A write that cannot complete within `timeout` fails with `ErrorKind::TimedOut`.
    pub fn set_write_timeout(&self, timeout: std::time::Duration) {
        // Only fails for a zero duration, which the configuration never allows.
        let _ = self.io.set_write_timeout(Some(timeout));
    }

    /// The NodeId of the certificate the other side presented (a peer node's, or a client's
    /// identity), kept with the connection so a session handed between shards still knows it.
    pub fn peer_node_id(&self) -> Option<ronode_proto::id::NodeId> {
        ronode_client::tls::peer_node_id(&self.conn)
    }

    /// The socket and the TLS state, to hand the session to another shard.
    pub fn into_parts(self) -> (TcpStream, Box<Connection>) {
        (self.io, self.conn)
    }

    /// Waits for ciphertext, reads it into the shard's scratch buffer and hands it to rustls in
    /// the same poll, decrypting into `out`: the ciphertext byte count (0 when the peer closed)
    /// and how decrypting went. On a TLS error rustls has queued an alert: send it with
    /// [`TlsConn::write_pending`] before closing. Cancel-safe: nothing is consumed until a read
    /// completes, and a completed read is absorbed before the poll returns.
    async fn recv_into(&mut self, out: &mut BytesMut) -> io::Result<(usize, io::Result<usize>)> {
        futures_lite::future::poll_fn(|cx| {
            RX_SCRATCH.with_borrow_mut(|rx| match Pin::new(&mut self.io).poll_read(cx, rx) {
                Poll::Pending => Poll::Pending,
                Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
                Poll::Ready(Ok(n)) => Poll::Ready(Ok((n, absorb(&mut self.conn, &rx[..n], out)))),
            })
        })
        .await
    }

    /// Appends what the peer sent to `out`, waiting until `wake` completes at the latest (the
    /// caller has something to send, or a timer of its own to look at): `Ok(None)` when nothing
    /// came, `Ok(Some(0))` when the peer closed. No timer is made per read: a read is the hot
    /// path. Safe to abandon: ciphertext reaches rustls only once a socket read has completed.
    pub async fn read_or_wake(
        &mut self,
        out: &mut BytesMut,
        wake: impl std::future::Future<Output = ()>,
    ) -> io::Result<Option<usize>> {
        let held = self.take_plaintext(out)?;
        if held > 0 {
            return Ok(Some(held));
        }
        let res = futures_lite::future::or(async { Some(self.recv_into(out).await) }, async {
            wake.await;
            None
        })
        .await;
        match res {
            None => Ok(None),
            Some(Ok((0, _))) => Ok(Some(0)),
            Some(Ok((n, absorbed))) => {
                // Alerts on failure; answers to key updates and the like on success.
                let written = self.write_pending().await;
                absorbed?;
                written?;
                // close_notify ends the peer's input as EOF does (it may still read): said at
                // once, not when the socket closes. The plaintext before it is in `out`.
                if self.peer_closed() {
                    return Ok(Some(0));
                }
                Ok(Some(n))
            }
            Some(Err(e)) => Err(e),
        }
    }

    /// Whether the peer sent close_notify.
    fn peer_closed(&mut self) -> bool {
        self.conn
            .process_new_packets()
            .is_ok_and(|state| state.peer_has_closed())
    }

    /// Moves the plaintext rustls holds into `out`, growing it by exactly that much (bytes a
    /// handshake or a hand-off left behind are taken this way too).
    pub fn take_plaintext(&mut self, out: &mut BytesMut) -> io::Result<usize> {
        move_plaintext(&mut self.conn, out)
    }

    /// Encrypts `plaintext` and writes it, with whatever else rustls has to send, in as few
    /// socket writes as the kernel allows.
    pub async fn write_all(&mut self, plaintext: &[u8]) -> io::Result<()> {
        io::Write::write_all(&mut self.conn.writer(), plaintext)?;
        self.write_pending().await
    }

    /// Encrypts the slices, in order, as one stream of records (rustls reads them in place: no
    /// copy into a buffer first), and writes them.
    pub async fn write_vectored_all(&mut self, slices: &[std::io::IoSlice<'_>]) -> io::Result<()> {
        let total: usize = slices.iter().map(|s| s.len()).sum();
        let taken = io::Write::write_vectored(&mut self.conn.writer(), slices)?;
        if taken != total {
            // Without a buffer limit rustls takes everything it is given.
            return Err(io::Error::other(format!(
                "rustls took {taken} of {total} bytes"
            )));
        }
        self.write_pending().await
    }

    /// Writes every TLS record rustls has queued (answers to key updates, alerts).
    pub async fn write_pending(&mut self) -> io::Result<()> {
        while self.conn.wants_write() {
            self.tx.clear();
            self.conn.write_tls(&mut self.tx)?;
            self.io.write_all(&self.tx).await?;
        }
        Ok(())
    }

    /// Sends close_notify and flushes it.
    pub async fn close(&mut self) -> io::Result<()> {
        self.conn.send_close_notify();
        self.write_pending().await?;
        self.io.flush().await
    }
}

/// Hands `ciphertext` to rustls and appends the plaintext it yields to `out`: how many
/// plaintext bytes that was.
fn absorb(conn: &mut Connection, mut ciphertext: &[u8], out: &mut BytesMut) -> io::Result<usize> {
    let mut got = 0;
    while !ciphertext.is_empty() {
        conn.read_tls(&mut ciphertext)?;
        got += move_plaintext(conn, out)?;
    }
    Ok(got)
}

/// See [`TlsConn::take_plaintext`].
fn move_plaintext(conn: &mut Connection, out: &mut BytesMut) -> io::Result<usize> {
    let mut total = 0;
    loop {
        let avail = conn
            .process_new_packets()
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?
            .plaintext_bytes_to_read();
        if avail == 0 {
            return Ok(total);
        }
        let start = out.len();
        out.resize(start + avail, 0);
        let n = match io::Read::read(&mut conn.reader(), &mut out[start..]) {
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => 0,
            Err(e) => {
                out.truncate(start);
                return Err(e);
            }
        };
        out.truncate(start + n);
        total += n;
        if n == 0 {
            return Ok(total);
        }
    }
}
