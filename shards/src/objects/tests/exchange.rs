//! Plane tests: GET, HEAD and PUT exchanges, body faults, capabilities.

use ronode_proto::cap::Capability;
use ronode_proto::flags::Flags;
use ronode_proto::frame::OutFrame;
use ronode_proto::id::ObjectAddr;
use ronode_proto::msg::objects::{Get, HeadResp, ObjectRequest, Put};
use ronode_proto::msg::APP_OBJECTS;
use ronode_proto::reason::Reason;

use super::*;

// ---------------------------------------------------------------------------------------------
// Put and get

#[test]
fn put_then_get_is_byte_for_byte_in_both_directions() {
    let mut n = Node::default_node();
    n.connect(S1);
    for (i, len) in [1024usize, 300 * 1024, 3 << 20].into_iter().enumerate() {
        let data = body(len, i as u8);
        let corr = 10 * i as u64 + 1;
        let ack = n.put(S1, corr, &data).put();
        assert_eq!(ack.addr, ObjectAddr::of(&data));
        assert_eq!(ack.size, len as u64);
        assert!(ack.stored);

        let got = n.get(S1, corr + 1, ObjectAddr::of(&data));
        assert_eq!(got.body(), data, "{len} bytes");
        assert!(got.frames.iter().all(|f| f.header.code == 200));
        let frames = len.div_ceil(65_536);
        assert_eq!(got.frames.len(), frames);
        if frames == 1 {
            assert_eq!(got.flags(), vec![Flags::RESP]);
        } else {
            let flags = got.flags();
            assert_eq!(flags[0], Flags::RESP | Flags::START);
            assert!(flags[1..frames - 1].iter().all(|f| *f == Flags::RESP));
            assert_eq!(flags[frames - 1], Flags::RESP | Flags::END);
            assert!(got.frames[..frames - 1]
                .iter()
                .all(|f| f.payload.len() == 65_536));
        }
    }
    let c = n.plane.counters();
    assert_eq!((c.puts_stored, c.gets_served), (3, 3));
    assert_eq!(c.bytes_in, c.bytes_out);
    assert_eq!(c.refused_total(), 0);
    assert_eq!(n.store.len(), 3);
    assert_eq!(n.plane.inflight_put_bytes(), 0);
    assert_eq!(n.plane.puts_in_progress(), 0);
    assert_eq!(n.plane.reads_in_progress(), 0);
    assert_eq!(n.store.reserved_bytes(), 0);
}

#[test]
fn get_body_frames_are_slices_of_the_stored_object() {
    let mut n = Node::default_node();
    n.connect(S1);
    let data = body(200_000, 7);
    n.put(S1, 1, &data).put();
    let addr = ObjectAddr::of(&data);
    let stored = n.store.read(&addr, 0..u64::MAX).unwrap().bytes;
    n.auto_pump = false;
    n.request(S1, 2, ObjectRequest::Get(Get::whole(addr)), &[]);
    n.run_ops();
    let first = n.plane.poll_transmit().unwrap();
    assert_eq!(first.payload.as_ptr(), stored.as_ptr());
    let second = n.plane.poll_transmit().unwrap();
    assert_eq!(second.payload.as_ptr(), stored[65_536..].as_ptr());
}

#[test]
fn empty_object_and_single_frame_put() {
    let mut n = Node::default_node();
    n.connect(S1);
    // START|END: a PUT with an empty body.
    let ack = n.put(S1, 1, b"").put();
    assert_eq!(
        ack.addr.to_string(),
        "b3:af1349b9f5f9a1a6a0404dea36dcc9499bcb25c9adc112b7cc9a93cae41f3262"
    );
    let got = n.get(S1, 2, ObjectAddr::of(b""));
    assert_eq!(got.flags(), vec![Flags::RESP]);
    assert_eq!(got.code(), 200);
    assert!(got.body().is_empty());
}

#[test]
fn ranges_are_clamped_and_answered_206() {
    let mut n = Node::default_node();
    n.connect(S1);
    n.put(S1, 1, b"hello world").put();
    let hw = ObjectAddr::of(b"hello world");
    for (corr, range, want) in [
        (2, (6, 100), &b"world"[..]),
        (3, (0, 5), b"hello"),
        (4, (20, 30), b""),
        (5, (10, 11), b"d"),
        (6, (0, u64::MAX), b"hello world"),
    ] {
        let got = n.get_with(S1, corr, hw, Some(range), &[]);
        assert_eq!(got.code(), 206, "{range:?}");
        assert_eq!(got.body(), want, "{range:?}");
        assert_eq!(got.flags(), vec![Flags::RESP]);
    }
    // PROTOCOL.md section 6.1: GET of 6..100, corr 2, the answer frame exactly.
    let got = n.get_with(S1, 7, hw, Some((6, 100)), &[]);
    let mut want = hex("0000002b 0001 0002 00ce 0001 00000000000000000000000000000000 0000");
    want.extend_from_slice(&7u64.to_be_bytes());
    want.extend_from_slice(b"world");
    assert_eq!(got.raw, vec![want]);

    // A range over several frames of a large object.
    let data = body(3 << 20, 9);
    n.put(S1, 8, &data).put();
    let got = n.get_with(S1, 9, ObjectAddr::of(&data), Some((100, 2_000_000)), &[]);
    assert_eq!(got.body(), &data[100..2_000_000]);
    assert!(got.frames.iter().all(|f| f.header.code == 206));
    assert_eq!(got.frames.len(), (2_000_000 - 100usize).div_ceil(65_536));
    let tail = n.get_with(
        S1,
        10,
        ObjectAddr::of(&data),
        Some(((3 << 20) - 5, 1 << 40)),
        &[],
    );
    assert_eq!(tail.body(), &data[(3 << 20) - 5..]);
}

#[test]
fn get_stream_headers_match_the_protocol_example() {
    // PROTOCOL.md section 6.1: a 150,000-byte object, corr 4, default chunk_bytes.
    let mut n = Node::default_node();
    n.connect(S1);
    let data = body(150_000, 1);
    n.put(S1, 1, &data).put();
    let got = n.get(S1, 4, ObjectAddr::of(&data));
    let heads: Vec<Vec<u8>> = got.raw.iter().map(|r| r[..38].to_vec()).collect();
    let corr4 = "00000000000000000000000000000000 0000 0000000000000004";
    assert_eq!(
        heads,
        vec![
            hex(&format!("00010026 0001 000a 00c8 0001 {corr4}")),
            hex(&format!("00010026 0001 0002 00c8 0001 {corr4}")),
            hex(&format!("00004a16 0001 0012 00c8 0001 {corr4}")),
        ]
    );
}

#[test]
fn head_and_not_found() {
    let mut n = Node::default_node();
    n.connect(S1);
    n.put(S1, 1, b"hello world").put();
    let got = n.head(S1, 5, ObjectAddr::of(b"hello world"), &[]);
    assert_eq!(got.code(), 200);
    assert_eq!(HeadResp::decode(&got.body()), Ok(HeadResp { size: 11 }));
    // PROTOCOL.md section 6.2: the HEAD answer frame exactly.
    assert_eq!(
        got.raw[0],
        hex("0000002d 0001 0002 00c8 0001 00000000000000000000000000000000 0000 0000000000000005 a16473697a650b")
    );

    let abc = ObjectAddr::of(b"abc");
    let missing = n.head(S1, 6, abc, &[]);
    assert_eq!((missing.code(), missing.reason()), (404, Reason::NotFound));
    // PROTOCOL.md section 6.3: GET of an object the node does not hold, corr 7, exactly.
    let got = n.get(S1, 7, abc);
    let mut want =
        hex("000000bf 0001 0002 0194 0001 00000000000000000000000000000000 0000 0000000000000007");
    want.extend_from_slice(
        br#"{"code":404,"reason":"not_found","message":"no object b3:6437b3ac38465133ffb63b75273a8db548c558465d79db03fd359c6cd5bd9d85","retryable":false,"corr_id":7}"#,
    );
    assert_eq!(got.raw, vec![want]);
    assert_eq!(n.plane.counters().refused(Reason::NotFound), 2);
    assert_eq!(n.plane.counters().heads_served, 1);
}

#[test]
fn duplicates_are_acknowledged_without_storing() {
    let mut n = Node::default_node();
    n.connect(S1);
    n.connect(S2);
    let data = body(300 * 1024, 3);
    assert!(n.put(S1, 1, &data).put().stored);
    let used = n.store.used_bytes();
    let again = n.put(S2, 1, &data).put();
    assert!(!again.stored);
    assert_eq!(again.size, data.len() as u64);
    assert_eq!(n.store.used_bytes(), used);
    assert_eq!(n.store.len(), 1);
    assert_eq!(n.plane.counters().puts_deduplicated, 1);
    // A duplicate whose bytes do not match is refused all the same.
    let mut wrong = data.clone();
    wrong[5] ^= 1;
    let addr = ObjectAddr::of(&data);
    let got = n.put_as(S2, 2, addr, data.len() as u64, &wrong, &put_cap());
    assert_eq!((got.code(), got.reason()), (400, Reason::BadDigest));
    assert_eq!(n.plane.inflight_put_bytes(), 0);
}

// ---------------------------------------------------------------------------------------------
// Body faults

#[test]
fn wrong_digest_is_refused_and_nothing_is_stored() {
    let mut n = Node::default_node();
    n.connect(S1);
    let data = body(300 * 1024, 4);
    let claimed = ObjectAddr::of(b"something else");
    let got = n.put_as(S1, 1, claimed, data.len() as u64, &data, &put_cap());
    assert_eq!((got.code(), got.reason()), (400, Reason::BadDigest));
    assert!(got.error().message.starts_with("body hashes to b3:"));
    assert!(n.store.is_empty());
    assert_eq!(n.store.reserved_bytes(), 0);
    assert_eq!(n.plane.inflight_put_bytes(), 0);
    assert_eq!(n.plane.counters().refused(Reason::BadDigest), 1);
    assert_eq!(n.get(S1, 2, claimed).reason(), Reason::NotFound);
}

#[test]
fn more_bytes_than_announced_is_refused_at_once() {
    let mut n = Node::default_node();
    n.connect(S1);
    let data = body(250_000, 5);
    let addr = ObjectAddr::of(&data[..150_000]);
    n.start_put(S1, 1, addr, 150_000, &put_cap());
    n.put_frame(S1, 1, &data[..100_000], false);
    assert!(!n.answered(S1, 1));
    // The second frame passes the announced size: answered before the END frame.
    n.put_frame(S1, 1, &data[100_000..200_000], false);
    let got = n.take(S1, 1);
    assert_eq!((got.code(), got.reason()), (400, Reason::BadDigest));
    assert_eq!(
        got.error().message,
        "body has more bytes than the 150000 the request announced"
    );
    assert_eq!(n.store.reserved_bytes(), 0);
    // The rest of the stream is thrown away, unanswered.
    n.put_frame(S1, 1, &data[200_000..], true);
    assert!(!n.answered(S1, 1));
    assert_eq!(n.plane.counters().discarded_bytes, 150_000);
    assert!(n.store.is_empty());

    // Fewer bytes than announced: refused at the END frame.
    let got = n.put_as(S1, 2, addr, 150_000, &data[..149_999], &put_cap());
    assert_eq!(got.reason(), Reason::BadDigest);
    assert_eq!(
        got.error().message,
        "body has 149999 bytes, the request announced 150000"
    );
}

#[test]
fn oversize_is_answered_at_start_and_the_body_discarded() {
    let mut n = Node::new(
        ObjectsConfig {
            max_bytes: 1 << 20,
            max_inflight_put_bytes: 1 << 20,
            ..config()
        },
        64 << 20,
    );
    n.connect(S1);
    let data = body((1 << 20) + 1, 6);
    n.start_put(S1, 1, ObjectAddr::of(&data), data.len() as u64, &put_cap());
    let got = n.take(S1, 1);
    assert_eq!((got.code(), got.reason()), (413, Reason::Oversize));
    assert_eq!(
        got.error().message,
        "object of 1048577 bytes is over objects.max_bytes (1048576)"
    );
    for (i, part) in data.chunks(CLIENT_FRAME).enumerate() {
        let last = (i + 1) * CLIENT_FRAME >= data.len();
        n.put_frame(S1, 1, part, last);
    }
    assert!(!n.answered(S1, 1));
    assert_eq!(n.plane.counters().discarded_bytes, data.len() as u64);
    assert_eq!(n.plane.puts_in_progress(), 0);
    // The session is still served.
    assert!(n.put(S1, 2, b"small").put().stored);
}

// ---------------------------------------------------------------------------------------------
// Capabilities

#[test]
fn put_capabilities_missing_expired_and_out_of_scope() {
    let mut n = Node::default_node();
    n.connect(S1);
    let data = b"hello world";
    let addr = ObjectAddr::of(data);
    let got = n.put_as(S1, 1, addr, 11, data, &[]);
    assert_eq!((got.code(), got.reason()), (401, Reason::Unauthorized));
    assert_eq!(
        got.error().message,
        "a capability is required for this operation"
    );
    let expired = cap(&["scope=put", "exp=1700000000"]);
    let got = n.put_as(S1, 2, addr, 11, data, &expired);
    assert_eq!((got.code(), got.reason()), (403, Reason::Forbidden));
    assert_eq!(
        got.error().message,
        "capability expired at 1700000000 (now 1700000000)"
    );
    let get_only = cap(&["scope=get"]);
    let got = n.put_as(S1, 3, addr, 11, data, &get_only);
    assert_eq!(got.reason(), Reason::Forbidden);
    assert_eq!(
        got.error().message,
        "operation put is out of the capability's scope (\"scope=get\")"
    );
    let forged = Capability::mint(&[1; 32], KID, &["scope=put"]).encode();
    assert_eq!(
        n.put_as(S1, 4, addr, 11, data, &forged).reason(),
        Reason::Forbidden
    );
    let garbage = b"not a token".to_vec();
    assert_eq!(
        n.put_as(S1, 5, addr, 11, data, &garbage).reason(),
        Reason::Forbidden
    );
    let small = cap(&["scope=put", "max_bytes=10"]);
    assert_eq!(
        n.put_as(S1, 6, addr, 11, data, &small).reason(),
        Reason::Forbidden
    );
    let c = n.plane.counters();
    assert_eq!(c.refused(Reason::Unauthorized), 1);
    assert_eq!(c.refused(Reason::Forbidden), 5);
    assert!(n.store.is_empty());
    assert_eq!(n.plane.counters().discarded_bytes, 6 * 11);
    assert!(n.put_as(S1, 7, addr, 11, data, &put_cap()).put().stored);
}

#[test]
fn put_matches_the_protocol_examples() {
    // PROTOCOL.md section 6.3: the PUT of "hello world" with the capability of section 10,
    // tenant 0xaa, corr 3, then the same PUT an hour later (corr 6).
    let token = Capability::mint(&ROOT, KID, &["scope=get,put", "tenant=0xaa"])
        .attenuate("exp=1700003600")
        .encode();
    let mut n = Node::default_node();
    n.connect(S1);
    let addr = ObjectAddr::of(b"hello world");
    n.start_put_with(S1, 3, Put { addr, size: 11 }, &token, 0xaa, false);
    n.send(
        S1,
        &OutFrame {
            flags: Flags::REQ | Flags::END,
            code: 0,
            app_proto_id: APP_OBJECTS,
            tenant_id: 0xaa,
            corr_id: 3,
            cap: &[],
            payload: b"hello world",
        },
    );
    let got = n.take(S1, 3);
    assert_eq!(
        got.raw,
        vec![hex(
            "0000005c 0001 0002 00c8 0001 000000000000000000000000000000aa 0000 0000000000000003
             a364616464725820d74981efa70a0c880b8d8c1985d075dbcbf679b99a5f9914
             e5aaf96b831a9e246473697a650b6673746f726564f5"
        )]
    );
    n.now = 1_700_003_600;
    n.start_put_with(S1, 6, Put { addr, size: 11 }, &token, 0xaa, false);
    let got = n.take(S1, 6);
    assert_eq!(
        got.raw,
        vec![hex(
            "000000a3 0001 0002 0193 0001 000000000000000000000000000000aa 0000 0000000000000006
             7b22636f6465223a3430332c22726561736f6e223a22666f7262696464656e22
             2c226d657373616765223a226361706162696c69747920657870697265642061
             74203137303030303336303020286e6f77203137303030303336303029222c22
             726574727961626c65223a66616c73652c22636f72725f6964223a367d"
        )]
    );
    // A tenant the capability does not name.
    n.now = NOW;
    n.start_put_with(S1, 8, Put { addr, size: 11 }, &token, 0xab, false);
    assert_eq!(
        n.take(S1, 8).error().message,
        "capability is for tenant 0xaa, the request is for tenant 0xab"
    );
}

#[test]
fn open_put_policy_needs_no_capability() {
    let mut n = Node::new(
        ObjectsConfig {
            put_policy: Policy::Open,
            ..config()
        },
        1 << 20,
    );
    n.connect(S1);
    let got = n.put_as(S1, 1, ObjectAddr::of(b"abc"), 3, b"abc", &[]);
    assert!(got.put().stored);
    // A capability that would not verify is not even looked at.
    let got = n.put_as(S1, 2, ObjectAddr::of(b"abcd"), 4, b"abcd", b"junk");
    assert!(got.put().stored);
}

#[test]
fn token_get_policy_guards_get_and_head() {
    let mut n = Node::new(
        ObjectsConfig {
            get_policy: Policy::Token,
            ..config()
        },
        1 << 20,
    );
    n.connect(S1);
    n.put(S1, 1, b"hello world").put();
    let hw = ObjectAddr::of(b"hello world");
    let got = n.get(S1, 2, hw);
    assert_eq!((got.code(), got.reason()), (401, Reason::Unauthorized));
    let got = n.get_with(S1, 3, hw, None, &put_cap());
    assert_eq!((got.code(), got.reason()), (403, Reason::Forbidden));
    let get_cap = cap(&["scope=get"]);
    let got = n.get_with(S1, 4, hw, None, &get_cap);
    assert_eq!((got.code(), got.body()), (200, b"hello world".to_vec()));
    assert_eq!(n.head(S1, 5, hw, &[]).reason(), Reason::Unauthorized);
    assert_eq!(n.head(S1, 6, hw, &get_cap).code(), 200);
    // A missing object is 404 only to a holder of a valid capability.
    assert_eq!(n.get(S1, 7, ObjectAddr::of(b"x")).code(), 401);
    assert_eq!(
        n.get_with(S1, 8, ObjectAddr::of(b"x"), None, &get_cap)
            .code(),
        404
    );
}
