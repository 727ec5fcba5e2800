//! [`TlsConn`]: a TLS 1.3 connection (a session accepted, or a peer dialled) driven by hand over
//! a glommio `TcpStream`.
//!
//! The handshake runs through `futures_rustls`; the session then takes the socket and the
//! rustls connection apart ([`TlsConn::new`]) and drives them itself, for two reasons:
//! - a session can be handed to another shard: the parts are what crosses (the socket as a
//!   duplicated fd, the connection state (`Send`) as it is, with any bytes it already read);
//! - the receive path decrypts straight into the session's frame buffer (no intermediate copy),
//!   and the send path turns a whole write buffer into TLS records and writes them with one
//!   socket write.
//!
//! Reads are cancel-safe: glommio keeps a read in progress on the stream, not in the future, and
//! ciphertext is handed to rustls only once a read completed.

use bytes::BytesMut;
use futures_lite::{AsyncReadExt, AsyncWriteExt};
use glommio::net::TcpStream;
use rustls::Connection;
use std::io;

/// Ciphertext asked of the socket per read: a few TLS records.
const READ_CHUNK: usize = 64 * 1024;

/// See the module docs.
pub struct TlsConn {
    io: TcpStream,
    /// Boxed: a session moves as a value (between tasks and shards), the state is a kilobyte.
    conn: Box<Connection>,
    /// Ciphertext read from the socket.
    rx: Box<[u8]>,
    /// Ciphertext ready to be written.
    tx: Vec<u8>,
}

impl TlsConn {
    pub fn new(io: TcpStream, mut conn: Box<Connection>) -> TlsConn {
        // The session bounds what it writes (its write buffer); rustls need not bound it again.
        conn.set_buffer_limit(None);
        TlsConn {
            io,
            conn,
            rx: vec![0; READ_CHUNK].into_boxed_slice(),
            tx: Vec::new(),
        }
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

    /// Reads ciphertext from the socket: the byte count to hand to [`TlsConn::absorb`], 0 when
    /// the peer closed. Cancel-safe (nothing is consumed until a read completes).
    pub async fn recv(&mut self) -> io::Result<usize> {
        self.io.read(&mut self.rx).await
    }

    /// Decrypts the `n` bytes [`TlsConn::recv`] read and appends the plaintext to `out`; how
    /// many plaintext bytes that was. On a TLS error rustls has queued an alert: send it with
    /// [`TlsConn::write_pending`] before closing.
    pub fn absorb(&mut self, n: usize, out: &mut BytesMut) -> io::Result<usize> {
        let mut ciphertext = &self.rx[..n];
        let mut got = 0;
        while !ciphertext.is_empty() {
            self.conn.read_tls(&mut ciphertext)?;
            got += move_plaintext(&mut self.conn, out)?;
        }
        Ok(got)
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
        let res = futures_lite::future::or(async { Some(self.recv().await) }, async {
            wake.await;
            None
        })
        .await;
        match res {
            None => Ok(None),
            Some(Ok(0)) => Ok(Some(0)),
            Some(Ok(n)) => {
                let absorbed = self.absorb(n, out);
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
