//! The node certificate (PROTOCOL.md sections 1 and 11): a self-signed X.509 certificate over the node's
//! Ed25519 key whose subject is exactly one CommonName, `ron1:` + 64 lowercase hex of
//! BLAKE3-256(ml_dsa_87_pk). A peer derives the NodeId from the certificate key and that name.
//!
//! [`node_id_from_cert`] only reads the NodeId out of a certificate: it does not check the
//! self-signature (which proves nothing) nor the validity dates. What binds the TLS session to the
//! key is the TLS 1.3 CertificateVerify signature, which the engine's certificate verifier checks
//! with the certificate's key.

use rcgen::{CertificateParams, DistinguishedName, DnType, KeyPair};
use x509_parser::oid_registry::OID_SIG_ED25519;

use crate::id::NodeId;
use crate::identity::Identity;
use crate::reason::Reason;

/// Prefix of the CommonName that carries BLAKE3-256 of the ML-DSA-87 public key.
pub const CN_PREFIX: &str = "ron1:";

/// RFC 8410 PKCS#8 v1 prefix of an Ed25519 private key: the 32-byte seed follows.
const ED25519_PKCS8_V1_PREFIX: [u8; 16] = [
    0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04, 0x20,
];

/// Longest part of an offending CommonName quoted in an error message.
const MAX_QUOTED_CN: usize = 80;

/// Why a certificate could not be made, or did not yield a NodeId.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CertError {
    #[error("could not build the node certificate: {0}")]
    Generate(String),
    #[error("certificate is not parseable DER X.509: {0}")]
    NotParseable(String),
    #[error(
        "certificate key is not Ed25519 (SubjectPublicKeyInfo algorithm {0}, want 1.3.101.112)"
    )]
    NotEd25519(String),
    #[error("certificate Ed25519 key must be 32 bytes, found {0}")]
    BadKeyLength(usize),
    #[error("certificate subject has no CommonName (want \"ron1:\" + 64 lowercase hex)")]
    MissingCn,
    #[error("certificate subject has {0} CommonNames, want exactly one")]
    SeveralCns(usize),
    #[error("certificate CommonName {0} is not \"ron1:\" + 64 lowercase hex digits")]
    BadCn(String),
}

impl CertError {
    /// `internal` when this node failed to build its own certificate; `unauthorized` when a
    /// peer's certificate does not establish a NodeId (the handshake is refused).
    pub fn reason(&self) -> Reason {
        match self {
            CertError::Generate(_) => Reason::Internal,
            _ => Reason::Unauthorized,
        }
    }
}

/// The CommonName of `identity`'s certificate: `ron1:` + 64 lowercase hex.
pub fn common_name(identity: &Identity) -> String {
    format!("{CN_PREFIX}{}", hex::encode(identity.ml_dsa_pk_hash()))
}

/// The Ed25519 private key of `identity` as RFC 8410 PKCS#8 v1 DER (what rustls and rcgen load).
pub fn ed25519_pkcs8_der(identity: &Identity) -> Vec<u8> {
    let mut der = Vec::with_capacity(ED25519_PKCS8_V1_PREFIX.len() + 32);
    der.extend_from_slice(&ED25519_PKCS8_V1_PREFIX);
    der.extend_from_slice(&identity.seeds().ed25519);
    der
}

/// Builds the node's self-signed certificate. Returns `(cert_der, key_pkcs8_der)`.
///
/// Deterministic: rcgen's default validity is fixed (1975-01-01 to 4096-01-01), the serial number
/// is derived from the public key and Ed25519 signatures are deterministic, so the same identity
/// always gets the same bytes. No extension is written.
pub fn node_certificate(identity: &Identity) -> Result<(Vec<u8>, Vec<u8>), CertError> {
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, common_name(identity));
    let key = ed25519_pkcs8_der(identity);
    let cert = self_signed(&key, dn)?;
    Ok((cert, key))
}

fn self_signed(key_pkcs8_der: &[u8], dn: DistinguishedName) -> Result<Vec<u8>, CertError> {
    let key_pair =
        KeyPair::try_from(key_pkcs8_der).map_err(|e| CertError::Generate(e.to_string()))?;
    let mut params = CertificateParams::default();
    params.distinguished_name = dn;
    let cert = params
        .self_signed(&key_pair)
        .map_err(|e| CertError::Generate(e.to_string()))?;
    Ok(cert.der().to_vec())
}

/// Reads the NodeId a peer's certificate claims: the Ed25519 key of its SubjectPublicKeyInfo and
/// the ML-DSA-87 key hash of its single `ron1:` CommonName. See the module notes for what this
/// does not check.
pub fn node_id_from_cert(cert_der: &[u8]) -> Result<NodeId, CertError> {
    let (rest, cert) = x509_parser::parse_x509_certificate(cert_der)
        .map_err(|e| CertError::NotParseable(e.to_string()))?;
    if !rest.is_empty() {
        return Err(CertError::NotParseable(format!(
            "{} trailing bytes after the certificate",
            rest.len()
        )));
    }

    let spki = cert.public_key();
    if spki.algorithm.algorithm != OID_SIG_ED25519 {
        return Err(CertError::NotEd25519(
            spki.algorithm.algorithm.to_id_string(),
        ));
    }
    let key = &spki.subject_public_key;
    let ed25519_pk: [u8; 32] = match (key.unused_bits, <[u8; 32]>::try_from(&key.data[..])) {
        (0, Ok(pk)) => pk,
        _ => return Err(CertError::BadKeyLength(key.data.len())),
    };

    let mut cns = cert.subject().iter_common_name();
    let cn = match (cns.next(), cns.count()) {
        (None, _) => return Err(CertError::MissingCn),
        (Some(cn), 0) => cn,
        (Some(_), more) => return Err(CertError::SeveralCns(more + 1)),
    };
    let cn = cn
        .as_str()
        .map_err(|_| CertError::BadCn("(not a text string)".to_owned()))?;
    let ml_dsa_pk_hash = cn
        .strip_prefix(CN_PREFIX)
        .and_then(|hex| NodeId::parse_hex(hex).ok())
        .ok_or_else(|| CertError::BadCn(quote(cn)))?;
    Ok(NodeId::from_key_hashes(&ed25519_pk, &ml_dsa_pk_hash.0))
}

/// `s` quoted for an error message, cut to a bounded length.
fn quote(s: &str) -> String {
    match s.char_indices().nth(MAX_QUOTED_CN) {
        Some((cut, _)) => format!("{:?}...", &s[..cut]),
        None => format!("{s:?}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::identity::tests::test_identity;

    /// A self-signed certificate over `identity`'s Ed25519 key with the given subject.
    fn cert_with_dn(identity: &Identity, entries: &[(DnType, &str)]) -> Vec<u8> {
        let mut dn = DistinguishedName::new();
        for (ty, value) in entries {
            dn.push(ty.clone(), *value);
        }
        self_signed(&ed25519_pkcs8_der(identity), dn).unwrap()
    }

    #[test]
    fn round_trip_and_deterministic() {
        let id = test_identity(1);
        let (cert, key) = node_certificate(&id).unwrap();
        assert_eq!(node_id_from_cert(&cert), Ok(id.node_id()));
        // Same identity, same bytes: nothing depends on a clock or a random source.
        assert_eq!(node_certificate(&id).unwrap(), (cert.clone(), key.clone()));
        // The PKCS#8 key is the identity's Ed25519 key.
        let kp = KeyPair::try_from(&key[..]).unwrap();
        assert_eq!(kp.public_key_raw(), id.ed25519_pk());
        assert_ne!(
            node_id_from_cert(&node_certificate(&test_identity(2)).unwrap().0),
            Ok(id.node_id())
        );

        let (_, parsed) = x509_parser::parse_x509_certificate(&cert).unwrap();
        assert!(parsed.extensions().is_empty(), "no extension is written");
        assert_eq!(
            parsed.subject().iter().count(),
            1,
            "the subject is one attribute"
        );
        assert_eq!(
            parsed.subject().to_string(),
            format!("CN={}", common_name(&id))
        );
    }

    #[test]
    fn bad_common_names() {
        let id = test_identity(3);
        let hex = hex::encode(id.ml_dsa_pk_hash());
        let good = format!("ron1:{hex}");
        assert_eq!(
            node_id_from_cert(&cert_with_dn(&id, &[(DnType::CommonName, &good)])),
            Ok(id.node_id())
        );

        for bad in [
            format!("ron1:{}", hex.to_uppercase()),
            format!("RON1:{hex}"),
            format!("ron1:{}", &hex[..62]),
            format!("ron1:{hex}00"),
            hex.clone(),
            format!("ron1: {}", &hex[1..]),
            String::new(),
        ] {
            let cert = cert_with_dn(&id, &[(DnType::CommonName, &bad)]);
            assert_eq!(
                node_id_from_cert(&cert),
                Err(CertError::BadCn(format!("{bad:?}"))),
                "{bad}"
            );
        }
        let long = "x".repeat(500);
        let err =
            node_id_from_cert(&cert_with_dn(&id, &[(DnType::CommonName, &long)])).unwrap_err();
        assert!(err.to_string().len() < 200, "{err}");

        let no_cn = cert_with_dn(&id, &[(DnType::OrganizationName, &good)]);
        assert_eq!(node_id_from_cert(&no_cn), Err(CertError::MissingCn));
        assert_eq!(
            node_id_from_cert(&no_cn).unwrap_err().to_string(),
            "certificate subject has no CommonName (want \"ron1:\" + 64 lowercase hex)"
        );

        // rcgen writes one value per attribute type: make a second CN by rewriting the
        // OrganizationName OID (2.5.4.10) into the CommonName one (2.5.4.3), in the issuer and
        // the subject. The self-signature breaks, which node_id_from_cert does not look at.
        let mut two = cert_with_dn(
            &id,
            &[
                (DnType::CommonName, &good),
                (DnType::OrganizationName, &good),
            ],
        );
        let oid_o = [0x06, 0x03, 0x55, 0x04, 0x0a];
        let spots: Vec<usize> = two
            .windows(5)
            .enumerate()
            .filter(|(_, w)| *w == oid_o)
            .map(|(i, _)| i)
            .collect();
        assert_eq!(spots.len(), 2, "issuer and subject");
        for at in spots {
            two[at + 4] = 0x03;
        }
        assert_eq!(node_id_from_cert(&two), Err(CertError::SeveralCns(2)));
        assert_eq!(CertError::SeveralCns(2).reason(), Reason::Unauthorized);
    }

    #[test]
    fn non_ed25519_key_refused() {
        let id = test_identity(4);
        let key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
        let mut params = CertificateParams::default();
        params.distinguished_name = DistinguishedName::new();
        params
            .distinguished_name
            .push(DnType::CommonName, common_name(&id));
        let cert = params.self_signed(&key).unwrap();
        assert_eq!(
            node_id_from_cert(cert.der()),
            Err(CertError::NotEd25519("1.2.840.10045.2.1".to_owned()))
        );
    }

    #[test]
    fn garbage_refused() {
        for bad in [
            &b""[..],
            b"\x00",
            b"not a certificate at all",
            &[0x30, 0x82, 0xff, 0xff, 0x30],
        ] {
            assert!(
                matches!(node_id_from_cert(bad), Err(CertError::NotParseable(_))),
                "{bad:?}"
            );
        }
        let (mut cert, _) = node_certificate(&test_identity(5)).unwrap();
        cert.push(0);
        assert_eq!(
            node_id_from_cert(&cert),
            Err(CertError::NotParseable(
                "1 trailing bytes after the certificate".to_owned()
            ))
        );
        cert.truncate(cert.len() - 10);
        assert!(matches!(
            node_id_from_cert(&cert),
            Err(CertError::NotParseable(_))
        ));
        assert_eq!(
            CertError::NotParseable(String::new()).reason(),
            Reason::Unauthorized
        );
    }
}
