//! Objects plane, app 1 (PROTOCOL.md section 6): GET, HEAD and PUT of content-addressed objects.
//!
//! Requests are CBOR, externally tagged ([`ObjectRequest`]); bodies travel as raw bytes:
//! - **GET**: REQ `{"get": {"addr": bstr32}}` or, for a byte range,
//!   `{"get": {"addr": bstr32, "range": {"start": u64, "end": u64}}}`. The answer is RESP with the
//!   object's raw bytes as payload, code 200 (206 when the request named a range), streamed
//!   START..END in `chunk_bytes` payloads when it does not fit one frame.
//! - **HEAD**: REQ `{"head": {"addr": bstr32}}` -> RESP 200 [`HeadResp`] `{"size": u64}`.
//! - **PUT**: the REQ stream's START frame carries `{"put": {"addr": bstr32, "size": u64}}`; the
//!   body follows as raw bytes in the later frames of the same REQ stream up to its END (a
//!   START|END PUT has an empty body). The node checks the body is `size` bytes hashing to `addr`
//!   (`bad_digest` otherwise) -> RESP 200 [`PutResp`] `{"addr": bstr32, "size": u64, "stored": bool}`.
//! - Errors are RESP frames with the JSON [`ErrorBody`](crate::error_body::ErrorBody) (app 1 uses
//!   JSON bodies), e.g. 404 `not_found`, 413 `oversize`, 400 `bad_digest`.

use super::{cbor_codec, Check};
use crate::id::ObjectAddr;
use crate::reason::Reason;
use serde::{Deserialize, Serialize};

/// Status of a GET answered in full.
pub const STATUS_OK: u16 = 200;
/// Status of a GET that named a [`ByteRange`].
pub const STATUS_PARTIAL: u16 = 206;

/// An objects-plane request, told apart by its one key:
/// `{"get": Get} | {"head": Head} | {"put": Put}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ObjectRequest {
    Get(Get),
    Head(Head),
    Put(Put),
}

/// GET: `{"addr": bstr32, "range"?: ByteRange, "hops"?: u8}`. Answered by the raw bytes, code
/// 200, or code 206 with the bytes of the range when `range` is present. `hops` counts the nodes
/// the request went through fetching on a miss (absent: 0, a client's request); a node fetches
/// from its peers only while it is below `MAX_FETCH_HOPS`, and sends `hops + 1`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Get {
    #[serde(with = "super::object_addr")]
    pub addr: ObjectAddr,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub range: Option<ByteRange>,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub hops: u8,
}

/// A GET that has travelled this many hops is answered from the node's own store only.
pub const MAX_FETCH_HOPS: u8 = 3;

fn is_zero(n: &u8) -> bool {
    *n == 0
}

impl Get {
    /// A client's GET of the whole object.
    pub fn whole(addr: ObjectAddr) -> Get {
        Get {
            addr,
            range: None,
            hops: 0,
        }
    }
}

/// A byte range `{"start": u64, "end": u64}`: offsets `start..end` of the object, `end`
/// exclusive, `start < end` (an empty or inverted range is `malformed`). The node serves
/// [`ByteRange::clamp`]: the part of the range inside the object, so a range reaching past the
/// end gives the tail, and one starting at or past the end gives 206 with an empty body.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ByteRange {
    pub start: u64,
    pub end: u64,
}

impl ByteRange {
    /// The offsets to serve from an object of `size` bytes (possibly empty).
    pub fn clamp(&self, size: u64) -> std::ops::Range<u64> {
        let end = self.end.min(size);
        self.start.min(end)..end
    }
}

/// HEAD: `{"addr": bstr32}`, answered by [`HeadResp`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Head {
    #[serde(with = "super::object_addr")]
    pub addr: ObjectAddr,
}

/// PUT: `{"addr": bstr32, "size": u64}`, the payload of the START frame of a REQ stream whose
/// other frames carry the body; answered by [`PutResp`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Put {
    #[serde(with = "super::object_addr")]
    pub addr: ObjectAddr,
    /// Body length in bytes; over `objects.max_bytes` the node answers 413 `oversize`.
    pub size: u64,
}

/// HEAD response, code 200: `{"size": u64}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HeadResp {
    pub size: u64,
}

/// PUT response, code 200: `{"addr": bstr32, "size": u64, "stored": bool}`; `stored` is false
/// when the node already held the object (a duplicate PUT succeeds without writing).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PutResp {
    #[serde(with = "super::object_addr")]
    pub addr: ObjectAddr,
    pub size: u64,
    pub stored: bool,
}

impl ObjectRequest {
    /// The address the request is about.
    pub fn addr(&self) -> &ObjectAddr {
        match self {
            ObjectRequest::Get(g) => &g.addr,
            ObjectRequest::Head(h) => &h.addr,
            ObjectRequest::Put(p) => &p.addr,
        }
    }
}

impl Get {
    /// The status of a successful answer: 206 for a range, 200 otherwise.
    pub fn status(&self) -> u16 {
        if self.range.is_some() {
            STATUS_PARTIAL
        } else {
            STATUS_OK
        }
    }
}

impl Check for ObjectRequest {
    fn check(&self) -> Result<(), Reason> {
        match self {
            ObjectRequest::Get(Get { range: Some(r), .. }) if r.start >= r.end => {
                Err(Reason::Malformed)
            }
            _ => Ok(()),
        }
    }
}
impl Check for HeadResp {}
impl Check for PutResp {}

cbor_codec!(ObjectRequest, HeadResp, PutResp);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::msg::test_util::round_trip;

    fn addr() -> ObjectAddr {
        ObjectAddr::of(b"hello world")
    }

    fn req_rt(r: ObjectRequest) -> Vec<u8> {
        let out = round_trip(&r, ObjectRequest::encode, ObjectRequest::decode);
        assert!(out
            .windows(34)
            .any(|w| w[..2] == [0x58, 0x20] && w[2..] == addr().0));
        out
    }

    #[test]
    fn requests_round_trip() {
        req_rt(ObjectRequest::Get(Get::whole(addr())));
        req_rt(ObjectRequest::Get(Get {
            addr: addr(),
            range: Some(ByteRange {
                start: 10,
                end: u64::MAX,
            }),
            hops: 2,
        }));
        req_rt(ObjectRequest::Head(Head { addr: addr() }));
        req_rt(ObjectRequest::Put(Put {
            addr: addr(),
            size: 11,
        }));
    }

    #[test]
    fn responses_round_trip() {
        round_trip(
            &HeadResp { size: 1 << 40 },
            HeadResp::encode,
            HeadResp::decode,
        );
        let p = PutResp {
            addr: addr(),
            size: 11,
            stored: false,
        };
        round_trip(&p, PutResp::encode, PutResp::decode);
    }

    #[test]
    fn pinned_head_request() {
        let mut out = Vec::new();
        ObjectRequest::Head(Head { addr: addr() }).encode(&mut out);
        // {"head": {"addr": h'd749..9e24'}}
        assert_eq!(
            hex::encode(&out),
            "a1 64 68656164 a1 64 61646472 5820 \
             d74981efa70a0c880b8d8c1985d075dbcbf679b99a5f9914e5aaf96b831a9e24"
                .replace(' ', "")
        );
        let mut out = Vec::new();
        HeadResp { size: 11 }.encode(&mut out);
        assert_eq!(hex::encode(&out), "a16473697a650b");
    }

    #[test]
    fn range_semantics() {
        let get = |range| Get {
            addr: addr(),
            range,
            hops: 0,
        };
        assert_eq!(get(None).status(), 200);
        let r = ByteRange { start: 2, end: 5 };
        assert_eq!(get(Some(r)).status(), 206);
        assert_eq!(r.clamp(100), 2..5);
        assert_eq!(r.clamp(4), 2..4);
        assert_eq!(r.clamp(1), 1..1);
        let mut out = Vec::new();
        for (start, end) in [(5, 5), (6, 5)] {
            out.clear();
            ObjectRequest::Get(get(Some(ByteRange { start, end }))).encode(&mut out);
            assert_eq!(ObjectRequest::decode(&out), Err(Reason::Malformed));
        }
    }

    #[test]
    fn rejects() {
        let a = hex::encode(addr().0);
        for bad in [
            String::new(),                                                     // empty
            format!("a1 64 68656164 a1 64 61646472 5820 {a} 00"),              // trailing byte
            format!("a1 64 68656164 a1 64 61646472 581f {}", &a[2..]),         // 31-byte address
            format!("a1 64 68656164 a1 64 61646472 9820 {}", "01".repeat(32)), // ints, not bytes
            format!("a1 64 68656164 a2 64 61646472 5820 {a} 61 78 01"),        // unknown field "x"
            "a1 64 68656164 a0".to_owned(),                                    // missing addr
            format!("a1 63 676574 a1 64 61646472 5820 {a} a0"),                // two items
            format!("a1 66 64656c657465 a1 64 61646472 5820 {a}"), // unknown op "delete"
            format!("a1 63 707574 a2 64 61646472 5820 {a} 64 73697a65 20"), // size -1
            format!("a1 63 707574 a2 64 61646472 5820 {a} 64 73697a65 f5"), // size true
            format!("a2 64 68656164 a1 64 61646472 5820 {a} 64 68656164 a1 64 61646472 5820 {a}"),
            "64 68656164".to_owned(), // bare text, no body
        ] {
            let bytes = hex::decode(bad.replace(' ', "")).unwrap();
            assert_eq!(
                ObjectRequest::decode(&bytes),
                Err(Reason::Malformed),
                "{bad}"
            );
        }
        assert_eq!(
            HeadResp::decode(&hex::decode("a26473697a650b6178f5").unwrap()),
            Err(Reason::Malformed)
        );
        assert_eq!(
            PutResp::decode(&hex::decode("a16473697a650b").unwrap()),
            Err(Reason::Malformed)
        );
    }
}
