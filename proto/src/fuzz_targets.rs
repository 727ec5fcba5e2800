//! Fuzz targets shared by the cargo-fuzz crate (`fuzz/`) and the stable-Rust smoke test
//! (`tests/fuzz_smoke.rs`).
//!
//! Each target takes arbitrary bytes and must never panic. Beyond "does not crash", each one
//! asserts properties of the code under test (an assertion failure is a finding):
//! - [`frame_decode`]: the one-shot decoder (`decode_one`, frame after frame) and the incremental
//!   one (`decode` over a `BytesMut` fed in data-derived chunks) agree on every frame and on how
//!   the input ends (cleanly, cut short, or the same error); every decoded frame is consistent
//!   with its bytes, re-encodes (without COMP) to a frame with the same fields and payload,
//!   byte for byte when it was not COMP, and survives the encoder's COMP sender rule; the
//!   sequence tracker takes the frames without panicking and answers only its labels.
//! - [`control`]: a parsed control payload re-serializes, parses back equal, byte-stably, and
//!   respects its bounds; negotiation only lowers `max_frame`.
//! - [`error_body`]: error bodies round-trip in JSON and CBOR and never accept trailing bytes.
//! - [`objects_msg`], [`gossip_msg`], [`dht_msg`]: every CBOR message type: decode, then encode,
//!   then decode gives an equal value; re-encoding is byte-stable and never longer than the
//!   accepted input (encoders are canonical); a byte more or a byte less is `malformed`; each
//!   type's bounds and relations hold; the by-reference encoders match the owned ones.
//! - [`record`]: decode, round trip, then [`validate`](crate::record::validate) at a fixed time
//!   under both policies: `Ok` or a labelled error, the policies agree as they must, the batch
//!   validator agrees with the single one (but for the torsion case `validate_batch` documents),
//!   a valid record is stale at its expiry, and a PROVIDE carrying the record decodes exactly
//!   when the DHT bounds say.
//! - [`cap`]: decode, round trip, verify against a fixed key table; the same caveats re-minted
//!   under the table's key verify exactly as a reference reading of PROTOCOL.md section 10 says, and
//!   attenuation never widens.
//! - [`session`]: a session's receive pipeline fed in data-derived chunks, answering requests as a
//!   node would: every verdict is a row of the reject table (or `quota`), and the farewell frame
//!   carries the same label (an error RESP only to a well-formed REQ).
//! - [`ids`], [`cert`]: strict id parsing round-trips; XOR distance and bucket laws; certificate
//!   parsing answers a NodeId or `unauthorized`.
//!
//! Everything here is deterministic: no clock, no randomness (chunk sizes and limits are derived
//! from the input's own bytes).

use crate::cap::{CapError, CapRequest, Capability, Caveat, Op};
use crate::control::{Control, HelloReply};
use crate::error_body::ErrorBody;
use crate::flags::Flags;
use crate::frame::{FrameDecoder, FrameEncoder, FrameError, Header, OutFrame};
use crate::id::{self, NodeId, ObjectAddr};
use crate::inbound::{Farewell, Inbound, ServedApps};
use crate::limits::{
    DECOMPRESS_RATIO_CAP, HEADER_LEN, K, MAX_ADDRS, MAX_ADDR_BYTES, MAX_CAP_BYTES, MAX_CAVEATS,
    MAX_FRAME, MAX_GOSSIP_IDS, MAX_INFLIGHT, MAX_PROVIDERS, MAX_RECORD_BYTES, MAX_RECORD_SIGS,
    MAX_TOPIC_BYTES, MAX_UA_BYTES, MIN_NEGOTIATED_FRAME,
};
use crate::msg::dht::{
    DhtRequest, FindNodeResp, FindNodeRespRef, FindValueResp, FindValueRespRef, NodeInfo, PingResp,
    Provide, ProvideResp,
};
use crate::msg::gossip::{self, GossipEvent, GossipOk, GossipRequest};
use crate::msg::objects::{HeadResp, ObjectRequest, PutResp};
use crate::reason::Reason;
use crate::record::{self, ProviderRecord, RecordError, RecordPolicy};
use crate::sequence::{Role, SequenceTracker};
use bytes::{Bytes, BytesMut};
use std::fmt::Debug;

/// A fuzz target: arbitrary bytes in, a panic on a finding.
pub type Target = fn(&[u8]);

/// Every target, by the name of its cargo-fuzz binary.
pub const TARGETS: &[(&str, Target)] = &[
    ("frame_decode", frame_decode),
    ("control", control),
    ("error_body", error_body),
    ("objects_msg", objects_msg),
    ("gossip_msg", gossip_msg),
    ("dht_msg", dht_msg),
    ("record", record),
    ("cap", cap),
    ("ids", ids),
    ("cert", cert),
    ("session", session),
];

/// The `now` (unix seconds) records are validated and capabilities verified at.
pub const NOW: u64 = 1_700_000_000;
/// The one root key of [`cap`]'s key table, named by [`CAP_KID`].
pub const CAP_ROOT_KEY: [u8; 32] = [0x5a; 32];
/// The key id [`cap`]'s key table knows.
pub const CAP_KID: [u8; 8] = *b"fuzz-kid";

/// FNV-1a over the input: the source of every input-derived choice.
fn fnv(data: &[u8]) -> u64 {
    data.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

/// splitmix64 step.
fn next(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

// ---------------------------------------------------------------------------------------------
// Frames

/// How a pass over the input ended.
#[derive(Debug, PartialEq, Eq)]
enum End {
    /// Every byte was taken by a whole frame.
    Clean,
    /// The bytes from this offset on are the start of a frame that never completed.
    Partial(usize),
    /// A frame was rejected (the session would be closed).
    Error(FrameError),
}

/// OAP/1 decoding, one-shot against incremental, plus re-encoding and sequencing.
pub fn frame_decode(data: &[u8]) {
    let h = fnv(data);
    let max_frame = match h % 8 {
        0 => MIN_NEGOTIATED_FRAME,
        1 => 64 + (h >> 8) as u32 % 1024,
        _ => MAX_FRAME,
    };
    let input = Bytes::copy_from_slice(data);

    // Reference: decode_one, frame after frame, until the input ends or a frame is rejected.
    let mut one = FrameDecoder::new(max_frame);
    let mut frames = Vec::new();
    let mut off = 0;
    let end_one = loop {
        if off == data.len() {
            break End::Clean;
        }
        let rest = input.slice(off..);
        match one.decode_one(&rest) {
            Ok((frame, used)) => {
                check_frame(&frame, &rest[..used], max_frame);
                frames.push(frame);
                off += used;
            }
            Err(FrameError::Truncated { have, need }) => {
                assert_eq!(have, rest.len(), "truncated reports what it had");
                assert!(
                    need > have,
                    "truncated needs more than it had: {need} <= {have}"
                );
                break End::Partial(off);
            }
            Err(e) => {
                assert_ne!(e.reason(), Reason::Truncated);
                break End::Error(e);
            }
        }
    };

    // Incremental: the same bytes in data-derived chunks, the first cut at a data-derived point.
    let mut inc = FrameDecoder::new(max_frame);
    let mut buf = BytesMut::new();
    let mut inc_frames = Vec::new();
    let mut state = h;
    let mut fed = 0;
    let mut first = true;
    let end_inc = 'feed: loop {
        loop {
            match inc.decode(&mut buf) {
                Ok(Some(frame)) => inc_frames.push(frame),
                Ok(None) => break,
                Err(e) => break 'feed End::Error(e),
            }
        }
        if fed == data.len() {
            break if buf.is_empty() {
                End::Clean
            } else {
                assert_eq!(&buf[..], &data[data.len() - buf.len()..], "kept bytes");
                End::Partial(data.len() - buf.len())
            };
        }
        let left = data.len() - fed;
        let r = next(&mut state);
        let n = if first {
            first = false;
            (r % (left as u64 + 1)) as usize
        } else {
            match r % 4 {
                0 => 1,
                1 => 1 + (r >> 8) as usize % 8,
                2 => 1 + (r >> 8) as usize % 64,
                _ => 1 + (r >> 8) as usize % 1024,
            }
            .min(left)
        };
        buf.extend_from_slice(&data[fed..fed + n]);
        fed += n;
    };
    assert_eq!(
        frames, inc_frames,
        "decode_one and incremental decode give the same frames"
    );
    assert_eq!(
        end_one, end_inc,
        "decode_one and incremental decode end the same way"
    );

    // The frames as a session's acceptor would receive them, and as a dialer would send them.
    let mut acceptor = SequenceTracker::new(Role::Acceptor);
    for f in &frames {
        match acceptor.on_receive(&f.header, &f.payload) {
            Ok(_) => assert!(acceptor.unanswered() <= MAX_INFLIGHT),
            Err(r) => {
                assert!(matches!(r, Reason::BadSequence | Reason::Quota), "{r}");
                break;
            }
        }
    }
    let mut dialer = SequenceTracker::new(Role::Dialer);
    for f in &frames {
        match dialer.on_send(&f.header) {
            Ok(_) => assert!(dialer.outstanding() <= MAX_INFLIGHT),
            Err(r) => {
                assert!(matches!(r, Reason::BadSequence | Reason::Quota), "{r}");
                break;
            }
        }
    }
}

/// A decoded frame against the bytes it came from, then re-encoded.
fn check_frame(f: &crate::frame::Frame, raw: &[u8], max_frame: u32) {
    let head: &[u8; HEADER_LEN] = raw[..HEADER_LEN].try_into().expect("a header");
    assert_eq!(f.header, Header::parse(head));
    assert_eq!(f.header.len as usize, raw.len());
    let kind = f
        .header
        .check(max_frame)
        .expect("a decoded header passes its checks");
    assert_eq!(f.kind(), kind);
    let cap_end = HEADER_LEN + f.header.cap_len as usize;
    assert_eq!(&f.cap[..], &raw[HEADER_LEN..cap_end]);
    assert_eq!(f.wire_payload_len(), raw.len() - cap_end);
    let comp = f.flags().contains(Flags::COMP);
    if comp {
        let wire = f.wire_payload_len();
        assert!(
            f.payload.len() <= max_frame as usize,
            "inflated within max_frame"
        );
        assert!(
            f.payload.len() <= wire * DECOMPRESS_RATIO_CAP as usize,
            "inflated {} bytes from {wire}: over the ratio cap",
            f.payload.len()
        );
    } else {
        assert_eq!(&f.payload[..], &raw[cap_end..]);
    }

    // Re-encoded without COMP: the same fields; byte for byte the same when it was not COMP.
    let plain = OutFrame {
        flags: f.flags().without(Flags::COMP),
        code: f.header.code,
        app_proto_id: f.header.app_proto_id,
        tenant_id: f.header.tenant_id,
        corr_id: f.header.corr_id,
        cap: &f.cap,
        payload: &f.payload,
    };
    let total = HEADER_LEN + f.cap.len() + f.payload.len();
    let mut enc = FrameEncoder::new(max_frame);
    let mut out = Vec::new();
    match enc.encode(&plain, &mut out) {
        Ok(n) => {
            assert!(total <= max_frame as usize);
            assert_eq!((n, out.len()), (total, total));
            if !comp {
                assert_eq!(out, raw, "re-encoding a plain frame is byte-identical");
            }
            let again = decode_whole(&out, max_frame);
            assert_eq!(again.header, plain.header());
            assert_eq!(again.cap, f.cap);
            assert_eq!(again.payload, f.payload);
        }
        Err(e) => {
            // Only a COMP payload can inflate past what one plain frame carries.
            assert!(comp && total > max_frame as usize, "{e}");
            assert_eq!(e.reason(), Reason::Oversize);
            assert!(out.is_empty(), "nothing written on error");
        }
    }

    // Asking for COMP: the sender rule keeps whatever it sends decodable.
    if !f.flags().contains(Flags::APP_E2E) && total <= max_frame as usize {
        let asked = OutFrame {
            flags: plain.flags.union(Flags::COMP),
            ..plain
        };
        out.clear();
        let n = enc
            .encode(&asked, &mut out)
            .expect("a frame that fits plain also fits with COMP asked");
        assert!(n <= total, "COMP never grows a frame");
        let again = decode_whole(&out, max_frame);
        assert_eq!(again.flags().without(Flags::COMP), plain.flags);
        assert_eq!(again.cap, f.cap);
        assert_eq!(again.payload, f.payload);
        if again.flags().contains(Flags::COMP) {
            assert!(again.wire_payload_len() < f.payload.len());
        }
    }
}

/// Decodes bytes that must be exactly one valid frame (the incremental decoder is held to the
/// same answers by [`frame_decode`] itself).
fn decode_whole(bytes: &[u8], max_frame: u32) -> crate::frame::Frame {
    let (frame, used) = FrameDecoder::new(max_frame)
        .decode_one(&Bytes::copy_from_slice(bytes))
        .unwrap_or_else(|e| panic!("an encoded frame decodes: {e}"));
    assert_eq!(used, bytes.len());
    frame
}

// ---------------------------------------------------------------------------------------------
// Control plane and error bodies

/// The key a control payload is told apart by.
fn control_key(c: &Control) -> &'static str {
    match c {
        Control::Hello(_) => "ua",
        Control::HelloReply(_) => "max_frame",
        Control::Ping(_) => "ping",
        Control::Pong(_) => "pong",
        Control::GoAway(_) => "goaway",
    }
}

/// Control payloads: parse, bounds, re-serialize and parse equal, negotiation.
pub fn control(data: &[u8]) {
    let msg = match Control::parse(data) {
        Ok(msg) => msg,
        Err(r) => {
            assert_eq!(r, Reason::Malformed);
            return;
        }
    };
    let out = msg.to_vec();
    let key = control_key(&msg);
    assert!(
        out.starts_with(format!("{{\"{key}\":").as_bytes()),
        "{msg:?} serializes with its key first: {}",
        String::from_utf8_lossy(&out)
    );
    assert_eq!(
        Control::parse(&out).as_ref(),
        Ok(&msg),
        "re-serialized control payload parses back equal: {}",
        String::from_utf8_lossy(&out)
    );
    assert_eq!(msg.to_vec(), out, "serialization is stable");
    if let Control::Hello(hello) = &msg {
        if let Some(ua) = &hello.ua {
            assert!(
                ua.len() <= MAX_UA_BYTES,
                "HELLO accepted with a {}-byte ua",
                ua.len()
            );
        }
        for node_max in [MAX_FRAME, MIN_NEGOTIATED_FRAME, 65_536] {
            match HelloReply::negotiate(hello, node_max) {
                Ok(reply) => {
                    assert!(reply.max_frame <= node_max);
                    if let Some(asked) = hello.max_frame {
                        assert!(asked >= MIN_NEGOTIATED_FRAME);
                        assert!(reply.max_frame <= asked);
                        assert_eq!(reply.max_frame, asked.min(node_max));
                    } else {
                        assert_eq!(reply.max_frame, node_max);
                    }
                    let reply = Control::HelloReply(reply);
                    assert_eq!(Control::parse(&reply.to_vec()), Ok(reply));
                }
                Err(r) => {
                    assert_eq!(r, Reason::Malformed);
                    assert!(hello.max_frame.is_some_and(|m| m < MIN_NEGOTIATED_FRAME));
                }
            }
        }
    }
}

/// Error bodies on every app: JSON on 0-1, CBOR on 2-3.
pub fn error_body(data: &[u8]) {
    for app in [0u16, 1, 2, 3] {
        let body = match ErrorBody::decode(app, data) {
            Ok(body) => body,
            Err(r) => {
                assert_eq!(r, Reason::Malformed);
                continue;
            }
        };
        let mut out = Vec::new();
        body.encode(app, &mut out);
        assert_eq!(
            ErrorBody::decode(app, &out).as_ref(),
            Ok(&body),
            "app {app}"
        );
        let mut again = Vec::new();
        body.encode(app, &mut again);
        assert_eq!(again, out, "app {app}: encoding is stable");
        if let Some(r) = body.reason() {
            assert_eq!(r.label(), body.reason);
        }
        // One body is the whole payload: a byte after it is not part of any body.
        let mut longer = data.to_vec();
        longer.push(0);
        assert_eq!(
            ErrorBody::decode(app, &longer),
            Err(Reason::Malformed),
            "app {app}: a body followed by a stray byte"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// CBOR messages

/// The properties every CBOR message type has; returns the value when `data` decoded.
fn cbor_msg<T: PartialEq + Debug>(
    data: &[u8],
    decode: fn(&[u8]) -> Result<T, Reason>,
    encode: fn(&T, &mut Vec<u8>),
) -> Option<T> {
    let v = match decode(data) {
        Ok(v) => v,
        Err(r) => {
            assert_eq!(r, Reason::Malformed);
            return None;
        }
    };
    let mut out = Vec::new();
    encode(&v, &mut out);
    let back = decode(&out).unwrap_or_else(|r| {
        panic!(
            "{v:?} re-encodes to {} which does not decode: {r}",
            hex::encode(&out)
        )
    });
    assert_eq!(back, v, "round trip");
    let mut again = Vec::new();
    encode(&back, &mut again);
    assert_eq!(again, out, "re-encoding is byte-stable");
    assert!(
        out.len() <= data.len(),
        "the canonical encoding ({} bytes) is longer than an accepted one ({} bytes)",
        out.len(),
        data.len()
    );
    // One message is exactly one item: a byte more or a byte less is malformed.
    let mut longer = data.to_vec();
    longer.push(0);
    assert_eq!(decode(&longer), Err(Reason::Malformed), "trailing byte");
    assert_eq!(
        decode(&data[..data.len() - 1]),
        Err(Reason::Malformed),
        "truncated by one byte"
    );
    Some(v)
}

/// Objects plane: requests and responses.
pub fn objects_msg(data: &[u8]) {
    if let Some(req) = cbor_msg(data, ObjectRequest::decode, ObjectRequest::encode) {
        let _ = req.addr();
        if let ObjectRequest::Get(get) = &req {
            assert_eq!(get.status(), if get.range.is_some() { 206 } else { 200 });
            if let Some(range) = get.range {
                assert!(
                    range.start < range.end,
                    "decoded an empty or inverted range"
                );
                let r = next(&mut fnv(data));
                for size in [0, 1, range.start, range.end - 1, range.end, r, u64::MAX] {
                    let c = range.clamp(size);
                    assert!(c.start <= c.end && c.end <= size && c.end <= range.end);
                    if c.start < c.end {
                        assert_eq!(c.start, range.start);
                        assert_eq!(c.end, range.end.min(size));
                    }
                }
            }
        }
    }
    cbor_msg(data, HeadResp::decode, HeadResp::encode);
    cbor_msg(data, PutResp::decode, PutResp::encode);
}

fn check_topic(topic: &str) {
    assert!(
        (1..=MAX_TOPIC_BYTES).contains(&topic.len()),
        "topic of {} bytes",
        topic.len()
    );
}

/// Gossip plane: events, requests, the OK answer.
pub fn gossip_msg(data: &[u8]) {
    if let Some(ev) = cbor_msg(data, GossipEvent::decode, GossipEvent::encode) {
        check_topic(&ev.topic);
        assert_eq!(ev.msg_id, gossip::msg_id(&ev.topic, ev.ts, &ev.data));
        let mut owned = Vec::new();
        ev.encode(&mut owned);
        let mut by_ref = Vec::new();
        ev.relayed(ev.hops).encode(&mut by_ref);
        assert_eq!(by_ref, owned, "the borrowed event encodes as the owned one");
        by_ref.clear();
        let hops = ev.hops.wrapping_add(1);
        ev.relayed(hops).encode(&mut by_ref);
        let relayed = GossipEvent::decode(&by_ref).expect("a relayed event decodes");
        assert_eq!(relayed, GossipEvent { hops, ..ev });
    }
    if let Some(req) = cbor_msg(data, GossipRequest::decode, GossipRequest::encode) {
        match &req {
            GossipRequest::Subscribe(s) => check_topic(&s.topic),
            GossipRequest::Unsubscribe(s) => check_topic(&s.topic),
            GossipRequest::IHave(i) => {
                check_topic(&i.topic);
                assert!(i.ids.len() <= MAX_GOSSIP_IDS);
            }
            GossipRequest::IWant(i) => assert!(i.ids.len() <= MAX_GOSSIP_IDS),
        }
    }
    cbor_msg(data, GossipOk::decode, GossipOk::encode);
}

fn check_node(n: &NodeInfo) {
    assert!(n.addrs.len() <= MAX_ADDRS);
    assert!(n.addrs.iter().all(|a| a.len() <= MAX_ADDR_BYTES));
}

fn check_record_bounds(r: &ProviderRecord) {
    assert!(r.addrs.len() <= MAX_ADDRS);
    assert!(r.addrs.iter().all(|a| a.len() <= MAX_ADDR_BYTES));
    assert!(r.sigs.len() <= MAX_RECORD_SIGS);
    // The record on its own decodes to the same record when it fits the record bound.
    let mut enc = Vec::new();
    record::encode_record(r, &mut enc);
    if enc.len() <= MAX_RECORD_BYTES {
        assert_eq!(record::decode_record(&enc).as_ref(), Ok(r));
    }
}

/// DHT plane: requests and the four responses.
pub fn dht_msg(data: &[u8]) {
    if let Some(DhtRequest::Provide(p)) = cbor_msg(data, DhtRequest::decode, DhtRequest::encode) {
        check_record_bounds(&p.record);
    }
    if let Some(resp) = cbor_msg(data, FindNodeResp::decode, FindNodeResp::encode) {
        assert!(resp.closest.len() <= K);
        resp.closest.iter().for_each(check_node);
        let mut owned = Vec::new();
        resp.encode(&mut owned);
        let mut by_ref = Vec::new();
        FindNodeRespRef {
            closest: resp.closest.iter(),
        }
        .encode(&mut by_ref);
        assert_eq!(by_ref, owned);
    }
    if let Some(resp) = cbor_msg(data, FindValueResp::decode, FindValueResp::encode) {
        if let Some(p) = &resp.providers {
            assert!(p.len() <= MAX_PROVIDERS);
            p.iter().for_each(check_record_bounds);
        }
        if let Some(c) = &resp.closest {
            assert!(c.len() <= K);
            c.iter().for_each(check_node);
        }
        let mut owned = Vec::new();
        resp.encode(&mut owned);
        let mut by_ref = Vec::new();
        FindValueRespRef {
            providers: resp.providers.as_ref().map(|p| p.iter()),
            closest: resp.closest.as_ref().map(|c| c.iter()),
        }
        .encode(&mut by_ref);
        assert_eq!(by_ref, owned);
    }
    if let Some(resp) = cbor_msg(data, ProvideResp::decode, ProvideResp::encode) {
        assert_eq!(resp.accepted, resp.reason.is_none());
    }
    cbor_msg(data, PingResp::decode, PingResp::encode);
}

// ---------------------------------------------------------------------------------------------
// Provider records

const PQ: RecordPolicy = RecordPolicy {
    require_pq_sig: true,
};
const CLASSIC: RecordPolicy = RecordPolicy {
    require_pq_sig: false,
};

/// The labels a record check may answer with.
fn record_label_ok(e: &RecordError) -> bool {
    matches!(
        e.reason(),
        Reason::Oversize
            | Reason::Malformed
            | Reason::BadPublisher
            | Reason::BadSig
            | Reason::BadTtl
            | Reason::BadTs
            | Reason::Stale
    )
}

/// Provider records: decode, round trip, validate at [`NOW`] under both policies.
pub fn record(data: &[u8]) {
    let rec = match record::decode_record(data) {
        Ok(rec) => rec,
        Err(e) => {
            assert!(
                matches!(e.reason(), Reason::Oversize | Reason::Malformed),
                "{e}"
            );
            assert_eq!(
                data.len() > MAX_RECORD_BYTES,
                matches!(e, RecordError::Oversize(_))
            );
            return;
        }
    };
    let mut enc = Vec::new();
    record::encode_record(&rec, &mut enc);
    assert!(
        enc.len() <= data.len(),
        "canonical encoding is the shortest"
    );
    assert_eq!(record::decode_record(&enc).as_ref(), Ok(&rec), "round trip");
    let mut again = Vec::new();
    record::encode_record(&rec, &mut again);
    assert_eq!(again, enc, "re-encoding is byte-stable");

    let len = data.len();
    let pq = record::validate(&rec, len, NOW, &PQ);
    let classic = record::validate(&rec, len, NOW, &CLASSIC);
    for r in [&pq, &classic] {
        if let Err(e) = r {
            assert!(record_label_ok(e), "{e}");
        }
    }
    match &pq {
        // Requiring the PQ signature only ever refuses more.
        Ok(()) => assert_eq!(classic, Ok(())),
        Err(RecordError::MissingMlDsaPk | RecordError::MissingMlDsaSig) => {}
        Err(e) => assert_eq!(
            classic.as_ref(),
            Err(e),
            "the policies differ before bad_sig"
        ),
    }
    // The batch validator answers what the single one does, alone and in company. In company
    // it may accept an Ed25519 signature crafted with torsion components that the single check
    // refuses (documented at `validate_batch`): that direction alone is allowed.
    for (policy, single) in [(&PQ, &pq), (&CLASSIC, &classic)] {
        assert_eq!(
            record::validate_batch(&[(&rec, len)], NOW, policy),
            vec![single.clone()]
        );
        let singles = [
            single.clone(),
            record::validate(&rec, enc.len(), NOW, policy),
        ];
        let batch = record::validate_batch(&[(&rec, len), (&rec, enc.len())], NOW, policy);
        for (b, s) in batch.iter().zip(&singles) {
            assert!(
                b == s || *s == Err(RecordError::BadEd25519Sig),
                "batch {b:?}, single {s:?}"
            );
        }
    }
    if pq.is_ok() {
        // Time is checked last: the same record, valid now, is stale at its expiry and from the
        // future well before its timestamp.
        let expiry = rec.ts.saturating_add(rec.ttl_s);
        assert!(matches!(
            record::validate(&rec, len, expiry, &PQ),
            Err(RecordError::Stale { .. })
        ));
        if rec.ts > 301 {
            assert!(matches!(
                record::validate(&rec, len, rec.ts - 301, &PQ),
                Err(RecordError::BadTs { .. })
            ));
        }
    }

    // Carried by a PROVIDE, the record passes the DHT decoder exactly when it is within bounds.
    let within = rec.addrs.len() <= MAX_ADDRS
        && rec.addrs.iter().all(|a| a.len() <= MAX_ADDR_BYTES)
        && rec.sigs.len() <= MAX_RECORD_SIGS;
    let req = DhtRequest::Provide(Box::new(Provide { record: rec }));
    let mut out = Vec::new();
    req.encode(&mut out);
    match DhtRequest::decode(&out) {
        Ok(back) => {
            assert!(within, "PROVIDE of a record out of bounds accepted");
            assert_eq!(back, req);
        }
        Err(r) => {
            assert_eq!(r, Reason::Malformed);
            assert!(
                !within,
                "PROVIDE of a decodable record within bounds refused"
            );
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Capabilities

fn cap_keys(kid: &[u8; 8]) -> Option<[u8; 32]> {
    (*kid == CAP_KID).then_some(CAP_ROOT_KEY)
}

/// The requests every token is checked against.
const CAP_REQUESTS: [CapRequest; 6] = [
    CapRequest {
        op: Op::Get,
        now: NOW,
        tenant: 0xaa,
        bytes: None,
    },
    CapRequest {
        op: Op::Put,
        now: NOW,
        tenant: 0xaa,
        bytes: Some(100),
    },
    CapRequest {
        op: Op::Put,
        now: NOW,
        tenant: 0,
        bytes: Some(u64::MAX),
    },
    CapRequest {
        op: Op::Gossip,
        now: NOW + 1_000_000,
        tenant: 0xaa,
        bytes: Some(0),
    },
    CapRequest {
        op: Op::Get,
        now: 0,
        tenant: u128::MAX,
        bytes: Some(1 << 20),
    },
    CapRequest {
        op: Op::Put,
        now: u64::MAX,
        tenant: 0xbb,
        bytes: Some(4096),
    },
];

/// Caveats a holder might add to narrow a token.
const NARROWING: [&str; 5] = [
    "scope=get",
    "exp=1700000001",
    "max_bytes=100",
    "tenant=0xaa",
    "scope=put,gossip",
];

/// Whether `req` satisfies `c`, read straight from PROTOCOL.md section 10.
fn caveat_holds(c: &Caveat, req: &CapRequest) -> bool {
    match c {
        Caveat::Scope(ops) => ops.contains(&req.op),
        Caveat::Exp(exp) => req.now < *exp,
        Caveat::MaxBytes(max) => req.bytes.is_some_and(|b| b <= *max),
        Caveat::Tenant(t) => *t == req.tenant,
    }
}

/// What verifying a token with a valid tag must answer: the first caveat that does not parse,
/// or does not hold (compared by kind), else `Ok`.
fn expected_caveats(caveats: &[String], req: &CapRequest) -> Result<(), CapError> {
    for text in caveats {
        let c = Caveat::parse(text)?;
        if !caveat_holds(&c, req) {
            // Any variant of the right kind; `check_verdict` compares the kind only.
            return Err(match c {
                Caveat::Scope(_) => CapError::OutOfScope {
                    op: req.op,
                    caveat: String::new(),
                },
                Caveat::Exp(exp) => CapError::Expired { exp, now: req.now },
                Caveat::MaxBytes(max) => match req.bytes {
                    None => CapError::SizeUnknown { max },
                    Some(bytes) => CapError::OverMaxBytes { bytes, max },
                },
                Caveat::Tenant(want) => CapError::WrongTenant {
                    want,
                    got: req.tenant,
                },
            });
        }
    }
    Ok(())
}

fn check_verdict(got: &Result<(), CapError>, want: &Result<(), CapError>) {
    match (got, want) {
        (Ok(()), Ok(())) => {}
        (Err(CapError::OutOfScope { op, .. }), Err(CapError::OutOfScope { op: w, .. })) => {
            assert_eq!(op, w)
        }
        (Err(g), Err(w)) => assert_eq!(g, w),
        _ => panic!("verify gave {got:?}, the caveats say {want:?}"),
    }
}

/// Capability tokens: decode, round trip, verify, re-mint, attenuate.
pub fn cap(data: &[u8]) {
    let token = match Capability::decode(data) {
        Ok(token) => token,
        Err(e) => {
            assert_eq!(e.reason(), Reason::Forbidden, "{e}");
            assert_eq!(
                data.len() > MAX_CAP_BYTES,
                matches!(e, CapError::TooLarge(_))
            );
            return;
        }
    };
    assert!(token.caveats.len() <= MAX_CAVEATS);
    let enc = token.encode();
    assert!(
        enc.len() <= data.len(),
        "canonical encoding is the shortest"
    );
    assert_eq!(Capability::decode(&enc).as_ref(), Ok(&token), "round trip");
    assert_eq!(token.encode(), enc, "encoding is stable");

    // Every caveat that parses prints in a canonical form that parses back the same.
    for text in &token.caveats {
        if let Ok(c) = Caveat::parse(text) {
            let canonical = c.to_string();
            assert_eq!(Caveat::parse(&canonical).as_ref(), Ok(&c), "{canonical}");
        }
    }

    // The token as it came, against the key table.
    let caveats: Vec<&str> = token.caveats.iter().map(String::as_str).collect();
    let minted = Capability::mint(&CAP_ROOT_KEY, token.kid, &caveats);
    for req in &CAP_REQUESTS {
        let got = token.verify(cap_keys, req);
        if let Err(e) = &got {
            assert_eq!(e.reason(), Reason::Forbidden, "{e}");
        }
        let want = if token.kid != CAP_KID {
            Err(CapError::UnknownKeyId(hex::encode(token.kid)))
        } else if minted.tag != token.tag {
            Err(CapError::BadTag)
        } else {
            expected_caveats(&token.caveats, req)
        };
        check_verdict(&got, &want);
    }

    // The same caveats under the table's key: the tag is right, so the caveats decide.
    let reminted = Capability::mint(&CAP_ROOT_KEY, CAP_KID, &caveats);
    assert_eq!(
        Capability::decode(&reminted.encode()).as_ref().ok(),
        (reminted.encode().len() <= MAX_CAP_BYTES).then_some(&reminted)
    );
    let verdicts: Vec<_> = CAP_REQUESTS
        .iter()
        .map(|req| {
            let got = reminted.verify(cap_keys, req);
            check_verdict(&got, &expected_caveats(&reminted.caveats, req));
            got
        })
        .collect();
    // Attenuation narrows, never widens; a different key never verifies.
    for extra in NARROWING {
        let narrower = reminted.attenuate(extra);
        for (req, before) in CAP_REQUESTS.iter().zip(&verdicts) {
            let after = narrower.verify(cap_keys, req);
            if after.is_ok() {
                assert!(before.is_ok(), "{extra:?} widened {before:?} to Ok");
            }
            if narrower.caveats.len() <= MAX_CAVEATS {
                let want = before
                    .clone()
                    .and_then(|()| expected_caveats(&[extra.to_owned()], req));
                check_verdict(&after, &want);
            }
        }
    }
    assert_eq!(
        reminted.verify(|_| Some([0xa5; 32]), &CAP_REQUESTS[0]),
        if reminted.caveats.len() > MAX_CAVEATS {
            Err(CapError::TooManyCaveats(reminted.caveats.len()))
        } else {
            Err(CapError::BadTag)
        }
    );
}

// ---------------------------------------------------------------------------------------------
// Ids and certificates

/// Object addresses and NodeIds (strict parsing), XOR distance and buckets.
pub fn ids(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let s: &str = &text;
    if let Ok(a) = ObjectAddr::parse(s) {
        assert_eq!(a.to_string(), s, "strict: one spelling per address");
        assert_eq!(s.parse::<ObjectAddr>(), Ok(a));
    }
    if let Ok(n) = NodeId::parse_hex(s) {
        assert_eq!(n.to_string(), s, "strict: one spelling per id");
        assert_eq!(
            ObjectAddr::parse(&format!("b3:{s}")).map(|a| a.0),
            Ok(n.0),
            "the same 64 hex digits read the same under both"
        );
    }
    if let Some(hex) = s.strip_prefix("b3:") {
        assert_eq!(
            ObjectAddr::parse(s).map(|a| a.0),
            NodeId::parse_hex(hex).map(|n| n.0)
        );
    }

    // Distance laws over the ids the bytes spell, 32 bytes each.
    let pts: Vec<[u8; 32]> = data
        .chunks_exact(32)
        .take(40)
        .map(|c| c.try_into().expect("32 bytes"))
        .collect();
    for (i, a) in pts.iter().enumerate() {
        assert_eq!(id::distance(a, a).leading_zeros(), 256);
        assert_eq!(id::bucket_index(a, a), None);
        for b in &pts[i + 1..] {
            let d = id::distance(a, b);
            assert_eq!(d, id::distance(b, a));
            let lz = d.leading_zeros();
            assert_eq!(id::bucket_index(a, b), (lz < 256).then(|| (255 - lz) as u8));
            assert_eq!(a == b, lz == 256);
        }
    }
    if let Some(target) = pts.first() {
        let mut sorted = pts.clone();
        sorted.sort_by_key(|p| id::distance(p, target));
        for k in [0, 1, 3, K, pts.len() + 1] {
            let mut sel = pts.clone();
            let n = id::select_closest(&mut sel, target, k, |p| *p);
            assert_eq!(n, k.min(pts.len()));
            // Equal distances mean equal ids, so the closest k are unique.
            assert_eq!(&sel[..n], &sorted[..n]);
        }
    }
}

/// Peer certificates: a NodeId or `unauthorized`, never a panic.
pub fn cert(data: &[u8]) {
    if let Err(e) = crate::cert::node_id_from_cert(data) {
        assert_eq!(e.reason(), Reason::Unauthorized, "{e}");
    }
}

// ---------------------------------------------------------------------------------------------
// Sessions

/// A node's receive pipeline (acceptor, serving apps 0-3) over the input, fed in data-derived
/// chunks; requests are answered as they end, as a node would.
pub fn session(data: &[u8]) {
    let mut state = fnv(data);
    let mut inbound = Inbound::new(Role::Acceptor, MAX_FRAME, ServedApps::NODE);
    let mut buf = BytesMut::new();
    let mut last_answered = 0;
    let mut pos = 0;
    while pos < data.len() {
        let end = (pos + 1 + (next(&mut state) % 4096) as usize).min(data.len());
        buf.extend_from_slice(&data[pos..end]);
        pos = end;
        loop {
            match inbound.poll(&mut buf) {
                Ok(Some(rx)) => {
                    let h = rx.frame.header;
                    if h.kind() == Some(crate::flags::Kind::Req) && rx.progress.ends() {
                        let resp = OutFrame::response(h.app_proto_id, h.corr_id, 200, b"").header();
                        inbound
                            .tracker_mut()
                            .on_send(&resp)
                            .expect("a request just received can be answered");
                        last_answered = h.corr_id;
                    }
                }
                Ok(None) => break,
                Err(reject) => {
                    let r = reject.reason;
                    assert!(
                        r.closes_session() || r == Reason::Quota,
                        "not a reject label: {reject}"
                    );
                    match reject.farewell(last_answered) {
                        Farewell::Respond { corr_id, body, .. } => {
                            let h = reject.header.expect("a response answers a header");
                            assert_eq!(h.check(u32::MAX).ok(), Some(crate::flags::Kind::Req));
                            assert_eq!((body.corr_id, body.reason.as_str()), (corr_id, r.label()));
                        }
                        Farewell::GoAway(g) => assert_eq!(g.reason, r.label()),
                    }
                    return;
                }
            }
        }
    }
    if let Err(reject) = inbound.at_eof(&buf) {
        assert_eq!(reject.reason, Reason::Truncated);
    }
}
