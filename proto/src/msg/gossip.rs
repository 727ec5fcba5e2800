//! Gossip plane, app 2 (PROTOCOL.md section 7): published messages travel as EVENT frames whose
//! payload is a [`GossipEvent`]; subscriptions and lazy repair are REQs ([`GossipRequest`])
//! answered by RESP 200 [`GossipOk`].
//!
//! - EVENT `{"topic": text, "msg_id": bstr32, "ts": u64, "hops": u8, "data": bstr}`, with
//!   `msg_id` = [`msg_id`]`(topic, ts, data)`: a receiver recomputes it and refuses a mismatch as
//!   `malformed` (a forged id could otherwise shadow a real message in duplicate caches).
//! - REQ `{"subscribe": {"topic": text}}`, `{"unsubscribe": {"topic": text}}`: the peer sends this
//!   session the topic's EVENTs from now on / stops.
//! - REQ `{"ihave": {"topic": text, "ids": [bstr32]}}`: the sender holds these messages of the
//!   topic; the receiver asks for those it lacks with REQ `{"iwant": {"ids": [bstr32]}}`, and the
//!   holder then sends each wanted message it still caches as an ordinary EVENT.
//! - Every REQ is answered RESP 200 `{"ok": true}`; errors are the CBOR
//!   [`ErrorBody`](crate::error_body::ErrorBody).
//!
//! Topics are 1..=[`MAX_TOPIC_BYTES`] bytes of UTF-8; `ids` lists hold at most
//! [`MAX_GOSSIP_IDS`] entries.

use super::{cbor_codec, BoundedString, BoundedVec, Check};
use crate::limits::{MAX_GOSSIP_IDS, MAX_TOPIC_BYTES};
use crate::reason::Reason;
use serde::de::{Deserializer, Error as _};
use serde::ser::{SerializeStruct, Serializer};
use serde::{Deserialize, Serialize};
use std::fmt;

/// A gossip message id, `bstr32`: BLAKE3-256 of the message's canonical input ([`msg_id`]).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct MsgId(pub [u8; 32]);

impl Serialize for MsgId {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        super::bytes32::serialize(&self.0, s)
    }
}

impl<'de> Deserialize<'de> for MsgId {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<MsgId, D::Error> {
        super::bytes32::deserialize(d).map(MsgId)
    }
}

impl fmt::Display for MsgId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for b in self.0 {
            write!(f, "{b:02x}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for MsgId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "MsgId({self})")
    }
}

/// The id of a message: BLAKE3-256 over
/// `u16_be(len(topic)) || topic || u64_be(ts) || data`
/// (the length prefix makes the input unambiguous for every topic).
pub fn msg_id(topic: &str, ts: u64, data: &[u8]) -> MsgId {
    let mut h = blake3::Hasher::new();
    h.update(&(topic.len() as u16).to_be_bytes());
    h.update(topic.as_bytes());
    h.update(&ts.to_be_bytes());
    h.update(data);
    MsgId(*h.finalize().as_bytes())
}

/// A published message, the payload of an EVENT:
/// `{"topic": text, "msg_id": bstr32, "ts": u64, "hops": u8, "data": bstr}`.
/// `ts` is the publisher's clock in unix milliseconds; `hops` counts relays (0 at the
/// publisher; a relay sends `hops + 1`). Decoding checks `msg_id` against the other fields.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GossipEvent {
    #[serde(deserialize_with = "de_topic")]
    pub topic: String,
    pub msg_id: MsgId,
    pub ts: u64,
    pub hops: u8,
    #[serde(with = "super::byte_buf")]
    pub data: Vec<u8>,
}

impl GossipEvent {
    /// A new message as its publisher sends it (`hops` 0, `msg_id` computed).
    pub fn new(topic: impl Into<String>, ts: u64, data: Vec<u8>) -> GossipEvent {
        let topic = topic.into();
        GossipEvent {
            msg_id: msg_id(&topic, ts, &data),
            topic,
            ts,
            hops: 0,
            data,
        }
    }

    /// The same message borrowed, with another hop count (what a relay encodes).
    pub fn relayed(&self, hops: u8) -> GossipEventRef<'_> {
        GossipEventRef {
            topic: &self.topic,
            msg_id: self.msg_id,
            ts: self.ts,
            hops,
            data: &self.data,
        }
    }
}

/// [`GossipEvent`] over borrowed fields, same CBOR shape; for publishing or relaying without
/// copying the data.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GossipEventRef<'a> {
    pub topic: &'a str,
    pub msg_id: MsgId,
    pub ts: u64,
    pub hops: u8,
    pub data: &'a [u8],
}

impl GossipEventRef<'_> {
    /// Appends the CBOR encoding (identical to the owned event's) to `out`.
    pub fn encode(&self, out: &mut Vec<u8>) {
        super::encode_cbor(self, out)
    }
}

impl Serialize for GossipEventRef<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut st = s.serialize_struct("GossipEvent", 5)?;
        st.serialize_field("topic", self.topic)?;
        st.serialize_field("msg_id", &self.msg_id)?;
        st.serialize_field("ts", &self.ts)?;
        st.serialize_field("hops", &self.hops)?;
        st.serialize_field("data", serde_bytes::Bytes::new(self.data))?;
        st.end()
    }
}

/// A gossip REQ, told apart by its one key:
/// `{"subscribe": Subscribe} | {"unsubscribe": Unsubscribe} | {"ihave": IHave} | {"iwant": IWant}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum GossipRequest {
    #[serde(rename = "subscribe")]
    Subscribe(Subscribe),
    #[serde(rename = "unsubscribe")]
    Unsubscribe(Unsubscribe),
    #[serde(rename = "ihave")]
    IHave(IHave),
    #[serde(rename = "iwant")]
    IWant(IWant),
}

/// `{"topic": text}`: send this session the topic's EVENTs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Subscribe {
    #[serde(deserialize_with = "de_topic")]
    pub topic: String,
}

/// `{"topic": text}`: stop sending this session the topic's EVENTs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Unsubscribe {
    #[serde(deserialize_with = "de_topic")]
    pub topic: String,
}

/// `{"topic": text, "ids": [bstr32]}` (at most [`MAX_GOSSIP_IDS`] ids): messages of `topic` the
/// sender holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IHave {
    #[serde(deserialize_with = "de_topic")]
    pub topic: String,
    #[serde(deserialize_with = "de_ids")]
    pub ids: Vec<MsgId>,
}

/// `{"ids": [bstr32]}` (at most [`MAX_GOSSIP_IDS`] ids): messages the sender wants as EVENTs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IWant {
    #[serde(deserialize_with = "de_ids")]
    pub ids: Vec<MsgId>,
}

/// The answer to every gossip REQ, RESP 200: `{"ok": true}` (`{"ok": false}` is `malformed`:
/// failures are error bodies).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct GossipOk;

impl Serialize for GossipOk {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        OkBody { ok: true }.serialize(s)
    }
}

impl<'de> Deserialize<'de> for GossipOk {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<GossipOk, D::Error> {
        match OkBody::deserialize(d)? {
            OkBody { ok: true } => Ok(GossipOk),
            OkBody { ok: false } => Err(D::Error::custom("ok must be true")),
        }
    }
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct OkBody {
    ok: bool,
}

fn de_topic<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    let topic = BoundedString::<MAX_TOPIC_BYTES>::deserialize(d)?.0;
    if topic.is_empty() {
        return Err(D::Error::custom("empty topic"));
    }
    Ok(topic)
}

fn de_ids<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<MsgId>, D::Error> {
    Ok(BoundedVec::<MsgId, MAX_GOSSIP_IDS>::deserialize(d)?.0)
}

impl Check for GossipEvent {
    fn check(&self) -> Result<(), Reason> {
        if msg_id(&self.topic, self.ts, &self.data) == self.msg_id {
            Ok(())
        } else {
            Err(Reason::Malformed)
        }
    }
}
impl Check for GossipRequest {}
impl Check for GossipOk {}

cbor_codec!(GossipEvent, GossipRequest, GossipOk);

#[cfg(test)]
mod tests {
    use super::*;

    use crate::msg::test_util::{hex_bytes, round_trip as rt};

    #[test]
    fn event_round_trips_and_ref_encodes_the_same() {
        let mut e = GossipEvent::new("news", 1_700_000_000_000, b"hello".to_vec());
        let out = rt(&e, GossipEvent::encode, GossipEvent::decode);
        let mut by_ref = Vec::new();
        e.relayed(0).encode(&mut by_ref);
        assert_eq!(by_ref, out);
        // A relay bumps hops; the id does not cover hops.
        by_ref.clear();
        e.relayed(3).encode(&mut by_ref);
        e.hops = 3;
        assert_eq!(GossipEvent::decode(&by_ref), Ok(e.clone()));
        // Largest topic, empty data.
        rt(
            &GossipEvent::new("t".repeat(MAX_TOPIC_BYTES), 0, Vec::new()),
            GossipEvent::encode,
            GossipEvent::decode,
        );
        // Data larger than the decoder's scratch buffer.
        rt(
            &GossipEvent::new("big", 1, vec![0xab; 100_000]),
            GossipEvent::encode,
            GossipEvent::decode,
        );
    }

    #[test]
    fn requests_and_ok_round_trip() {
        let ids: Vec<MsgId> = (0..MAX_GOSSIP_IDS as u64)
            .map(|i| msg_id("t", i, b""))
            .collect();
        for r in [
            GossipRequest::Subscribe(Subscribe { topic: "a".into() }),
            GossipRequest::Unsubscribe(Unsubscribe { topic: "a".into() }),
            GossipRequest::IHave(IHave {
                topic: "a".into(),
                ids: ids.clone(),
            }),
            GossipRequest::IHave(IHave {
                topic: "a".into(),
                ids: Vec::new(),
            }),
            GossipRequest::IWant(IWant { ids }),
        ] {
            rt(&r, GossipRequest::encode, GossipRequest::decode);
        }
        let out = rt(&GossipOk, GossipOk::encode, GossipOk::decode);
        assert_eq!(hex::encode(out), "a1626f6bf5");
        assert_eq!(
            GossipOk::decode(&hex_bytes("a1626f6bf4")),
            Err(Reason::Malformed)
        );
    }

    #[test]
    fn msg_id_is_pinned() {
        // BLAKE3(00 01 "t" 0000000000000001 "x")
        let mut input = vec![0, 1, b't'];
        input.extend(1u64.to_be_bytes());
        input.push(b'x');
        assert_eq!(msg_id("t", 1, b"x").0, *blake3::hash(&input).as_bytes());
        // Moving bytes between topic and data changes the id.
        assert_ne!(msg_id("ab", 0, b"c"), msg_id("a", 0, b"bc"));
    }

    #[test]
    fn pinned_event_and_request() {
        let e = GossipEvent::new("t", 1, b"x".to_vec());
        let mut out = Vec::new();
        e.encode(&mut out);
        let id = hex::encode(e.msg_id.0);
        assert_eq!(
            hex::encode(&out),
            format!(
                "a5 65746f706963 6174 66 6d73675f6964 5820 {id} 627473 01 64686f7073 00 6464617461 4178"
            )
            .replace(' ', "")
        );
        out.clear();
        GossipRequest::Subscribe(Subscribe { topic: "t".into() }).encode(&mut out);
        // {"subscribe": {"topic": "t"}}
        assert_eq!(
            hex::encode(&out),
            "a169737562736372696265a165746f7069636174"
        );
    }

    #[test]
    fn rejects() {
        let e = GossipEvent::new("t", 1, b"x".to_vec());
        let mut good = Vec::new();
        e.encode(&mut good);
        assert!(GossipEvent::decode(&good).is_ok());

        // Trailing garbage, empty input, truncation.
        let mut trailing = good.clone();
        trailing.push(0);
        assert_eq!(GossipEvent::decode(&trailing), Err(Reason::Malformed));
        assert_eq!(GossipEvent::decode(&[]), Err(Reason::Malformed));
        assert_eq!(
            GossipEvent::decode(&good[..good.len() - 1]),
            Err(Reason::Malformed)
        );

        // Wrong msg_id.
        let mut forged = e.clone();
        forged.msg_id.0[0] ^= 1;
        let mut out = Vec::new();
        forged.encode(&mut out);
        assert_eq!(GossipEvent::decode(&out), Err(Reason::Malformed));

        // Topic too long, or empty.
        for topic in ["t".repeat(MAX_TOPIC_BYTES + 1), String::new()] {
            for bytes in [
                {
                    let mut o = Vec::new();
                    GossipEvent::new(topic.clone(), 1, Vec::new()).encode(&mut o);
                    o
                },
                {
                    let mut o = Vec::new();
                    GossipRequest::Subscribe(Subscribe {
                        topic: topic.clone(),
                    })
                    .encode(&mut o);
                    o
                },
            ] {
                assert!(GossipEvent::decode(&bytes).is_err());
                assert!(GossipRequest::decode(&bytes).is_err());
            }
        }

        // Too many ids.
        let ids = vec![MsgId([1; 32]); MAX_GOSSIP_IDS + 1];
        for r in [
            GossipRequest::IWant(IWant { ids: ids.clone() }),
            GossipRequest::IHave(IHave {
                topic: "t".into(),
                ids,
            }),
        ] {
            out.clear();
            r.encode(&mut out);
            assert_eq!(GossipRequest::decode(&out), Err(Reason::Malformed));
        }
        // A list claiming more ids than the bound, with no ids after it.
        assert_eq!(
            GossipRequest::decode(&hex_bytes("a1 65697761 6e74 a1 63696473 9a ffffffff")),
            Err(Reason::Malformed)
        );

        let id = "5820".to_owned() + &"11".repeat(32);
        for bad in [
            // hops 256 does not fit u8
            format!("a5 65746f706963 6174 66 6d73675f6964 {id} 627473 01 64686f7073 190100 6464617461 4178"),
            // data as an array of integers
            format!("a5 65746f706963 6174 66 6d73675f6964 {id} 627473 01 64686f7073 00 6464617461 8178"),
            // unknown field "x"
            format!("a6 65746f706963 6174 66 6d73675f6964 {id} 627473 01 64686f7073 00 6464617461 4178 6178 00"),
            // topic of the wrong type
            format!("a5 65746f706963 01 66 6d73675f6964 {id} 627473 01 64686f7073 00 6464617461 4178"),
            // missing data
            format!("a4 65746f706963 6174 66 6d73675f6964 {id} 627473 01 64686f7073 00"),
        ] {
            assert_eq!(GossipEvent::decode(&hex_bytes(&bad)), Err(Reason::Malformed), "{bad}");
        }
        for bad in [
            "a1 69737562736372696265 a2 65746f706963 6174 6178 01", // unknown field
            "a1 69737562736372696265 a1 65746f706963 4174",         // topic as bytes
            "a1 6470696e67 a0",                                     // unknown op
            "a1 65697761 6e74 a1 63696473 81 01",                   // id not bytes
            "a1 65697761 6e74 a1 63696473 81 4101",                 // 1-byte id
        ] {
            assert_eq!(
                GossipRequest::decode(&hex_bytes(bad)),
                Err(Reason::Malformed),
                "{bad}"
            );
        }
    }
}
