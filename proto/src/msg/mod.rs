//! CBOR messages of apps 1-3 (PROTOCOL.md sections 5 to 8): [`objects`], [`gossip`], [`dht`].
//!
//! Conventions shared by every message of these apps:
//! - One message is exactly one CBOR data item: the whole payload of a message (one frame, or the
//!   frames of a START..END stream joined). Bytes after the item are `malformed`.
//! - Binary fields are byte strings (major type 2), never arrays of integers; a decoder refuses an
//!   array where a byte string belongs. 32-byte fields (`bstr32`) must be exactly 32 bytes.
//! - Maps have text keys; requests are externally tagged: a map of one entry whose key names the
//!   operation, `{"find_node": {"target": h'..'}}`. Unknown keys, missing required keys,
//!   duplicated keys and values of the wrong type are `malformed`.
//! - Decoders accept definite lengths only (no indefinite-length items), no tags, and of the simple
//!   values only `false`, `true` and `null` (`null` reads as an absent optional field); integers in
//!   any well-formed width; nesting at most [`MAX_CBOR_DEPTH`]. Encoders write definite lengths,
//!   the shortest integer encodings, fields in declaration order, and leave absent optional fields
//!   out (never `null`).
//! - Every list and text has a bound (`crate::limits`); past it the message is `malformed`, and
//!   the bound is checked before anything is allocated for the list.
//! - Every decoder returns [`Reason::Malformed`] for anything that is not a valid message. Encoders
//!   append to the caller's `Vec<u8>` (reuse it: encoding allocates nothing once it has room) and
//!   do not check bounds: build messages within the limits.
//!
//! Errors on these apps travel as [`crate::error_body::ErrorBody`] (JSON on app 1, CBOR on 2-3).

pub mod dht;
pub mod gossip;
pub mod objects;

use crate::id::{NodeId, ObjectAddr};
use crate::reason::Reason;
use serde::de::{self, DeserializeOwned, Deserializer, SeqAccess, Visitor};
use serde::ser::{SerializeSeq, Serializer};
use serde::{Deserialize, Serialize};
use std::fmt;
use std::marker::PhantomData;

/// The objects plane: GET / HEAD / PUT requests in CBOR, bodies as raw bytes.
pub const APP_OBJECTS: u16 = 1;
/// The gossip plane: EVENT frames carrying CBOR `{topic, msg_id, ts, hops, data}`.
pub const APP_GOSSIP: u16 = 2;
/// The DHT plane: FIND_NODE, FIND_VALUE, PROVIDE, PING in CBOR.
pub const APP_DHT: u16 = 3;

/// Deepest nesting of CBOR arrays and maps a decoder follows (the deepest message, a FIND_VALUE
/// response, nests 5: response map, providers array, record map, sigs array, sig map).
pub const MAX_CBOR_DEPTH: usize = 8;

/// Semantic checks a message runs after its shape decoded (relations between fields, digests).
pub(crate) trait Check {
    fn check(&self) -> Result<(), Reason> {
        Ok(())
    }
}

/// Gives a message type inherent `decode` and `encode`.
macro_rules! cbor_codec {
    ($($t:ty),* $(,)?) => {$(
        impl $t {
            /// Decodes one whole message; anything else is [`Reason::Malformed`](crate::reason::Reason).
            pub fn decode(bytes: &[u8]) -> Result<Self, $crate::reason::Reason> {
                let v: Self = $crate::msg::decode_cbor(bytes)?;
                $crate::msg::Check::check(&v)?;
                Ok(v)
            }

            /// Appends the message's CBOR encoding to `out`.
            pub fn encode(&self, out: &mut Vec<u8>) {
                $crate::msg::encode_cbor(self, out)
            }
        }
    )*};
}
pub(crate) use cbor_codec;

/// Scratch bytes ciborium decodes text and byte strings through.
const CBOR_SCRATCH: usize = 256;

/// Decodes exactly one CBOR item of type `T` from `bytes`: the structural scan first (one
/// well-formed item, nothing after it, no tags, no indefinite lengths, text map keys, bounded
/// depth), then serde. Allocates nothing beyond what `T` itself holds.
pub(crate) fn decode_cbor<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, Reason> {
    scan(bytes)?;
    let mut rd = bytes;
    // `scan` has bounded the depth already. A small scratch: ciborium's default is a zeroed
    // 4 KiB array per call, which showed in profiles of small requests; longer strings are
    // taken in segments of it.
    let mut scratch = [0u8; CBOR_SCRATCH];
    let v = ciborium::de::from_reader_with_buffer(&mut rd, &mut scratch)
        .map_err(|_| Reason::Malformed)?;
    if !rd.is_empty() {
        return Err(Reason::Malformed);
    }
    Ok(v)
}

/// Appends the CBOR encoding of `value` to `out`.
pub(crate) fn encode_cbor<T: Serialize + ?Sized>(value: &T, out: &mut Vec<u8>) {
    ciborium::into_writer(value, out).expect("CBOR into a Vec");
}

// ---------------------------------------------------------------------------------------------
// Structural scan

/// Checks that `bytes` is exactly one CBOR item of the restricted form described in the module
/// docs. Linear in the input, no allocation, recursion bounded by [`MAX_CBOR_DEPTH`].
fn scan(bytes: &[u8]) -> Result<(), Reason> {
    let mut pos = 0;
    scan_item(bytes, &mut pos, MAX_CBOR_DEPTH)?;
    if pos == bytes.len() {
        Ok(())
    } else {
        Err(Reason::Malformed)
    }
}

/// Reads one item head: (major type, additional info, argument).
fn scan_head(b: &[u8], pos: &mut usize) -> Result<(u8, u8, u64), Reason> {
    let first = *b.get(*pos).ok_or(Reason::Malformed)?;
    *pos += 1;
    let (major, ai) = (first >> 5, first & 0x1f);
    let n = match ai {
        0..=23 => return Ok((major, ai, u64::from(ai))),
        24 => 1,
        25 => 2,
        26 => 4,
        27 => 8,
        // 28-30 are reserved, 31 is an indefinite length or a break: none is allowed.
        _ => return Err(Reason::Malformed),
    };
    let arg = b.get(*pos..*pos + n).ok_or(Reason::Malformed)?;
    *pos += n;
    let mut v = 0u64;
    for &byte in arg {
        v = v << 8 | u64::from(byte);
    }
    Ok((major, ai, v))
}

fn scan_item(b: &[u8], pos: &mut usize, depth: usize) -> Result<(), Reason> {
    let (major, ai, arg) = scan_head(b, pos)?;
    match major {
        0 | 1 => Ok(()),
        2 | 3 => skip(b, pos, arg),
        4 | 5 => {
            if depth == 0 {
                return Err(Reason::Malformed);
            }
            // Each entry takes at least one byte, so this loop ends within the input's length.
            for _ in 0..arg {
                if major == 5 {
                    let (key_major, _, key_len) = scan_head(b, pos)?;
                    if key_major != 3 {
                        return Err(Reason::Malformed);
                    }
                    skip(b, pos, key_len)?;
                }
                scan_item(b, pos, depth - 1)?;
            }
            Ok(())
        }
        // Tags carry no meaning in these messages.
        6 => Err(Reason::Malformed),
        // false, true, null; no floats, no `undefined`, no other simple values.
        _ => match ai {
            20..=22 => Ok(()),
            _ => Err(Reason::Malformed),
        },
    }
}

fn skip(b: &[u8], pos: &mut usize, len: u64) -> Result<(), Reason> {
    let left = (b.len() - *pos) as u64;
    if len > left {
        return Err(Reason::Malformed);
    }
    *pos += len as usize;
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Field codecs shared by the message modules

/// `[u8; 32]` as a 32-byte CBOR byte string (`bstr32`); an array of integers is refused.
pub(crate) mod bytes32 {
    use serde::de::{self, Deserializer, Visitor};
    use serde::Serializer;
    use std::fmt;

    pub fn serialize<S: Serializer>(v: &[u8; 32], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_bytes(v)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<[u8; 32], D::Error> {
        d.deserialize_bytes(Bytes32Visitor)
    }

    struct Bytes32Visitor;

    impl Visitor<'_> for Bytes32Visitor {
        type Value = [u8; 32];

        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a byte string of 32 bytes")
        }

        fn visit_bytes<E: de::Error>(self, v: &[u8]) -> Result<[u8; 32], E> {
            v.try_into().map_err(|_| E::invalid_length(v.len(), &self))
        }
    }
}

/// [`NodeId`] as `bstr32`.
pub(crate) mod node_id {
    use super::*;

    pub fn serialize<S: Serializer>(v: &NodeId, s: S) -> Result<S::Ok, S::Error> {
        super::bytes32::serialize(&v.0, s)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<NodeId, D::Error> {
        super::bytes32::deserialize(d).map(NodeId)
    }
}

/// [`ObjectAddr`] as `bstr32`.
pub(crate) mod object_addr {
    use super::*;

    pub fn serialize<S: Serializer>(v: &ObjectAddr, s: S) -> Result<S::Ok, S::Error> {
        super::bytes32::serialize(&v.0, s)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<ObjectAddr, D::Error> {
        super::bytes32::deserialize(d).map(ObjectAddr)
    }
}

/// `Vec<u8>` as a CBOR byte string (`bstr`); an array of integers is refused.
pub(crate) mod byte_buf {
    use serde::de::{self, Deserializer, Visitor};
    use serde::Serializer;
    use std::fmt;

    pub fn serialize<S: Serializer>(v: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_bytes(v)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        d.deserialize_byte_buf(ByteBufVisitor)
    }

    struct ByteBufVisitor;

    impl Visitor<'_> for ByteBufVisitor {
        type Value = Vec<u8>;

        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a byte string")
        }

        fn visit_bytes<E: de::Error>(self, v: &[u8]) -> Result<Vec<u8>, E> {
            Ok(v.to_vec())
        }

        fn visit_byte_buf<E: de::Error>(self, v: Vec<u8>) -> Result<Vec<u8>, E> {
            Ok(v)
        }
    }
}

/// `Option<Reason>` as its label text (`"bad_sig"`); an unknown label is refused.
pub(crate) mod opt_reason {
    use super::*;

    pub fn serialize<S: Serializer>(v: &Option<Reason>, s: S) -> Result<S::Ok, S::Error> {
        match v {
            Some(r) => s.serialize_some(r.label()),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Reason>, D::Error> {
        Option::<Label>::deserialize(d).map(|o| o.map(|l| l.0))
    }

    struct Label(Reason);

    impl<'de> Deserialize<'de> for Label {
        fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Label, D::Error> {
            d.deserialize_str(LabelVisitor)
        }
    }

    struct LabelVisitor;

    impl Visitor<'_> for LabelVisitor {
        type Value = Label;

        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a reason label")
        }

        fn visit_str<E: de::Error>(self, v: &str) -> Result<Label, E> {
            Reason::from_label(v)
                .map(Label)
                .ok_or_else(|| E::invalid_value(de::Unexpected::Str(v), &self))
        }
    }
}

/// A list of at most `MAX` items; a longer one is refused before anything is allocated for it.
#[derive(Debug)]
pub(crate) struct BoundedVec<T, const MAX: usize>(pub Vec<T>);

impl<'de, T: Deserialize<'de>, const MAX: usize> Deserialize<'de> for BoundedVec<T, MAX> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_seq(BoundedVecVisitor::<T, MAX>(PhantomData))
    }
}

struct BoundedVecVisitor<T, const MAX: usize>(PhantomData<T>);

impl<'de, T: Deserialize<'de>, const MAX: usize> Visitor<'de> for BoundedVecVisitor<T, MAX> {
    type Value = BoundedVec<T, MAX>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "an array of at most {MAX} items")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let hint = seq.size_hint().unwrap_or(0);
        if hint > MAX {
            return Err(de::Error::invalid_length(hint, &self));
        }
        let mut v = Vec::with_capacity(hint);
        while let Some(item) = seq.next_element()? {
            if v.len() == MAX {
                return Err(de::Error::invalid_length(MAX + 1, &self));
            }
            v.push(item);
        }
        Ok(BoundedVec(v))
    }
}

/// A text of at most `MAX` bytes, checked before it is copied out of the decoder.
#[derive(Debug)]
pub(crate) struct BoundedString<const MAX: usize>(pub String);

impl<'de, const MAX: usize> Deserialize<'de> for BoundedString<MAX> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_str(BoundedStringVisitor::<MAX>)
    }
}

struct BoundedStringVisitor<const MAX: usize>;

impl<const MAX: usize> Visitor<'_> for BoundedStringVisitor<MAX> {
    type Value = BoundedString<MAX>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "a text of at most {MAX} bytes")
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
        if v.len() > MAX {
            return Err(E::invalid_length(v.len(), &self));
        }
        Ok(BoundedString(v.to_owned()))
    }
}

/// Serializes the items of an exact-size iterator as one definite-length CBOR array, without
/// collecting them: what lets a node encode the entries of its routing table or record store by
/// reference. Cloning the iterator must be cheap (a slice iterator, a `map` over indices).
#[derive(Debug, Clone)]
pub struct SeqOf<I>(pub I);

impl<I> Serialize for SeqOf<I>
where
    I: ExactSizeIterator + Clone,
    I::Item: Serialize,
{
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let items = self.0.clone();
        let mut seq = s.serialize_seq(Some(items.len()))?;
        for item in items {
            seq.serialize_element(&item)?;
        }
        seq.end()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, PartialEq, Deserialize)]
    #[serde(deny_unknown_fields)]
    struct T {
        a: u64,
        #[serde(default)]
        b: Option<bool>,
    }

    fn hex(s: &str) -> Vec<u8> {
        hex::decode(s.replace(' ', "")).unwrap()
    }

    #[test]
    fn scan_accepts_one_plain_item() {
        assert_eq!(
            decode_cbor::<T>(&hex("a1 6161 01")),
            Ok(T { a: 1, b: None })
        );
        assert_eq!(
            decode_cbor::<T>(&hex("a2 6161 1b0000000000000001 6162 f6")),
            Ok(T { a: 1, b: None })
        );
        assert_eq!(
            decode_cbor::<T>(&hex("a2 6161 01 6162 f5")),
            Ok(T {
                a: 1,
                b: Some(true)
            })
        );
    }

    #[test]
    fn scan_refuses_everything_else() {
        for bad in [
            "",                               // empty
            "a1 6161 01 00",                  // trailing byte
            "a1 6161",                        // truncated
            "bf 6161 01 ff",                  // indefinite-length map
            "a1 6161 c1 01",                  // tag
            "a1 6161 f7",                     // undefined
            "a1 6161 f93c00",                 // half float
            "a1 4161 01",                     // byte-string key
            "a1 01 01",                       // integer key
            "a1 6161 1c",                     // reserved additional info
            "a1 6161 5a ffffffff",            // byte string longer than the input
            "a1 6161 9b ffffffffffffffff 00", // array longer than the input
            "a1 6161 01 a0",                  // two items
        ] {
            assert_eq!(decode_cbor::<T>(&hex(bad)), Err(Reason::Malformed), "{bad}");
        }
        // Nesting past the bound.
        let mut deep = vec![0x81u8; MAX_CBOR_DEPTH + 1];
        deep.push(0);
        assert_eq!(scan(&deep), Err(Reason::Malformed));
        deep.remove(0);
        assert_eq!(scan(&deep), Ok(()));
    }

    #[test]
    fn bytes32_refuses_arrays_and_wrong_lengths() {
        #[derive(Debug, Deserialize)]
        struct B {
            #[serde(with = "bytes32")]
            #[allow(dead_code)]
            b: [u8; 32],
        }
        let mut ok = hex("a1 6162 5820");
        ok.extend([7u8; 32]);
        assert!(decode_cbor::<B>(&ok).is_ok());
        let mut short = hex("a1 6162 581f");
        short.extend([7u8; 31]);
        assert!(decode_cbor::<B>(&short).is_err());
        let mut ints = hex("a1 6162 9820");
        ints.extend([7u8; 32]);
        assert!(decode_cbor::<B>(&ints).is_err());
    }
}

/// `serde_bytes::ByteArray<32>` as a strict `bstr32` (for types that keep serde_bytes' wrapper,
/// such as `ProviderRecord`): an array of integers is refused.
pub(crate) mod byte_array32 {
    use serde::{Deserializer, Serializer};
    use serde_bytes::ByteArray;

    pub fn serialize<S: Serializer>(v: &ByteArray<32>, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_bytes(v.as_slice())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<ByteArray<32>, D::Error> {
        super::bytes32::deserialize(d).map(ByteArray::new)
    }
}

/// `Option<ByteArray<32>>` as an optional strict `bstr32`.
pub(crate) mod opt_byte_array32 {
    use serde::{Deserialize, Deserializer, Serializer};
    use serde_bytes::ByteArray;

    #[derive(Deserialize)]
    struct Strict(#[serde(with = "super::byte_array32")] ByteArray<32>);

    pub fn serialize<S: Serializer>(v: &Option<ByteArray<32>>, s: S) -> Result<S::Ok, S::Error> {
        match v {
            Some(b) => s.serialize_some(serde_bytes::Bytes::new(b.as_slice())),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<ByteArray<32>>, D::Error> {
        Ok(Option::<Strict>::deserialize(d)?.map(|s| s.0))
    }
}

/// `serde_bytes::ByteBuf` as a strict `bstr`.
pub(crate) mod strict_byte_buf {
    use serde::{Deserializer, Serializer};
    use serde_bytes::ByteBuf;

    pub fn serialize<S: Serializer>(v: &ByteBuf, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_bytes(v.as_slice())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<ByteBuf, D::Error> {
        super::byte_buf::deserialize(d).map(ByteBuf::from)
    }
}

/// `Option<ByteBuf>` as an optional strict `bstr`.
pub(crate) mod opt_strict_byte_buf {
    use serde::{Deserialize, Deserializer, Serializer};
    use serde_bytes::ByteBuf;

    #[derive(Deserialize)]
    struct Strict(#[serde(with = "super::strict_byte_buf")] ByteBuf);

    pub fn serialize<S: Serializer>(v: &Option<ByteBuf>, s: S) -> Result<S::Ok, S::Error> {
        match v {
            Some(b) => s.serialize_some(serde_bytes::Bytes::new(b.as_slice())),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<ByteBuf>, D::Error> {
        Ok(Option::<Strict>::deserialize(d)?.map(|s| s.0))
    }
}

/// Test helpers shared by the message modules.
#[cfg(test)]
pub(crate) mod test_util {
    use crate::reason::Reason;
    use std::fmt::Debug;

    /// Encodes `v`, checks it decodes back equal, and returns the bytes.
    pub fn round_trip<T: PartialEq + Debug>(
        v: &T,
        enc: impl Fn(&T, &mut Vec<u8>),
        dec: impl Fn(&[u8]) -> Result<T, Reason>,
    ) -> Vec<u8> {
        let mut out = Vec::new();
        enc(v, &mut out);
        assert_eq!(&dec(&out).unwrap(), v);
        out
    }

    /// Bytes from hex written with spaces for reading.
    pub fn hex_bytes(s: &str) -> Vec<u8> {
        hex::decode(s.replace(' ', "")).unwrap()
    }
}
