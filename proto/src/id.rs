//! Identifiers and distance (PROTOCOL.md section 11): `NodeId`, object addresses in their
//! strict `b3:<64 lowercase hex>` form, and the XOR metric.

use std::fmt;

/// `NodeId = BLAKE3-256(ed25519_pk || BLAKE3-256(ml_dsa_87_pk))`: it commits to both keys.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct NodeId(pub [u8; 32]);

/// The address of an object: BLAKE3-256 of its plaintext bytes.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ObjectAddr(pub [u8; 32]);

/// XOR of two ids, ordered as a big-endian 256-bit integer (array order is exactly that).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Distance(pub [u8; 32]);

/// Why a `b3:` address did not parse.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum AddrError {
    #[error("address must start with \"b3:\"")]
    Prefix,
    #[error("address must have exactly 64 hex digits after \"b3:\", found {0}")]
    Length(usize),
    #[error("address must use lowercase hex digits only (0-9, a-f)")]
    NotLowerHex,
}

impl NodeId {
    /// Derives the id from the raw Ed25519 public key and the BLAKE3-256 of the ML-DSA-87 one.
    pub fn from_key_hashes(ed25519_pk: &[u8; 32], ml_dsa_pk_hash: &[u8; 32]) -> NodeId {
        let mut h = blake3::Hasher::new();
        h.update(ed25519_pk);
        h.update(ml_dsa_pk_hash);
        NodeId(*h.finalize().as_bytes())
    }

    /// Derives the id from both raw public keys (ML-DSA-87: its 2,592-byte encoding).
    pub fn from_keys(ed25519_pk: &[u8; 32], ml_dsa_pk: &[u8]) -> NodeId {
        NodeId::from_key_hashes(ed25519_pk, blake3::hash(ml_dsa_pk).as_bytes())
    }

    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    pub fn distance(&self, other: &[u8; 32]) -> Distance {
        distance(&self.0, other)
    }

    /// Parses 64 lowercase hex digits (the form NodeIds take in `ADDR#NodeId` and logs).
    pub fn parse_hex(s: &str) -> Result<NodeId, AddrError> {
        parse_lower_hex(s).map(NodeId)
    }
}

impl ObjectAddr {
    /// The address of `bytes`.
    pub fn of(bytes: &[u8]) -> ObjectAddr {
        ObjectAddr(*blake3::hash(bytes).as_bytes())
    }

    /// Strict parse: `b3:` then exactly 64 lowercase hex digits.
    pub fn parse(s: &str) -> Result<ObjectAddr, AddrError> {
        let hex = s.strip_prefix("b3:").ok_or(AddrError::Prefix)?;
        parse_lower_hex(hex).map(ObjectAddr)
    }

    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }
}

fn parse_lower_hex(hex: &str) -> Result<[u8; 32], AddrError> {
    if hex.len() != 64 {
        return Err(AddrError::Length(hex.len()));
    }
    let digit = |c: u8| match c {
        b'0'..=b'9' => Ok(c - b'0'),
        b'a'..=b'f' => Ok(c - b'a' + 10),
        _ => Err(AddrError::NotLowerHex),
    };
    let mut out = [0u8; 32];
    for (i, pair) in hex.as_bytes().chunks_exact(2).enumerate() {
        out[i] = digit(pair[0])? << 4 | digit(pair[1])?;
    }
    Ok(out)
}

fn write_hex(f: &mut fmt::Formatter<'_>, bytes: &[u8; 32]) -> fmt::Result {
    for b in bytes {
        write!(f, "{b:02x}")?;
    }
    Ok(())
}

impl fmt::Display for ObjectAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("b3:")?;
        write_hex(f, &self.0)
    }
}

impl fmt::Debug for ObjectAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl std::str::FromStr for ObjectAddr {
    type Err = AddrError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        ObjectAddr::parse(s)
    }
}

impl fmt::Display for NodeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_hex(f, &self.0)
    }
}

impl fmt::Debug for NodeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "NodeId({self})")
    }
}

impl std::str::FromStr for NodeId {
    type Err = AddrError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        NodeId::parse_hex(s)
    }
}

/// XOR distance between two 32-byte ids.
pub fn distance(a: &[u8; 32], b: &[u8; 32]) -> Distance {
    let mut d = [0u8; 32];
    for i in 0..32 {
        d[i] = a[i] ^ b[i];
    }
    Distance(d)
}

impl Distance {
    /// Leading zero bits of the distance (256 for equal ids).
    pub fn leading_zeros(&self) -> u32 {
        let mut n = 0;
        for b in self.0 {
            if b != 0 {
                return n + b.leading_zeros();
            }
            n += 8;
        }
        n
    }
}

/// Kademlia bucket of `other` in `local`'s table: 255 for the farthest half of the space down to
/// 0 for ids differing only in the last bit; `None` for `local` itself.
pub fn bucket_index(local: &[u8; 32], other: &[u8; 32]) -> Option<u8> {
    let lz = distance(local, other).leading_zeros();
    (lz < 256).then(|| (255 - lz) as u8)
}

/// Moves the `k` ids closest to `target` to the front of `ids`, closest first, in
/// O(n + k log k): a partial selection, not a full sort. Returns how many there are (`min(k, n)`).
pub fn select_closest<T>(
    ids: &mut [T],
    target: &[u8; 32],
    k: usize,
    id_of: impl Fn(&T) -> [u8; 32],
) -> usize {
    let key = |t: &T| distance(&id_of(t), target);
    let k = k.min(ids.len());
    if k == 0 {
        return 0;
    }
    if k < ids.len() {
        ids.select_nth_unstable_by(k - 1, |a, b| key(a).cmp(&key(b)));
    }
    ids[..k].sort_unstable_by_key(key);
    k
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blake3_checks_of_wire_md() {
        for (input, hex) in [
            (
                &b""[..],
                "af1349b9f5f9a1a6a0404dea36dcc9499bcb25c9adc112b7cc9a93cae41f3262",
            ),
            (
                b"abc",
                "6437b3ac38465133ffb63b75273a8db548c558465d79db03fd359c6cd5bd9d85",
            ),
            (
                b"hello world",
                "d74981efa70a0c880b8d8c1985d075dbcbf679b99a5f9914e5aaf96b831a9e24",
            ),
        ] {
            let a = ObjectAddr::of(input);
            assert_eq!(a.to_string(), format!("b3:{hex}"));
            assert_eq!(ObjectAddr::parse(&a.to_string()), Ok(a));
        }
    }

    #[test]
    fn strict_parse() {
        let good = "b3:".to_owned() + &"ab".repeat(32);
        assert!(ObjectAddr::parse(&good).is_ok());
        assert_eq!(
            ObjectAddr::parse(&good.to_uppercase()),
            Err(AddrError::Prefix)
        );
        assert_eq!(
            ObjectAddr::parse(&("b3:".to_owned() + &"AB".repeat(32))),
            Err(AddrError::NotLowerHex)
        );
        assert_eq!(ObjectAddr::parse("b3:abc"), Err(AddrError::Length(3)));
        assert_eq!(
            ObjectAddr::parse(&("b3:".to_owned() + &"zz".repeat(32))),
            Err(AddrError::NotLowerHex)
        );
        assert_eq!(
            ObjectAddr::parse(&(good.clone() + "0")),
            Err(AddrError::Length(65))
        );
        assert_eq!(
            ObjectAddr::parse(&("b3:+".to_owned() + &"a".repeat(63))),
            Err(AddrError::NotLowerHex)
        );
    }

    #[test]
    fn buckets_and_distance() {
        let a = [0u8; 32];
        let mut b = [0u8; 32];
        assert_eq!(bucket_index(&a, &b), None);
        b[31] = 1;
        assert_eq!(bucket_index(&a, &b), Some(0));
        b[0] = 0x80;
        assert_eq!(bucket_index(&a, &b), Some(255));
        assert!(distance(&a, &b) > distance(&a, &[0u8; 32]));
    }

    #[test]
    fn select_closest_matches_full_sort() {
        let mut x = 0x9e37_79b9_7f4a_7c15u64;
        let mut ids: Vec<[u8; 32]> = (0..500)
            .map(|_| {
                let mut id = [0u8; 32];
                for chunk in id.chunks_mut(8) {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    chunk.copy_from_slice(&x.to_be_bytes());
                }
                id
            })
            .collect();
        let target = ids[17];
        let mut sorted = ids.clone();
        sorted.sort_by_key(|id| distance(id, &target));
        let n = select_closest(&mut ids, &target, 20, |id| *id);
        assert_eq!(n, 20);
        assert_eq!(&ids[..20], &sorted[..20]);
        assert_eq!(ids[0], target);
    }
}
