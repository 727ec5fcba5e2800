//! Client TLS configurations: the SDK's for ronode, and one with the same provider (aws-lc-rs,
//! TLS 1.3 only, the same cipher suites in the same order, the same key-exchange groups by
//! `--pq-mode`) for an HTTPS server, so both servers negotiate the same suite and group.

use std::sync::Arc;

use ronode_client::tls::{client_config, PqMode};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{aws_lc_rs, verify_tls13_signature, WebPkiSupportedAlgorithms};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, SignatureScheme};

/// The SDK's configuration for ron/oap1 (no pin: a bench dials the node it was told to).
pub fn oap_config(mode: PqMode) -> anyhow::Result<Arc<ClientConfig>> {
    Ok(client_config(mode, None, None)?)
}

/// TLS 1.3, ALPN `http/1.1`, the same provider and groups as [`oap_config`]. The server's
/// certificate chain is not checked (a bench talks to its own self-signed server), its
/// CertificateVerify signature is.
pub fn http_config(mode: PqMode) -> anyhow::Result<Arc<ClientConfig>> {
    let mut provider = aws_lc_rs::default_provider();
    provider.kx_groups = mode.kx_groups();
    let algs = provider.signature_verification_algorithms;
    let mut cfg = ClientConfig::builder_with_provider(Arc::new(provider))
        .with_protocol_versions(&[&rustls::version::TLS13])?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(AnyCert { algs }))
        .with_no_client_auth();
    cfg.alpn_protocols = vec![b"http/1.1".to_vec()];
    cfg.resumption = rustls::client::Resumption::disabled();
    Ok(Arc::new(cfg))
}

/// Accepts any certificate; checks the handshake signature with its key.
#[derive(Debug)]
struct AnyCert {
    algs: WebPkiSupportedAlgorithms,
}

impl ServerCertVerifier for AnyCert {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        _message: &[u8],
        _cert: &CertificateDer<'_>,
        _dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        Err(rustls::Error::General("TLS 1.2 is not offered".to_owned()))
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(message, cert, dss, &self.algs)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algs.supported_schemes()
    }
}
