//! Signed provider records (WIRE.md section 6).

use serde::{Deserialize, Serialize};
use serde_bytes::{ByteArray, ByteBuf};

/// A provider record as it travels in CBOR (binary fields as byte strings).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProviderRecord {
    /// The content key provided (an object address or any 32-byte DHT key).
    pub key: ByteArray<32>,
    /// The publisher's NodeId.
    pub publisher: ByteArray<32>,
    /// Where to reach the publisher: at most 8, each at most 256 bytes (`host:port` text).
    pub addrs: Vec<String>,
    pub ttl_s: u64,
    /// Unix seconds at signing.
    pub ts: u64,
    pub ed25519_pk: ByteArray<32>,
    /// The ML-DSA-87 public key (2,592 bytes); present when an ML-DSA-87 signature is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ml_dsa_pk: Option<ByteBuf>,
    /// BLAKE3-256 of the ML-DSA-87 public key, for records signed with Ed25519 only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ml_dsa_pk_hash: Option<ByteArray<32>>,
    pub sigs: Vec<RecordSig>,
}

/// One signature over the record's canonical signed bytes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RecordSig {
    /// `"ed25519"` or `"ml-dsa-87"`.
    pub alg: String,
    pub sig: ByteBuf,
}
