//! The examples docs/PROTOCOL.md shows, generated from the code. Everything here is
//! deterministic: fixed ids, fixed keys, no clock.

use ronode_proto::control::{Control, GoAway, Hello, HelloReply, APP_CONTROL};
use ronode_proto::error_body::ErrorBody;
use ronode_proto::frame::{FrameEncoder, OutFrame};
use ronode_proto::limits::{HEADER_LEN, MAX_FRAME};
use ronode_proto::{Flags, Reason};
use std::collections::BTreeMap;

/// Hex of a whole frame: the header's fields on the first line, separated by spaces in header
/// order (len ver flags code app tenant cap_len corr_id), then the cap and the payload, 32
/// bytes a line, each introduced by a comment line.
pub fn frame_hex(bytes: &[u8]) -> String {
    let h = &bytes[..HEADER_LEN];
    let fields = [0..4, 4..6, 6..8, 8..10, 10..12, 12..28, 28..30, 30..38];
    let mut s = fields.map(|r| hex::encode(&h[r])).join(" ");
    s.push('\n');
    let cap_len = u16::from_be_bytes([h[28], h[29]]) as usize;
    let (cap, payload) = bytes[HEADER_LEN..].split_at(cap_len);
    if !cap.is_empty() {
        s.push_str("# cap\n");
        s.push_str(&plain_hex(cap));
    }
    if !payload.is_empty() {
        s.push_str("# payload\n");
        s.push_str(&plain_hex(payload));
    }
    s
}

/// Hex, 32 bytes a line.
pub fn plain_hex(bytes: &[u8]) -> String {
    let mut s = String::new();
    for line in bytes.chunks(32) {
        s.push_str(&hex::encode(line));
        s.push('\n');
    }
    s
}

pub fn encode(frame: &OutFrame<'_>) -> Vec<u8> {
    let mut out = Vec::new();
    FrameEncoder::new(MAX_FRAME)
        .encode(frame, &mut out)
        .expect("example frame encodes");
    out
}

fn control_frame(kind: Flags, corr_id: u64, msg: &Control) -> Vec<u8> {
    let payload = msg.to_vec();
    let code = if kind == Flags::RESP { 200 } else { 0 };
    encode(&OutFrame {
        flags: kind,
        code,
        app_proto_id: APP_CONTROL,
        tenant_id: 0,
        corr_id,
        cap: &[],
        payload: &payload,
    })
}

pub fn all() -> BTreeMap<&'static str, String> {
    let mut m = BTreeMap::new();
    let hello = Control::Hello(Hello {
        ua: Some("sdk/0.1".into()),
        max_frame: None,
    });
    let payload = hello.to_vec();
    m.insert(
        "hello_request",
        frame_hex(&encode(&OutFrame {
            tenant_id: 0xaa,
            ..OutFrame::request(APP_CONTROL, 42, &payload)
        })),
    );
    let reply = Control::HelloReply(HelloReply::default()).to_vec();
    m.insert(
        "hello_reply",
        frame_hex(&encode(&OutFrame {
            tenant_id: 0xbb,
            ..OutFrame::response(APP_CONTROL, 7, 200, &reply)
        })),
    );
    m.insert(
        "hello_lower_max_frame",
        frame_hex(&control_frame(
            Flags::REQ,
            1,
            &Control::Hello(Hello {
                ua: None,
                max_frame: Some(65_536),
            }),
        )),
    );
    m.insert(
        "ping",
        frame_hex(&control_frame(Flags::REQ, 2, &Control::Ping(99))),
    );
    m.insert(
        "pong",
        frame_hex(&control_frame(Flags::RESP, 2, &Control::Pong(99))),
    );
    m.insert(
        "goaway",
        frame_hex(&control_frame(
            Flags::EVENT,
            0,
            &Control::GoAway(GoAway {
                reason: "draining".into(),
                last_corr_id: 41,
            }),
        )),
    );
    let mut busy = Vec::new();
    ErrorBody::new(Reason::Busy, "work queue full", 9, 250).encode(1, &mut busy);
    m.insert(
        "error_busy",
        frame_hex(&encode(&OutFrame::response(1, 9, 503, &busy))),
    );
    // Compresses about 3x: within the ratio cap, so the sender rule keeps COMP.
    let text = b"the quick brown fox jumps over the lazy dog; ".repeat(4);
    let comp = encode(&OutFrame {
        flags: Flags::EVENT | Flags::COMP,
        ..OutFrame::request(2, 5, &text)
    });
    assert_eq!(comp[7] & 0x40, 0x40, "example keeps COMP");
    m.insert("comp_event", frame_hex(&comp));
    // An app id nothing serves: any decoder decodes the frame; a session refuses it.
    m.insert(
        "resp_app_200",
        frame_hex(&encode(&OutFrame {
            tenant_id: 0xdd,
            ..OutFrame::response(200, 123, 200, b"hello world")
        })),
    );
    objects(&mut m);
    gossip(&mut m);
    dht(&mut m);
    records(&mut m);
    capabilities(&mut m);
    identities(&mut m);
    m
}

// ---------------------------------------------------------------------------------------------
// Apps 1-3, records, capabilities, identities. Fixed seeds and keys; records are signed with
// Ed25519 only (ML-DSA-87 signing is randomized, so a dual-signed record would differ per run).

use ronode_proto::cap::{CapRequest, Capability, Caveat, Op};
use ronode_proto::cert;
use ronode_proto::id::{bucket_index, distance, ObjectAddr};
use ronode_proto::identity::{Identity, IdentitySeeds};
use ronode_proto::limits::CHUNK_BYTES;
use ronode_proto::msg::dht::{
    DhtRequest, FindNode, FindNodeResp, FindValue, FindValueResp, NodeInfo, Ping, PingResp,
    Provide, ProvideResp,
};
use ronode_proto::msg::gossip::{
    msg_id, GossipEvent, GossipOk, GossipRequest, IHave, IWant, Subscribe, Unsubscribe,
};
use ronode_proto::msg::objects::{ByteRange, Get, Head, HeadResp, ObjectRequest, Put, PutResp};
use ronode_proto::msg::{APP_DHT, APP_GOSSIP, APP_OBJECTS};
use ronode_proto::record::{
    encode_record, sign_record, signed_bytes, validate, ProviderRecord, RecordPolicy,
};
use ronode_proto::NodeId;

/// Seeds of the example node A (the publisher of the example record).
const SEEDS_A: ([u8; 32], [u8; 32]) = ([0x11; 32], [0x22; 32]);
/// Seeds of the example node B.
const SEEDS_B: ([u8; 32], [u8; 32]) = ([0x33; 32], [0x44; 32]);
/// The example capability root key and its key id.
const CAP_ROOT: [u8; 32] = [0x55; 32];
const CAP_KID: [u8; 8] = *b"rootkey1";
/// The example clock: 2023-11-14T22:13:20Z.
const NOW: u64 = 1_700_000_000;
/// The example tenant.
const TENANT: u128 = 0xaa;

fn identity((ed25519, ml_dsa): ([u8; 32], [u8; 32])) -> Identity {
    Identity::from_seeds(&IdentitySeeds { ed25519, ml_dsa })
}

fn hello_addr() -> ObjectAddr {
    ObjectAddr::of(b"hello world")
}

/// The example provider record: node A provides "hello world", Ed25519 only.
fn example_record() -> ProviderRecord {
    sign_record(
        &identity(SEEDS_A),
        hello_addr().0,
        vec!["192.0.2.10:7000".to_owned()],
        86_400,
        NOW,
        false,
    )
}

/// The example capability: minted for `scope=get,put` and `tenant=0xaa`, then narrowed by its
/// holder with an expiry (no key needed for that).
fn example_cap() -> Capability {
    Capability::mint(&CAP_ROOT, CAP_KID, &["scope=get,put", "tenant=0xaa"])
        .attenuate("exp=1700003600")
}

fn cap_keys(kid: &[u8; 8]) -> Option<[u8; 32]> {
    (*kid == CAP_KID).then_some(CAP_ROOT)
}

fn node_a() -> NodeInfo {
    NodeInfo {
        id: identity(SEEDS_A).node_id(),
        addrs: vec!["192.0.2.10:7000".into(), "[2001:db8::a]:7000".into()],
        asn: Some(64_500),
        last_seen: Some(NOW - 30),
    }
}

fn node_b() -> NodeInfo {
    NodeInfo {
        id: identity(SEEDS_B).node_id(),
        addrs: vec!["198.51.100.20:7000".into()],
        asn: None,
        last_seen: None,
    }
}

/// A frame whose payload (and cap, if any) is CBOR: the hex, then each as CBOR diagnostic
/// notation.
fn frame_cbor(bytes: &[u8]) -> String {
    let mut s = frame_hex(bytes);
    let cap_len = u16::from_be_bytes([bytes[28], bytes[29]]) as usize;
    let (cap, payload) = bytes[HEADER_LEN..].split_at(cap_len);
    if !cap.is_empty() {
        s.push_str("# cap, in CBOR diagnostic notation\n");
        s.push_str(&diag(cap));
    }
    if !payload.is_empty() {
        s.push_str("# payload, in CBOR diagnostic notation\n");
        s.push_str(&diag(payload));
    }
    s
}

/// A frame whose payload is text (JSON, or an object's bytes): the hex, then the text.
fn frame_text(bytes: &[u8]) -> String {
    let mut s = frame_hex(bytes);
    s.push_str("# payload as text\n");
    s.push_str(std::str::from_utf8(&bytes[HEADER_LEN..]).expect("UTF-8 payload"));
    s.push('\n');
    s
}

fn cbor<T>(msg: &T, enc: impl Fn(&T, &mut Vec<u8>)) -> Vec<u8> {
    let mut out = Vec::new();
    enc(msg, &mut out);
    out
}

// --- CBOR diagnostic notation (RFC 8949 section 8) ---------------------------------------------

/// Byte strings longer than this are shown shortened in diagnostic notation.
const DIAG_BYTES_MAX: usize = 32;
/// A map or array whose one-line form is longer than this is broken over lines.
const DIAG_LINE_MAX: usize = 72;

/// Diagnostic notation of one CBOR item, indented two spaces a level when it does not fit a line.
/// Byte strings over 32 bytes show their first 8 bytes and their length in a comment.
pub fn diag(bytes: &[u8]) -> String {
    let v: ciborium::Value = ciborium::from_reader(bytes).expect("example is CBOR");
    let mut s = String::new();
    diag_value(&v, 0, &mut s);
    s.push('\n');
    s
}

fn diag_inline(v: &ciborium::Value) -> String {
    use ciborium::Value as V;
    match v {
        V::Integer(i) => i128::from(*i).to_string(),
        V::Bytes(b) if b.len() > DIAG_BYTES_MAX => {
            format!("h'{}...' / {} bytes /", hex::encode(&b[..8]), b.len())
        }
        V::Bytes(b) => format!("h'{}'", hex::encode(b)),
        V::Text(t) => format!("{t:?}"),
        V::Bool(b) => b.to_string(),
        V::Null => "null".to_owned(),
        V::Array(items) => {
            let inner: Vec<_> = items.iter().map(diag_inline).collect();
            format!("[{}]", inner.join(", "))
        }
        V::Map(entries) => {
            let inner: Vec<_> = entries
                .iter()
                .map(|(k, v)| format!("{}: {}", diag_inline(k), diag_inline(v)))
                .collect();
            format!("{{{}}}", inner.join(", "))
        }
        other => panic!("examples use no {other:?}"),
    }
}

fn diag_value(v: &ciborium::Value, indent: usize, s: &mut String) {
    use ciborium::Value as V;
    let line = diag_inline(v);
    if indent + line.len() <= DIAG_LINE_MAX || !matches!(v, V::Array(_) | V::Map(_)) {
        s.push_str(&line);
        return;
    }
    let pad = "  ".repeat(indent + 1);
    let (open, close) = if matches!(v, V::Array(_)) {
        ('[', ']')
    } else {
        ('{', '}')
    };
    s.push(open);
    s.push('\n');
    let n = match v {
        V::Array(items) => items.len(),
        V::Map(entries) => entries.len(),
        _ => unreachable!(),
    };
    for i in 0..n {
        s.push_str(&pad);
        match v {
            V::Array(items) => diag_value(&items[i], indent + 1, s),
            V::Map(entries) => {
                let key = diag_inline(&entries[i].0);
                s.push_str(&key);
                s.push_str(": ");
                diag_value(&entries[i].1, indent + 1, s);
            }
            _ => unreachable!(),
        }
        if i + 1 < n {
            s.push(',');
        }
        s.push('\n');
    }
    s.push_str(&"  ".repeat(indent));
    s.push(close);
}

// --- Annotated CBOR: one item head (and its content) a line ------------------------------------

/// Every item of `bytes` on its own line: its hex (head, then content for strings), indented by
/// nesting, and a comment naming it.
pub fn annotated(bytes: &[u8]) -> String {
    let mut lines = Vec::new();
    let mut pos = 0;
    annotate_item(bytes, &mut pos, 0, &mut lines);
    assert_eq!(pos, bytes.len(), "one item");
    let width = lines.iter().map(|(h, _)| h.len()).max().unwrap_or(0);
    let mut s = String::new();
    for (hex, comment) in lines {
        s.push_str(&format!("{hex:<width$}  # {comment}\n"));
    }
    s
}

fn annotate_item(b: &[u8], pos: &mut usize, depth: usize, lines: &mut Vec<(String, String)>) {
    let start = *pos;
    let first = b[*pos];
    *pos += 1;
    let (major, ai) = (first >> 5, first & 0x1f);
    let arg = match ai {
        0..=23 => u64::from(ai),
        24..=27 => {
            let n = 1usize << (ai - 24);
            let v = b[*pos..*pos + n]
                .iter()
                .fold(0u64, |v, &x| v << 8 | u64::from(x));
            *pos += n;
            v
        }
        _ => panic!("examples use definite lengths"),
    };
    let head = hex::encode(&b[start..*pos]);
    let pad = "  ".repeat(depth);
    match major {
        0 => lines.push((format!("{pad}{head}"), format!("unsigned({arg})"))),
        2 | 3 => {
            let content = &b[*pos..*pos + arg as usize];
            *pos += arg as usize;
            let comment = if major == 2 {
                format!("bytes({arg})")
            } else {
                format!(
                    "text({arg}) {:?}",
                    std::str::from_utf8(content).expect("UTF-8")
                )
            };
            // Long strings: the head on one line, the content 32 bytes a line below it.
            if content.len() > DIAG_BYTES_MAX {
                lines.push((format!("{pad}{head}"), comment));
                for (i, chunk) in content.chunks(32).enumerate() {
                    lines.push((
                        format!("{pad}  {}", hex::encode(chunk)),
                        format!("bytes {}..{}", i * 32, i * 32 + chunk.len()),
                    ));
                }
            } else {
                lines.push((format!("{pad}{head} {}", hex::encode(content)), comment));
            }
        }
        4 => {
            lines.push((format!("{pad}{head}"), format!("array({arg})")));
            for _ in 0..arg {
                annotate_item(b, pos, depth + 1, lines);
            }
        }
        5 => {
            lines.push((format!("{pad}{head}"), format!("map({arg})")));
            for _ in 0..arg {
                annotate_item(b, pos, depth + 1, lines);
                annotate_item(b, pos, depth + 2, lines);
            }
        }
        7 => {
            let name = match ai {
                20 => "false",
                21 => "true",
                22 => "null",
                _ => panic!("examples use no other simple value"),
            };
            lines.push((format!("{pad}{head}"), name.to_owned()));
        }
        _ => panic!("examples use no major type {major}"),
    }
}

// --- App 1: objects ----------------------------------------------------------------------------

fn objects(m: &mut BTreeMap<&'static str, String>) {
    let addr = hello_addr();
    let req = |r: &ObjectRequest| {
        let bytes = cbor(r, ObjectRequest::encode);
        assert_eq!(&ObjectRequest::decode(&bytes).expect("decodes"), r);
        bytes
    };

    let get = req(&ObjectRequest::Get(Get::whole(addr)));
    m.insert(
        "objects_get",
        frame_cbor(&encode(&OutFrame::request(APP_OBJECTS, 1, &get))),
    );
    m.insert(
        "objects_get_response",
        frame_text(&encode(&OutFrame::response(
            APP_OBJECTS,
            1,
            200,
            b"hello world",
        ))),
    );

    let range = Get {
        addr,
        range: Some(ByteRange { start: 6, end: 100 }),
        hops: 0,
    };
    let served = range.range.unwrap().clamp(11);
    assert_eq!((served.start, served.end, range.status()), (6, 11, 206));
    let ranged = req(&ObjectRequest::Get(range));
    m.insert(
        "objects_get_range",
        frame_cbor(&encode(&OutFrame::request(APP_OBJECTS, 2, &ranged))),
    );
    m.insert(
        "objects_get_range_response",
        frame_text(&encode(&OutFrame::response(
            APP_OBJECTS,
            2,
            206,
            &b"hello world"[served.start as usize..served.end as usize],
        ))),
    );

    // A 150,000-byte object streamed in chunk_bytes (65,536) payloads: headers only.
    let body = vec![0x5au8; 150_000];
    let chunks: Vec<&[u8]> = body.chunks(CHUNK_BYTES).collect();
    let mut s = String::new();
    let mut offset = 0;
    for (i, chunk) in chunks.iter().enumerate() {
        let mut flags = Flags::RESP;
        if i == 0 {
            flags = flags | Flags::START;
        }
        if i + 1 == chunks.len() {
            flags = flags | Flags::END;
        }
        let frame = encode(&OutFrame {
            flags,
            ..OutFrame::response(APP_OBJECTS, 4, 200, chunk)
        });
        s.push_str(frame_hex(&frame).lines().next().unwrap());
        s.push_str(&format!(
            "\n# payload: object bytes {offset}..{}\n",
            offset + chunk.len()
        ));
        offset += chunk.len();
    }
    m.insert("objects_get_stream", s);

    let head = req(&ObjectRequest::Head(Head { addr }));
    m.insert(
        "objects_head",
        frame_cbor(&encode(&OutFrame::request(APP_OBJECTS, 5, &head))),
    );
    let head_resp = cbor(&HeadResp { size: 11 }, HeadResp::encode);
    m.insert(
        "objects_head_response",
        frame_cbor(&encode(&OutFrame::response(
            APP_OBJECTS,
            5,
            200,
            &head_resp,
        ))),
    );

    // PUT "hello world" for tenant 0xaa with the example capability: START carries the cap and
    // the request, END the body.
    let cap = example_cap().encode();
    let put = req(&ObjectRequest::Put(Put { addr, size: 11 }));
    m.insert(
        "objects_put_start",
        frame_cbor(&encode(&OutFrame {
            flags: Flags::REQ | Flags::START,
            tenant_id: TENANT,
            cap: &cap,
            ..OutFrame::request(APP_OBJECTS, 3, &put)
        })),
    );
    m.insert(
        "objects_put_end",
        frame_text(&encode(&OutFrame {
            flags: Flags::REQ | Flags::END,
            tenant_id: TENANT,
            ..OutFrame::request(APP_OBJECTS, 3, b"hello world")
        })),
    );
    let put_resp = PutResp {
        addr,
        size: 11,
        stored: true,
    };
    let put_resp = cbor(&put_resp, PutResp::encode);
    m.insert(
        "objects_put_response",
        frame_cbor(&encode(&OutFrame {
            tenant_id: TENANT,
            ..OutFrame::response(APP_OBJECTS, 3, 200, &put_resp)
        })),
    );

    // The same PUT an hour later: the capability has expired.
    let err = Capability::decode(&cap)
        .expect("token decodes")
        .verify(
            cap_keys,
            &CapRequest {
                op: Op::Put,
                now: NOW + 3_600,
                tenant: TENANT,
                bytes: Some(11),
            },
        )
        .unwrap_err();
    let mut body = Vec::new();
    ErrorBody::new(err.reason(), err.to_string(), 6, 0).encode(APP_OBJECTS, &mut body);
    m.insert(
        "objects_put_forbidden",
        frame_text(&encode(&OutFrame {
            tenant_id: TENANT,
            ..OutFrame::response(APP_OBJECTS, 6, 403, &body)
        })),
    );
    let mut body = Vec::new();
    ErrorBody::new(
        Reason::NotFound,
        format!("no object {}", ObjectAddr::of(b"abc")),
        7,
        0,
    )
    .encode(APP_OBJECTS, &mut body);
    m.insert(
        "objects_not_found",
        frame_text(&encode(&OutFrame::response(APP_OBJECTS, 7, 404, &body))),
    );
}

// --- App 2: gossip -----------------------------------------------------------------------------

fn gossip(m: &mut BTreeMap<&'static str, String>) {
    let (topic, ts, data) = ("news", NOW * 1_000, b"hello".to_vec());
    let mut input = Vec::new();
    input.extend((topic.len() as u16).to_be_bytes());
    input.extend(topic.as_bytes());
    input.extend(ts.to_be_bytes());
    input.extend(&data);
    let id = msg_id(topic, ts, &data);
    assert_eq!(id.0, *blake3::hash(&input).as_bytes());
    m.insert(
        "gossip_msg_id",
        format!(
            "# u16_be(len(topic)) || topic || u64_be(ts) || data, topic \"news\", ts {ts}, data \"hello\"\n\
             {}# msg_id = BLAKE3-256 of the above\n{}\n",
            plain_hex(&input),
            hex::encode(id.0)
        ),
    );

    let event = GossipEvent::new(topic, ts, data);
    let bytes = cbor(&event, GossipEvent::encode);
    assert_eq!(GossipEvent::decode(&bytes), Ok(event.clone()));
    m.insert(
        "gossip_event",
        frame_cbor(&encode(&OutFrame {
            flags: Flags::EVENT,
            ..OutFrame::request(APP_GOSSIP, 0, &bytes)
        })),
    );
    let mut relayed = Vec::new();
    event.relayed(1).encode(&mut relayed);
    m.insert(
        "gossip_event_relayed",
        frame_cbor(&encode(&OutFrame {
            flags: Flags::EVENT,
            ..OutFrame::request(APP_GOSSIP, 0, &relayed)
        })),
    );

    let req = |name: &'static str, corr_id: u64, r: GossipRequest, m: &mut BTreeMap<_, _>| {
        let bytes = cbor(&r, GossipRequest::encode);
        assert_eq!(GossipRequest::decode(&bytes), Ok(r));
        m.insert(
            name,
            frame_cbor(&encode(&OutFrame::request(APP_GOSSIP, corr_id, &bytes))),
        );
    };
    req(
        "gossip_subscribe",
        1,
        GossipRequest::Subscribe(Subscribe {
            topic: topic.into(),
        }),
        m,
    );
    let ok = cbor(&GossipOk, GossipOk::encode);
    m.insert(
        "gossip_ok",
        frame_cbor(&encode(&OutFrame::response(APP_GOSSIP, 1, 200, &ok))),
    );
    req(
        "gossip_unsubscribe",
        2,
        GossipRequest::Unsubscribe(Unsubscribe {
            topic: topic.into(),
        }),
        m,
    );
    let other = msg_id(topic, ts + 1, b"second");
    req(
        "gossip_ihave",
        3,
        GossipRequest::IHave(IHave {
            topic: topic.into(),
            ids: vec![id, other],
        }),
        m,
    );
    req(
        "gossip_iwant",
        4,
        GossipRequest::IWant(IWant { ids: vec![other] }),
        m,
    );
    let mut body = Vec::new();
    ErrorBody::new(Reason::Quota, "more than 64 requests unanswered", 5, 1_000)
        .encode(APP_GOSSIP, &mut body);
    m.insert(
        "gossip_error",
        frame_cbor(&encode(&OutFrame::response(APP_GOSSIP, 5, 429, &body))),
    );
}

// --- App 3: DHT --------------------------------------------------------------------------------

fn dht(m: &mut BTreeMap<&'static str, String>) {
    let req = |name: &'static str, corr_id: u64, r: DhtRequest, m: &mut BTreeMap<_, _>| {
        let bytes = cbor(&r, DhtRequest::encode);
        assert_eq!(DhtRequest::decode(&bytes), Ok(r));
        m.insert(
            name,
            frame_cbor(&encode(&OutFrame::request(APP_DHT, corr_id, &bytes))),
        );
    };
    let resp = |name: &'static str, corr_id: u64, bytes: &[u8], m: &mut BTreeMap<_, _>| {
        m.insert(
            name,
            frame_cbor(&encode(&OutFrame::response(APP_DHT, corr_id, 200, bytes))),
        );
    };
    let target = identity(SEEDS_B).node_id().0;
    req(
        "dht_find_node",
        1,
        DhtRequest::FindNode(FindNode { target }),
        m,
    );
    let found = FindNodeResp {
        closest: vec![node_b(), node_a()],
    };
    let bytes = cbor(&found, FindNodeResp::encode);
    assert_eq!(FindNodeResp::decode(&bytes), Ok(found));
    resp("dht_find_node_response", 1, &bytes, m);

    let key = hello_addr().0;
    req(
        "dht_find_value",
        2,
        DhtRequest::FindValue(FindValue { key }),
        m,
    );
    let value = FindValueResp {
        providers: Some(vec![example_record()]),
        closest: Some(vec![node_b()]),
    };
    let bytes = cbor(&value, FindValueResp::encode);
    assert_eq!(FindValueResp::decode(&bytes), Ok(value));
    resp("dht_find_value_response", 2, &bytes, m);

    req(
        "dht_provide",
        3,
        DhtRequest::Provide(Box::new(Provide {
            record: example_record(),
        })),
        m,
    );
    for (name, corr_id, r) in [
        ("dht_provide_accepted", 3, ProvideResp::accepted()),
        (
            "dht_provide_rejected",
            4,
            ProvideResp::rejected(Reason::Stale),
        ),
    ] {
        let bytes = cbor(&r, ProvideResp::encode);
        assert_eq!(ProvideResp::decode(&bytes), Ok(r));
        resp(name, corr_id, &bytes, m);
    }
    req("dht_ping", 5, DhtRequest::Ping(Ping { nonce: 7 }), m);
    let bytes = cbor(&PingResp { pong: 7 }, PingResp::encode);
    resp("dht_pong", 5, &bytes, m);
    let mut body = Vec::new();
    ErrorBody::new(
        Reason::NotReady,
        "routing table still bootstrapping",
        6,
        2_000,
    )
    .encode(APP_DHT, &mut body);
    m.insert(
        "dht_error",
        frame_cbor(&encode(&OutFrame::response(APP_DHT, 6, 503, &body))),
    );
}

// --- Provider records --------------------------------------------------------------------------

fn records(m: &mut BTreeMap<&'static str, String>) {
    let rec = example_record();
    let mut msg = Vec::new();
    signed_bytes(&rec, &mut msg);
    m.insert("record_signed_bytes", annotated(&msg));
    let mut enc = Vec::new();
    encode_record(&rec, &mut enc);
    m.insert("record_cbor", annotated(&enc));

    // Validation outcomes of the example record (and variants of it), in the checks' order.
    let classic = RecordPolicy {
        require_pq_sig: false,
    };
    let pq = RecordPolicy::default();
    let resign = |mut r: ProviderRecord| {
        let mut msg = Vec::new();
        signed_bytes(&r, &mut msg);
        r.sigs[0].sig = identity(SEEDS_A).sign_ed25519(&msg).to_vec().into();
        r
    };
    let len = enc.len();
    let cases: Vec<(&str, ProviderRecord, usize, u64, RecordPolicy)> = vec![
        (
            "as signed, now = ts, require_pq_sig off",
            rec.clone(),
            len,
            NOW,
            classic,
        ),
        (
            "as signed, encoded size 16,385",
            rec.clone(),
            16_385,
            NOW,
            classic,
        ),
        (
            "publisher changed (and re-signed)",
            resign(ProviderRecord {
                publisher: identity(SEEDS_B).node_id().0.into(),
                ..rec.clone()
            }),
            len,
            NOW,
            classic,
        ),
        (
            "ttl_s changed, not re-signed",
            ProviderRecord {
                ttl_s: 3_600,
                ..rec.clone()
            },
            len,
            NOW,
            classic,
        ),
        ("as signed, require_pq_sig on", rec.clone(), len, NOW, pq),
        (
            "ttl_s 172,801 (re-signed)",
            resign(ProviderRecord {
                ttl_s: 172_801,
                ..rec.clone()
            }),
            len,
            NOW,
            classic,
        ),
        (
            "as signed, now = ts - 301",
            rec.clone(),
            len,
            NOW - 301,
            classic,
        ),
        (
            "as signed, now = ts + ttl_s",
            rec.clone(),
            len,
            NOW + 86_400,
            classic,
        ),
    ];
    let mut s = String::new();
    for (what, r, len, now, policy) in cases {
        let outcome = match validate(&r, len, now, &policy) {
            Ok(()) => "valid".to_owned(),
            Err(e) => format!("{}: {e}", e.reason().label()),
        };
        s.push_str(&format!("{what:<40} -> {outcome}\n"));
    }
    m.insert("record_validation", s);
}

// --- Capabilities ------------------------------------------------------------------------------

fn capabilities(m: &mut BTreeMap<&'static str, String>) {
    let cap = example_cap();
    let mut s = format!(
        "root_key = {}\nkid      = {} (\"rootkey1\")\n",
        hex::encode(CAP_ROOT),
        hex::encode(CAP_KID)
    );
    let mut tag = blake3::keyed_hash(&CAP_ROOT, &CAP_KID);
    s.push_str(&format!(
        "tag_0    = BLAKE3-keyed(root_key, kid)\n         = {}\n",
        tag.to_hex()
    ));
    for (i, c) in cap.caveats.iter().enumerate() {
        Caveat::parse(c).expect("example caveats parse");
        tag = blake3::keyed_hash(tag.as_bytes(), c.as_bytes());
        s.push_str(&format!(
            "tag_{}    = BLAKE3-keyed(tag_{}, {c:?})\n         = {}\n",
            i + 1,
            i,
            tag.to_hex()
        ));
    }
    assert_eq!(*tag.as_bytes(), cap.tag);
    m.insert("cap_chain", s);

    let wire = cap.encode();
    assert_eq!(Capability::decode(&wire), Ok(cap.clone()));
    m.insert("cap_token", annotated(&wire));

    let put = |now, tenant, bytes| CapRequest {
        op: Op::Put,
        now,
        tenant,
        bytes,
    };
    let mut narrowed = cap.attenuate("max_bytes=5");
    let cases: Vec<(&str, Option<&Capability>, CapRequest)> = vec![
        (
            "put, tenant 0xaa, 11 bytes, now = exp - 1",
            Some(&cap),
            put(NOW + 3_599, TENANT, Some(11)),
        ),
        (
            "get, tenant 0xaa",
            Some(&cap),
            CapRequest {
                op: Op::Get,
                ..put(NOW, TENANT, None)
            },
        ),
        ("no capability", None, put(NOW, TENANT, Some(11))),
        (
            "gossip",
            Some(&cap),
            CapRequest {
                op: Op::Gossip,
                ..put(NOW, TENANT, None)
            },
        ),
        ("put, tenant 0xab", Some(&cap), put(NOW, 0xab, Some(11))),
        (
            "put, now = exp",
            Some(&cap),
            put(NOW + 3_600, TENANT, Some(11)),
        ),
        (
            "put 11 bytes, + max_bytes=5",
            Some(&narrowed),
            put(NOW, TENANT, Some(11)),
        ),
    ];
    let mut s = String::new();
    for (what, c, req) in &cases {
        let outcome = match c {
            None => {
                let e = ronode_proto::cap::CapError::Missing;
                format!("{} {}: {e}", e.reason().status(), e.reason().label())
            }
            Some(c) => match c.verify(cap_keys, req) {
                Ok(()) => "allowed".to_owned(),
                Err(e) => format!("{} {}: {e}", e.reason().status(), e.reason().label()),
            },
        };
        s.push_str(&format!("{what:<42} -> {outcome}\n"));
    }
    // Widening without the key: drop the holder's narrowing caveat, keep the tag.
    narrowed.caveats.pop();
    let e = narrowed
        .verify(cap_keys, &put(NOW, TENANT, Some(11)))
        .unwrap_err();
    s.push_str(&format!(
        "{:<42} -> {} {}: {e}\n",
        "max_bytes=5 removed, tag kept",
        e.reason().status(),
        e.reason().label()
    ));
    m.insert("cap_verification", s);

    m.insert(
        "cap_root_key_file",
        format!(
            "ron-cap-root-v1\nkid={}\nkey={}\n",
            hex::encode(CAP_KID),
            hex::encode(CAP_ROOT)
        ),
    );
}

// --- Identities and ids ------------------------------------------------------------------------

fn identities(m: &mut BTreeMap<&'static str, String>) {
    let a = identity(SEEDS_A);
    m.insert(
        "identity_key_file",
        format!(
            "ron-identity-v1\ned25519-seed={}\nml-dsa-87-seed={}\n",
            hex::encode(SEEDS_A.0),
            hex::encode(SEEDS_A.1)
        ),
    );
    let (cert_der, _key) = cert::node_certificate(&a).expect("certificate");
    assert_eq!(cert::node_id_from_cert(&cert_der), Ok(a.node_id()));
    assert_eq!(
        NodeId::from_keys(&a.ed25519_pk(), a.ml_dsa_pk()),
        a.node_id()
    );
    let ml_dsa_pk = a.ml_dsa_pk();
    m.insert(
        "identity_derivation",
        format!(
            "ed25519_pk         = {}\n\
             ml_dsa_pk          = {}... ({} bytes)\n\
             ml_dsa_pk_hash     = BLAKE3-256(ml_dsa_pk)\n                   = {}\n\
             NodeId             = BLAKE3-256(ed25519_pk || ml_dsa_pk_hash)\n                   = {}\n\
             certificate CN     = {}\n",
            hex::encode(a.ed25519_pk()),
            hex::encode(&ml_dsa_pk[..16]),
            ml_dsa_pk.len(),
            hex::encode(a.ml_dsa_pk_hash()),
            a.node_id(),
            cert::common_name(&a),
        ),
    );

    let b = identity(SEEDS_B).node_id();
    let d = distance(&a.node_id().0, &b.0);
    m.insert(
        "ids_distance",
        format!(
            "A                  = {}\nB                  = {}\n\
             distance = A XOR B = {}\n\
             leading zero bits  = {}\nbucket of B at A   = 255 - {} = {}\n",
            a.node_id(),
            b,
            hex::encode(d.0),
            d.leading_zeros(),
            d.leading_zeros(),
            bucket_index(&a.node_id().0, &b.0).expect("distinct ids"),
        ),
    );

    let mut s = String::new();
    for text in ["", "abc", "hello world"] {
        s.push_str(&format!(
            "{:<13} -> {}\n",
            format!("{text:?}"),
            ObjectAddr::of(text.as_bytes())
        ));
    }
    m.insert("object_addresses", s);
}
