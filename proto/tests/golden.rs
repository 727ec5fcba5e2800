//! PROTOCOL.md section 3's golden frames: encoded byte for byte, decoded back field for field.

use bytes::{Bytes, BytesMut};
use ronode_proto::control::{Control, Hello, HelloReply, APP_CONTROL};
use ronode_proto::frame::{FrameDecoder, FrameEncoder, OutFrame};
use ronode_proto::limits::MAX_FRAME;
use ronode_proto::Flags;

fn unhex(spaced: &str) -> Vec<u8> {
    hex::decode(spaced.replace(' ', "")).expect("golden hex")
}

const HELLO_REQ: &str = "00000036 0001 0001 0000 0000 000000000000000000000000000000aa 0000 \
                         000000000000002a 7b227561223a2273646b2f302e31227d";
const HELLO_REPLY_HEAD: &str =
    "0000008b00010002 00c8 0000 000000000000000000000000000000bb 0000 0000000000000007";
const HELLO_REPLY_JSON: &str = r#"{"max_frame":1048576,"max_inflight":64,"flags_supported":255,"versions":[1],"transports":["tcp+tls"]}"#;
const APP200: &str = "0000003100010002 00c8 00c8 000000000000000000000000000000dd 0000 \
                      000000000000007b 68656c6c6f20776f726c64";

fn encode(frame: &OutFrame<'_>) -> Vec<u8> {
    let mut out = Vec::new();
    FrameEncoder::new(MAX_FRAME)
        .encode(frame, &mut out)
        .unwrap();
    out
}

#[test]
fn hello_request_golden() {
    let payload = Control::Hello(Hello {
        ua: Some("sdk/0.1".into()),
        max_frame: None,
    })
    .to_vec();
    let frame = OutFrame {
        tenant_id: 0xaa,
        ..OutFrame::request(APP_CONTROL, 42, &payload)
    };
    let bytes = encode(&frame);
    assert_eq!(bytes, unhex(HELLO_REQ));

    let (decoded, used) = FrameDecoder::new(MAX_FRAME)
        .decode_one(&Bytes::from(bytes))
        .unwrap();
    assert_eq!(used, 0x36);
    assert_eq!(decoded.header.flags, Flags::REQ);
    assert_eq!(decoded.header.tenant_id, 0xaa);
    assert_eq!(decoded.corr_id(), 42);
    assert_eq!(
        Control::parse(&decoded.payload),
        Ok(Control::Hello(Hello {
            ua: Some("sdk/0.1".into()),
            max_frame: None
        }))
    );
}

#[test]
fn hello_reply_golden() {
    let payload = Control::HelloReply(HelloReply::default()).to_vec();
    assert_eq!(payload, HELLO_REPLY_JSON.as_bytes());
    let frame = OutFrame {
        tenant_id: 0xbb,
        ..OutFrame::response(APP_CONTROL, 7, 200, &payload)
    };
    let bytes = encode(&frame);
    let mut golden = unhex(HELLO_REPLY_HEAD);
    golden.extend_from_slice(HELLO_REPLY_JSON.as_bytes());
    assert_eq!(golden.len(), 139);
    assert_eq!(bytes, golden);

    let mut buf = BytesMut::from(&bytes[..]);
    let decoded = FrameDecoder::new(MAX_FRAME)
        .decode(&mut buf)
        .unwrap()
        .unwrap();
    assert_eq!(decoded.header.code, 200);
    assert_eq!(decoded.header.len, 139);
    assert_eq!(
        Control::parse(&decoded.payload),
        Ok(Control::HelloReply(HelloReply::default()))
    );
}

#[test]
fn unallocated_app_golden_decodes() {
    let frame = OutFrame {
        tenant_id: 0xdd,
        ..OutFrame::response(200, 123, 200, b"hello world")
    };
    let bytes = encode(&frame);
    assert_eq!(bytes, unhex(APP200));
    // A decoder decodes app 200; answering `unknown_app` is the session's business.
    let (decoded, _) = FrameDecoder::new(MAX_FRAME)
        .decode_one(&Bytes::from(bytes))
        .unwrap();
    assert_eq!(decoded.app_proto_id(), 200);
    assert_eq!(&decoded.payload[..], b"hello world");
}

#[test]
fn golden_frames_decode_when_fed_byte_by_byte() {
    let mut all = unhex(HELLO_REQ);
    all.extend(unhex(APP200));
    let mut dec = FrameDecoder::new(MAX_FRAME);
    let mut buf = BytesMut::new();
    let mut frames = Vec::new();
    for b in all {
        buf.extend_from_slice(&[b]);
        while let Some(f) = dec.decode(&mut buf).unwrap() {
            frames.push(f);
        }
    }
    assert_eq!(frames.len(), 2);
    assert_eq!(frames[0].corr_id(), 42);
    assert_eq!(frames[1].corr_id(), 123);
    assert!(buf.is_empty());
}
