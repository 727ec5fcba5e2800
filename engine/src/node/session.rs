//! One client or peer session on a shard: the driver of a [`SessionCore`]. The core decides
//! everything (admission, HELLO, timers, drain, rejects: `ronode_shards::session`); this file
//! does the TLS handshake, moves bytes between the socket and the core, reads the clock once
//! per loop turn, and executes the core's endings.
//!
//! The loop: the core takes every whole frame already read, the planes' frames for this
//! session are added (a bounded batch), the output is written with one (vectored) write, the
//! core decides what comes next, then the session reads. Reads wait at most one shard tick, so
//! the core sees draining and its timers without a timer per session. While the session has
//! output queued it does not read: a peer that does not read its answers stops being served new
//! requests, and one that stalls a write past `write_timeout` is closed.
//!
//! Memory: buffers grow with what a session does and are given back when it goes idle (a shard
//! tick passes with nothing read, queued or buffered), so an idle session holds its TLS and
//! protocol state only. A busy one keeps them from turn to turn: no allocation per request.

use super::objects::Wake;
use super::shard::Shard;
use super::tls_conn::TlsConn;
use bytes::BytesMut;
use glommio::net::TcpStream;
use ronode_proto::id::NodeId;
use ronode_proto::inbound::Received;
use ronode_proto::Reason;
use ronode_shards::gossip::Reply;
use ronode_shards::objects::SessionId;
use ronode_shards::session::{Ending, Now, SessionCore, SessionHost, Turn};
use ronode_shards::shard_of;
use ronode_shards::stats::{ShardStats, TlsFailure};
use std::rc::Rc;

pub use ronode_shards::session::End;

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
    let (id, wake) = shard.objects.open_session(shard.cfg.send_window_frames);
    // A peer session: the session presented a node certificate (PROTOCOL.md 7.1), so it is a
    // peer whether or not this node lists it. Its EVENTs are relays, and gossip for it goes out
    // on this session while this node has no link to it; a client's EVENTs are publishes.
    let peer = tls.peer_node_id();
    if let Some(peer) = peer {
        shard.peers.session_opened(peer, id);
    }
    let core = SessionCore::new(
        &shard.cfg.session,
        ronode_shards::session::SERVED_APPS,
        id,
        peer,
        shard.now().mono_ms,
    );
    let mut session = Session {
        tls,
        rbuf: BytesMut::new(),
        core,
        wake,
        buffer_bytes: 0,
        last_busy_ms: 0,
    };
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

/// The planes and counters a session core reaches, on this shard.
impl SessionHost for Shard {
    fn stats(&self, f: impl FnOnce(&mut ShardStats)) {
        self.stats_mut(f);
    }

    fn objects_frame(&self, session: SessionId, rx: Received, now: Now) {
        self.objects.handle_frame(session, rx, now);
    }

    fn gossip_frame(
        &self,
        session: SessionId,
        peer: Option<NodeId>,
        rx: &Received,
        unix_s: u64,
    ) -> Reply {
        self.gossip
            .handle_frame((self.id, session), peer, rx, unix_s)
    }

    fn set_max_frame(&self, session: SessionId, max_frame: u32) {
        self.objects.set_max_frame(session, max_frame);
    }
}

struct Session {
    tls: TlsConn,
    rbuf: BytesMut,
    core: SessionCore,
    /// Woken when the core queued frames for this session, and by the shard's tick.
    wake: Rc<Wake>,
    /// The buffer bytes this session last counted in the shard's `session_buffer_bytes`.
    buffer_bytes: usize,
    /// The last turn that read bytes or queued frames: buffers are given back only once a
    /// whole tick has passed since, not on every wake-up that finds nothing to do (a frame
    /// queued and taken in the same turn leaves one behind), which would regrow them per
    /// request under load.
    last_busy_ms: u64,
}

impl Session {
    async fn run(&mut self, shard: &Shard) -> End {
        let cfg = &shard.cfg.session;
        loop {
            let now = shard.now();
            if let Some(ending) = self.core.handle_input(&mut self.rbuf, now, cfg, shard) {
                return self.end(ending, shard).await;
            }
            while self.core.has_room() {
                let Some(t) = shard.objects.next_transmit(self.core.id()) else {
                    break;
                };
                self.core.queue_transmit(t, now, shard);
                self.last_busy_ms = now.mono_ms;
            }
            loop {
                if let Err(end) = self.flush(shard).await {
                    return end;
                }
                match self
                    .core
                    .after_flush(&self.rbuf, now, shard.drain_deadline_ms(), cfg, shard)
                {
                    Turn::Again => continue,
                    Turn::End(ending) => return self.end(ending, shard).await,
                    Turn::Read => break,
                }
            }
            if shard.objects.has_transmit(self.core.id()) {
                // More to send: write it before taking new requests.
                continue;
            }
            self.count_buffers(shard);
            match self.read().await {
                // The frames already buffered are taken first, then the end is looked at.
                Ok(Some(0)) => self.core.handle_eof(),
                Ok(Some(_)) => self.last_busy_ms = shard.now_ms(),
                // Woken with nothing read: by the shard's tick, or with frames to send.
                Ok(None) => {
                    let queued = shard.objects.has_transmit(self.core.id());
                    let idle_for = shard.now_ms().saturating_sub(self.last_busy_ms);
                    let idle = idle_for >= shard.cfg.tick.as_millis() as u64;
                    if idle && !queued && self.rbuf.is_empty() && !self.core.has_output() {
                        self.release_buffers(shard);
                    }
                }
                Err(_) => return End::Io,
            }
        }
    }

    /// Executes the core's ending: writes what it queued (a farewell, a GOAWAY), then closes.
    async fn end(&mut self, ending: Ending, shard: &Shard) -> End {
        let _ = self.flush(shard).await;
        if ending.close_notify {
            let _ = self.tls.close().await;
        }
        ending.end
    }

    /// Gives every buffer back (nothing may be buffered: an idle session, or one that ended).
    /// A busy session wakes with something read or queued and keeps its buffers; one woken by
    /// the tick with nothing to do releases them, so a session that is busy now and then pays
    /// for growing them again at most once a tick.
    fn release_buffers(&mut self, shard: &Shard) {
        self.rbuf = BytesMut::new();
        if !self.core.has_output() {
            self.core.release_buffers();
        }
        self.tls.release_buffers();
        self.count_buffers(shard);
    }

    /// Brings this session's share of the shard's `session_buffer_bytes` up to date.
    fn count_buffers(&mut self, shard: &Shard) {
        let now = self.rbuf.capacity() + self.core.buffer_bytes() + self.tls.buffer_bytes();
        if now != self.buffer_bytes {
            let before = std::mem::replace(&mut self.buffer_bytes, now);
            shard.stats_mut(|s| s.session_buffers(before, now));
        }
    }

    /// Reads what is there, waiting until woken (frames queued, or the shard's tick for the
    /// timers): `Ok(None)` when nothing came, `Ok(Some(0))` when the peer closed.
    async fn read(&mut self) -> std::io::Result<Option<usize>> {
        let wake = self.wake.clone();
        self.tls
            .read_or_wake(&mut self.rbuf, async move { wake.wait().await })
            .await
    }

    /// Writes the core's output, within `write_timeout` (a peer that does not read is closed,
    /// counted as `slow_client`).
    async fn flush(&mut self, shard: &Shard) -> Result<(), End> {
        let (bytes, shared) = self.core.output();
        let written = if shared.is_empty() {
            if bytes.is_empty() {
                return Ok(());
            }
            self.tls.write_all(bytes).await
        } else {
            let mut slices = Vec::with_capacity(2 * shared.len() + 1);
            let mut from = 0;
            for (at, payload) in shared {
                slices.push(std::io::IoSlice::new(&bytes[from..*at]));
                slices.push(std::io::IoSlice::new(payload));
                from = *at;
            }
            slices.push(std::io::IoSlice::new(&bytes[from..]));
            self.tls.write_vectored_all(&slices).await
        };
        match written {
            Ok(()) => {
                self.core.written(shard.now(), shard);
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
}
