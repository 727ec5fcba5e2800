//! What both transports share about a session's setup: [`ClientOptions`] and their checks.

use std::sync::Arc;
use std::time::Duration;

use ronode_proto::limits::{CHUNK_BYTES, MAX_UA_BYTES};
use ronode_proto::NodeId;
use rustls::ClientConfig;

use crate::error::ClientError;
use crate::tls::{self, ClientIdentity, PqMode, TlsError};

/// The user agent sent in HELLO unless [`ClientOptions::ua`] says otherwise.
pub const DEFAULT_UA: &str = concat!("ronode-client/", env!("CARGO_PKG_VERSION"));
/// Default bound on each wait for the node.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);
/// Default largest answer a GET reassembles: the node's default `objects.max_bytes`.
pub const DEFAULT_MAX_OBJECT_BYTES: u64 = 256 * 1024 * 1024;

/// How to connect, and the session's settings (the same for the blocking and the async client).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientOptions {
    /// Key exchange groups offered (default [`PqMode::Hybrid`]).
    pub pq_mode: PqMode,
    /// When set, the node's certificate must carry this NodeId (the `ADDR#NodeId` form).
    pub pin: Option<NodeId>,
    /// A node certificate to present when the node asks for one (TLS client auth): a node that
    /// dials a peer passes its own, so the peer knows its NodeId. Plain clients leave it `None`.
    pub identity: Option<ClientIdentity>,
    /// User agent sent in HELLO, at most 256 bytes.
    pub ua: String,
    /// Bound on each wait: connecting, the TLS handshake and HELLO together, then every read
    /// and write of a request. A transfer that keeps moving is never cut.
    pub timeout: Duration,
    /// `tenant_id` written in every frame (0: unspecified). Capabilities may be bound to one.
    pub tenant_id: u128,
    /// Body bytes per frame of a PUT (default 64 KiB; capped by the negotiated `max_frame`).
    pub chunk_bytes: usize,
    /// Largest answer a GET (whole or ranged) accepts.
    pub max_object_bytes: u64,
}

impl Default for ClientOptions {
    fn default() -> ClientOptions {
        ClientOptions {
            pq_mode: PqMode::Hybrid,
            pin: None,
            identity: None,
            ua: DEFAULT_UA.to_owned(),
            timeout: DEFAULT_TIMEOUT,
            tenant_id: 0,
            chunk_bytes: CHUNK_BYTES,
            max_object_bytes: DEFAULT_MAX_OBJECT_BYTES,
        }
    }
}

impl ClientOptions {
    /// Refuses options that cannot make a session; nothing is sent.
    pub(crate) fn check(&self) -> Result<(), ClientError> {
        let invalid = |what: String| Err(ClientError::InvalidRequest(what));
        if self.ua.len() > MAX_UA_BYTES {
            return invalid(format!(
                "ua of {} bytes is over {MAX_UA_BYTES}",
                self.ua.len()
            ));
        }
        if self.timeout.is_zero() {
            return invalid("timeout must be above zero".to_owned());
        }
        if self.chunk_bytes == 0 {
            return invalid("chunk_bytes must be above zero".to_owned());
        }
        Ok(())
    }

    /// The rustls configuration these options ask for.
    pub(crate) fn tls_config(&self) -> Result<Arc<ClientConfig>, TlsError> {
        let identity = self
            .identity
            .as_ref()
            .map(|i| (i.cert_der(), i.key_pkcs8_der()));
        tls::client_config(self.pq_mode, self.pin, identity)
    }
}
