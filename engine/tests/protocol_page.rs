//! docs/PROTOCOL.md is the contract: its example frames decode with `proto` as messages of
//! their app, a running node answers the page's own request frames with the page's own answer
//! frames, and the page's claims about sessions (a second HELLO, no ALPN, the publisher's gossip
//! `ts` and `msg_id`) hold against the node. `proto/tests/protocol_doc.rs` checks that the
//! examples are what the code encodes; this checks what they mean to a node.

mod common;

use common::{eventually, metric_sum, raw_session, scratch, Node, WAIT};
use ronode_proto::control::Control;
use ronode_proto::error_body::ErrorBody;
use ronode_proto::frame::{FrameDecoder, FrameEncoder, Header, OutFrame};
use ronode_proto::limits::{HEADER_LEN, MAX_FRAME};
use ronode_proto::msg::dht::DhtRequest;
use ronode_proto::msg::gossip::{GossipEvent, GossipRequest};
use ronode_proto::msg::objects::ObjectRequest;
use ronode_proto::{Flags, Kind};
use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::Arc;

type Raw = rustls::StreamOwned<rustls::ClientConnection, TcpStream>;

fn page() -> String {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/PROTOCOL.md");
    std::fs::read_to_string(path).expect("docs/PROTOCOL.md")
}

/// The page's example frames by marker name: the header line (its eight fields, in header
/// order) and the hex lines under `# cap` and `# payload`, up to the first other comment.
fn page_frames() -> BTreeMap<String, Vec<u8>> {
    const WIDTHS: [usize; 8] = [8, 4, 4, 4, 4, 32, 4, 16];
    let doc = page();
    let mut frames = BTreeMap::new();
    let mut lines = doc.lines();
    while let Some(line) = lines.next() {
        let Some(rest) = line.strip_prefix("<!-- example: ") else {
            continue;
        };
        let name = rest.trim_end_matches("-->").trim().to_owned();
        lines.next(); // the opening fence
        let mut bytes = Vec::new();
        let (mut first, mut is_frame, mut taking) = (true, false, true);
        for body in lines.by_ref() {
            if body.trim_end() == "```" {
                break;
            }
            if first {
                first = false;
                let fields: Vec<&str> = body.split(' ').collect();
                is_frame = fields.len() == 8
                    && fields
                        .iter()
                        .zip(WIDTHS)
                        .all(|(f, w)| f.len() == w && f.bytes().all(|b| b.is_ascii_hexdigit()));
                if is_frame {
                    bytes.extend(hex::decode(fields.concat()).unwrap());
                }
                continue;
            }
            if !is_frame || !taking || body == "# cap" || body == "# payload" {
                continue;
            }
            if body.starts_with('#') {
                taking = false;
                continue;
            }
            bytes.extend(hex::decode(body).unwrap_or_else(|e| panic!("{name}: {body}: {e}")));
        }
        if is_frame {
            frames.insert(name, bytes);
        }
    }
    frames
}

fn frame(frames: &BTreeMap<String, Vec<u8>>, name: &str) -> Vec<u8> {
    frames
        .get(name)
        .unwrap_or_else(|| panic!("the page has no example frame {name}"))
        .clone()
}

fn header(bytes: &[u8]) -> Header {
    Header::parse(bytes[..HEADER_LEN].try_into().unwrap())
}

/// Reads one whole frame off the session, bounded by the socket's read timeout.
fn read_frame(s: &mut Raw) -> Vec<u8> {
    let mut len = [0u8; 4];
    s.read_exact(&mut len)
        .expect("a frame from the node within the read timeout");
    let mut v = len.to_vec();
    v.resize(u32::from_be_bytes(len) as usize, 0);
    s.read_exact(&mut v[4..]).expect("the rest of the frame");
    v
}

fn send(s: &mut Raw, bytes: &[u8]) {
    s.write_all(bytes).unwrap();
    s.flush().unwrap();
}

fn encode(frame: &OutFrame<'_>) -> Vec<u8> {
    let mut out = Vec::new();
    FrameEncoder::new(MAX_FRAME)
        .encode(frame, &mut out)
        .unwrap();
    out
}

/// The node closes the session: nothing more comes, then end of input.
fn assert_closed(s: &mut Raw, what: &str) {
    let mut rest = Vec::new();
    let _ = s.read_to_end(&mut rest);
    assert!(
        rest.is_empty(),
        "{what}: {} more bytes instead of a close",
        rest.len()
    );
}

/// The next frame is an error answer on `app` with `code` and `reason` (the body is JSON on apps
/// 0 and 1, CBOR on others), then the node closes the session. Returns the answer's header.
fn assert_refused_then_closed(
    s: &mut Raw,
    app: u16,
    code: u16,
    reason: &str,
    what: &str,
) -> Header {
    let answer = read_frame(s);
    let h = header(&answer);
    let body = ErrorBody::decode(app, &answer[HEADER_LEN..]).unwrap();
    assert_eq!((h.code, body.reason.as_str()), (code, reason), "{what}");
    assert_closed(s, what);
    h
}

/// A raw session that has sent the page's HELLO request and read the node's reply.
fn hello(node: &Node, frames: &BTreeMap<String, Vec<u8>>) -> (Raw, Vec<u8>) {
    let mut s = raw_session(node);
    send(&mut s, &frame(frames, "hello_request"));
    let reply = read_frame(&mut s);
    (s, reply)
}

#[test]
fn every_example_frame_of_the_page_decodes_as_a_message_of_its_app() {
    let frames = page_frames();
    assert!(frames.len() >= 30, "only {} example frames", frames.len());
    for (name, bytes) in &frames {
        // Only its three headers are shown: the bodies are elided.
        if name == "objects_get_stream" {
            continue;
        }
        let mut buf = bytes::BytesMut::from(&bytes[..]);
        let f = FrameDecoder::new(MAX_FRAME)
            .decode(&mut buf)
            .unwrap_or_else(|e| panic!("{name}: {e}"))
            .unwrap_or_else(|| panic!("{name}: not a whole frame"));
        assert!(
            buf.is_empty(),
            "{name}: {} bytes after the frame",
            buf.len()
        );
        let h = f.header;
        let p = &f.payload[..];
        let valid = match (h.app_proto_id, f.kind()) {
            _ if h.flags.contains(Flags::COMP) || h.app_proto_id == 200 => true,
            (app, Kind::Resp) if h.code >= 400 => ErrorBody::decode(app, p).is_ok(),
            (0, _) => Control::parse(p).is_ok(),
            (1, Kind::Req) if h.flags.contains(Flags::END) && !h.flags.contains(Flags::START) => {
                true // a PUT body
            }
            (1, Kind::Req) => ObjectRequest::decode(p).is_ok(),
            (2, Kind::Event) => GossipEvent::decode(p).is_ok(),
            (2, Kind::Req) => GossipRequest::decode(p).is_ok(),
            (3, Kind::Req) => DhtRequest::decode(p).is_ok(),
            // Success answers of apps 1 and 3 depend on their request; the frame decoded.
            _ => true,
        };
        assert!(valid, "{name}: payload is not a valid message of its app");
    }
}

#[test]
fn the_node_answers_the_pages_request_frames_with_the_pages_answers() {
    let frames = page_frames();
    let dir = scratch("page-examples");
    let node = common::start_local(&dir, &[]);
    // The page's object, "hello world", stored through the SDK.
    let mut sdk = common::client(&node);
    sdk.put(b"hello world", Some(&common::mint(&dir, "put")))
        .unwrap();

    let (mut s, reply) = hello(&node, &frames);
    let (h, page_reply) = (header(&reply), frame(&frames, "hello_reply"));
    assert_eq!(
        (h.code, h.corr_id, h.tenant_id),
        (200, 42, 0xaa),
        "the reply answers the HELLO's corr_id and tenant"
    );
    assert_eq!(
        reply[HEADER_LEN..],
        page_reply[HEADER_LEN..],
        "the HELLO reply's payload is the page's"
    );
    for (request, answer) in [
        ("ping", "pong"),
        ("objects_get", "objects_get_response"),
        ("objects_get_range", "objects_get_range_response"),
        ("objects_head", "objects_head_response"),
        ("gossip_subscribe", "gossip_ok"),
        ("gossip_unsubscribe", "gossip_ok_2"),
    ] {
        let want = match answer {
            // The same {"ok": true}, answering the unsubscribe's corr_id.
            "gossip_ok_2" => {
                let mut ok = frame(&frames, "gossip_ok");
                ok[30..38].copy_from_slice(&2u64.to_be_bytes());
                ok
            }
            _ => frame(&frames, answer),
        };
        send(&mut s, &frame(&frames, request));
        assert_eq!(
            hex::encode(read_frame(&mut s)),
            hex::encode(want),
            "the node's answer to the page's {request} is the page's {answer}"
        );
    }
    // The page's PUT, with a capability under a root key this node does not have (and expired
    // in 2023): 403 forbidden, and the session goes on.
    send(&mut s, &frame(&frames, "objects_put_start"));
    let answer = read_frame(&mut s);
    let h = header(&answer);
    let body = ErrorBody::decode(1, &answer[HEADER_LEN..]).unwrap();
    assert_eq!(
        (h.code, h.corr_id, body.reason.as_str()),
        (403, 3, "forbidden")
    );
    // The page's RESP on app 200 answers nothing the node sent: GOAWAY bad_sequence, closed.
    send(&mut s, &frame(&frames, "resp_app_200"));
    let goaway = read_frame(&mut s);
    assert_eq!(header(&goaway).app_proto_id, 0);
    match Control::parse(&goaway[HEADER_LEN..]) {
        Ok(Control::GoAway(g)) => assert_eq!(g.reason, "bad_sequence"),
        other => panic!("expected GOAWAY bad_sequence, got {other:?}"),
    }
    assert_closed(&mut s, "after GOAWAY");
    // A REQ on app 200: answered 400 unknown_app, then closed.
    let (mut s, _) = hello(&node, &frames);
    send(&mut s, &encode(&OutFrame::request(200, 5, b"x")));
    // On an app other than 0 and 1, the error body is CBOR.
    assert_refused_then_closed(&mut s, 200, 400, "unknown_app", "a REQ on app 200");
}

#[test]
fn a_second_hello_is_answered_bad_sequence_and_closes_the_session() {
    let frames = page_frames();
    let node = common::start_local(&scratch("page-second-hello"), &[]);
    let (mut s, reply) = hello(&node, &frames);
    assert_eq!(header(&reply).code, 200);
    let mut again = frame(&frames, "hello_lower_max_frame");
    again[30..38].copy_from_slice(&43u64.to_be_bytes());
    send(&mut s, &again);
    let h = assert_refused_then_closed(&mut s, 0, 400, "bad_sequence", "a second HELLO");
    assert_eq!(h.corr_id, 43, "the answer names the second HELLO");
}

#[test]
fn a_bad_first_hello_is_answered_bad_sequence_and_closes_the_session() {
    let node = common::start_local(&scratch("page-bad-hello"), &[]);
    let mut s = raw_session(&node);
    let ua = "x".repeat(257);
    let payload = format!(r#"{{"ua":"{ua}"}}"#);
    send(
        &mut s,
        &encode(&OutFrame::request(0, 1, payload.as_bytes())),
    );
    // Not a HELLO, so not the HELLO that must come first.
    assert_refused_then_closed(&mut s, 0, 400, "bad_sequence", "a bad HELLO");
}

/// A TLS session offering `alpn` (the node's verifier, no client certificate).
fn tls_with_alpn(node: &Node, alpn: Vec<Vec<u8>>) -> Raw {
    use ronode_client::tls::{client_config, PqMode};
    let mut config = (*client_config(PqMode::Hybrid, None, None).unwrap()).clone();
    config.alpn_protocols = alpn;
    let name = rustls::pki_types::ServerName::IpAddress(node.listen.ip().into());
    let conn = rustls::ClientConnection::new(Arc::new(config), name).unwrap();
    let tcp = TcpStream::connect(node.listen).unwrap();
    tcp.set_read_timeout(Some(WAIT)).unwrap();
    rustls::StreamOwned::new(conn, tcp)
}

#[test]
fn without_alpn_the_handshake_completes_then_the_node_closes_and_counts_it() {
    let node = common::start_local(&scratch("page-alpn"), &[]);
    let alpn = |n: &Node| metric_sum(n.admin, "tls_handshake_failures_total{reason=\"alpn\"");
    let before = alpn(&node);
    let mut s = tls_with_alpn(&node, Vec::new());
    while s.conn.is_handshaking() {
        s.conn
            .complete_io(&mut s.sock)
            .expect("a client offering no ALPN completes the handshake");
    }
    assert_closed(&mut s, "a session without ALPN");
    eventually("the session without ALPN is counted", || {
        alpn(&node) == before + 1.0
    });
    // Offering only another protocol: the handshake itself fails.
    let mut s = tls_with_alpn(&node, vec![b"h2".to_vec()]);
    let mut failed = false;
    while s.conn.is_handshaking() {
        if s.conn.complete_io(&mut s.sock).is_err() {
            failed = true;
            break;
        }
    }
    assert!(failed, "a handshake offering only h2 must fail");
}

fn unix_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
}

/// A publish as the page's section 7.1 shows it, with ACK_REQ so that the verdict comes back.
fn publish(s: &mut Raw, corr_id: u64, ev: &GossipEvent) -> Vec<u8> {
    let mut payload = Vec::new();
    ev.encode(&mut payload);
    send(
        s,
        &encode(&OutFrame {
            flags: Flags::EVENT | Flags::ACK_REQ,
            ..OutFrame::request(2, corr_id, &payload)
        }),
    );
    read_frame(s)
}

#[test]
fn a_subscriber_sees_the_publishers_msg_id_and_ts() {
    let frames = page_frames();
    let dir = scratch("page-gossip");
    let mut cmd = common::local_command(&dir, &[]);
    cmd.env("RONODE_GOSSIP__PUB_POLICY", "open");
    let node = common::start_with(cmd);
    let mut sub = common::client(&node);
    sub.subscribe("news").unwrap();
    let (mut s, _) = hello(&node, &frames);

    // A ts the node's clock cannot produce by chance at the moment it receives the EVENT.
    let mine = GossipEvent::new("news", unix_ms() - 1_234, b"mine".to_vec());
    let ack = publish(&mut s, 2, &mine);
    assert_eq!(
        (header(&ack).code, ack.len()),
        (200, HEADER_LEN),
        "acknowledged"
    );
    let got = sub.next_event().unwrap();
    assert_eq!(
        (got.msg_id, got.ts, got.hops, &got.data[..]),
        (mine.msg_id, mine.ts, 0, &b"mine"[..]),
        "the subscriber sees the message as its publisher made it"
    );
    // The publisher's retry: acknowledged, not delivered again.
    let ack = publish(&mut s, 3, &mine);
    assert_eq!(header(&ack).code, 200, "a retry is acknowledged");
    // A ts ten minutes old: 400 bad_ts, and the session goes on.
    let old = GossipEvent::new("news", unix_ms() - 600_000, b"old".to_vec());
    let answer = publish(&mut s, 4, &old);
    let body = ErrorBody::decode(2, &answer[HEADER_LEN..]).unwrap();
    assert_eq!(
        (header(&answer).code, body.reason.as_str()),
        (400, "bad_ts")
    );
    let last = GossipEvent::new("news", unix_ms(), b"last".to_vec());
    assert_eq!(header(&publish(&mut s, 5, &last)).code, 200);
    let next = sub.next_event().unwrap();
    assert_eq!(
        next.data, b"last",
        "neither the retry nor the refused message was delivered"
    );
}
