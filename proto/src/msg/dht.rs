//! DHT plane, app 3 (PROTOCOL.md section 8): Kademlia RPCs in CBOR.
//!
//! | REQ ([`DhtRequest`]) | RESP 200 |
//! | --- | --- |
//! | `{"find_node": {"target": bstr32}}` | [`FindNodeResp`] `{"closest": [NodeInfo]}` (<= K) |
//! | `{"find_value": {"key": bstr32}}` | [`FindValueResp`] `{"providers"?: [ProviderRecord], "closest"?: [NodeInfo]}` |
//! | `{"provide": {"record": ProviderRecord}}` | [`ProvideResp`] `{"accepted": bool, "reason"?: text}` |
//! | `{"ping": {"nonce": u64}}` | [`PingResp`] `{"pong": u64}` |
//!
//! [`NodeInfo`] is `{"id": bstr32, "addrs": [text], "asn"?: u32, "last_seen"?: u64}`. Errors are
//! the CBOR [`ErrorBody`](crate::error_body::ErrorBody).
//!
//! Decoding a FIND_NODE request allocates nothing; [`FindNodeRespRef`] and [`FindValueRespRef`]
//! encode a routing table's and a record store's entries by reference, so answering FIND_NODE
//! with a reused output buffer allocates nothing either (`tests/alloc_budget.rs` proves it).

use super::{cbor_codec, BoundedString, BoundedVec, Check, SeqOf};
use crate::id::NodeId;
use crate::limits::{K, MAX_ADDRS, MAX_ADDR_BYTES, MAX_PROVIDERS, MAX_RECORD_SIGS};
use crate::reason::Reason;
use crate::record::ProviderRecord;
use serde::de::Deserializer;
use serde::ser::{SerializeStruct, Serializer};
use serde::{Deserialize, Serialize};

/// A DHT REQ, told apart by its one key:
/// `{"find_node": FindNode} | {"find_value": FindValue} | {"provide": Provide} | {"ping": Ping}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DhtRequest {
    FindNode(FindNode),
    FindValue(FindValue),
    /// Boxed: a record is large next to the other requests.
    Provide(Box<Provide>),
    Ping(Ping),
}

/// FIND_NODE: `{"target": bstr32}`, any point of the id space; answered by [`FindNodeResp`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FindNode {
    #[serde(with = "super::bytes32")]
    pub target: [u8; 32],
}

/// FIND_VALUE: `{"key": bstr32}`, the key of the provider records asked for (an object address
/// for objects); answered by [`FindValueResp`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FindValue {
    #[serde(with = "super::bytes32")]
    pub key: [u8; 32],
}

/// PROVIDE: `{"record": ProviderRecord}` (the record's shape is [`ProviderRecord`]'s); answered by
/// [`ProvideResp`]. Decoding checks the record's shape and bounds (at most [`MAX_ADDRS`] addrs of
/// at most [`MAX_ADDR_BYTES`] bytes, at most [`MAX_RECORD_SIGS`] sigs); its size, keys,
/// signatures and times are the record validation's (`accepted: false` with its label).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Provide {
    pub record: ProviderRecord,
}

/// PING: `{"nonce": u64}`; answered by [`PingResp`] with the same number.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Ping {
    pub nonce: u64,
}

/// A node as the DHT passes it around:
/// `{"id": bstr32, "addrs": [text], "asn"?: u32, "last_seen"?: u64}`. `addrs` holds at most
/// [`MAX_ADDRS`] `host:port` texts of at most [`MAX_ADDR_BYTES`] bytes; `asn` is the autonomous
/// system of the address the node was seen at; `last_seen` is unix seconds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NodeInfo {
    #[serde(with = "super::node_id")]
    pub id: NodeId,
    #[serde(deserialize_with = "de_addrs")]
    pub addrs: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub asn: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_seen: Option<u64>,
}

/// FIND_NODE response: `{"closest": [NodeInfo]}`, at most K, closest to the target first.
/// To answer without cloning the routing table, encode a [`FindNodeRespRef`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FindNodeResp {
    #[serde(deserialize_with = "de_nodes")]
    pub closest: Vec<NodeInfo>,
}

/// FIND_VALUE response: `{"providers"?: [ProviderRecord], "closest"?: [NodeInfo]}`: the records
/// the node holds for the key (at most [`MAX_PROVIDERS`], omitted when it holds none) and the
/// nodes it knows closest to the key (at most K; a node sends them always, so a lookup can go on).
/// Each record is checked as in [`Provide`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FindValueResp {
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "de_opt_providers"
    )]
    pub providers: Option<Vec<ProviderRecord>>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "de_opt_nodes"
    )]
    pub closest: Option<Vec<NodeInfo>>,
}

/// PROVIDE response: `{"accepted": bool, "reason"?: text}`; `reason`, the label of the failed
/// check (`oversize`, `bad_publisher`, `bad_sig`, `bad_ttl`, `bad_ts`, `stale`, `store_full`,
/// ...), is present exactly when `accepted` is false.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProvideResp {
    pub accepted: bool,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "super::opt_reason"
    )]
    pub reason: Option<Reason>,
}

impl ProvideResp {
    pub fn accepted() -> ProvideResp {
        ProvideResp {
            accepted: true,
            reason: None,
        }
    }

    pub fn rejected(reason: Reason) -> ProvideResp {
        ProvideResp {
            accepted: false,
            reason: Some(reason),
        }
    }
}

/// PING response: `{"pong": u64}`, the request's nonce.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PingResp {
    pub pong: u64,
}

/// [`FindNodeResp`] over borrowed nodes, same CBOR shape: `closest` is any exact-size, cheaply
/// cloned iterator of `&NodeInfo`, e.g. `refs.iter().copied()` over a `&[&NodeInfo]`, or
/// `idx.iter().map(|&i| &table[i])` over indices [`crate::id::select_closest`] ordered.
/// The caller keeps it within K.
#[derive(Debug, Clone)]
pub struct FindNodeRespRef<I> {
    pub closest: I,
}

impl<'a, I> FindNodeRespRef<I>
where
    I: ExactSizeIterator<Item = &'a NodeInfo> + Clone,
{
    /// Appends the CBOR encoding to `out`; allocates nothing once `out` has room.
    pub fn encode(&self, out: &mut Vec<u8>) {
        super::encode_cbor(self, out)
    }
}

impl<'a, I> Serialize for FindNodeRespRef<I>
where
    I: ExactSizeIterator<Item = &'a NodeInfo> + Clone,
{
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut st = s.serialize_struct("FindNodeResp", 1)?;
        st.serialize_field("closest", &SeqOf(self.closest.clone()))?;
        st.end()
    }
}

/// [`FindValueResp`] over borrowed records and nodes, same CBOR shape (`None` leaves the field
/// out); the iterators are as in [`FindNodeRespRef`]. Name the type of an absent list, e.g.
/// `providers: None::<std::iter::Empty<&ProviderRecord>>`.
#[derive(Debug, Clone)]
pub struct FindValueRespRef<P, C> {
    pub providers: Option<P>,
    pub closest: Option<C>,
}

impl<'a, 'b, P, C> FindValueRespRef<P, C>
where
    P: ExactSizeIterator<Item = &'a ProviderRecord> + Clone,
    C: ExactSizeIterator<Item = &'b NodeInfo> + Clone,
{
    /// Appends the CBOR encoding to `out`.
    pub fn encode(&self, out: &mut Vec<u8>) {
        super::encode_cbor(self, out)
    }
}

impl<'a, 'b, P, C> Serialize for FindValueRespRef<P, C>
where
    P: ExactSizeIterator<Item = &'a ProviderRecord> + Clone,
    C: ExactSizeIterator<Item = &'b NodeInfo> + Clone,
{
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let n = usize::from(self.providers.is_some()) + usize::from(self.closest.is_some());
        let mut st = s.serialize_struct("FindValueResp", n)?;
        if let Some(p) = &self.providers {
            st.serialize_field("providers", &SeqOf(p.clone()))?;
        }
        if let Some(c) = &self.closest {
            st.serialize_field("closest", &SeqOf(c.clone()))?;
        }
        st.end()
    }
}

fn de_addrs<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    let addrs = BoundedVec::<BoundedString<MAX_ADDR_BYTES>, MAX_ADDRS>::deserialize(d)?.0;
    Ok(addrs.into_iter().map(|a| a.0).collect())
}

fn de_nodes<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<NodeInfo>, D::Error> {
    Ok(BoundedVec::<NodeInfo, K>::deserialize(d)?.0)
}

fn de_opt_nodes<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Vec<NodeInfo>>, D::Error> {
    Ok(Option::<BoundedVec<NodeInfo, K>>::deserialize(d)?.map(|v| v.0))
}

fn de_opt_providers<'de, D: Deserializer<'de>>(
    d: D,
) -> Result<Option<Vec<ProviderRecord>>, D::Error> {
    Ok(Option::<BoundedVec<ProviderRecord, MAX_PROVIDERS>>::deserialize(d)?.map(|v| v.0))
}

/// The bounds of a record that are not the record validation's: addrs and sigs.
fn check_record(r: &ProviderRecord) -> Result<(), Reason> {
    let ok = r.addrs.len() <= MAX_ADDRS
        && r.addrs.iter().all(|a| a.len() <= MAX_ADDR_BYTES)
        && r.sigs.len() <= MAX_RECORD_SIGS;
    if ok {
        Ok(())
    } else {
        Err(Reason::Malformed)
    }
}

impl Check for DhtRequest {
    fn check(&self) -> Result<(), Reason> {
        match self {
            DhtRequest::Provide(p) => check_record(&p.record),
            _ => Ok(()),
        }
    }
}
impl Check for FindNodeResp {}
impl Check for FindValueResp {
    fn check(&self) -> Result<(), Reason> {
        self.providers.iter().flatten().try_for_each(check_record)
    }
}
impl Check for ProvideResp {
    fn check(&self) -> Result<(), Reason> {
        if self.accepted == self.reason.is_none() {
            Ok(())
        } else {
            Err(Reason::Malformed)
        }
    }
}
impl Check for PingResp {}

cbor_codec!(
    DhtRequest,
    FindNodeResp,
    FindValueResp,
    ProvideResp,
    PingResp
);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::RecordSig;
    use serde_bytes::{ByteArray, ByteBuf};

    use crate::msg::test_util::{hex_bytes, round_trip as rt};

    fn node(i: u8) -> NodeInfo {
        NodeInfo {
            id: NodeId([i; 32]),
            addrs: vec![format!("10.0.0.{i}:7000"), "[::1]:7000".into()],
            asn: i.is_multiple_of(2).then_some(64_512 + u32::from(i)),
            last_seen: i.is_multiple_of(3).then_some(1_700_000_000),
        }
    }

    fn record() -> ProviderRecord {
        ProviderRecord {
            key: ByteArray::new([1; 32]),
            publisher: ByteArray::new([2; 32]),
            addrs: vec!["192.0.2.1:7000".into()],
            ttl_s: 86_400,
            ts: 1_700_000_000,
            ed25519_pk: ByteArray::new([3; 32]),
            ml_dsa_pk: Some(ByteBuf::from(vec![4; 2_592])),
            ml_dsa_pk_hash: None,
            sigs: vec![
                RecordSig {
                    alg: "ed25519".into(),
                    sig: ByteBuf::from(vec![5; 64]),
                },
                RecordSig {
                    alg: "ml-dsa-87".into(),
                    sig: ByteBuf::from(vec![6; 4_627]),
                },
            ],
        }
    }

    #[test]
    fn requests_round_trip() {
        for r in [
            DhtRequest::FindNode(FindNode { target: [9; 32] }),
            DhtRequest::FindValue(FindValue { key: [8; 32] }),
            DhtRequest::Provide(Box::new(Provide { record: record() })),
            DhtRequest::Ping(Ping { nonce: u64::MAX }),
        ] {
            rt(&r, DhtRequest::encode, DhtRequest::decode);
        }
    }

    #[test]
    fn responses_round_trip_and_refs_encode_the_same() {
        let nodes: Vec<NodeInfo> = (0..K as u8).map(node).collect();
        let resp = FindNodeResp {
            closest: nodes.clone(),
        };
        let owned = rt(&resp, FindNodeResp::encode, FindNodeResp::decode);
        let refs: Vec<&NodeInfo> = nodes.iter().collect();
        let mut by_ref = Vec::new();
        FindNodeRespRef {
            closest: refs.iter().copied(),
        }
        .encode(&mut by_ref);
        assert_eq!(by_ref, owned);
        rt(
            &FindNodeResp {
                closest: Vec::new(),
            },
            FindNodeResp::encode,
            FindNodeResp::decode,
        );

        let records = vec![record(), record()];
        for (providers, closest) in [
            (Some(records.clone()), Some(nodes[..3].to_vec())),
            (None, Some(nodes.clone())),
            (Some(records.clone()), None),
            (None, None),
        ] {
            let resp = FindValueResp {
                providers: providers.clone(),
                closest: closest.clone(),
            };
            let owned = rt(&resp, FindValueResp::encode, FindValueResp::decode);
            by_ref.clear();
            FindValueRespRef {
                providers: providers.as_ref().map(|p| p.iter()),
                closest: closest.as_ref().map(|c| c.iter()),
            }
            .encode(&mut by_ref);
            assert_eq!(by_ref, owned);
        }

        for p in [
            ProvideResp::accepted(),
            ProvideResp::rejected(Reason::BadSig),
            ProvideResp::rejected(Reason::Stale),
        ] {
            rt(&p, ProvideResp::encode, ProvideResp::decode);
        }
        rt(&PingResp { pong: 7 }, PingResp::encode, PingResp::decode);
    }

    #[test]
    fn pinned_find_node_and_responses() {
        let mut out = Vec::new();
        DhtRequest::FindNode(FindNode { target: [0xab; 32] }).encode(&mut out);
        // {"find_node": {"target": h'abab..'}}
        assert_eq!(
            hex::encode(&out),
            "a1 69 66696e645f6e6f6465 a1 66 746172676574 5820".replace(' ', "") + &"ab".repeat(32)
        );
        out.clear();
        FindNodeResp {
            closest: vec![NodeInfo {
                id: NodeId([0x11; 32]),
                addrs: vec!["a:1".into()],
                asn: Some(64_512),
                last_seen: None,
            }],
        }
        .encode(&mut out);
        // {"closest": [{"id": h'11..', "addrs": ["a:1"], "asn": 64512}]}
        assert_eq!(
            hex::encode(&out),
            format!(
                "a1 67636c6f73657374 81 a3 626964 5820 {} 656164647273 81 63613a31 6361736e 19fc00",
                "11".repeat(32)
            )
            .replace(' ', "")
        );
        out.clear();
        ProvideResp::rejected(Reason::BadSig).encode(&mut out);
        // {"accepted": false, "reason": "bad_sig"}
        assert_eq!(
            hex::encode(&out),
            "a2 686163636570746564 f4 66726561736f6e 67 6261645f736967".replace(' ', "")
        );
        out.clear();
        DhtRequest::Ping(Ping { nonce: 1 }).encode(&mut out);
        assert_eq!(hex::encode(&out), "a16470696e67a1656e6f6e636501");
    }

    #[test]
    fn rejects() {
        let enc = |f: &dyn Fn(&mut Vec<u8>)| {
            let mut o = Vec::new();
            f(&mut o);
            o
        };
        let find_node = enc(&|o| DhtRequest::FindNode(FindNode { target: [1; 32] }).encode(o));
        assert!(DhtRequest::decode(&find_node).is_ok());
        let mut trailing = find_node.clone();
        trailing.push(0xf6);
        for bad in [&[][..], &trailing, &find_node[..find_node.len() - 1]] {
            assert_eq!(DhtRequest::decode(bad), Err(Reason::Malformed));
        }

        // Too many nodes, too many addrs, too long an addr.
        let too_many = FindNodeResp {
            closest: (0..=K as u8).map(node).collect(),
        };
        assert_eq!(
            FindNodeResp::decode(&enc(&|o| too_many.encode(o))),
            Err(Reason::Malformed)
        );
        let mut n = node(1);
        n.addrs = vec!["x:1".into(); MAX_ADDRS + 1];
        let resp = FindNodeResp { closest: vec![n] };
        assert_eq!(
            FindNodeResp::decode(&enc(&|o| resp.encode(o))),
            Err(Reason::Malformed)
        );
        let mut n = node(1);
        n.addrs = vec!["x".repeat(MAX_ADDR_BYTES + 1)];
        let resp = FindValueResp {
            providers: None,
            closest: Some(vec![n]),
        };
        assert_eq!(
            FindValueResp::decode(&enc(&|o| resp.encode(o))),
            Err(Reason::Malformed)
        );
        let resp = FindValueResp {
            providers: Some(vec![record(); MAX_PROVIDERS + 1]),
            closest: None,
        };
        assert_eq!(
            FindValueResp::decode(&enc(&|o| resp.encode(o))),
            Err(Reason::Malformed)
        );

        // Records outside their bounds.
        let mut r = record();
        r.addrs = vec!["x:1".into(); MAX_ADDRS + 1];
        let req = DhtRequest::Provide(Box::new(Provide { record: r }));
        assert_eq!(
            DhtRequest::decode(&enc(&|o| req.encode(o))),
            Err(Reason::Malformed)
        );
        let mut r = record();
        r.sigs.push(r.sigs[0].clone());
        let resp = FindValueResp {
            providers: Some(vec![r]),
            closest: None,
        };
        assert_eq!(
            FindValueResp::decode(&enc(&|o| resp.encode(o))),
            Err(Reason::Malformed)
        );

        // PROVIDE responses must pair accepted with the absence of a reason.
        for bad in [
            ProvideResp {
                accepted: true,
                reason: Some(Reason::BadSig),
            },
            ProvideResp {
                accepted: false,
                reason: None,
            },
        ] {
            assert_eq!(
                ProvideResp::decode(&enc(&|o| bad.encode(o))),
                Err(Reason::Malformed)
            );
        }

        let t = "5820".to_owned() + &"ab".repeat(32);
        for bad in [
            // unknown field next to target
            format!("a1 69 66696e645f6e6f6465 a2 66 746172676574 {t} 61 78 00"),
            // target as an array of integers
            format!(
                "a1 69 66696e645f6e6f6465 a1 66 746172676574 9820 {}",
                "01".repeat(32)
            ),
            // target as text
            "a1 69 66696e645f6e6f6465 a1 66 746172676574 61 61".to_owned(),
            // unknown op
            format!("a1 64 7374 6f72 a1 66 746172676574 {t}"),
            // struct as an array instead of a map
            format!("a1 69 66696e645f6e6f6465 81 {t}"),
            // nonce negative
            "a1 64 70696e67 a1 65 6e6f6e6365 20".to_owned(),
            // bare variant name, body following as a second item
            format!("69 66696e645f6e6f6465 a1 66 746172676574 {t}"),
            // tagged target
            format!("a1 69 66696e645f6e6f6465 a1 66 746172676574 d840 {t}"),
        ] {
            assert_eq!(
                DhtRequest::decode(&hex_bytes(&bad)),
                Err(Reason::Malformed),
                "{bad}"
            );
        }
        for bad in [
            "a1 6470 6f6e67 20",                 // pong -1
            "a2 6470 6f6e67 01 6470 6f6e67 01",  // duplicate key
            "a1 6470 6f6e67 fb3ff0000000000000", // float
        ] {
            assert_eq!(
                PingResp::decode(&hex_bytes(bad)),
                Err(Reason::Malformed),
                "{bad}"
            );
        }
        // Unknown reason label.
        assert_eq!(
            ProvideResp::decode(&hex_bytes(
                "a2 686163636570746564 f4 66726561736f6e 63 6e6f70"
            )),
            Err(Reason::Malformed)
        );
        // A closest list claiming 2^32 nodes.
        assert_eq!(
            FindNodeResp::decode(&hex_bytes("a1 67636c6f73657374 9a ffffffff")),
            Err(Reason::Malformed)
        );
    }
}
