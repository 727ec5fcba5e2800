//! TLS 1.3 for ron/oap1 sessions (PROTOCOL.md sections 1 and 11), shared by the SDK and the node.
//!
//! - TLS 1.3 only, ALPN [`ALPN`] (`ron/oap1`), key exchange by [`PqMode`].
//! - Identity is the NodeId, never a CA chain: a node presents one self-signed certificate over
//!   its Ed25519 key whose subject is one CommonName `ron1:` + 64 lowercase hex of
//!   BLAKE3-256(ml_dsa_87_pk) ([`ronode_proto::cert`]). The verifiers here derive the NodeId from
//!   that certificate with [`node_id_from_cert`], ignore names and validity dates, and always
//!   check the TLS 1.3 CertificateVerify signature with the certificate's key
//!   ([`rustls::crypto::verify_tls13_signature`], Ed25519 only): without that check anyone could
//!   claim any NodeId.
//! - [`client_config`] refuses a server whose NodeId differs from the pinned one (the error names
//!   both, see [`PeerIdentityError`]) and may present the dialling node's own certificate.
//! - [`server_config`] asks for a client certificate without requiring one: plain clients (SDKs,
//!   the CLI) send none; a node that dials presents its certificate, and the server reads its
//!   NodeId afterwards with [`peer_node_id`].
//! - Session resumption is off on both sides: every connection runs a full handshake, so every
//!   session's peer identity was verified on that very connection (a resumed session would skip
//!   the certificate and with it the pin check).

use std::fmt;
use std::str::FromStr;
use std::sync::Arc;

use ronode_proto::cert::{node_certificate, node_id_from_cert, CertError};
use ronode_proto::identity::Identity;
use ronode_proto::NodeId;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::ResolvesClientCert;
use rustls::crypto::aws_lc_rs::kx_group::{X25519, X25519MLKEM768};
use rustls::crypto::{aws_lc_rs, WebPkiSupportedAlgorithms};
use rustls::crypto::{verify_tls13_signature, CryptoProvider, SupportedKxGroup};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName, UnixTime};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::server::ResolvesServerCert;
use rustls::sign::{CertifiedKey, SingleCertAndKey};
use rustls::{
    CertificateError, ClientConfig, CommonState, DigitallySignedStruct, DistinguishedName,
    OtherError, PeerIncompatible, PeerMisbehaved, ServerConfig, SignatureScheme,
};

/// The ALPN protocol id of OAP/1 sessions.
pub const ALPN: &[u8] = b"ron/oap1";

/// The only signature scheme a node certificate can sign CertificateVerify with.
const SIG_SCHEME: SignatureScheme = SignatureScheme::ED25519;

/// Which key exchange groups a side offers (PROTOCOL.md sections 1 and 11, the `pq_mode` knob).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum PqMode {
    /// Classical only: `X25519` (for overhead comparisons).
    Off,
    /// Hybrid post-quantum `X25519MLKEM768` preferred, `X25519` allowed. The default.
    #[default]
    Hybrid,
    /// `X25519MLKEM768` only: a peer that cannot do it fails the handshake.
    PqOnly,
}

impl PqMode {
    /// Every mode, in the order the knob documents them.
    pub const ALL: [PqMode; 3] = [PqMode::Off, PqMode::Hybrid, PqMode::PqOnly];

    /// The knob's value: `off`, `hybrid` or `pq_only`.
    pub const fn label(self) -> &'static str {
        match self {
            PqMode::Off => "off",
            PqMode::Hybrid => "hybrid",
            PqMode::PqOnly => "pq_only",
        }
    }

    /// The key exchange groups offered, most preferred first.
    pub fn kx_groups(self) -> Vec<&'static dyn SupportedKxGroup> {
        match self {
            PqMode::Off => vec![X25519],
            PqMode::Hybrid => vec![X25519MLKEM768, X25519],
            PqMode::PqOnly => vec![X25519MLKEM768],
        }
    }
}

impl fmt::Display for PqMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.label())
    }
}

/// A `pq_mode` value that is none of `off`, `hybrid`, `pq_only`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown pq_mode {0:?}: expected off, hybrid or pq_only")]
pub struct ParsePqModeError(pub String);

impl FromStr for PqMode {
    type Err = ParsePqModeError;
    fn from_str(s: &str) -> Result<PqMode, ParsePqModeError> {
        PqMode::ALL
            .into_iter()
            .find(|m| m.label() == s)
            .ok_or_else(|| ParsePqModeError(s.to_owned()))
    }
}

/// Why a TLS configuration could not be built, or a handshake failed.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// This side's own certificate is not a node certificate (PROTOCOL.md sections 1 and 11).
    #[error("own certificate is not a node certificate: {0}")]
    OwnCert(#[source] CertError),
    /// rustls refused the configuration (for example a key that does not match the certificate).
    #[error("TLS configuration refused: {0}")]
    Config(#[source] rustls::Error),
    /// The handshake or the record layer failed. When the peer's identity was the problem the
    /// message is the [`PeerIdentityError`]'s; [`peer_identity_error`] gives it typed.
    #[error("TLS failed: {}", describe(.0))]
    Session(#[source] rustls::Error),
}

/// Why a peer's certificate was refused; carried inside rustls' error as
/// `InvalidCertificate(Other(..))` (alert `certificate_unknown`).
#[derive(Clone, PartialEq, Eq, thiserror::Error)]
pub enum PeerIdentityError {
    /// The server is not the node that was dialled.
    #[error("server presented NodeId {presented}, but NodeId {pinned} was pinned")]
    PinMismatch { pinned: NodeId, presented: NodeId },
    /// The certificate is not of the node form (key, CommonName, encoding).
    #[error("peer certificate is not a node certificate: {0}")]
    NotNodeCert(CertError),
    /// A node sends exactly one, self-signed certificate.
    #[error("peer sent {0} certificates; a node sends exactly one")]
    ExtraCertificates(usize),
}

impl fmt::Debug for PeerIdentityError {
    // rustls prints a certificate error's `Other` payload with `{:?}`: keep it readable.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl PeerIdentityError {
    fn into_rustls(self) -> rustls::Error {
        rustls::Error::InvalidCertificate(CertificateError::Other(OtherError(Arc::new(self))))
    }
}

/// The [`PeerIdentityError`] inside a rustls error, when a verifier of this module refused the
/// peer's certificate (locally: the error this side raised, not an alert the peer sent).
pub fn peer_identity_error(err: &rustls::Error) -> Option<&PeerIdentityError> {
    match err {
        rustls::Error::InvalidCertificate(CertificateError::Other(OtherError(inner))) => {
            inner.downcast_ref::<PeerIdentityError>()
        }
        _ => None,
    }
}

/// A rustls error as a sentence: the [`PeerIdentityError`] when there is one.
pub fn describe(err: &rustls::Error) -> String {
    match peer_identity_error(err) {
        Some(e) => e.to_string(),
        None => err.to_string(),
    }
}

/// A node certificate with its Ed25519 key, for a client that must prove its NodeId (a node
/// dialling a peer): set it as [`crate::ClientOptions::identity`] and the server reads the NodeId
/// with [`peer_node_id`]. Checked when made: the certificate is of the node form and the key is
/// its key. `Debug` shows the NodeId only, never the key.
#[derive(Clone, PartialEq, Eq)]
pub struct ClientIdentity {
    node_id: NodeId,
    cert_der: Arc<[u8]>,
    key_pkcs8_der: Arc<[u8]>,
}

impl ClientIdentity {
    /// The node certificate of `identity` ([`ronode_proto::cert::node_certificate`]).
    pub fn new(identity: &Identity) -> Result<ClientIdentity, TlsError> {
        let (cert_der, key_der) = node_certificate(identity).map_err(TlsError::OwnCert)?;
        ClientIdentity::from_der(&cert_der, &key_der)
    }

    /// A node certificate (DER) and its Ed25519 key (PKCS#8 DER), as a node's data directory
    /// holds them.
    pub fn from_der(cert_der: &[u8], key_pkcs8_der: &[u8]) -> Result<ClientIdentity, TlsError> {
        let node_id = node_id_from_cert(cert_der).map_err(TlsError::OwnCert)?;
        certified_key(cert_der, key_pkcs8_der, PqMode::default())?;
        Ok(ClientIdentity {
            node_id,
            cert_der: cert_der.into(),
            key_pkcs8_der: key_pkcs8_der.into(),
        })
    }

    /// The NodeId the certificate proves.
    pub fn node_id(&self) -> NodeId {
        self.node_id
    }

    pub fn cert_der(&self) -> &[u8] {
        &self.cert_der
    }

    pub(crate) fn key_pkcs8_der(&self) -> &[u8] {
        &self.key_pkcs8_der
    }
}

impl fmt::Debug for ClientIdentity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientIdentity")
            .field("node_id", &self.node_id)
            .finish_non_exhaustive()
    }
}

/// The aws-lc-rs provider with only the groups of `mode`.
fn provider(mode: PqMode) -> Arc<CryptoProvider> {
    let mut p = aws_lc_rs::default_provider();
    p.kx_groups = mode.kx_groups();
    Arc::new(p)
}

/// The server side of ron/oap1: TLS 1.3, ALPN `ron/oap1`, the node certificate
/// (`identity_cert_der`, from [`ronode_proto::cert::node_certificate`]) with its Ed25519 key
/// (`identity_key_pkcs8_der`), key exchange by `mode`. Client certificates are asked for and
/// optional; one that is sent must be a node certificate, and its CertificateVerify is checked.
pub fn server_config(
    identity_cert_der: &[u8],
    identity_key_pkcs8_der: &[u8],
    mode: PqMode,
) -> Result<Arc<ServerConfig>, TlsError> {
    node_id_from_cert(identity_cert_der).map_err(TlsError::OwnCert)?;
    let certified = certified_key(identity_cert_der, identity_key_pkcs8_der, mode)?;
    build_server_config(Arc::new(SingleCertAndKey::from(certified)), mode)
}

fn build_server_config(
    own_cert: Arc<dyn ResolvesServerCert>,
    mode: PqMode,
) -> Result<Arc<ServerConfig>, TlsError> {
    let provider = provider(mode);
    let verifier = Arc::new(NodeClientVerifier {
        algs: provider.signature_verification_algorithms,
    });
    let mut cfg = ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(TlsError::Config)?
        .with_client_cert_verifier(verifier)
        .with_cert_resolver(own_cert);
    cfg.alpn_protocols = vec![ALPN.to_vec()];
    cfg.send_tls13_tickets = 0;
    cfg.session_storage = Arc::new(rustls::server::NoServerSessionStorage {});
    Ok(Arc::new(cfg))
}

/// The client side of ron/oap1: TLS 1.3, ALPN `ron/oap1`, key exchange by `mode`. The server's
/// NodeId is derived from its certificate and must equal `pin` when one is given; its
/// CertificateVerify is checked. `identity` (`(cert_der, key_pkcs8_der)`, a node certificate) is
/// presented when the server asks: nodes dialling peers pass theirs, plain clients pass `None`.
///
/// The server name given to `rustls::ClientConnection::new` plays no part in verification (an IP
/// address, or any name, will do); SNI is not sent.
pub fn client_config(
    mode: PqMode,
    pin: Option<NodeId>,
    identity: Option<(&[u8], &[u8])>,
) -> Result<Arc<ClientConfig>, TlsError> {
    let own_cert: Option<Arc<dyn ResolvesClientCert>> = match identity {
        None => None,
        Some((cert_der, key_der)) => {
            node_id_from_cert(cert_der).map_err(TlsError::OwnCert)?;
            let certified = certified_key(cert_der, key_der, mode)?;
            Some(Arc::new(SingleCertAndKey::from(certified)))
        }
    };
    build_client_config(mode, pin, own_cert)
}

fn build_client_config(
    mode: PqMode,
    pin: Option<NodeId>,
    own_cert: Option<Arc<dyn ResolvesClientCert>>,
) -> Result<Arc<ClientConfig>, TlsError> {
    let provider = provider(mode);
    let verifier = Arc::new(NodeServerVerifier {
        pin,
        algs: provider.signature_verification_algorithms,
    });
    let builder = ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(TlsError::Config)?
        .dangerous()
        .with_custom_certificate_verifier(verifier);
    let mut cfg = match own_cert {
        None => builder.with_no_client_auth(),
        Some(resolver) => builder.with_client_cert_resolver(resolver),
    };
    cfg.alpn_protocols = vec![ALPN.to_vec()];
    cfg.resumption = rustls::client::Resumption::disabled();
    cfg.enable_sni = false;
    Ok(Arc::new(cfg))
}

/// The certificate with its key, checked to match (rustls compares the public keys).
fn certified_key(
    cert_der: &[u8],
    key_pkcs8_der: &[u8],
    mode: PqMode,
) -> Result<CertifiedKey, TlsError> {
    let cert = CertificateDer::from(cert_der.to_vec());
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key_pkcs8_der.to_vec()));
    CertifiedKey::from_der(vec![cert], key, &provider(mode)).map_err(TlsError::Config)
}

/// The peer's NodeId, from the certificate it presented on this connection. `None` before the
/// handshake, for a plain client (no certificate), or for a certificate not of the node form.
pub fn peer_node_id(conn: &CommonState) -> Option<NodeId> {
    let certs = conn.peer_certificates()?;
    node_id_from_cert(certs.first()?).ok()
}

/// The negotiated key exchange group as rustls names it (`"X25519MLKEM768"`, `"X25519"`), once
/// the handshake has chosen one.
pub fn negotiated_group(conn: &CommonState) -> Option<String> {
    let group = conn.negotiated_key_exchange_group()?;
    Some(format!("{:?}", group.name()))
}

/// The node certificate rules both verifiers share: one certificate, of the node form.
fn check_node_cert(
    end_entity: &CertificateDer<'_>,
    intermediates: &[CertificateDer<'_>],
) -> Result<NodeId, rustls::Error> {
    if !intermediates.is_empty() {
        return Err(PeerIdentityError::ExtraCertificates(1 + intermediates.len()).into_rustls());
    }
    node_id_from_cert(end_entity).map_err(|e| PeerIdentityError::NotNodeCert(e).into_rustls())
}

/// CertificateVerify: Ed25519 with the certificate's key, TLS 1.3 rules.
fn check_tls13_signature(
    algs: &WebPkiSupportedAlgorithms,
    message: &[u8],
    cert: &CertificateDer<'_>,
    dss: &DigitallySignedStruct,
) -> Result<HandshakeSignatureValid, rustls::Error> {
    if dss.scheme != SIG_SCHEME {
        return Err(rustls::Error::PeerMisbehaved(
            PeerMisbehaved::SignedHandshakeWithUnadvertisedSigScheme,
        ));
    }
    verify_tls13_signature(message, cert, dss, algs)
}

/// TLS 1.2 is never negotiated (the configs allow TLS 1.3 only); refuse should it be asked.
fn refuse_tls12() -> Result<HandshakeSignatureValid, rustls::Error> {
    Err(rustls::Error::PeerIncompatible(
        PeerIncompatible::Tls12NotOfferedOrEnabled,
    ))
}

/// Verifies a server's node certificate against an optional pinned NodeId.
#[derive(Debug)]
struct NodeServerVerifier {
    pin: Option<NodeId>,
    algs: WebPkiSupportedAlgorithms,
}

impl ServerCertVerifier for NodeServerVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let presented = check_node_cert(end_entity, intermediates)?;
        match self.pin {
            Some(pinned) if pinned != presented => {
                Err(PeerIdentityError::PinMismatch { pinned, presented }.into_rustls())
            }
            _ => Ok(ServerCertVerified::assertion()),
        }
    }

    fn verify_tls12_signature(
        &self,
        _message: &[u8],
        _cert: &CertificateDer<'_>,
        _dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        refuse_tls12()
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        check_tls13_signature(&self.algs, message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        vec![SIG_SCHEME]
    }
}

/// Accepts no client certificate, or a node certificate whose CertificateVerify holds.
#[derive(Debug)]
struct NodeClientVerifier {
    algs: WebPkiSupportedAlgorithms,
}

impl ClientCertVerifier for NodeClientVerifier {
    fn offer_client_auth(&self) -> bool {
        true
    }

    fn client_auth_mandatory(&self) -> bool {
        false
    }

    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        &[]
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        _now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        check_node_cert(end_entity, intermediates).map(|_| ClientCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        _message: &[u8],
        _cert: &CertificateDer<'_>,
        _dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        refuse_tls12()
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        check_tls13_signature(&self.algs, message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        vec![SIG_SCHEME]
    }
}

#[cfg(test)]
mod tests;
