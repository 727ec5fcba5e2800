//! Fuzz smoke test: every target of `ronode_proto::fuzz_targets` (the functions the cargo-fuzz
//! crate in `fuzz/` runs) fed valid inputs built with the crate's own encoders, then well over
//! 100,000 mutated and random inputs, on stable Rust, deterministically (a fixed-seed splitmix64
//! written here; no fuzzing engine). The targets assert their properties themselves; a failure
//! prints the target, the input number and the input's hex, which reproduces it with
//! `ronode_proto::fuzz_targets::<target>(&hex::decode("..").unwrap())`.
//!
//! Targets run on their own threads (the longest, `frame_decode`, on two); the whole test takes
//! a few seconds of a debug build on two cores. `FUZZ_SMOKE_ONLY=<target>` runs one target alone;
//! `FUZZ_SMOKE_CORPUS=<dir>` also writes the seeds to `<dir>/<target>/` as a cargo-fuzz corpus.

use std::panic::{catch_unwind, resume_unwind};
use std::time::Instant;

use ronode_proto::cap::Capability;
use ronode_proto::cert::node_certificate;
use ronode_proto::control::{Control, GoAway, Hello, HelloReply};
use ronode_proto::error_body::ErrorBody;
use ronode_proto::frame::{FrameEncoder, OutFrame};
use ronode_proto::fuzz_targets::{self, CAP_KID, CAP_ROOT_KEY, NOW};
use ronode_proto::identity::{Identity, IdentitySeeds};
use ronode_proto::limits::{K, MAX_FRAME, MAX_GOSSIP_IDS, MAX_TOPIC_BYTES};
use ronode_proto::msg::dht::{
    DhtRequest, FindNode, FindNodeResp, FindValue, FindValueResp, NodeInfo, Ping, PingResp,
    Provide, ProvideResp,
};
use ronode_proto::msg::gossip::{
    msg_id, GossipEvent, GossipOk, GossipRequest, IHave, IWant, Subscribe, Unsubscribe,
};
use ronode_proto::msg::objects::{ByteRange, Get, Head, HeadResp, ObjectRequest, Put, PutResp};
use ronode_proto::record::{encode_record, sign_record, ProviderRecord};
use ronode_proto::{Flags, NodeId, ObjectAddr, Reason};

/// Mutated and random inputs the whole test must feed, at the least.
const MIN_INPUTS: usize = 100_000;

/// splitmix64 with a fixed seed per target.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (`n > 0`).
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    /// True `num` times in `den`.
    fn chance(&mut self, num: u64, den: u64) -> bool {
        self.next() % den < num
    }

    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }

    fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.next() as u8).collect()
    }

    /// A length skewed to small values, at most `max`.
    fn len(&mut self, max: usize) -> usize {
        match self.below(4) {
            0 => self.below(9.min(max + 1)),
            1 => self.below(65.min(max + 1)),
            2 => self.below(513.min(max + 1)),
            _ => self.below(max + 1),
        }
    }
}

/// What a target's inputs are made from.
struct Plan {
    target: &'static str,
    /// Mutated and random inputs to feed (the seeds themselves come on top).
    budget: usize,
    seeds: Vec<Vec<u8>>,
    /// Tokens to insert or overwrite with (keys, values, structural bytes).
    dict: Vec<Vec<u8>>,
    shape: Shape,
    /// Threads sharing the budget (a long target split to keep the run balanced).
    shards: usize,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Shape {
    Frames,
    Json,
    Cbor,
    Text,
    Der,
}

// ---------------------------------------------------------------------------------------------
// Seeds

fn unhex(spaced: &str) -> Vec<u8> {
    hex::decode(spaced.replace(' ', "")).expect("seed hex")
}

fn identity(n: u8) -> Identity {
    Identity::from_seeds(&IdentitySeeds {
        ed25519: [n; 32],
        ml_dsa: [n.wrapping_add(50); 32],
    })
}

/// Compressible but not degenerate text (zstd ratio well under the cap of 10).
fn text(n: usize, seed: u64) -> Vec<u8> {
    let mut rng = Rng(seed);
    let words: [&[u8]; 8] = [
        b"object ", b"frame ", b"gossip ", b"record ", b"node ", b"peer ", b"zstd ", b"cap ",
    ];
    let mut out = Vec::with_capacity(n + 8);
    while out.len() < n {
        let w = *rng.pick(&words);
        out.extend_from_slice(w);
        if rng.chance(1, 4) {
            out.extend(rng.bytes(2));
        }
    }
    out.truncate(n);
    out
}

fn frame(f: &OutFrame<'_>) -> Vec<u8> {
    let mut out = Vec::new();
    FrameEncoder::new(MAX_FRAME)
        .encode(f, &mut out)
        .expect("seed frame encodes");
    out
}

/// A frame header with a raw payload, no checks: for payloads the encoder would not write.
fn raw_frame(flags: Flags, code: u16, app: u16, corr: u64, payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    out.extend_from_slice(&(38 + payload.len() as u32).to_be_bytes());
    out.extend_from_slice(&1u16.to_be_bytes());
    out.extend_from_slice(&flags.bits().to_be_bytes());
    out.extend_from_slice(&code.to_be_bytes());
    out.extend_from_slice(&app.to_be_bytes());
    out.extend_from_slice(&0u128.to_be_bytes());
    out.extend_from_slice(&0u16.to_be_bytes());
    out.extend_from_slice(&corr.to_be_bytes());
    out.extend_from_slice(payload);
    out
}

fn cbor<T>(v: &T, enc: fn(&T, &mut Vec<u8>)) -> Vec<u8> {
    let mut out = Vec::new();
    enc(v, &mut out);
    out
}

fn cap_seeds() -> Vec<Vec<u8>> {
    let exp = format!("exp={}", NOW + 100);
    let many: Vec<String> = (0..33).map(|i| format!("max_bytes={}", 1000 + i)).collect();
    let many: Vec<&str> = many.iter().map(String::as_str).collect();
    let mut caps = vec![
        Capability::mint(&CAP_ROOT_KEY, CAP_KID, &[]),
        Capability::mint(&CAP_ROOT_KEY, CAP_KID, &["scope=get,put"]),
        Capability::mint(&CAP_ROOT_KEY, CAP_KID, &["scope=gossip", &exp]),
        Capability::mint(
            &CAP_ROOT_KEY,
            CAP_KID,
            &["scope=put", "max_bytes=100", "tenant=0xaa", &exp],
        ),
        Capability::mint(&CAP_ROOT_KEY, CAP_KID, &["scope=get"]).attenuate("tenant=0x00aa"),
        Capability::mint(
            &CAP_ROOT_KEY,
            CAP_KID,
            &["exp=0", "color=blue", "scope=get,,put"],
        ),
        Capability::mint(&CAP_ROOT_KEY, *b"other-id", &["scope=get"]),
        Capability::mint(&CAP_ROOT_KEY, CAP_KID, &many[..32]),
        Capability::mint(&CAP_ROOT_KEY, CAP_KID, &many),
    ];
    caps[1].tag[0] ^= 1;
    let mut seeds: Vec<Vec<u8>> = caps.iter().map(Capability::encode).collect();
    seeds.push(Capability::mint(&CAP_ROOT_KEY, CAP_KID, &["scope=get,put"]).encode());
    seeds
}

fn frame_seeds() -> Vec<Vec<u8>> {
    // PROTOCOL.md section 3's golden frames.
    let mut reply =
        unhex("0000008b00010002 00c8 0000 000000000000000000000000000000bb 0000 0000000000000007");
    reply.extend_from_slice(&Control::HelloReply(HelloReply::default()).to_vec());
    let mut seeds = vec![
        unhex(
            "00000036 0001 0001 0000 0000 000000000000000000000000000000aa 0000 \
             000000000000002a 7b227561223a2273646b2f302e31227d",
        ),
        reply,
        unhex(
            "0000003100010002 00c8 00c8 000000000000000000000000000000dd 0000 \
             000000000000007b 68656c6c6f20776f726c64",
        ),
    ];

    // COMP frames through the encoder's sender rule.
    let body = text(3000, 1);
    let cap = Capability::mint(&CAP_ROOT_KEY, CAP_KID, &["scope=put"]).encode();
    for (flags, code, cap) in [
        (Flags::REQ | Flags::COMP, 0, &[][..]),
        (
            Flags::RESP | Flags::COMP | Flags::START | Flags::END,
            200,
            &[],
        ),
        (Flags::EVENT | Flags::COMP | Flags::ACK_REQ, 0, &[]),
        (Flags::REQ | Flags::COMP | Flags::START, 0, &cap[..]),
    ] {
        let f = frame(&OutFrame {
            flags,
            code,
            app_proto_id: 1,
            tenant_id: 0x1234,
            corr_id: 9,
            cap,
            payload: &body[..1000],
        });
        assert!(Flags::from_bits(u16::from_be_bytes([f[6], f[7]])).contains(Flags::COMP));
        seeds.push(f);
    }

    // A session: HELLO, a PUT stream (START with the request and a cap, body, END), a GET, a
    // gossip EVENT asking for an ACK, an error RESP, an APP_E2E frame.
    let data = text(700, 2);
    let addr = ObjectAddr::of(&data);
    let put = cbor(
        &ObjectRequest::Put(Put {
            addr,
            size: data.len() as u64,
        }),
        ObjectRequest::encode,
    );
    let get = cbor(
        &ObjectRequest::Get(Get {
            addr,
            range: Some(ByteRange { start: 1, end: 99 }),
            hops: 1,
        }),
        ObjectRequest::encode,
    );
    let ev = cbor(
        &GossipEvent::new("news", NOW * 1000, b"hi".to_vec()),
        GossipEvent::encode,
    );
    let mut err = Vec::new();
    ErrorBody::new(Reason::NotFound, "no such object", 5, 0).encode(1, &mut err);
    let hello = Control::Hello(Hello {
        ua: Some("fuzz/1".into()),
        max_frame: Some(65_536),
    })
    .to_vec();
    let session = [
        frame(&OutFrame::request(0, 1, &hello)),
        frame(&OutFrame {
            flags: Flags::REQ | Flags::START,
            cap: &cap,
            ..OutFrame::request(1, 2, &put)
        }),
        frame(&OutFrame::request(1, 2, &data[..400])),
        frame(&OutFrame {
            flags: Flags::REQ | Flags::END,
            ..OutFrame::request(1, 2, &data[400..])
        }),
        frame(&OutFrame::request(1, 3, &get)),
        frame(&OutFrame {
            flags: Flags::EVENT | Flags::ACK_REQ,
            ..OutFrame::request(2, 4, &ev)
        }),
        frame(&OutFrame::response(1, 5, 404, &err)),
        frame(&OutFrame {
            flags: Flags::REQ | Flags::APP_E2E | Flags::START | Flags::END,
            ..OutFrame::request(200, 6, &text(64, 3))
        }),
    ];
    seeds.push(session.concat());
    seeds.extend(session.iter().cloned());
    // Responses before any request, and a stream that never ends.
    seeds.push(
        [
            frame(&OutFrame::response(1, 77, 200, b"")),
            frame(&OutFrame {
                flags: Flags::RESP | Flags::START,
                ..OutFrame::response(1, 78, 206, b"part")
            }),
        ]
        .concat(),
    );

    // COMP payloads the decoder must refuse: a ratio bomb, too large a window, two zstd frames,
    // a skippable frame, a cut frame; and one just within the caps.
    let bomb = zstd::bulk::compress(&vec![0u8; 1 << 20], 19).unwrap();
    let one = zstd::bulk::compress(&text(2000, 4), 3).unwrap();
    let big_window = [
        &[0x28, 0xb5, 0x2f, 0xfd, 0x00, 0xf8][..],
        &[0x09, 0x00, 0x00, b'x'],
    ]
    .concat();
    let skippable = [&[0x50, 0x2a, 0x4d, 0x18, 4, 0, 0, 0][..], b"skip"].concat();
    for payload in [
        bomb,
        big_window,
        [one.clone(), one.clone()].concat(),
        skippable,
        one[..one.len() - 3].to_vec(),
        one,
    ] {
        seeds.push(raw_frame(Flags::REQ | Flags::COMP, 0, 1, 11, &payload));
    }
    // Headers alone: oversize, below the header, a cap out of bounds.
    let mut h = raw_frame(Flags::REQ, 0, 1, 1, b"");
    h[0..4].copy_from_slice(&(MAX_FRAME + 1).to_be_bytes());
    seeds.push(h.clone());
    h[0..4].copy_from_slice(&37u32.to_be_bytes());
    seeds.push(h);
    let mut h = raw_frame(Flags::REQ | Flags::START, 0, 1, 1, b"ab");
    h[28..30].copy_from_slice(&3u16.to_be_bytes());
    seeds.push(h);
    seeds
}

fn control_seeds() -> Vec<Vec<u8>> {
    let mut seeds: Vec<Vec<u8>> = [
        Control::Hello(Hello {
            ua: Some("sdk/0.1".into()),
            max_frame: None,
        }),
        Control::Hello(Hello {
            ua: None,
            max_frame: Some(4096),
        }),
        Control::Hello(Hello {
            ua: Some("a".repeat(256)),
            max_frame: Some(1 << 20),
        }),
        Control::HelloReply(HelloReply::default()),
        Control::Ping(42),
        Control::Pong(u64::MAX),
        Control::GoAway(GoAway {
            reason: "drain".into(),
            last_corr_id: 7,
        }),
    ]
    .iter()
    .map(Control::to_vec)
    .collect();
    for s in [
        r#"{"max_frame":5000}"#,
        r#"{"max_frame":5000,"ua":"sdk"}"#,
        r#"{"max_frame":4095,"ua":null}"#,
        r#" { "ping" : 1 } "#,
        r#"{"ua":"\u00e9\n\"x\""}"#,
        r#"{"goaway":{"last_corr_id":1,"reason":""}}"#,
        r#"{"max_frame":4096,"max_inflight":1,"flags_supported":0,"versions":[],"transports":[]}"#,
    ] {
        seeds.push(s.as_bytes().to_vec());
    }
    let near = format!(r#"{{"max_frame":8192,"ua":"{}"}}"#, "u".repeat(250));
    seeds.push(near.into_bytes());
    seeds
}

fn error_body_seeds() -> Vec<Vec<u8>> {
    let mut seeds = Vec::new();
    for (reason, msg, corr) in [
        (Reason::NotFound, "no such object", 5),
        (Reason::Busy, "work queue full", u64::MAX),
        (Reason::BadSig, "", 0),
        (Reason::Quota, "slow down \u{1f422}", 1),
    ] {
        let b = ErrorBody::new(reason, msg, corr, 250);
        for app in [0, 2] {
            let mut out = Vec::new();
            b.encode(app, &mut out);
            seeds.push(out);
        }
    }
    seeds.push(br#"{"code":400,"reason":"nope","message":"x","retryable":false,"corr_id":1,"extra":[1,2]}"#.to_vec());
    seeds
}

fn objects_seeds() -> Vec<Vec<u8>> {
    let addr = ObjectAddr::of(b"hello world");
    let reqs = [
        ObjectRequest::Get(Get::whole(addr)),
        ObjectRequest::Get(Get {
            addr,
            range: Some(ByteRange { start: 0, end: 1 }),
            hops: 0,
        }),
        ObjectRequest::Get(Get {
            addr,
            range: Some(ByteRange {
                start: u64::MAX - 1,
                end: u64::MAX,
            }),
            hops: 0,
        }),
        ObjectRequest::Head(Head { addr }),
        ObjectRequest::Put(Put { addr, size: 11 }),
        ObjectRequest::Put(Put {
            addr,
            size: u64::MAX,
        }),
    ];
    let mut seeds: Vec<Vec<u8>> = reqs
        .iter()
        .map(|r| cbor(r, ObjectRequest::encode))
        .collect();
    seeds.push(cbor(&HeadResp { size: 1 << 40 }, HeadResp::encode));
    seeds.push(cbor(&HeadResp { size: 0 }, HeadResp::encode));
    seeds.push(cbor(
        &PutResp {
            addr,
            size: 11,
            stored: true,
        },
        PutResp::encode,
    ));
    seeds
}

fn gossip_seeds() -> Vec<Vec<u8>> {
    let mut big = GossipEvent::new("t".repeat(MAX_TOPIC_BYTES), u64::MAX, text(1000, 5));
    big.hops = 255;
    let ids: Vec<_> = (0..20u64).map(|i| msg_id("t", i, b"")).collect();
    let all: Vec<_> = (0..MAX_GOSSIP_IDS as u64)
        .map(|i| msg_id("t", i, b""))
        .collect();
    let mut seeds = vec![
        cbor(
            &GossipEvent::new("news", NOW * 1000, b"hello".to_vec()),
            GossipEvent::encode,
        ),
        cbor(&GossipEvent::new("x", 0, Vec::new()), GossipEvent::encode),
        cbor(&big, GossipEvent::encode),
        cbor(&GossipOk, GossipOk::encode),
    ];
    for r in [
        GossipRequest::Subscribe(Subscribe {
            topic: "news".into(),
        }),
        GossipRequest::Unsubscribe(Unsubscribe {
            topic: "t".repeat(MAX_TOPIC_BYTES),
        }),
        GossipRequest::IHave(IHave {
            topic: "news".into(),
            ids: ids.clone(),
        }),
        GossipRequest::IHave(IHave {
            topic: "e".into(),
            ids: Vec::new(),
        }),
        GossipRequest::IWant(IWant { ids }),
        GossipRequest::IWant(IWant { ids: all }),
    ] {
        seeds.push(cbor(&r, GossipRequest::encode));
    }
    seeds
}

fn node(i: u8) -> NodeInfo {
    NodeInfo {
        id: NodeId([i; 32]),
        addrs: vec![format!("10.0.0.{i}:7000"), "[::1]:7000".into()],
        asn: i.is_multiple_of(2).then_some(64_512 + u32::from(i)),
        last_seen: i.is_multiple_of(3).then_some(NOW),
    }
}

struct Records {
    dual: ProviderRecord,
    ed_only: ProviderRecord,
    full: ProviderRecord,
    stale: ProviderRecord,
    future: ProviderRecord,
    long_ttl: ProviderRecord,
}

fn records() -> Records {
    let id = identity(1);
    let key = *ObjectAddr::of(b"hello world").as_bytes();
    let addrs = vec!["192.0.2.1:7000".to_owned()];
    Records {
        dual: sign_record(&id, key, addrs.clone(), 86_400, NOW, true),
        ed_only: sign_record(&identity(2), key, addrs.clone(), 3_600, NOW - 10, false),
        full: sign_record(&id, key, vec!["x".repeat(256); 8], 60, NOW, false),
        stale: sign_record(&id, key, addrs.clone(), 100, NOW - 100, false),
        future: sign_record(&id, key, addrs.clone(), 100, NOW + 301, false),
        long_ttl: sign_record(&id, key, addrs, 172_801, NOW, false),
    }
}

fn dht_seeds(r: &Records) -> Vec<Vec<u8>> {
    let nodes: Vec<NodeInfo> = (0..K as u8).map(node).collect();
    let mut seeds: Vec<Vec<u8>> = [
        DhtRequest::FindNode(FindNode { target: [9; 32] }),
        DhtRequest::FindValue(FindValue { key: [8; 32] }),
        DhtRequest::Provide(Box::new(Provide {
            record: r.ed_only.clone(),
        })),
        DhtRequest::Provide(Box::new(Provide {
            record: r.dual.clone(),
        })),
        DhtRequest::Ping(Ping { nonce: u64::MAX }),
    ]
    .iter()
    .map(|q| cbor(q, DhtRequest::encode))
    .collect();
    seeds.push(cbor(
        &FindNodeResp {
            closest: nodes.clone(),
        },
        FindNodeResp::encode,
    ));
    seeds.push(cbor(
        &FindNodeResp {
            closest: vec![node(3)],
        },
        FindNodeResp::encode,
    ));
    for (providers, closest) in [
        (
            Some(vec![r.ed_only.clone(), r.stale.clone()]),
            Some(nodes[..3].to_vec()),
        ),
        (None, Some(nodes[..1].to_vec())),
        (None, None),
    ] {
        seeds.push(cbor(
            &FindValueResp { providers, closest },
            FindValueResp::encode,
        ));
    }
    for p in [
        ProvideResp::accepted(),
        ProvideResp::rejected(Reason::BadSig),
    ] {
        seeds.push(cbor(&p, ProvideResp::encode));
    }
    seeds.push(cbor(&PingResp { pong: 7 }, PingResp::encode));
    seeds
}

fn record_seeds(r: &Records) -> Vec<Vec<u8>> {
    [
        &r.dual,
        &r.ed_only,
        &r.full,
        &r.stale,
        &r.future,
        &r.long_ttl,
    ]
    .into_iter()
    .map(|rec| cbor(rec, encode_record))
    .collect()
}

fn ids_seeds() -> Vec<Vec<u8>> {
    let addr = ObjectAddr::of(b"hello world");
    let id = identity(3).node_id();
    let mut pts = Vec::new();
    let mut rng = Rng(99);
    for _ in 0..12 {
        let mut p = rng.bytes(32);
        p[..3].copy_from_slice(&[0xab, 0xcd, 0xef]);
        pts.extend(p);
    }
    vec![
        addr.to_string().into_bytes(),
        id.to_string().into_bytes(),
        addr.to_string().to_uppercase().into_bytes(),
        format!("b3:{}", "0".repeat(63)).into_bytes(),
        [addr.0, addr.0, id.0].concat(),
        pts,
    ]
}

fn cert_seeds() -> Vec<Vec<u8>> {
    [identity(4), identity(5)]
        .iter()
        .map(|id| node_certificate(id).expect("certificate").0)
        .collect()
}

/// Keys and values the CBOR messages use, as CBOR items, plus structural bytes.
fn cbor_dict() -> Vec<Vec<u8>> {
    let mut dict = Vec::new();
    for key in [
        "get",
        "head",
        "put",
        "addr",
        "range",
        "start",
        "end",
        "size",
        "stored",
        "topic",
        "msg_id",
        "ts",
        "hops",
        "data",
        "subscribe",
        "unsubscribe",
        "ihave",
        "iwant",
        "ids",
        "ok",
        "find_node",
        "find_value",
        "provide",
        "ping",
        "target",
        "key",
        "record",
        "nonce",
        "closest",
        "id",
        "addrs",
        "asn",
        "last_seen",
        "providers",
        "accepted",
        "reason",
        "pong",
        "publisher",
        "ttl_s",
        "ed25519_pk",
        "ml_dsa_pk",
        "ml_dsa_pk_hash",
        "sigs",
        "alg",
        "sig",
        "ed25519",
        "ml-dsa-87",
        "v",
        "kid",
        "caveats",
        "tag",
        "code",
        "message",
        "retryable",
        "corr_id",
        "retry_after_ms",
        "bad_sig",
        "stale",
        "scope=get",
        "exp=0",
        "tenant=0xaa",
        "max_bytes=1",
    ] {
        let mut item = Vec::new();
        ciborium::into_writer(key, &mut item).unwrap();
        dict.push(item);
    }
    let mut b32 = vec![0x58, 0x20];
    b32.extend([0x11; 32]);
    dict.push(b32);
    for raw in [
        "f4",
        "f5",
        "f6",
        "f7",
        "a0",
        "80",
        "40",
        "60",
        "1bffffffffffffffff",
        "9affffffff",
        "bf",
        "ff",
        "c2",
        "d840",
        "fb3ff0000000000000",
        "f93c00",
        "20",
        "3bffffffffffffffff",
        "1c",
        "5f",
        "7f",
        "9f",
    ] {
        dict.push(unhex(raw));
    }
    dict
}

fn json_dict() -> Vec<Vec<u8>> {
    [
        r#""ua""#,
        r#""max_frame""#,
        r#""ping""#,
        r#""pong""#,
        r#""goaway""#,
        r#""reason""#,
        r#""last_corr_id""#,
        r#""max_inflight""#,
        r#""flags_supported""#,
        r#""versions""#,
        r#""transports""#,
        r#""code""#,
        r#""message""#,
        r#""retryable""#,
        r#""corr_id""#,
        r#""retry_after_ms""#,
        "null",
        "true",
        "false",
        "{",
        "}",
        "[",
        "]",
        ",",
        ":",
        "\"",
        "\\",
        "\\u0000",
        "\\ud800",
        " ",
        "\t",
        "0",
        "-1",
        "1e9",
        "4096",
        "4095",
        "18446744073709551615",
        "18446744073709551616",
        "1.5",
    ]
    .iter()
    .map(|t| t.as_bytes().to_vec())
    .collect()
}

// ---------------------------------------------------------------------------------------------
// Mutations

const INTERESTING: [u8; 12] = [
    0x00, 0xff, 0x7f, 0x80, 0x01, 0x17, 0x18, 0x19, 0x1a, 0x1b, 0x1f, 0x20,
];

/// Offsets of the CBOR heads in `b`, walking definite-length items (stops at the first fault).
fn cbor_heads(b: &[u8]) -> Vec<usize> {
    fn walk(b: &[u8], pos: &mut usize, out: &mut Vec<usize>, depth: usize) -> Option<()> {
        if depth > 16 || out.len() > 4096 {
            return None;
        }
        let p = *pos;
        let first = *b.get(p)?;
        out.push(p);
        let (major, ai) = (first >> 5, first & 0x1f);
        let n = match ai {
            0..=23 => 0,
            24 => 1,
            25 => 2,
            26 => 4,
            27 => 8,
            _ => return None,
        };
        let arg = if n == 0 {
            u64::from(ai)
        } else {
            b.get(p + 1..p + 1 + n)?
                .iter()
                .fold(0u64, |v, &x| v << 8 | u64::from(x))
        };
        *pos = p + 1 + n;
        match major {
            2 | 3 => {
                if arg > (b.len() - *pos) as u64 {
                    return None;
                }
                *pos += arg as usize;
            }
            4 => {
                for _ in 0..arg {
                    walk(b, pos, out, depth + 1)?;
                }
            }
            5 => {
                for _ in 0..arg.saturating_mul(2) {
                    walk(b, pos, out, depth + 1)?;
                }
            }
            6 => walk(b, pos, out, depth + 1)?,
            _ => {}
        }
        Some(())
    }
    let mut out = Vec::new();
    let mut pos = 0;
    walk(b, &mut pos, &mut out, 0);
    out
}

/// A CBOR head of `major` with argument `arg`, shortest unless `wide`.
fn cbor_head(major: u8, arg: u64, wide: bool) -> Vec<u8> {
    let m = major << 5;
    if arg < 24 && !wide {
        vec![m | arg as u8]
    } else if arg <= 0xff && !wide {
        vec![m | 24, arg as u8]
    } else if arg <= 0xffff {
        let mut v = vec![m | 25];
        v.extend((arg as u16).to_be_bytes());
        v
    } else if arg <= 0xffff_ffff {
        let mut v = vec![m | 26];
        v.extend((arg as u32).to_be_bytes());
        v
    } else {
        let mut v = vec![m | 27];
        v.extend(arg.to_be_bytes());
        v
    }
}

/// Rewrites one CBOR head: its length or value nudged, set to a bound's edge, made huge, written
/// wide, or its major type changed.
fn tweak_cbor(rng: &mut Rng, b: &mut Vec<u8>) {
    let heads = cbor_heads(b);
    if heads.is_empty() {
        return;
    }
    let p = *rng.pick(&heads);
    let first = b[p];
    let (major, ai) = (first >> 5, first & 0x1f);
    let n = match ai {
        24 => 1,
        25 => 2,
        26 => 4,
        27 => 8,
        _ => 0,
    };
    if p + 1 + n > b.len() {
        return;
    }
    let arg = if n == 0 {
        u64::from(ai.min(23))
    } else {
        b[p + 1..p + 1 + n]
            .iter()
            .fold(0u64, |v, &x| v << 8 | u64::from(x))
    };
    let (major, arg, wide) = match rng.below(6) {
        0 => (major, arg.wrapping_add(1), false),
        1 => (major, arg.wrapping_sub(1), false),
        2 => {
            let edges = [
                0u64,
                1,
                7,
                8,
                9,
                19,
                20,
                21,
                23,
                24,
                31,
                32,
                33,
                255,
                256,
                257,
                511,
                512,
                513,
                4096,
                16_384,
                65_535,
                0xffff_ffff,
                u64::MAX,
            ];
            (major, *rng.pick(&edges), false)
        }
        3 => (major, arg, true),
        4 => (*rng.pick(&[0u8, 1, 2, 3, 4, 5, 7]), arg, false),
        _ => (major, rng.next() >> rng.below(64), false),
    };
    let head = cbor_head(major, arg, wide);
    b.splice(p..p + 1 + n, head);
}

/// Rewrites one header field of a frame starting at a frame boundary of `b`.
fn tweak_header(rng: &mut Rng, b: &mut Vec<u8>) {
    let mut starts = Vec::new();
    let mut off = 0usize;
    while off + 38 <= b.len() && starts.len() < 64 {
        starts.push(off);
        let len = u32::from_be_bytes(b[off..off + 4].try_into().unwrap()) as usize;
        if len < 38 {
            break;
        }
        off += len;
    }
    if starts.is_empty() {
        let mut head = vec![0u8; 38];
        head[5] = 1;
        b.splice(0..0, head);
        starts.push(0);
    }
    let at = *rng.pick(&starts);
    let h = &mut b[at..at + 38];
    let len = u32::from_be_bytes(h[0..4].try_into().unwrap());
    match rng.below(7) {
        0 => {
            let small = 38 + rng.below(512) as u32;
            let v = *rng.pick(&[
                0,
                37,
                38,
                39,
                len.wrapping_sub(1),
                len.wrapping_add(1),
                len / 2,
                4096,
                4097,
                MAX_FRAME,
                MAX_FRAME + 1,
                u32::MAX,
                small,
            ]);
            h[0..4].copy_from_slice(&v.to_be_bytes());
        }
        1 => {
            let v: u16 = *rng.pick(&[0, 1, 2, 0x0100, 0xffff]);
            h[4..6].copy_from_slice(&v.to_be_bytes());
        }
        2 => {
            let v = match rng.below(3) {
                0 => rng.next() as u16,
                1 => rng.next() as u16 & 0x00ff,
                _ => {
                    let kind = *rng.pick(&[0x01u16, 0x02, 0x04]);
                    kind | (rng.next() as u16 & 0x00f8)
                }
            };
            h[6..8].copy_from_slice(&v.to_be_bytes());
        }
        3 => {
            let v: u16 = match rng.below(3) {
                0 => *rng.pick(&[0, 200, 206, 400, 413, 503, 507]),
                1 => *rng.pick(&[1, 199, 201, 300, 999]),
                _ => rng.next() as u16,
            };
            h[8..10].copy_from_slice(&v.to_be_bytes());
        }
        4 => {
            let v: u16 = *rng.pick(&[0, 1, 2, 3, 4, 200, 0xffff]);
            h[10..12].copy_from_slice(&v.to_be_bytes());
        }
        5 => {
            let cap_len = u16::from_be_bytes([h[28], h[29]]);
            let random = rng.next() as u16;
            let v: u16 = *rng.pick(&[
                0,
                1,
                cap_len.wrapping_add(1),
                cap_len.wrapping_sub(1),
                len.saturating_sub(38).min(0xffff) as u16,
                len.saturating_sub(37).min(0xffff) as u16,
                random,
                0xffff,
            ]);
            h[28..30].copy_from_slice(&v.to_be_bytes());
        }
        _ => {
            let v = rng.next() >> rng.below(64);
            h[30..38].copy_from_slice(&v.to_be_bytes());
        }
    }
}

/// Replaces a run of ASCII digits or a string's contents with an interesting JSON value.
fn tweak_json(rng: &mut Rng, b: &mut Vec<u8>) {
    let digits: Vec<usize> = (0..b.len())
        .filter(|&i| b[i].is_ascii_digit() && (i == 0 || !b[i - 1].is_ascii_digit()))
        .collect();
    let quotes: Vec<usize> = (0..b.len()).filter(|&i| b[i] == b'"').collect();
    if !digits.is_empty() && rng.chance(1, 2) {
        let start = *rng.pick(&digits);
        let end = (start..b.len())
            .find(|&i| !b[i].is_ascii_digit())
            .unwrap_or(b.len());
        let v = *rng.pick(&[
            "0",
            "-1",
            "4095",
            "4096",
            "65535",
            "65536",
            "4294967296",
            "18446744073709551615",
            "18446744073709551616",
            "1.0",
            "1e3",
            "00",
        ]);
        b.splice(start..end, v.bytes());
    } else if quotes.len() >= 2 {
        let i = rng.below(quotes.len() - 1);
        let (start, end) = (quotes[i] + 1, quotes[i + 1]);
        let v = match rng.below(4) {
            0 => "a".repeat(*rng.pick(&[0, 255, 256, 257, 300])),
            1 => "\\u0000\\n\\\"".to_owned(),
            2 => "\u{e9}\u{1f600}".to_owned(),
            _ => String::new(),
        };
        b.splice(start..end, v.bytes());
    }
}

/// One input made from the plan's seeds.
fn mutate(rng: &mut Rng, plan: &Plan) -> Vec<u8> {
    let mut b = rng.pick(&plan.seeds).clone();
    let ops = match rng.below(8) {
        0..=3 => 1,
        4 | 5 => 2,
        6 => 3,
        _ => 4 + rng.below(5),
    };
    for _ in 0..ops {
        let len = b.len();
        match rng.below(12) {
            0 if len > 0 => {
                let i = rng.below(len);
                b[i] ^= 1 << rng.below(8);
            }
            1 if len > 0 => {
                let i = rng.below(len);
                b[i] = *rng.pick(&INTERESTING);
            }
            2 if len > 0 => {
                let i = rng.below(len);
                b[i] = rng.next() as u8;
            }
            3 => {
                let n = 1 + rng.len(600);
                let run = if rng.chance(1, 2) {
                    rng.bytes(n)
                } else {
                    vec![rng.next() as u8; n]
                };
                let at = rng.below(len + 1);
                b.splice(at..at, run);
            }
            4 if len > 0 => {
                let at = rng.below(len);
                let n = 1 + rng.len(len - at - 1);
                b.drain(at..at + n);
            }
            5 if len > 0 => {
                let at = rng.below(len);
                let n = 1 + rng.len(len - at - 1);
                let run = b[at..at + n].to_vec();
                let to = rng.below(len + 1);
                b.splice(to..to, run);
            }
            6 => b.truncate(rng.below(len + 1)),
            7 => {
                let other = rng.pick(&plan.seeds);
                let cut = rng.below(len + 1);
                let from = rng.below(other.len() + 1);
                b.truncate(cut);
                b.extend_from_slice(&other[from..]);
            }
            8 | 9 if !plan.dict.is_empty() => {
                let tok = rng.pick(&plan.dict).clone();
                let at = rng.below(len + 1);
                if rng.chance(1, 2) {
                    b.splice(at..at, tok);
                } else {
                    let end = (at + tok.len()).min(len);
                    b.splice(at..end, tok);
                }
            }
            _ => match plan.shape {
                Shape::Frames => tweak_header(rng, &mut b),
                Shape::Cbor => tweak_cbor(rng, &mut b),
                Shape::Json => {
                    // Error bodies come in both encodings.
                    if b.first() == Some(&b'{') {
                        tweak_json(rng, &mut b)
                    } else {
                        tweak_cbor(rng, &mut b)
                    }
                }
                Shape::Text | Shape::Der => {
                    let n = rng.len(64);
                    b.extend(rng.bytes(n));
                }
            },
        }
    }
    b
}

/// A buffer of random bytes of a random length (a frame-shaped one for frames, now and then).
fn random_input(rng: &mut Rng, plan: &Plan) -> Vec<u8> {
    let n = rng.len(4096);
    let mut b = rng.bytes(n);
    if plan.shape == Shape::Frames && b.len() >= 38 && rng.chance(1, 2) {
        let len = (38 + rng.below(b.len() - 37)) as u32;
        b[0..4].copy_from_slice(&len.to_be_bytes());
        b[4..6].copy_from_slice(&1u16.to_be_bytes());
        b[6..8].copy_from_slice(&(rng.next() as u16 & 0x00ff).to_be_bytes());
        b[8..10].fill(0);
        b[28..30].fill(0);
    }
    b
}

// ---------------------------------------------------------------------------------------------
// The run

struct Tally {
    target: &'static str,
    seeds: usize,
    inputs: usize,
    secs: f64,
}

/// Feeds shard `shard` of `plan`: the seeds as they are (shard 0 only), then its share of the
/// budget, mutated or random, from its own fixed PRNG seed.
fn run(plan: &Plan, shard: usize) -> Tally {
    let target = fuzz_targets::TARGETS
        .iter()
        .find(|(name, _)| *name == plan.target)
        .unwrap_or_else(|| panic!("no target {}", plan.target))
        .1;
    let feed = |what: &str, n: usize, input: &[u8]| {
        if let Err(panic) = catch_unwind(|| target(input)) {
            eprintln!(
                "fuzz_smoke: target {} failed on {what} #{n} of shard {shard} ({} bytes): {}",
                plan.target,
                input.len(),
                hex::encode(input)
            );
            resume_unwind(panic);
        }
    };
    let start = Instant::now();
    let seeds = if shard == 0 { &plan.seeds[..] } else { &[] };
    for (n, seed) in seeds.iter().enumerate() {
        feed("seed", n, seed);
    }
    let mut budget = plan.budget / plan.shards;
    if shard == 0 {
        budget += plan.budget % plan.shards;
    }
    let name_hash = plan
        .target
        .bytes()
        .fold(0u64, |h, b| h.wrapping_mul(31) ^ u64::from(b));
    let mut rng = Rng(name_hash ^ (shard as u64) << 56);
    let mut inputs = 0;
    for n in 0..budget {
        let input = if rng.chance(1, 12) {
            random_input(&mut rng, plan)
        } else {
            mutate(&mut rng, plan)
        };
        feed("input", n, &input);
        inputs += 1;
    }
    Tally {
        target: plan.target,
        seeds: seeds.len(),
        inputs,
        secs: start.elapsed().as_secs_f64(),
    }
}

#[test]
fn fuzz_smoke() {
    let start = Instant::now();
    let recs = records();
    let cbor_dict = cbor_dict();
    let json_dict = json_dict();
    let mut error_dict = json_dict.clone();
    error_dict.extend(cbor_dict.iter().cloned());
    let plans = vec![
        Plan {
            target: "frame_decode",
            budget: 30_000,
            seeds: frame_seeds(),
            dict: vec![
                b"\x28\xb5\x2f\xfd".to_vec(),
                vec![0; 38],
                b"\x00\x01".to_vec(),
            ],
            shape: Shape::Frames,
            shards: 2,
        },
        Plan {
            target: "session",
            budget: 10_000,
            seeds: frame_seeds(),
            dict: vec![
                b"\x28\xb5\x2f\xfd".to_vec(),
                vec![0; 38],
                b"\x00\x01".to_vec(),
            ],
            shape: Shape::Frames,
            shards: 1,
        },
        Plan {
            target: "control",
            budget: 14_000,
            seeds: control_seeds(),
            dict: json_dict,
            shape: Shape::Json,
            shards: 1,
        },
        Plan {
            target: "error_body",
            budget: 8_000,
            seeds: error_body_seeds(),
            dict: error_dict,
            shape: Shape::Json,
            shards: 1,
        },
        Plan {
            target: "objects_msg",
            budget: 12_000,
            seeds: objects_seeds(),
            dict: cbor_dict.clone(),
            shape: Shape::Cbor,
            shards: 1,
        },
        Plan {
            target: "gossip_msg",
            budget: 12_000,
            seeds: gossip_seeds(),
            dict: cbor_dict.clone(),
            shape: Shape::Cbor,
            shards: 1,
        },
        Plan {
            target: "dht_msg",
            budget: 10_000,
            seeds: dht_seeds(&recs),
            dict: cbor_dict.clone(),
            shape: Shape::Cbor,
            shards: 1,
        },
        Plan {
            target: "record",
            budget: 6_000,
            seeds: record_seeds(&recs),
            dict: cbor_dict.clone(),
            shape: Shape::Cbor,
            shards: 1,
        },
        Plan {
            target: "cap",
            budget: 10_000,
            seeds: cap_seeds(),
            dict: cbor_dict,
            shape: Shape::Cbor,
            shards: 1,
        },
        Plan {
            target: "ids",
            budget: 6_000,
            seeds: ids_seeds(),
            dict: vec![b"b3:".to_vec(), b"A".to_vec(), b"0".to_vec(), b"g".to_vec()],
            shape: Shape::Text,
            shards: 1,
        },
        Plan {
            target: "cert",
            budget: 4_000,
            seeds: cert_seeds(),
            dict: vec![
                b"ron1:".to_vec(),
                vec![0x30, 0x82],
                vec![0x06, 0x03, 0x2b, 0x65, 0x70],
            ],
            shape: Shape::Der,
            shards: 1,
        },
    ];
    // Every target of the shared module is exercised, and only those.
    let mut named: Vec<&str> = plans.iter().map(|p| p.target).collect();
    let mut all: Vec<&str> = fuzz_targets::TARGETS.iter().map(|(n, _)| *n).collect();
    named.sort_unstable();
    all.sort_unstable();
    assert_eq!(named, all);
    let setup = start.elapsed().as_secs_f64();
    // `FUZZ_SMOKE_CORPUS=<dir>` also writes the seeds to `<dir>/<target>/`, a starting corpus for
    // cargo-fuzz (`fuzz/corpus` is its default; see fuzz/README.md).
    if let Some(dir) = std::env::var_os("FUZZ_SMOKE_CORPUS") {
        for plan in &plans {
            let dir = std::path::Path::new(&dir).join(plan.target);
            std::fs::create_dir_all(&dir).expect("corpus folder");
            for (n, seed) in plan.seeds.iter().enumerate() {
                std::fs::write(dir.join(format!("seed-{n:02}")), seed).expect("corpus file");
            }
        }
    }
    // `FUZZ_SMOKE_ONLY=<target>` runs one target alone (to reproduce or time it).
    let only = std::env::var("FUZZ_SMOKE_ONLY").ok();
    let plans: Vec<Plan> = plans
        .into_iter()
        .filter(|p| only.as_deref().is_none_or(|o| o == p.target))
        .collect();

    let tallies: Vec<Tally> = std::thread::scope(|s| {
        let handles: Vec<_> = plans
            .iter()
            .flat_map(|plan| (0..plan.shards).map(move |shard| (plan, shard)))
            .map(|(plan, shard)| s.spawn(move || run(plan, shard)))
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().unwrap_or_else(|p| resume_unwind(p)))
            .collect()
    });

    let mut total = 0;
    for plan in &plans {
        let shards: Vec<&Tally> = tallies.iter().filter(|t| t.target == plan.target).collect();
        let seeds: usize = shards.iter().map(|t| t.seeds).sum();
        let inputs: usize = shards.iter().map(|t| t.inputs).sum();
        let secs = shards.iter().map(|t| t.secs).fold(0.0, f64::max);
        println!(
            "fuzz_smoke: {:<13} {seeds:>3} seeds + {inputs:>6} mutated/random inputs, \
             {:>5.2} s on {} thread(s)",
            plan.target,
            secs,
            shards.len()
        );
        total += inputs;
    }
    println!(
        "fuzz_smoke: {total} mutated/random inputs in all, {:.2} s (seeds built in {setup:.2} s)",
        start.elapsed().as_secs_f64()
    );
    if only.is_some() {
        return;
    }
    assert!(
        total >= MIN_INPUTS,
        "only {total} inputs, want {MIN_INPUTS}"
    );
}
