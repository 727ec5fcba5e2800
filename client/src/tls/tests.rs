//! Handshakes driven in memory: a `ClientConnection` and a `ServerConnection` exchange their
//! TLS records through `write_tls` / `read_tls`, no sockets.

use super::*;
use rcgen::{CertificateParams, DistinguishedName, DnType, KeyPair};
use ronode_proto::cert::{ed25519_pkcs8_der, node_certificate};
use ronode_proto::identity::{Identity, IdentitySeeds};
use rustls::{ClientConnection, Connection, ServerConnection};

fn identity(n: u8) -> Identity {
    Identity::from_seeds(&IdentitySeeds {
        ed25519: [n; 32],
        ml_dsa: [n.wrapping_add(100); 32],
    })
}

/// `(cert_der, key_pkcs8_der)` of identity `n`.
fn node_cert(n: u8) -> (Vec<u8>, Vec<u8>) {
    node_certificate(&identity(n)).unwrap()
}

fn server(n: u8, mode: PqMode) -> Arc<ServerConfig> {
    let (cert, key) = node_cert(n);
    server_config(&cert, &key, mode).unwrap()
}

fn client(mode: PqMode, pin: Option<NodeId>) -> Arc<ClientConfig> {
    client_config(mode, pin, None).unwrap()
}

/// Which side raised an error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Side {
    Client,
    Server,
}

/// Moves every queued record from `from` to `to`; `Ok(true)` if anything moved.
fn pump(
    from: &mut Connection,
    to: &mut Connection,
    to_side: Side,
) -> Result<bool, (Side, rustls::Error)> {
    let mut moved = false;
    while from.wants_write() {
        let mut buf = Vec::new();
        from.write_tls(&mut buf).unwrap();
        if buf.is_empty() {
            break;
        }
        moved = true;
        let mut rd = &buf[..];
        while !rd.is_empty() {
            to.read_tls(&mut rd).unwrap();
            to.process_new_packets().map_err(|e| (to_side, e))?;
        }
    }
    Ok(moved)
}

/// Runs the handshake to its end; the first error wins, after the alert it queued reached the
/// other side.
fn handshake(
    c: ClientConnection,
    s: ServerConnection,
) -> (
    ClientConnection,
    ServerConnection,
    Result<(), (Side, rustls::Error)>,
) {
    let (mut c, mut s) = (Connection::from(c), Connection::from(s));
    let mut result = Ok(());
    for _ in 0..20 {
        let step = pump(&mut c, &mut s, Side::Server)
            .and_then(|a| Ok(a | pump(&mut s, &mut c, Side::Client)?));
        match step {
            Ok(true) => continue,
            Ok(false) => break,
            Err(e) => {
                // Deliver the alert the failing side queued, ignoring what it does there.
                let _ = pump(&mut c, &mut s, Side::Server);
                let _ = pump(&mut s, &mut c, Side::Client);
                result = Err(e);
                break;
            }
        }
    }
    let (Connection::Client(c), Connection::Server(s)) = (c, s) else {
        unreachable!()
    };
    if result.is_ok() {
        assert!(
            !c.is_handshaking() && !s.is_handshaking(),
            "handshake stalled"
        );
    }
    (c, s, result)
}

fn connect(
    client_cfg: Arc<ClientConfig>,
    server_cfg: Arc<ServerConfig>,
) -> (
    ClientConnection,
    ServerConnection,
    Result<(), (Side, rustls::Error)>,
) {
    let name = ServerName::try_from("node.invalid").unwrap();
    let c = ClientConnection::new(client_cfg, name).unwrap();
    let s = ServerConnection::new(server_cfg).unwrap();
    handshake(c, s)
}

/// A self-signed certificate over identity `n`'s Ed25519 key with the given CommonName.
fn cert_with_cn(n: u8, cn: &str) -> Vec<u8> {
    let key = KeyPair::try_from(&ed25519_pkcs8_der(&identity(n))[..]).unwrap();
    let mut params = CertificateParams::default();
    params.distinguished_name = DistinguishedName::new();
    params.distinguished_name.push(DnType::CommonName, cn);
    params.self_signed(&key).unwrap().der().to_vec()
}

/// Presents `cert_der` but signs with `key_der`, without rustls' consistency check.
fn mismatched(cert_der: &[u8], key_der: &[u8]) -> Arc<SingleCertAndKey> {
    let key = aws_lc_rs::default_provider()
        .key_provider
        .load_private_key(PrivateKeyDer::Pkcs8(key_der.to_vec().into()))
        .unwrap();
    let ck = CertifiedKey::new(vec![CertificateDer::from(cert_der.to_vec())], key);
    Arc::new(SingleCertAndKey::from(ck))
}

#[test]
fn pq_mode_parses_and_prints() {
    for (s, m) in [
        ("off", PqMode::Off),
        ("hybrid", PqMode::Hybrid),
        ("pq_only", PqMode::PqOnly),
    ] {
        assert_eq!(s.parse::<PqMode>(), Ok(m));
        assert_eq!(m.to_string(), s);
    }
    assert_eq!(PqMode::default(), PqMode::Hybrid);
    let err = "PQ_ONLY".parse::<PqMode>().unwrap_err();
    assert_eq!(
        err.to_string(),
        "unknown pq_mode \"PQ_ONLY\": expected off, hybrid or pq_only"
    );
    let names = |m: PqMode| -> Vec<String> {
        m.kx_groups()
            .iter()
            .map(|g| format!("{:?}", g.name()))
            .collect()
    };
    assert_eq!(names(PqMode::Hybrid), ["X25519MLKEM768", "X25519"]);
    assert_eq!(names(PqMode::PqOnly), ["X25519MLKEM768"]);
    assert_eq!(names(PqMode::Off), ["X25519"]);
}

#[test]
fn hybrid_negotiates_x25519mlkem768_with_alpn_and_server_id() {
    let (c, s, r) = connect(client(PqMode::Hybrid, None), server(1, PqMode::Hybrid));
    r.unwrap();
    assert_eq!(negotiated_group(&c).as_deref(), Some("X25519MLKEM768"));
    assert_eq!(negotiated_group(&s).as_deref(), Some("X25519MLKEM768"));
    assert_eq!(c.alpn_protocol(), Some(ALPN));
    assert_eq!(s.alpn_protocol(), Some(&b"ron/oap1"[..]));
    assert_eq!(c.protocol_version(), Some(rustls::ProtocolVersion::TLSv1_3));
    assert_eq!(peer_node_id(&c), Some(identity(1).node_id()));
    // A plain client sends no certificate.
    assert_eq!(peer_node_id(&s), None);
    assert!(s.peer_certificates().is_none());
}

#[test]
fn groups_follow_pq_mode() {
    let group = |cm, sm| {
        let (c, _, r) = connect(client(cm, None), server(1, sm));
        r.map(|()| negotiated_group(&c).unwrap())
    };
    assert_eq!(group(PqMode::Off, PqMode::Off).unwrap(), "X25519");
    assert_eq!(group(PqMode::Off, PqMode::Hybrid).unwrap(), "X25519");
    assert_eq!(group(PqMode::Hybrid, PqMode::Off).unwrap(), "X25519");
    assert_eq!(
        group(PqMode::PqOnly, PqMode::Hybrid).unwrap(),
        "X25519MLKEM768"
    );
    assert_eq!(
        group(PqMode::Hybrid, PqMode::PqOnly).unwrap(),
        "X25519MLKEM768"
    );

    // No group in common: the server refuses.
    let (side, err) = group(PqMode::Off, PqMode::PqOnly).unwrap_err();
    assert_eq!(side, Side::Server);
    assert!(matches!(err, rustls::Error::PeerIncompatible(_)), "{err:?}");
    let (side, _) = group(PqMode::PqOnly, PqMode::Off).unwrap_err();
    assert_eq!(side, Side::Server);
}

#[test]
fn pinned_node_id_is_enforced() {
    let right = identity(1).node_id();
    let (c, _, r) = connect(
        client(PqMode::Hybrid, Some(right)),
        server(1, PqMode::Hybrid),
    );
    r.unwrap();
    assert_eq!(peer_node_id(&c), Some(right));

    let wrong = identity(2).node_id();
    let (_, _, r) = connect(
        client(PqMode::Hybrid, Some(wrong)),
        server(1, PqMode::Hybrid),
    );
    let (side, err) = r.unwrap_err();
    assert_eq!(side, Side::Client);
    assert_eq!(
        peer_identity_error(&err),
        Some(&PeerIdentityError::PinMismatch {
            pinned: wrong,
            presented: right
        })
    );
    let msg = describe(&err);
    assert_eq!(
        msg,
        format!("server presented NodeId {right}, but NodeId {wrong} was pinned")
    );
    // rustls' own message carries it too.
    assert!(err.to_string().contains(&wrong.to_string()), "{err}");
    assert!(err.to_string().contains(&right.to_string()), "{err}");
    assert!(TlsError::Session(err).to_string().contains(&msg));
}

#[test]
fn client_node_certificate_gives_its_node_id() {
    let (cert, key) = node_cert(7);
    let cfg = client_config(PqMode::Hybrid, None, Some((&cert, &key))).unwrap();
    let (c, s, r) = connect(cfg, server(1, PqMode::Hybrid));
    r.unwrap();
    assert_eq!(peer_node_id(&s), Some(identity(7).node_id()));
    assert_eq!(peer_node_id(&c), Some(identity(1).node_id()));
}

#[test]
fn certificates_not_of_the_node_form_are_refused() {
    let (_, key) = node_cert(3);
    let bad = cert_with_cn(3, "example.com");

    // Our own certificate is checked when the config is built.
    assert!(matches!(
        server_config(&bad, &key, PqMode::Hybrid),
        Err(TlsError::OwnCert(CertError::BadCn(_)))
    ));
    assert!(matches!(
        client_config(PqMode::Hybrid, None, Some((&bad, &key))),
        Err(TlsError::OwnCert(_))
    ));
    // A key that is not the certificate's.
    let (cert, _) = node_cert(3);
    let (_, other_key) = node_cert(4);
    assert!(matches!(
        server_config(&cert, &other_key, PqMode::Hybrid),
        Err(TlsError::Config(_))
    ));

    // A server presenting one: the client refuses.
    let srv = build_server_config(mismatched(&bad, &key), PqMode::Hybrid).unwrap();
    let (_, _, r) = connect(client(PqMode::Hybrid, None), srv);
    let (side, err) = r.unwrap_err();
    assert_eq!(side, Side::Client);
    assert!(
        matches!(
            peer_identity_error(&err),
            Some(PeerIdentityError::NotNodeCert(CertError::BadCn(_)))
        ),
        "{err:?}"
    );
    assert!(
        describe(&err).contains("\"example.com\""),
        "{}",
        describe(&err)
    );

    // A client presenting one: the server refuses.
    let cli = build_client_config(PqMode::Hybrid, None, Some(mismatched(&bad, &key))).unwrap();
    let (_, s, r) = connect(cli, server(1, PqMode::Hybrid));
    let (side, err) = r.unwrap_err();
    assert_eq!(side, Side::Server);
    assert!(
        matches!(
            peer_identity_error(&err),
            Some(PeerIdentityError::NotNodeCert(_))
        ),
        "{err:?}"
    );
    assert_eq!(peer_node_id(&s), None);

    // Two certificates where a node sends one.
    let (good, good_key) = node_cert(5);
    let key = aws_lc_rs::default_provider()
        .key_provider
        .load_private_key(PrivateKeyDer::Pkcs8(good_key.into()))
        .unwrap();
    let chain = vec![
        CertificateDer::from(good.clone()),
        CertificateDer::from(good),
    ];
    let srv = build_server_config(
        Arc::new(SingleCertAndKey::from(CertifiedKey::new(chain, key))),
        PqMode::Hybrid,
    )
    .unwrap();
    let (_, _, r) = connect(client(PqMode::Hybrid, None), srv);
    let (_, err) = r.unwrap_err();
    assert_eq!(
        peer_identity_error(&err),
        Some(&PeerIdentityError::ExtraCertificates(2))
    );
}

#[test]
fn certificate_verify_binds_the_claimed_node_id() {
    // Node 1's certificate presented by someone holding only node 2's key: the certificate
    // parses to node 1's id, so only the CertificateVerify check can catch it.
    let (cert1, _) = node_cert(1);
    let (_, key2) = node_cert(2);

    let srv = build_server_config(mismatched(&cert1, &key2), PqMode::Hybrid).unwrap();
    let pin = Some(identity(1).node_id());
    let (_, _, r) = connect(client(PqMode::Hybrid, pin), srv);
    let (side, err) = r.unwrap_err();
    assert_eq!(side, Side::Client);
    assert_eq!(
        err,
        rustls::Error::InvalidCertificate(CertificateError::BadSignature)
    );

    let cli = build_client_config(PqMode::Hybrid, None, Some(mismatched(&cert1, &key2))).unwrap();
    let (_, _, r) = connect(cli, server(3, PqMode::Hybrid));
    let (side, err) = r.unwrap_err();
    assert_eq!(side, Side::Server);
    assert_eq!(
        err,
        rustls::Error::InvalidCertificate(CertificateError::BadSignature)
    );
}

/// A signature of zeros under `scheme` (rustls builds these only by decoding one).
fn zero_sig(scheme: SignatureScheme) -> DigitallySignedStruct {
    use rustls::internal::msgs::codec::{Codec, Reader};
    let mut wire = Vec::new();
    scheme.encode(&mut wire);
    wire.extend_from_slice(&64u16.to_be_bytes());
    wire.extend_from_slice(&[0; 64]);
    DigitallySignedStruct::read(&mut Reader::init(&wire)).unwrap()
}

#[test]
fn tls12_signatures_are_refused() {
    let (cert, _) = node_cert(1);
    let cert = CertificateDer::from(cert);
    let dss = zero_sig(SignatureScheme::ED25519);
    let algs = aws_lc_rs::default_provider().signature_verification_algorithms;
    let server_side = NodeServerVerifier { pin: None, algs };
    assert!(server_side
        .verify_tls12_signature(b"m", &cert, &dss)
        .is_err());
    let client_side = NodeClientVerifier { algs };
    assert!(client_side
        .verify_tls12_signature(b"m", &cert, &dss)
        .is_err());
    // And a scheme other than Ed25519 is refused before any key is looked at.
    let ecdsa = zero_sig(SignatureScheme::ECDSA_NISTP256_SHA256);
    assert!(matches!(
        client_side.verify_tls13_signature(b"m", &cert, &ecdsa),
        Err(rustls::Error::PeerMisbehaved(_))
    ));
    assert_eq!(
        server_side.supported_verify_schemes(),
        [SignatureScheme::ED25519]
    );
}
