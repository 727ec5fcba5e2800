//! Signed provider records (PROTOCOL.md section 9).

use aws_lc_rs::signature::{UnparsedPublicKey, ML_DSA_87};
use ed25519_dalek::{Signature, Verifier as _, VerifyingKey};
use serde::{Deserialize, Serialize};
use serde_bytes::{ByteArray, ByteBuf};

use crate::id::NodeId;
use crate::identity::{Identity, ML_DSA_87_PK_LEN};
use crate::limits;
use crate::reason::Reason;

/// A provider record as it travels in CBOR (binary fields as byte strings).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProviderRecord {
    /// The content key provided (an object address or any 32-byte DHT key).
    #[serde(with = "crate::msg::byte_array32")]
    pub key: ByteArray<32>,
    /// The publisher's NodeId.
    #[serde(with = "crate::msg::byte_array32")]
    pub publisher: ByteArray<32>,
    /// Where to reach the publisher: at most 8, each at most 256 bytes (`host:port` text).
    pub addrs: Vec<String>,
    pub ttl_s: u64,
    /// Unix seconds at signing.
    pub ts: u64,
    #[serde(with = "crate::msg::byte_array32")]
    pub ed25519_pk: ByteArray<32>,
    /// The ML-DSA-87 public key (2,592 bytes); present when an ML-DSA-87 signature is.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "crate::msg::opt_strict_byte_buf"
    )]
    pub ml_dsa_pk: Option<ByteBuf>,
    /// BLAKE3-256 of the ML-DSA-87 public key, for records signed with Ed25519 only.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "crate::msg::opt_byte_array32"
    )]
    pub ml_dsa_pk_hash: Option<ByteArray<32>>,
    pub sigs: Vec<RecordSig>,
}

/// One signature over the record's canonical signed bytes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RecordSig {
    /// `"ed25519"` or `"ml-dsa-87"`.
    pub alg: String,
    #[serde(with = "crate::msg::strict_byte_buf")]
    pub sig: ByteBuf,
}

/// Domain tag, the first element of the signed array.
pub const DOMAIN_TAG: &str = "ron-dht/provider/v1";
/// `alg` of an Ed25519 signature.
pub const ALG_ED25519: &str = "ed25519";
/// `alg` of an ML-DSA-87 signature.
pub const ALG_ML_DSA_87: &str = "ml-dsa-87";

/// What a node demands of the records it accepts (`dht.require_pq_sig`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecordPolicy {
    /// Demand `ml_dsa_pk` and a valid ML-DSA-87 signature besides the Ed25519 one.
    pub require_pq_sig: bool,
}

impl Default for RecordPolicy {
    fn default() -> Self {
        RecordPolicy {
            require_pq_sig: true,
        }
    }
}

/// Why a provider record was refused. Variants are grouped by the label they carry, in the order
/// [`validate`] checks them; the first failing check names the error.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RecordError {
    // --- oversize ---
    #[error("record is {0} bytes encoded, more than the {max} allowed", max = limits::MAX_RECORD_BYTES)]
    Oversize(usize),
    // --- malformed ---
    #[error("record is not valid CBOR of a provider record: {0}")]
    Undecodable(String),
    #[error("record lists {0} addresses, at most {max} allowed", max = limits::MAX_ADDRS)]
    TooManyAddrs(usize),
    #[error("record address {index} is {len} bytes, at most {max} allowed", max = limits::MAX_ADDR_BYTES)]
    AddrTooLong { index: usize, len: usize },
    #[error("record must carry exactly one of ml_dsa_pk and ml_dsa_pk_hash")]
    KeyForm,
    #[error("record ml_dsa_pk is {0} bytes, an ML-DSA-87 public key is {ML_DSA_87_PK_LEN}")]
    MlDsaPkLength(usize),
    /// The unknown `alg`, cut to 32 characters.
    #[error("record signature algorithm {0:?} is unknown (want \"ed25519\" or \"ml-dsa-87\")")]
    UnknownSigAlg(String),
    #[error("record carries more than one {0} signature")]
    DuplicateSig(&'static str),
    // --- bad_publisher ---
    #[error("record publisher is not the NodeId of its keys")]
    BadPublisher,
    // --- bad_sig ---
    #[error("record has no Ed25519 signature")]
    MissingEd25519Sig,
    #[error("record Ed25519 signature does not verify")]
    BadEd25519Sig,
    #[error("record has no ml_dsa_pk, and this node requires an ML-DSA-87 signature")]
    MissingMlDsaPk,
    #[error("record has no ML-DSA-87 signature, and this node requires one")]
    MissingMlDsaSig,
    #[error("record carries an ML-DSA-87 signature but no ml_dsa_pk to check it with")]
    MlDsaSigWithoutPk,
    #[error("record ML-DSA-87 signature does not verify")]
    BadMlDsaSig,
    // --- bad_ttl, bad_ts, stale ---
    #[error("record ttl_s {0} is more than the {max} allowed", max = limits::MAX_RECORD_TTL_S)]
    BadTtl(u64),
    #[error("record ts {ts} is more than {skew} s after now ({now})", skew = limits::MAX_CLOCK_SKEW_S)]
    BadTs { ts: u64, now: u64 },
    #[error("record expired at {expired_at} (now {now})")]
    Stale { expired_at: u64, now: u64 },
}

impl RecordError {
    pub fn reason(&self) -> Reason {
        use RecordError::*;
        match self {
            Oversize(_) => Reason::Oversize,
            Undecodable(_)
            | TooManyAddrs(_)
            | AddrTooLong { .. }
            | KeyForm
            | MlDsaPkLength(_)
            | UnknownSigAlg(_)
            | DuplicateSig(_) => Reason::Malformed,
            BadPublisher => Reason::BadPublisher,
            MissingEd25519Sig | BadEd25519Sig | MissingMlDsaPk | MissingMlDsaSig
            | MlDsaSigWithoutPk | BadMlDsaSig => Reason::BadSig,
            BadTtl(_) => Reason::BadTtl,
            BadTs { .. } => Reason::BadTs,
            Stale { .. } => Reason::Stale,
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Canonical signed bytes
// ---------------------------------------------------------------------------------------------

/// Appends a CBOR head (major type and argument) in its shortest form (RFC 8949 section 4.2.1).
pub(crate) fn cbor_head(out: &mut Vec<u8>, major: u8, n: u64) {
    let m = major << 5;
    if n < 24 {
        out.push(m | n as u8);
    } else if n <= u64::from(u8::MAX) {
        out.extend_from_slice(&[m | 24, n as u8]);
    } else if n <= u64::from(u16::MAX) {
        out.push(m | 25);
        out.extend_from_slice(&(n as u16).to_be_bytes());
    } else if n <= u64::from(u32::MAX) {
        out.push(m | 26);
        out.extend_from_slice(&(n as u32).to_be_bytes());
    } else {
        out.push(m | 27);
        out.extend_from_slice(&n.to_be_bytes());
    }
}

const MAJOR_UINT: u8 = 0;
const MAJOR_BYTES: u8 = 2;
const MAJOR_TEXT: u8 = 3;
const MAJOR_ARRAY: u8 = 4;

/// Appends the bytes both signatures cover: the canonical CBOR (definite lengths, shortest heads)
/// of `["ron-dht/provider/v1", key, publisher, addrs, ttl_s, ts]`, with `key` and `publisher` as
/// byte strings and `addrs` as an array of text strings. Written by hand so the bytes never depend
/// on a CBOR library's choices.
pub fn signed_bytes(rec: &ProviderRecord, out: &mut Vec<u8>) {
    cbor_head(out, MAJOR_ARRAY, 6);
    cbor_head(out, MAJOR_TEXT, DOMAIN_TAG.len() as u64);
    out.extend_from_slice(DOMAIN_TAG.as_bytes());
    for bytes in [&rec.key, &rec.publisher] {
        cbor_head(out, MAJOR_BYTES, bytes.len() as u64);
        out.extend_from_slice(&bytes[..]);
    }
    cbor_head(out, MAJOR_ARRAY, rec.addrs.len() as u64);
    for addr in &rec.addrs {
        cbor_head(out, MAJOR_TEXT, addr.len() as u64);
        out.extend_from_slice(addr.as_bytes());
    }
    cbor_head(out, MAJOR_UINT, rec.ttl_s);
    cbor_head(out, MAJOR_UINT, rec.ts);
}

// ---------------------------------------------------------------------------------------------
// Signing, encoding, decoding
// ---------------------------------------------------------------------------------------------

/// Builds and signs a record published by `identity`. With `with_ml_dsa` it carries `ml_dsa_pk`
/// and both signatures (Ed25519 first); without, `ml_dsa_pk_hash` and the Ed25519 signature only.
pub fn sign_record(
    identity: &Identity,
    key: [u8; 32],
    addrs: Vec<String>,
    ttl_s: u64,
    ts: u64,
    with_ml_dsa: bool,
) -> ProviderRecord {
    let mut rec = ProviderRecord {
        key: ByteArray::new(key),
        publisher: ByteArray::new(identity.node_id().0),
        addrs,
        ttl_s,
        ts,
        ed25519_pk: ByteArray::new(identity.ed25519_pk()),
        ml_dsa_pk: with_ml_dsa.then(|| ByteBuf::from(identity.ml_dsa_pk())),
        ml_dsa_pk_hash: (!with_ml_dsa).then(|| ByteArray::new(identity.ml_dsa_pk_hash())),
        sigs: Vec::with_capacity(2),
    };
    let mut msg = Vec::new();
    signed_bytes(&rec, &mut msg);
    rec.sigs.push(RecordSig {
        alg: ALG_ED25519.to_owned(),
        sig: ByteBuf::from(identity.sign_ed25519(&msg).to_vec()),
    });
    if with_ml_dsa {
        rec.sigs.push(RecordSig {
            alg: ALG_ML_DSA_87.to_owned(),
            sig: ByteBuf::from(identity.sign_ml_dsa(&msg)),
        });
    }
    rec
}

/// Appends the record's CBOR encoding (a map with the field names of [`ProviderRecord`]).
pub fn encode_record(rec: &ProviderRecord, out: &mut Vec<u8>) {
    // Serialising these types cannot fail, and writing into a Vec cannot either.
    ciborium::into_writer(rec, out).expect("a provider record always encodes");
}

/// Decodes one record. Input over 16 KiB is `oversize` before any decoding; input that is not
/// exactly one CBOR provider record (trailing bytes included) is `malformed`. The record still
/// needs [`validate`], with `encoded_len = bytes.len()`.
pub fn decode_record(bytes: &[u8]) -> Result<ProviderRecord, RecordError> {
    if bytes.len() > limits::MAX_RECORD_BYTES {
        return Err(RecordError::Oversize(bytes.len()));
    }
    // The same strict CBOR rules as every message of apps 1-3 (one item, definite lengths, no
    // tags, bounded depth); see `crate::msg`.
    crate::msg::decode_cbor(bytes).map_err(|_| {
        RecordError::Undecodable("not exactly one well-formed CBOR provider record".into())
    })
}

// ---------------------------------------------------------------------------------------------
// Validation
// ---------------------------------------------------------------------------------------------

/// The signatures of a record that passed the checks before `bad_sig`.
struct Sigs<'a> {
    ed25519: Option<&'a [u8]>,
    ml_dsa: Option<&'a [u8]>,
}

/// Checks up to and including `bad_publisher`: size, shape (see [`validate`]), publisher.
fn check_shape_and_publisher(
    rec: &ProviderRecord,
    encoded_len: usize,
) -> Result<Sigs<'_>, RecordError> {
    if encoded_len > limits::MAX_RECORD_BYTES {
        return Err(RecordError::Oversize(encoded_len));
    }
    if rec.addrs.len() > limits::MAX_ADDRS {
        return Err(RecordError::TooManyAddrs(rec.addrs.len()));
    }
    if let Some((index, a)) = rec
        .addrs
        .iter()
        .enumerate()
        .find(|(_, a)| a.len() > limits::MAX_ADDR_BYTES)
    {
        return Err(RecordError::AddrTooLong {
            index,
            len: a.len(),
        });
    }
    let ml_dsa_pk_hash = match (&rec.ml_dsa_pk, &rec.ml_dsa_pk_hash) {
        (Some(pk), None) if pk.len() != ML_DSA_87_PK_LEN => {
            return Err(RecordError::MlDsaPkLength(pk.len()))
        }
        (Some(pk), None) => *blake3::hash(pk).as_bytes(),
        (None, Some(hash)) => **hash,
        _ => return Err(RecordError::KeyForm),
    };
    let mut sigs = Sigs {
        ed25519: None,
        ml_dsa: None,
    };
    for s in &rec.sigs {
        let (slot, alg) = match s.alg.as_str() {
            ALG_ED25519 => (&mut sigs.ed25519, ALG_ED25519),
            ALG_ML_DSA_87 => (&mut sigs.ml_dsa, ALG_ML_DSA_87),
            other => return Err(RecordError::UnknownSigAlg(other.chars().take(32).collect())),
        };
        if slot.replace(&s.sig[..]).is_some() {
            return Err(RecordError::DuplicateSig(alg));
        }
    }
    if NodeId::from_key_hashes(&rec.ed25519_pk, &ml_dsa_pk_hash).0 != *rec.publisher {
        return Err(RecordError::BadPublisher);
    }
    Ok(sigs)
}

/// The Ed25519 key and signature of a record, parsed; `bad_sig` when they do not parse.
fn parse_ed25519(
    pk: &[u8; 32],
    sig: Option<&[u8]>,
) -> Result<(VerifyingKey, Signature), RecordError> {
    let sig = sig.ok_or(RecordError::MissingEd25519Sig)?;
    let sig = Signature::from_slice(sig).map_err(|_| RecordError::BadEd25519Sig)?;
    let vk = VerifyingKey::from_bytes(pk).map_err(|_| RecordError::BadEd25519Sig)?;
    // A small-order key (the identity point, say) "verifies" crafted signatures without any
    // secret key behind it; a record must prove its publisher holds one.
    if vk.is_weak() {
        return Err(RecordError::BadEd25519Sig);
    }
    Ok((vk, sig))
}

/// The checks after the Ed25519 signature: the ML-DSA-87 signature, then `bad_ttl`, `bad_ts`,
/// `stale`.
fn check_pq_and_times(
    rec: &ProviderRecord,
    sigs: &Sigs<'_>,
    msg: &[u8],
    now: u64,
    policy: &RecordPolicy,
) -> Result<(), RecordError> {
    match (&rec.ml_dsa_pk, sigs.ml_dsa) {
        (Some(pk), Some(sig)) if !verify_ml_dsa_87(pk, msg, sig) => {
            return Err(RecordError::BadMlDsaSig)
        }
        (None, Some(_)) => return Err(RecordError::MlDsaSigWithoutPk),
        (None, None) if policy.require_pq_sig => return Err(RecordError::MissingMlDsaPk),
        (Some(_), None) if policy.require_pq_sig => return Err(RecordError::MissingMlDsaSig),
        // A verified pair; or, without the policy, no ML-DSA signature (a key with none is
        // harmless: the NodeId commits to it).
        _ => {}
    }
    if rec.ttl_s > limits::MAX_RECORD_TTL_S {
        return Err(RecordError::BadTtl(rec.ttl_s));
    }
    if rec.ts > now.saturating_add(limits::MAX_CLOCK_SKEW_S) {
        return Err(RecordError::BadTs { ts: rec.ts, now });
    }
    let expired_at = rec.ts.saturating_add(rec.ttl_s);
    if now >= expired_at {
        return Err(RecordError::Stale { expired_at, now });
    }
    Ok(())
}

/// Validates a decoded record whose encoding was `encoded_len` bytes, at unix time `now`, in
/// PROTOCOL.md section 9's order: `oversize`; `malformed` (shape, see below); `bad_publisher`;
/// `bad_sig` (Ed25519, then ML-DSA-87); `bad_ttl`; `bad_ts`; `stale`.
///
/// Shape faults are `malformed`: more than 8 addresses or one over 256 bytes (PROTOCOL.md bounds
/// them but names no label; `oversize` stays the label of the encoded size), both or neither of
/// `ml_dsa_pk` / `ml_dsa_pk_hash`, an `ml_dsa_pk` that is not 2,592 bytes, an unknown `alg`, or
/// two signatures of one `alg`.
///
/// An ML-DSA-87 signature that is present must verify even when the policy does not require
/// one; one present without `ml_dsa_pk` (only the hash) is `bad_sig`.
pub fn validate(
    rec: &ProviderRecord,
    encoded_len: usize,
    now: u64,
    policy: &RecordPolicy,
) -> Result<(), RecordError> {
    let sigs = check_shape_and_publisher(rec, encoded_len)?;
    let mut msg = Vec::with_capacity(256);
    signed_bytes(rec, &mut msg);
    let (vk, sig) = parse_ed25519(&rec.ed25519_pk, sigs.ed25519)?;
    if vk.verify(&msg, &sig).is_err() {
        return Err(RecordError::BadEd25519Sig);
    }
    check_pq_and_times(rec, &sigs, &msg, now, policy)
}

/// [`validate`] for many records at once, with the same result for each as `validate` gives.
/// `records` pairs each record with its encoded length.
///
/// The Ed25519 signatures of every record that reaches that check are verified together with
/// `ed25519_dalek::verify_batch`; only when the batch fails is each verified alone, so a bad
/// one is still found and labelled. ML-DSA-87 has no batch verification and is checked one by one.
///
/// Batch and single Ed25519 verification agree on every signature made by a real signer and on
/// every forgery. They can differ only on signatures that the key's owner crafts with small-order
/// (torsion) components, which single verification rejects and the batch accepts with some
/// probability; such a record carries no forged authority (only the key holder can make it).
pub fn validate_batch(
    records: &[(&ProviderRecord, usize)],
    now: u64,
    policy: &RecordPolicy,
) -> Vec<Result<(), RecordError>> {
    struct Pending<'a> {
        index: usize,
        sigs: Sigs<'a>,
        msg: std::ops::Range<usize>,
    }
    let mut results: Vec<Result<(), RecordError>> = Vec::with_capacity(records.len());
    let mut msgs = Vec::new();
    let mut pending = Vec::new();
    let mut vks = Vec::new();
    let mut ed_sigs = Vec::new();
    for (index, &(rec, encoded_len)) in records.iter().enumerate() {
        let parsed = check_shape_and_publisher(rec, encoded_len)
            .and_then(|sigs| parse_ed25519(&rec.ed25519_pk, sigs.ed25519).map(|p| (sigs, p)));
        match parsed {
            Err(e) => results.push(Err(e)),
            Ok((sigs, (vk, sig))) => {
                let start = msgs.len();
                signed_bytes(rec, &mut msgs);
                pending.push(Pending {
                    index,
                    sigs,
                    msg: start..msgs.len(),
                });
                vks.push(vk);
                ed_sigs.push(sig);
                results.push(Ok(()));
            }
        }
    }

    let messages: Vec<&[u8]> = pending.iter().map(|p| &msgs[p.msg.clone()]).collect();
    let all_valid =
        pending.len() > 1 && ed25519_dalek::verify_batch(&messages, &ed_sigs, &vks).is_ok();
    for (i, p) in pending.iter().enumerate() {
        let (rec, _) = records[p.index];
        results[p.index] = if all_valid || vks[i].verify(messages[i], &ed_sigs[i]).is_ok() {
            check_pq_and_times(rec, &p.sigs, messages[i], now, policy)
        } else {
            Err(RecordError::BadEd25519Sig)
        };
    }
    results
}

/// Verifies one Ed25519 signature (RFC 8032, `ed25519_dalek`'s default rules). A key that is not a
/// curve point or a signature that is not 64 bytes does not verify.
pub fn verify_ed25519(pk: &[u8; 32], msg: &[u8], sig: &[u8]) -> bool {
    match parse_ed25519(pk, Some(sig)) {
        Ok((vk, sig)) => vk.verify(msg, &sig).is_ok(),
        Err(_) => false,
    }
}

/// Verifies many Ed25519 signatures `(public key, message, signature)` at once: true when every
/// one is valid (an empty batch is). Says nothing about which one failed; see [`validate_batch`].
pub fn verify_ed25519_batch(items: &[(&[u8; 32], &[u8], &[u8])]) -> bool {
    let mut vks = Vec::with_capacity(items.len());
    let mut sigs = Vec::with_capacity(items.len());
    let mut msgs = Vec::with_capacity(items.len());
    for &(pk, msg, sig) in items {
        match parse_ed25519(pk, Some(sig)) {
            Ok((vk, sig)) => {
                vks.push(vk);
                sigs.push(sig);
                msgs.push(msg);
            }
            Err(_) => return false,
        }
    }
    ed25519_dalek::verify_batch(&msgs, &sigs, &vks).is_ok()
}

/// Verifies an ML-DSA-87 signature (empty context) with a raw 2,592-byte public key.
pub fn verify_ml_dsa_87(pk: &[u8], msg: &[u8], sig: &[u8]) -> bool {
    UnparsedPublicKey::new(&ML_DSA_87, pk)
        .verify(msg, sig)
        .is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::identity::tests::test_identity;

    const NOW: u64 = 1_700_000_000;
    const KEY: [u8; 32] = [0x11; 32];

    fn addrs() -> Vec<String> {
        vec!["127.0.0.1:4433".to_owned()]
    }

    fn dual(n: u8) -> ProviderRecord {
        sign_record(
            &test_identity(n),
            KEY,
            addrs(),
            limits::DEFAULT_RECORD_TTL_S,
            NOW,
            true,
        )
    }

    fn ed_only(n: u8) -> ProviderRecord {
        sign_record(
            &test_identity(n),
            KEY,
            addrs(),
            limits::DEFAULT_RECORD_TTL_S,
            NOW,
            false,
        )
    }

    fn encoded_len(rec: &ProviderRecord) -> usize {
        let mut out = Vec::new();
        encode_record(rec, &mut out);
        out.len()
    }

    fn check(rec: &ProviderRecord, now: u64, policy: &RecordPolicy) -> Result<(), RecordError> {
        validate(rec, encoded_len(rec), now, policy)
    }

    const PQ: RecordPolicy = RecordPolicy {
        require_pq_sig: true,
    };
    const CLASSIC: RecordPolicy = RecordPolicy {
        require_pq_sig: false,
    };

    /// Re-signs `rec` (after a test changed it) with identity `n`, keeping its key fields.
    fn resign(mut rec: ProviderRecord, n: u8) -> ProviderRecord {
        let id = test_identity(n);
        let mut msg = Vec::new();
        signed_bytes(&rec, &mut msg);
        for s in &mut rec.sigs {
            s.sig = ByteBuf::from(match s.alg.as_str() {
                ALG_ED25519 => id.sign_ed25519(&msg).to_vec(),
                _ => id.sign_ml_dsa(&msg),
            });
        }
        rec
    }

    #[test]
    fn cbor_heads_are_shortest() {
        for (n, want) in [
            (0u64, "00"),
            (23, "17"),
            (24, "1818"),
            (255, "18ff"),
            (256, "190100"),
            (65_535, "19ffff"),
            (65_536, "1a00010000"),
            (u64::from(u32::MAX), "1affffffff"),
            (1 << 32, "1b0000000100000000"),
            (u64::MAX, "1bffffffffffffffff"),
        ] {
            let mut out = Vec::new();
            cbor_head(&mut out, MAJOR_UINT, n);
            assert_eq!(hex::encode(&out), want, "{n}");
            // ciborium agrees on integers.
            let mut theirs = Vec::new();
            ciborium::into_writer(&n, &mut theirs).unwrap();
            assert_eq!(out, theirs);
        }
    }

    #[test]
    fn signed_bytes_pinned() {
        let rec = ProviderRecord {
            key: ByteArray::new([0x11; 32]),
            publisher: ByteArray::new([0x22; 32]),
            addrs: addrs(),
            ttl_s: 86_400,
            ts: NOW,
            ed25519_pk: ByteArray::new([0x33; 32]),
            ml_dsa_pk: None,
            ml_dsa_pk_hash: Some(ByteArray::new([0x44; 32])),
            sigs: vec![],
        };
        let mut out = Vec::new();
        signed_bytes(&rec, &mut out);
        let want = [
            "86",                                     // array(6)
            "73",                                     // text(19)
            "726f6e2d6468742f70726f76696465722f7631", // "ron-dht/provider/v1"
            "5820",                                   // bytes(32): key
            &"11".repeat(32),
            "5820", // bytes(32): publisher
            &"22".repeat(32),
            "81",                           // array(1): addrs
            "6e",                           // text(14)
            "3132372e302e302e313a34343333", // "127.0.0.1:4433"
            "1a00015180",                   // ttl_s 86400
            "1a6553f100",                   // ts 1700000000
        ]
        .concat();
        assert_eq!(hex::encode(&out), want);
        assert_eq!(out.len(), 115);

        // Keys, signatures and other fields outside the array do not change the bytes, and
        // ciborium writes the same canonical array.
        let mut other = rec.clone();
        other.ed25519_pk = ByteArray::new([0; 32]);
        other.sigs.push(RecordSig {
            alg: ALG_ED25519.into(),
            sig: ByteBuf::from(vec![1; 64]),
        });
        let mut out2 = Vec::new();
        signed_bytes(&other, &mut out2);
        assert_eq!(out, out2);
        let tuple = (
            DOMAIN_TAG,
            &rec.key,
            &rec.publisher,
            &rec.addrs,
            rec.ttl_s,
            rec.ts,
        );
        let mut theirs = Vec::new();
        ciborium::into_writer(&tuple, &mut theirs).unwrap();
        assert_eq!(out, theirs);

        // Appends, and an empty address list and small numbers take one byte each.
        let small = ProviderRecord {
            addrs: vec![],
            ttl_s: 23,
            ts: 0,
            ..rec
        };
        let mut out3 = vec![0xee];
        signed_bytes(&small, &mut out3);
        assert_eq!(out3[0], 0xee);
        assert_eq!(hex::encode(&out3[out3.len() - 3..]), "801700");
    }

    #[test]
    fn valid_records_pass() {
        let rec = dual(1);
        assert_eq!(rec.publisher.into_array(), test_identity(1).node_id().0);
        assert_eq!(rec.sigs.len(), 2);
        assert_eq!(rec.sigs[1].sig.len(), crate::identity::ML_DSA_87_SIG_LEN);
        assert_eq!(check(&rec, NOW, &PQ), Ok(()));
        assert_eq!(check(&rec, NOW, &CLASSIC), Ok(()));
        assert!(encoded_len(&rec) < limits::MAX_RECORD_BYTES);

        let ed = ed_only(1);
        assert_eq!(ed.publisher, rec.publisher);
        assert_eq!(check(&ed, NOW, &CLASSIC), Ok(()));
        let err = check(&ed, NOW, &PQ).unwrap_err();
        assert_eq!(err, RecordError::MissingMlDsaPk);
        assert_eq!(err.reason(), Reason::BadSig);
        assert_eq!(RecordPolicy::default(), PQ);

        // An ML-DSA key with no ML-DSA signature.
        let mut no_pq_sig = rec.clone();
        no_pq_sig.sigs.pop();
        assert_eq!(
            check(&no_pq_sig, NOW, &PQ),
            Err(RecordError::MissingMlDsaSig)
        );
        assert_eq!(check(&no_pq_sig, NOW, &CLASSIC), Ok(()));
    }

    #[test]
    fn encode_decode_round_trip() {
        for rec in [dual(2), ed_only(2)] {
            let mut bytes = Vec::new();
            encode_record(&rec, &mut bytes);
            assert_eq!(decode_record(&bytes), Ok(rec.clone()));
            bytes.push(0);
            assert_eq!(
                decode_record(&bytes).unwrap_err().reason(),
                Reason::Malformed,
                "trailing bytes"
            );
        }
        for garbage in [&b""[..], b"\xff", b"\xa0", b"hello"] {
            let err = decode_record(garbage).unwrap_err();
            assert!(matches!(err, RecordError::Undecodable(_)), "{garbage:?}");
            assert_eq!(err.reason(), Reason::Malformed);
        }
        let err = decode_record(&vec![0u8; limits::MAX_RECORD_BYTES + 1]).unwrap_err();
        assert_eq!(err, RecordError::Oversize(16_385));
        assert_eq!(err.reason(), Reason::Oversize);
    }

    #[test]
    fn publisher_must_match_keys() {
        // The ML-DSA key of another node: the NodeId no longer matches.
        let mut rec = dual(1);
        rec.ml_dsa_pk = dual(2).ml_dsa_pk;
        let rec = resign(rec, 1);
        let err = check(&rec, NOW, &PQ).unwrap_err();
        assert_eq!(err, RecordError::BadPublisher);
        assert_eq!(err.reason(), Reason::BadPublisher);

        let mut ed = ed_only(1);
        ed.ml_dsa_pk_hash = Some(ByteArray::new([0; 32]));
        assert_eq!(
            check(&resign(ed, 1), NOW, &CLASSIC),
            Err(RecordError::BadPublisher)
        );

        let mut wrong_pub = dual(1);
        wrong_pub.publisher = ByteArray::new(test_identity(2).node_id().0);
        assert_eq!(
            check(&resign(wrong_pub, 1), NOW, &PQ),
            Err(RecordError::BadPublisher)
        );

        // A different Ed25519 key, validly signed with it, under the first node's NodeId.
        let mut ed_swap = dual(1);
        ed_swap.ed25519_pk = ByteArray::new(test_identity(2).ed25519_pk());
        let mut ed_swap = resign(ed_swap, 2);
        ed_swap.sigs.truncate(1);
        assert_eq!(
            check(&ed_swap, NOW, &CLASSIC),
            Err(RecordError::BadPublisher)
        );
    }

    #[test]
    fn bad_signatures() {
        let rec = dual(3);
        for (i, want) in [
            (0, RecordError::BadEd25519Sig),
            (1, RecordError::BadMlDsaSig),
        ] {
            for at in [0, 31, 40, rec.sigs[i].sig.len() - 1] {
                let mut bad = rec.clone();
                bad.sigs[i].sig[at] ^= 0x01;
                let err = check(&bad, NOW, &PQ).unwrap_err();
                assert_eq!(err, want, "sig {i} byte {at}");
                assert_eq!(err.reason(), Reason::BadSig);
                // Without the policy a present ML-DSA signature must still verify.
                assert_eq!(check(&bad, NOW, &CLASSIC), Err(want.clone()));
            }
        }
        // The signed fields are covered: change one without re-signing.
        for edit in [
            (|r: &mut ProviderRecord| r.key[0] ^= 1) as fn(&mut ProviderRecord),
            |r| r.addrs.push("10.0.0.1:1".into()),
            |r| r.ttl_s -= 1,
            |r| r.ts += 1,
        ] {
            let mut bad = rec.clone();
            edit(&mut bad);
            assert_eq!(check(&bad, NOW, &PQ), Err(RecordError::BadEd25519Sig));
            let mut bad_pq = bad.clone();
            bad_pq.sigs[0] = resign(bad, 3).sigs[0].clone();
            assert_eq!(check(&bad_pq, NOW, &PQ), Err(RecordError::BadMlDsaSig));
        }

        let mut missing = rec.clone();
        missing.sigs.remove(0);
        assert_eq!(
            check(&missing, NOW, &PQ),
            Err(RecordError::MissingEd25519Sig)
        );
        let mut short = rec.clone();
        short.sigs[0].sig = ByteBuf::from(vec![0; 63]);
        assert_eq!(check(&short, NOW, &PQ), Err(RecordError::BadEd25519Sig));
        let mut truncated_pq = rec.clone();
        truncated_pq.sigs[1].sig = ByteBuf::from(rec.sigs[1].sig[..100].to_vec());
        assert_eq!(
            check(&truncated_pq, NOW, &PQ),
            Err(RecordError::BadMlDsaSig)
        );

        // An ML-DSA signature on a record that carries only the key hash.
        let mut pq_without_pk = ed_only(3);
        pq_without_pk.sigs.push(rec.sigs[1].clone());
        assert_eq!(
            check(&pq_without_pk, NOW, &CLASSIC),
            Err(RecordError::MlDsaSigWithoutPk)
        );
    }

    #[test]
    fn shape_is_malformed() {
        let rec = dual(4);
        let cases: Vec<(ProviderRecord, RecordError)> = vec![
            (
                ProviderRecord {
                    addrs: vec!["a:1".into(); 9],
                    ..rec.clone()
                },
                RecordError::TooManyAddrs(9),
            ),
            (
                ProviderRecord {
                    addrs: vec!["a:1".into(), "x".repeat(257)],
                    ..rec.clone()
                },
                RecordError::AddrTooLong { index: 1, len: 257 },
            ),
            (
                ProviderRecord {
                    ml_dsa_pk_hash: Some(ByteArray::new([0; 32])),
                    ..rec.clone()
                },
                RecordError::KeyForm,
            ),
            (
                ProviderRecord {
                    ml_dsa_pk: None,
                    ..rec.clone()
                },
                RecordError::KeyForm,
            ),
            (
                ProviderRecord {
                    ml_dsa_pk: Some(ByteBuf::from(vec![0; 2591])),
                    ..rec.clone()
                },
                RecordError::MlDsaPkLength(2591),
            ),
            (
                ProviderRecord {
                    sigs: vec![RecordSig {
                        alg: "rsa".into(),
                        sig: ByteBuf::new(),
                    }],
                    ..rec.clone()
                },
                RecordError::UnknownSigAlg("rsa".into()),
            ),
            (
                ProviderRecord {
                    sigs: vec![rec.sigs[0].clone(), rec.sigs[0].clone()],
                    ..rec.clone()
                },
                RecordError::DuplicateSig(ALG_ED25519),
            ),
        ];
        for (bad, want) in cases {
            let err = check(&bad, NOW, &PQ).unwrap_err();
            assert_eq!(err, want);
            assert_eq!(err.reason(), Reason::Malformed);
        }
        // Exactly 8 addresses of exactly 256 bytes are fine.
        let full = sign_record(
            &test_identity(4),
            KEY,
            vec!["x".repeat(256); 8],
            60,
            NOW,
            true,
        );
        assert_eq!(check(&full, NOW, &PQ), Ok(()));
        assert!(encoded_len(&full) < limits::MAX_RECORD_BYTES);
        assert_eq!(
            RecordError::AddrTooLong { index: 1, len: 257 }.to_string(),
            "record address 1 is 257 bytes, at most 256 allowed"
        );
    }

    #[test]
    fn size_and_times() {
        let rec = dual(5);
        let max = limits::MAX_RECORD_BYTES;
        assert_eq!(validate(&rec, max, NOW, &PQ), Ok(()));
        let err = validate(&rec, max + 1, NOW, &PQ).unwrap_err();
        assert_eq!(err, RecordError::Oversize(max + 1));
        assert_eq!(
            err.to_string(),
            "record is 16385 bytes encoded, more than the 16384 allowed"
        );

        let at = |ttl_s, ts| sign_record(&test_identity(5), KEY, addrs(), ttl_s, ts, true);
        // ttl: 172,800 is the most allowed.
        assert_eq!(check(&at(172_800, NOW), NOW, &PQ), Ok(()));
        let err = check(&at(172_801, NOW), NOW, &PQ).unwrap_err();
        assert_eq!(err, RecordError::BadTtl(172_801));
        assert_eq!(err.reason(), Reason::BadTtl);
        // ts: up to now + 300.
        assert_eq!(check(&at(600, NOW + 300), NOW, &PQ), Ok(()));
        let err = check(&at(600, NOW + 301), NOW, &PQ).unwrap_err();
        assert_eq!(
            err,
            RecordError::BadTs {
                ts: NOW + 301,
                now: NOW
            }
        );
        assert_eq!(err.reason(), Reason::BadTs);
        // stale: valid while now < ts + ttl_s.
        let r = at(100, NOW);
        assert_eq!(check(&r, NOW + 99, &PQ), Ok(()));
        let err = check(&r, NOW + 100, &PQ).unwrap_err();
        assert_eq!(
            err,
            RecordError::Stale {
                expired_at: NOW + 100,
                now: NOW + 100
            }
        );
        assert_eq!(err.reason(), Reason::Stale);
        assert_eq!(
            check(&at(0, NOW), NOW, &PQ),
            Err(RecordError::Stale {
                expired_at: NOW,
                now: NOW
            })
        );
        // No overflow at the edges of u64.
        assert!(matches!(
            check(&at(10, u64::MAX), u64::MAX - 1, &PQ),
            Ok(())
        ));
        assert!(matches!(
            check(&at(10, u64::MAX), 0, &PQ),
            Err(RecordError::BadTs { .. })
        ));
    }

    #[test]
    fn checks_run_in_wire_order() {
        // Stale, too long a ttl and from the future, with a bad signature: bad_sig wins.
        let mut rec = sign_record(&test_identity(6), KEY, addrs(), 172_801, NOW + 1_000, true);
        assert_eq!(check(&rec, NOW, &PQ), Err(RecordError::BadTtl(172_801)));
        rec.sigs[1].sig[0] ^= 1;
        assert_eq!(check(&rec, NOW, &PQ), Err(RecordError::BadMlDsaSig));
        rec.sigs[0].sig[0] ^= 1;
        assert_eq!(check(&rec, NOW, &PQ), Err(RecordError::BadEd25519Sig));
        rec.publisher[0] ^= 1;
        assert_eq!(check(&rec, NOW, &PQ), Err(RecordError::BadPublisher));
        rec.addrs = vec![String::new(); 9];
        assert_eq!(check(&rec, NOW, &PQ), Err(RecordError::TooManyAddrs(9)));
        assert_eq!(
            validate(&rec, 20_000, NOW, &PQ),
            Err(RecordError::Oversize(20_000))
        );
        // ts in the future and stale at once cannot happen; bad_ts before stale otherwise.
        let r = sign_record(&test_identity(6), KEY, addrs(), 10, NOW + 400, true);
        assert_eq!(
            check(&r, NOW, &PQ),
            Err(RecordError::BadTs {
                ts: NOW + 400,
                now: NOW
            })
        );
    }

    #[test]
    fn batch_matches_single() {
        let good: Vec<ProviderRecord> = (10..15).map(ed_only).collect();
        let mut bad_ed = ed_only(20);
        bad_ed.sigs[0].sig[5] ^= 0x40;
        let mut noncanonical_s = ed_only(21);
        noncanonical_s.sigs[0].sig[32..].fill(0xff);
        let mut bad_pub = ed_only(22);
        bad_pub.publisher[0] ^= 1;
        let mut missing = ed_only(23);
        missing.sigs.clear();
        let mut bad_key = ed_only(24);
        bad_key.ed25519_pk = ByteArray::new([0xff; 32]);
        let stale = sign_record(&test_identity(25), KEY, addrs(), 10, NOW - 10, false);
        let mut bad_pq = dual(26);
        bad_pq.sigs[1].sig[9] ^= 1;
        let dual_ok = dual(27);

        let sets: Vec<Vec<ProviderRecord>> = vec![
            vec![],
            vec![good[0].clone()],
            vec![bad_ed.clone()],
            good.clone(),
            // One bad Ed25519 signature in the middle.
            vec![
                good[0].clone(),
                good[1].clone(),
                bad_ed.clone(),
                good[2].clone(),
                good[3].clone(),
            ],
            vec![good[0].clone(), noncanonical_s, good[1].clone()],
            vec![
                good[4].clone(),
                bad_pub,
                missing,
                bad_key,
                stale,
                bad_pq,
                dual_ok,
                bad_ed.clone(),
                good[2].clone(),
            ],
            vec![bad_ed.clone(), bad_ed],
        ];
        for (n, set) in sets.iter().enumerate() {
            for policy in [PQ, CLASSIC] {
                let input: Vec<(&ProviderRecord, usize)> =
                    set.iter().map(|r| (r, encoded_len(r))).collect();
                let single: Vec<_> = input
                    .iter()
                    .map(|&(r, len)| validate(r, len, NOW, &policy))
                    .collect();
                assert_eq!(
                    validate_batch(&input, NOW, &policy),
                    single,
                    "set {n}, {policy:?}"
                );
            }
        }
        // The mixed set really exercises every path.
        let input: Vec<(&ProviderRecord, usize)> =
            sets[6].iter().map(|r| (r, encoded_len(r))).collect();
        let labels: Vec<_> = validate_batch(&input, NOW, &CLASSIC)
            .into_iter()
            .map(|r| r.err().map(|e| e.reason().label()))
            .collect();
        assert_eq!(
            labels,
            [
                None,
                Some("bad_publisher"),
                Some("bad_sig"),
                Some("bad_publisher"),
                Some("stale"),
                Some("bad_sig"),
                None,
                Some("bad_sig"),
                None
            ]
        );
        let oversize = validate_batch(&[(&good[0], 16_385)], NOW, &PQ);
        assert_eq!(oversize, vec![Err(RecordError::Oversize(16_385))]);
    }

    #[test]
    fn ed25519_helpers() {
        let ids: Vec<_> = (30..34).map(test_identity).collect();
        let msgs: Vec<Vec<u8>> = (0..4u8).map(|i| vec![i; 10 + usize::from(i)]).collect();
        let pks: Vec<[u8; 32]> = ids.iter().map(|id| id.ed25519_pk()).collect();
        let mut sigs: Vec<[u8; 64]> = ids
            .iter()
            .zip(&msgs)
            .map(|(id, m)| id.sign_ed25519(m))
            .collect();
        fn items<'a>(
            pks: &'a [[u8; 32]],
            msgs: &'a [Vec<u8>],
            sigs: &'a [[u8; 64]],
        ) -> Vec<(&'a [u8; 32], &'a [u8], &'a [u8])> {
            (0..pks.len())
                .map(|i| (&pks[i], &msgs[i][..], &sigs[i][..]))
                .collect()
        }
        assert!(verify_ed25519_batch(&items(&pks, &msgs, &sigs)));
        assert!(verify_ed25519_batch(&[]));
        for i in 0..4 {
            assert!(verify_ed25519(&pks[i], &msgs[i], &sigs[i]));
        }
        assert!(!verify_ed25519(&pks[0], &msgs[1], &sigs[0]));
        assert!(!verify_ed25519(&pks[0], &msgs[0], &sigs[0][..63]));
        assert!(!verify_ed25519(&[0xff; 32], &msgs[0], &sigs[0]));
        sigs[2][0] ^= 1;
        assert!(!verify_ed25519_batch(&items(&pks, &msgs, &sigs)));
        let mut short = items(&pks, &msgs, &sigs);
        short[0].2 = &[0u8; 10];
        assert!(!verify_ed25519_batch(&short));
    }
}

#[cfg(test)]
mod strict_bytes_tests {
    use super::*;

    #[test]
    fn binary_fields_refuse_arrays_of_integers() {
        let id = crate::identity::Identity::from_seeds(&crate::identity::IdentitySeeds {
            ed25519: [1; 32],
            ml_dsa: [2; 32],
        });
        let rec = sign_record(
            &id,
            [9; 32],
            vec!["127.0.0.1:9500".into()],
            3600,
            1_700_000_000,
            false,
        );
        let mut good = Vec::new();
        encode_record(&rec, &mut good);
        assert_eq!(decode_record(&good).unwrap(), rec);
        // The same record with `key` written as an array of 32 integers.
        let value: ciborium::Value = ciborium::from_reader(&good[..]).unwrap();
        let ciborium::Value::Map(mut entries) = value else {
            panic!("record is a map")
        };
        for (k, v) in entries.iter_mut() {
            if k.as_text() == Some("key") {
                *v = ciborium::Value::Array(
                    (0..32)
                        .map(|_| ciborium::Value::Integer(9.into()))
                        .collect(),
                );
            }
        }
        let mut bad = Vec::new();
        ciborium::into_writer(&ciborium::Value::Map(entries), &mut bad).unwrap();
        assert_eq!(decode_record(&bad).unwrap_err().reason(), Reason::Malformed);
    }
}

#[cfg(test)]
mod weak_key_tests {
    use super::*;
    use crate::id::NodeId;

    #[test]
    fn small_order_ed25519_keys_are_bad_sig_even_without_pq() {
        // The identity point as the key, and R = identity, s = 0 as the signature: non-strict
        // Ed25519 verification accepts this for any message.
        let mut pk = [0u8; 32];
        pk[0] = 1;
        let mut sig = vec![0u8; 64];
        sig[0] = 1;
        let ml_dsa_pk_hash = [7u8; 32];
        let rec = ProviderRecord {
            key: ByteArray::new([9; 32]),
            publisher: ByteArray::new(NodeId::from_key_hashes(&pk, &ml_dsa_pk_hash).0),
            addrs: vec!["127.0.0.1:9500".into()],
            ttl_s: 3600,
            ts: 1_700_000_000,
            ed25519_pk: ByteArray::new(pk),
            ml_dsa_pk: None,
            ml_dsa_pk_hash: Some(ByteArray::new(ml_dsa_pk_hash)),
            sigs: vec![RecordSig {
                alg: ALG_ED25519.into(),
                sig: ByteBuf::from(sig),
            }],
        };
        let classic = RecordPolicy {
            require_pq_sig: false,
        };
        let err = validate(&rec, 200, 1_700_000_010, &classic).unwrap_err();
        assert_eq!(err.reason(), Reason::BadSig);
        let batch = validate_batch(&[(&rec, 200), (&rec, 200)], 1_700_000_010, &classic);
        assert!(batch
            .iter()
            .all(|r| r.as_ref().unwrap_err().reason() == Reason::BadSig));
    }
}
