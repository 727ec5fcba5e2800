//! Capabilities (PROTOCOL.md section 10): macaroon-style bearer tokens carried in a frame's `cap`.
//!
//! `tag_0 = BLAKE3-keyed(root_key[kid], kid)`, `tag_i = BLAKE3-keyed(tag_(i-1), caveat_i)`,
//! `tag = tag_n`. Anyone holding a token can append a caveat (narrowing it) without the root key;
//! removing or changing one needs the key, because the node recomputes the whole chain.
//!
//! Wire form: the CBOR map `{"v": 1, "kid": bstr(8), "caveats": [text, ...], "tag": bstr(32)}`,
//! keys in that order.

use std::fmt;

use serde::{Deserialize, Serialize};
use serde_bytes::{ByteArray, Bytes};

use crate::limits;
use crate::reason::Reason;

/// The only token version (`"v"`).
pub const CAP_VERSION: u64 = 1;

/// Longest part of an offending caveat quoted in an error message.
const MAX_QUOTED_CAVEAT: usize = 64;

/// A capability token. `Debug` does not print the tag: it is the bearer secret.
#[derive(Clone, PartialEq, Eq)]
pub struct Capability {
    /// Names the root key the chain starts from.
    pub kid: [u8; 8],
    pub caveats: Vec<String>,
    pub tag: [u8; 32],
}

/// An operation a capability may allow.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Op {
    Get,
    Put,
    Gossip,
}

impl Op {
    pub const fn label(self) -> &'static str {
        match self {
            Op::Get => "get",
            Op::Put => "put",
            Op::Gossip => "gossip",
        }
    }

    /// Strict parse of a label (`get`, `put`, `gossip`).
    pub fn parse(s: &str) -> Option<Op> {
        [Op::Get, Op::Put, Op::Gossip]
            .into_iter()
            .find(|op| op.label() == s)
    }
}

impl fmt::Display for Op {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.label())
    }
}

/// What a request asks for, checked against the caveats.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CapRequest {
    pub op: Op,
    /// Unix seconds.
    pub now: u64,
    pub tenant: u128,
    /// Body size, when known (a PUT's declared length).
    pub bytes: Option<u64>,
}

/// One parsed caveat. Parsing is strict: decimal numbers without sign or leading zeros,
/// `tenant=0x` + 1 to 32 lowercase hex digits, `scope=` a comma-separated list of op labels with
/// no spaces or empty items.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Caveat {
    /// `scope=<op>[,<op>...]`: the operation must be one of these.
    Scope(Vec<Op>),
    /// `exp=<unix s>`: valid while `now < exp`.
    Exp(u64),
    /// `max_bytes=<n>`: the request's size must be known and at most `n`.
    MaxBytes(u64),
    /// `tenant=<0x hex>`: the request's tenant must be this one.
    Tenant(u128),
}

/// Why a capability was refused: every variant is 403 `forbidden` except [`CapError::Missing`],
/// 401 `unauthorized`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CapError {
    #[error("a capability is required for this operation")]
    Missing,
    #[error("capability is {0} bytes, at most {max} allowed", max = limits::MAX_CAP_BYTES)]
    TooLarge(usize),
    #[error("capability is not a valid CBOR token: {0}")]
    NotCbor(String),
    #[error("capability version {0} is not supported (want 1)")]
    BadVersion(u64),
    #[error("capability has {0} caveats, at most {max} allowed", max = limits::MAX_CAVEATS)]
    TooManyCaveats(usize),
    #[error("capability key id {0} is unknown")]
    UnknownKeyId(String),
    #[error("capability tag does not match its key and caveats (altered or forged)")]
    BadTag,
    #[error("unknown caveat {0}")]
    UnknownCaveat(String),
    #[error("malformed caveat {0}")]
    MalformedCaveat(String),
    #[error("capability expired at {exp} (now {now})")]
    Expired { exp: u64, now: u64 },
    #[error("operation {op} is out of the capability's scope ({caveat})")]
    OutOfScope { op: Op, caveat: String },
    #[error("request of {bytes} bytes is over the capability's max_bytes={max}")]
    OverMaxBytes { bytes: u64, max: u64 },
    #[error("capability limits max_bytes={max} but the request's size is not known")]
    SizeUnknown { max: u64 },
    #[error("capability is for tenant {want:#x}, the request is for tenant {got:#x}")]
    WrongTenant { want: u128, got: u128 },
}

impl CapError {
    pub fn reason(&self) -> Reason {
        match self {
            CapError::Missing => Reason::Unauthorized,
            _ => Reason::Forbidden,
        }
    }
}

/// `s` quoted for an error message, cut to a bounded length.
fn quote(s: &str) -> String {
    match s.char_indices().nth(MAX_QUOTED_CAVEAT) {
        Some((cut, _)) => format!("{:?}...", &s[..cut]),
        None => format!("{s:?}"),
    }
}

/// A decimal u64 without sign or leading zeros.
fn parse_dec(s: &str) -> Option<u64> {
    let canonical =
        !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) && (s == "0" || !s.starts_with('0'));
    canonical.then(|| s.parse().ok()).flatten()
}

impl Caveat {
    /// Parses one caveat; anything not understood exactly is an error (fail closed).
    pub fn parse(s: &str) -> Result<Caveat, CapError> {
        let unknown = || CapError::UnknownCaveat(quote(s));
        let malformed = || CapError::MalformedCaveat(quote(s));
        let (name, value) = s.split_once('=').ok_or_else(unknown)?;
        match name {
            "scope" => value
                .split(',')
                .map(Op::parse)
                .collect::<Option<Vec<Op>>>()
                .map(Caveat::Scope)
                .ok_or_else(malformed),
            "exp" => parse_dec(value).map(Caveat::Exp).ok_or_else(malformed),
            "max_bytes" => parse_dec(value).map(Caveat::MaxBytes).ok_or_else(malformed),
            "tenant" => value
                .strip_prefix("0x")
                .filter(|h| {
                    (1..=32).contains(&h.len())
                        && h.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
                })
                .and_then(|h| u128::from_str_radix(h, 16).ok())
                .map(Caveat::Tenant)
                .ok_or_else(malformed),
            _ => Err(unknown()),
        }
    }

    /// Whether `req` satisfies this caveat; `text` is the caveat as written, for the message.
    fn check(&self, text: &str, req: &CapRequest) -> Result<(), CapError> {
        match *self {
            Caveat::Scope(ref ops) if !ops.contains(&req.op) => Err(CapError::OutOfScope {
                op: req.op,
                caveat: quote(text),
            }),
            Caveat::Exp(exp) if req.now >= exp => Err(CapError::Expired { exp, now: req.now }),
            Caveat::MaxBytes(max) => match req.bytes {
                None => Err(CapError::SizeUnknown { max }),
                Some(bytes) if bytes > max => Err(CapError::OverMaxBytes { bytes, max }),
                Some(_) => Ok(()),
            },
            Caveat::Tenant(want) if want != req.tenant => Err(CapError::WrongTenant {
                want,
                got: req.tenant,
            }),
            _ => Ok(()),
        }
    }
}

impl fmt::Display for Caveat {
    /// The caveat's canonical text, which [`Caveat::parse`] reads back.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Caveat::Scope(ops) => {
                f.write_str("scope=")?;
                for (i, op) in ops.iter().enumerate() {
                    if i > 0 {
                        f.write_str(",")?;
                    }
                    f.write_str(op.label())?;
                }
                Ok(())
            }
            Caveat::Exp(exp) => write!(f, "exp={exp}"),
            Caveat::MaxBytes(n) => write!(f, "max_bytes={n}"),
            Caveat::Tenant(t) => write!(f, "tenant={t:#x}"),
        }
    }
}

#[derive(Serialize)]
struct WireOut<'a> {
    v: u64,
    kid: &'a Bytes,
    caveats: &'a [String],
    tag: &'a Bytes,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct WireIn {
    v: u64,
    kid: ByteArray<8>,
    caveats: Vec<String>,
    tag: ByteArray<32>,
}

/// The tag chain over `caveats`, starting from `root_key`.
fn chain<S: AsRef<str>>(root_key: &[u8; 32], kid: &[u8; 8], caveats: &[S]) -> blake3::Hash {
    caveats
        .iter()
        .fold(blake3::keyed_hash(root_key, kid), |tag, c| {
            blake3::keyed_hash(tag.as_bytes(), c.as_ref().as_bytes())
        })
}

impl Capability {
    /// Mints a token under the root key `root_key` named `kid`, with `caveats` (which are not
    /// checked here: [`Caveat::parse`] them first to refuse a token that could never verify).
    pub fn mint(root_key: &[u8; 32], kid: [u8; 8], caveats: &[&str]) -> Capability {
        Capability {
            kid,
            caveats: caveats.iter().map(|c| (*c).to_owned()).collect(),
            tag: *chain(root_key, &kid, caveats).as_bytes(),
        }
    }

    /// A narrower token: this one plus `caveat`. Needs no key. A token taken past
    /// [`limits::MAX_CAVEATS`] is refused by [`Capability::decode`] and [`Capability::verify`].
    pub fn attenuate(&self, caveat: &str) -> Capability {
        let mut caveats = self.caveats.clone();
        caveats.push(caveat.to_owned());
        Capability {
            kid: self.kid,
            caveats,
            tag: *blake3::keyed_hash(&self.tag, caveat.as_bytes()).as_bytes(),
        }
    }

    /// The token's CBOR form (what a frame's `cap` carries).
    pub fn encode(&self) -> Vec<u8> {
        let wire = WireOut {
            v: CAP_VERSION,
            kid: Bytes::new(&self.kid),
            caveats: &self.caveats,
            tag: Bytes::new(&self.tag),
        };
        let mut out =
            Vec::with_capacity(64 + self.caveats.iter().map(|c| c.len() + 2).sum::<usize>());
        // Serialising this struct into a Vec cannot fail.
        ciborium::into_writer(&wire, &mut out).expect("a capability always encodes");
        out
    }

    /// Reads a token: at most [`limits::MAX_CAP_BYTES`], exactly one CBOR map of the wire form
    /// (no other key, no trailing bytes), version 1, at most [`limits::MAX_CAVEATS`] caveats.
    pub fn decode(bytes: &[u8]) -> Result<Capability, CapError> {
        if bytes.len() > limits::MAX_CAP_BYTES {
            return Err(CapError::TooLarge(bytes.len()));
        }
        // The strict CBOR rules of the messages (one item, definite lengths, no tags).
        let wire: WireIn = crate::msg::decode_cbor(bytes)
            .map_err(|_| CapError::NotCbor("not exactly one well-formed CBOR token".into()))?;
        if wire.v != CAP_VERSION {
            return Err(CapError::BadVersion(wire.v));
        }
        if wire.caveats.len() > limits::MAX_CAVEATS {
            return Err(CapError::TooManyCaveats(wire.caveats.len()));
        }
        Ok(Capability {
            kid: wire.kid.into_array(),
            caveats: wire.caveats,
            tag: wire.tag.into_array(),
        })
    }

    /// Checks the token for `req`: the root key named by `kid` (from `keys`), the tag recomputed
    /// and compared in constant time, then every caveat in order. The first failure is returned.
    pub fn verify(
        &self,
        keys: impl Fn(&[u8; 8]) -> Option<[u8; 32]>,
        req: &CapRequest,
    ) -> Result<(), CapError> {
        if self.caveats.len() > limits::MAX_CAVEATS {
            return Err(CapError::TooManyCaveats(self.caveats.len()));
        }
        let root_key =
            keys(&self.kid).ok_or_else(|| CapError::UnknownKeyId(hex::encode(self.kid)))?;
        // `blake3::Hash`'s equality is constant-time.
        if chain(&root_key, &self.kid, &self.caveats) != blake3::Hash::from(self.tag) {
            return Err(CapError::BadTag);
        }
        for text in &self.caveats {
            Caveat::parse(text)?.check(text, req)?;
        }
        Ok(())
    }
}

impl fmt::Debug for Capability {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Capability")
            .field("kid", &hex::encode(self.kid))
            .field("caveats", &self.caveats)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ROOT: [u8; 32] = [7; 32];
    const KID: [u8; 8] = *b"kid-0001";

    fn keys(kid: &[u8; 8]) -> Option<[u8; 32]> {
        (*kid == KID).then_some(ROOT)
    }

    fn req(op: Op) -> CapRequest {
        CapRequest {
            op,
            now: 1_000,
            tenant: 0xaa,
            bytes: Some(100),
        }
    }

    #[test]
    fn mint_verify_and_chain() {
        let cap = Capability::mint(&ROOT, KID, &[]);
        assert_eq!(cap.tag, *blake3::keyed_hash(&ROOT, &KID).as_bytes());
        assert_eq!(cap.verify(keys, &req(Op::Put)), Ok(()));

        let cap = Capability::mint(&ROOT, KID, &["scope=get,put", "exp=2000"]);
        let t0 = blake3::keyed_hash(&ROOT, &KID);
        let t1 = blake3::keyed_hash(t0.as_bytes(), b"scope=get,put");
        let t2 = blake3::keyed_hash(t1.as_bytes(), b"exp=2000");
        assert_eq!(cap.tag, *t2.as_bytes());
        assert_eq!(cap.verify(keys, &req(Op::Get)), Ok(()));
        assert_eq!(cap.verify(keys, &req(Op::Put)), Ok(()));
        let err = cap.verify(keys, &req(Op::Gossip)).unwrap_err();
        assert_eq!(
            err.to_string(),
            "operation gossip is out of the capability's scope (\"scope=get,put\")"
        );
        assert_eq!(err.reason(), Reason::Forbidden);

        // Minting then attenuating is minting with all caveats.
        assert_eq!(
            Capability::mint(&ROOT, KID, &["scope=get,put"]).attenuate("exp=2000"),
            cap
        );
        assert!(!format!("{cap:?}").contains(&hex::encode(cap.tag)));
    }

    #[test]
    fn unknown_key_and_wrong_key() {
        let cap = Capability::mint(&ROOT, KID, &["scope=get"]);
        let err = cap.verify(|_| None, &req(Op::Get)).unwrap_err();
        assert_eq!(err, CapError::UnknownKeyId(hex::encode(KID)));
        assert_eq!(
            err.to_string(),
            "capability key id 6b69642d30303031 is unknown"
        );
        assert_eq!(
            cap.verify(|_| Some([8; 32]), &req(Op::Get)),
            Err(CapError::BadTag)
        );
    }

    #[test]
    fn attenuation_narrows_and_forgery_fails() {
        let put = Capability::mint(&ROOT, KID, &["scope=get,put"]);
        assert_eq!(put.verify(keys, &req(Op::Put)), Ok(()));
        let get_only = put.attenuate("scope=get");
        assert_eq!(get_only.verify(keys, &req(Op::Get)), Ok(()));
        assert!(matches!(
            get_only.verify(keys, &req(Op::Put)),
            Err(CapError::OutOfScope { op: Op::Put, .. })
        ));

        // Widening: edit the narrowing caveat, drop it, or reorder, without the key.
        let mut widened = get_only.clone();
        widened.caveats[1] = "scope=get,put".to_owned();
        assert_eq!(widened.verify(keys, &req(Op::Put)), Err(CapError::BadTag));
        let mut dropped = get_only.clone();
        dropped.caveats.pop();
        assert_eq!(dropped.verify(keys, &req(Op::Put)), Err(CapError::BadTag));
        let mut flipped = get_only.clone();
        flipped.tag[0] ^= 1;
        assert_eq!(flipped.verify(keys, &req(Op::Get)), Err(CapError::BadTag));
        let mut other_kid = get_only;
        other_kid.kid[0] ^= 1;
        assert!(matches!(
            other_kid.verify(keys, &req(Op::Get)),
            Err(CapError::UnknownKeyId(_))
        ));
    }

    #[test]
    fn expiry_boundary() {
        let cap = Capability::mint(&ROOT, KID, &["exp=1000"]);
        let at = |now| CapRequest {
            now,
            ..req(Op::Get)
        };
        assert_eq!(cap.verify(keys, &at(999)), Ok(()));
        assert_eq!(
            cap.verify(keys, &at(1000)),
            Err(CapError::Expired {
                exp: 1000,
                now: 1000
            })
        );
        assert_eq!(
            cap.verify(keys, &at(1001)),
            Err(CapError::Expired {
                exp: 1000,
                now: 1001
            })
        );
        // Adding a later expiry does not extend an earlier one.
        assert!(matches!(
            cap.attenuate("exp=5000").verify(keys, &at(1000)),
            Err(CapError::Expired { .. })
        ));
    }

    #[test]
    fn unknown_or_malformed_caveats_fail_closed() {
        for (c, unknown) in [
            ("color=blue", true),
            ("scope", true),
            ("", true),
            ("Scope=get", true),
            ("scope=get,delete", false),
            ("scope=", false),
            ("scope=get,", false),
            ("scope=get, put", false),
            ("scope=GET", false),
            ("exp=", false),
            ("exp=+5", false),
            ("exp=05", false),
            ("exp=-1", false),
            ("exp=18446744073709551616", false),
            ("max_bytes=1e6", false),
            ("tenant=aa", false),
            ("tenant=0x", false),
            ("tenant=0xAA", false),
            ("tenant=0xzz", false),
            ("tenant=0x000000000000000000000000000000aaa", false),
        ] {
            let cap = Capability::mint(&ROOT, KID, &[c]);
            let err = cap.verify(keys, &req(Op::Get)).unwrap_err();
            let want = if unknown {
                CapError::UnknownCaveat(format!("{c:?}"))
            } else {
                CapError::MalformedCaveat(format!("{c:?}"))
            };
            assert_eq!(err, want, "{c}");
            assert_eq!(err.reason(), Reason::Forbidden);
        }
        assert_eq!(
            CapError::UnknownCaveat("\"color=blue\"".into()).to_string(),
            "unknown caveat \"color=blue\""
        );
        // Canonical forms parse and print back.
        for c in [
            "scope=get,put,gossip",
            "exp=0",
            "max_bytes=1048576",
            "tenant=0xaa",
        ] {
            assert_eq!(Caveat::parse(c).unwrap().to_string(), c);
        }
        assert_eq!(Caveat::parse("tenant=0x00aa"), Ok(Caveat::Tenant(0xaa)));
    }

    #[test]
    fn max_bytes_and_tenant() {
        let cap = Capability::mint(&ROOT, KID, &["max_bytes=100", "tenant=0xaa"]);
        let with = |bytes, tenant| CapRequest {
            bytes,
            tenant,
            ..req(Op::Put)
        };
        assert_eq!(cap.verify(keys, &with(Some(100), 0xaa)), Ok(()));
        assert_eq!(cap.verify(keys, &with(Some(0), 0xaa)), Ok(()));
        assert_eq!(
            cap.verify(keys, &with(Some(101), 0xaa)),
            Err(CapError::OverMaxBytes {
                bytes: 101,
                max: 100
            })
        );
        assert_eq!(
            cap.verify(keys, &with(None, 0xaa)),
            Err(CapError::SizeUnknown { max: 100 })
        );
        let err = cap.verify(keys, &with(Some(1), 0xab)).unwrap_err();
        assert_eq!(
            err,
            CapError::WrongTenant {
                want: 0xaa,
                got: 0xab
            }
        );
        assert_eq!(
            err.to_string(),
            "capability is for tenant 0xaa, the request is for tenant 0xab"
        );
    }

    #[test]
    fn encode_decode() {
        let cap = Capability::mint(&ROOT, KID, &["scope=get", "exp=2000"]);
        let bytes = cap.encode();
        assert_eq!(Capability::decode(&bytes), Ok(cap.clone()));
        // The exact wire shape: map(4) {"v": 1, "kid": bstr(8), "caveats": [...], "tag": bstr(32)}.
        let mut want = hex::decode("a4617601636b696448").unwrap();
        want.extend_from_slice(&KID);
        want.extend_from_slice(
            &hex::decode("6763617665617473826973636f70653d676574686578703d32303030").unwrap(),
        );
        want.extend_from_slice(&hex::decode("637461675820").unwrap());
        want.extend_from_slice(&cap.tag);
        assert_eq!(hex::encode(&bytes), hex::encode(&want));

        let mut trailing = bytes.clone();
        trailing.push(0);
        assert!(matches!(
            Capability::decode(&trailing),
            Err(CapError::NotCbor(_))
        ));
        for garbage in [
            &b""[..],
            b"\xff",
            b"hello",
            &bytes[..bytes.len() - 1],
            b"\xa0",
        ] {
            let err = Capability::decode(garbage).unwrap_err();
            assert!(matches!(err, CapError::NotCbor(_)), "{garbage:?}: {err}");
            assert_eq!(err.reason(), Reason::Forbidden);
        }
        assert_eq!(
            Capability::decode(&[0u8; 4097]),
            Err(CapError::TooLarge(4097))
        );

        // Version 2, a short kid, an extra key: all refused.
        let mut v2 = bytes.clone();
        v2[3] = 0x02;
        assert_eq!(Capability::decode(&v2), Err(CapError::BadVersion(2)));
        #[derive(Serialize)]
        struct Short<'a> {
            v: u64,
            kid: &'a Bytes,
            caveats: &'a [String],
            tag: &'a Bytes,
        }
        let mut short = Vec::new();
        let s = Short {
            v: 1,
            kid: Bytes::new(&KID[..7]),
            caveats: &[],
            tag: Bytes::new(&cap.tag),
        };
        ciborium::into_writer(&s, &mut short).unwrap();
        assert!(matches!(
            Capability::decode(&short),
            Err(CapError::NotCbor(_))
        ));

        let many = (0..33)
            .map(|i| format!("exp={}", 2000 + i))
            .collect::<Vec<_>>();
        let refs: Vec<&str> = many.iter().map(String::as_str).collect();
        let big = Capability::mint(&ROOT, KID, &refs);
        assert_eq!(
            Capability::decode(&big.encode()),
            Err(CapError::TooManyCaveats(33))
        );
        assert_eq!(
            big.verify(keys, &req(Op::Get)),
            Err(CapError::TooManyCaveats(33))
        );
        assert_eq!(CapError::Missing.reason(), Reason::Unauthorized);
    }
}
