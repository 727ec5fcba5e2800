//! Handing a peer session to the shard that owns its NodeId (ARCHITECTURE.md section 1).
//!
//! A connection lands on whichever shard's SO_REUSEPORT listener the kernel picked. Once the TLS
//! handshake has shown a node certificate, the session belongs to `shard_of(NodeId)`: the
//! accepting shard takes the session apart ([`detach`]: a duplicate of the socket's fd plus the
//! rustls connection, which is `Send` and keeps any bytes already read) and sends it
//! over the hand-off mesh; the owner shard rebuilds it ([`attach`]) and serves it. The accepting
//! shard's own stream closes its fd when dropped, which does not shut the connection down.
//! Client sessions (no certificate) stay where they were accepted.

use super::tls_conn::TlsConn;
use glommio::net::TcpStream;
use rustls::Connection;
use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, OwnedFd};

/// A session in transit between shards.
#[derive(Debug)]
pub struct Handoff {
    pub socket: std::net::TcpStream,
    /// The TLS state, with any bytes already read; the peer's NodeId is in its certificate.
    pub conn: Box<Connection>,
}

/// What [`detach`] made of a session.
pub enum Detached {
    Ready(Handoff),
    /// Its fd could not be duplicated: the session, intact, and why.
    Kept(TlsConn, io::Error),
}

/// Takes a session apart for another shard.
pub fn detach(tls: TlsConn) -> Detached {
    let fd = match duplicate(tls.socket()) {
        Ok(fd) => fd,
        Err(e) => return Detached::Kept(tls, e),
    };
    let (io, conn) = tls.into_parts();
    drop(io);
    Detached::Ready(Handoff {
        socket: std::net::TcpStream::from(fd),
        conn,
    })
}

/// Rebuilds a handed-off session on the owner shard's executor.
pub fn attach(handoff: Handoff) -> TlsConn {
    let socket = socket2::Socket::from(handoff.socket);
    TlsConn::new(TcpStream::from(socket), handoff.conn)
}

/// A new fd for the same socket (glommio's stream has no `AsFd`, only `AsRawFd`).
#[allow(unsafe_code)]
fn duplicate(stream: &TcpStream) -> io::Result<OwnedFd> {
    // SAFETY: `stream` owns the fd and is borrowed for longer than `fd` lives; the borrowed fd
    // is only used to make an owned duplicate.
    let fd = unsafe { BorrowedFd::borrow_raw(stream.as_raw_fd()) };
    fd.try_clone_to_owned()
}
