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
    m
}
