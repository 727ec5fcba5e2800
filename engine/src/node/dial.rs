//! Dialling a configured peer: TCP, then TLS 1.3 presenting this node's certificate and pinning
//! the peer's NodeId (a mismatch is refused by the certificate verifier), then the session is
//! driven by hand like an accepted one ([`TlsConn`]).

use super::tls_conn::TlsConn;
use glommio::net::TcpStream;
use ronode_client::tls::{client_config, peer_identity_error, PqMode};
use ronode_shards::peers::{DialFailure, PeerSpec};
use rustls::pki_types::ServerName;
use std::time::{Duration, Instant};

/// This node's certificate and key (DER), presented to the peers it dials.
#[derive(Debug, Clone)]
pub struct OwnCert {
    pub cert: Vec<u8>,
    pub key: Vec<u8>,
}

/// Connects to `peer` and completes the TLS handshake within `timeout`.
pub async fn dial(
    peer: &PeerSpec,
    own: &OwnCert,
    mode: PqMode,
    timeout: Duration,
) -> Result<TlsConn, DialFailure> {
    let config = client_config(mode, Some(peer.id), Some((&own.cert, &own.key)))
        .map_err(|_| DialFailure::Handshake)?;
    let connector = futures_rustls::TlsConnector::from(config);
    let name = ServerName::IpAddress(peer.addr.ip().into());
    let deadline = Instant::now() + timeout;
    let connect = glommio::timer::timeout(timeout, TcpStream::connect(peer.addr));
    let stream = match connect.await {
        Ok(stream) => stream,
        Err(glommio::GlommioError::TimedOut(_)) => return Err(DialFailure::Timeout),
        Err(_) => return Err(DialFailure::Connect),
    };
    let _ = stream.set_nodelay(true);
    let left = deadline.saturating_duration_since(Instant::now());
    let handshake = glommio::timer::timeout(left, async {
        connector
            .connect(name, stream)
            .await
            .map_err(glommio::GlommioError::IoError)
    });
    let tls = match handshake.await {
        Ok(tls) => tls,
        Err(glommio::GlommioError::TimedOut(_)) => return Err(DialFailure::Timeout),
        Err(glommio::GlommioError::IoError(e)) => return Err(classify(&e)),
        Err(_) => return Err(DialFailure::Handshake),
    };
    let (io, conn) = tls.into_inner();
    Ok(TlsConn::new(io, Box::new(conn.into())))
}

/// A TLS failure: the peer proved another NodeId (`mismatch`), or anything else.
fn classify(e: &std::io::Error) -> DialFailure {
    match e.get_ref().and_then(|i| i.downcast_ref::<rustls::Error>()) {
        Some(tls) if peer_identity_error(tls).is_some() => DialFailure::Mismatch,
        _ => DialFailure::Handshake,
    }
}
