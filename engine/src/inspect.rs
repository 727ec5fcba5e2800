//! The wire inspector: `ronode frame decode` and `ronode frame hello`.

use bytes::Bytes;
use ronode_proto::control::{Control, Hello, APP_CONTROL};
use ronode_proto::frame::{FrameDecoder, FrameEncoder, OutFrame};
use ronode_proto::limits::MAX_FRAME;
use ronode_proto::Flags;
use serde::Serialize;

/// A failure of the inspector, printed as `error: <label>: <explanation>`.
#[derive(Debug, thiserror::Error)]
#[error("{label}: {explanation}")]
pub struct InspectError {
    pub label: &'static str,
    pub explanation: String,
}

/// One decoded frame, keys in the order the inspector's contract lists them.
#[derive(Debug, Serialize)]
pub struct FrameReport {
    pub len: u32,
    pub ver: u16,
    pub flags: Vec<&'static str>,
    pub code: u16,
    pub app_proto_id: u16,
    pub tenant_id: String,
    pub cap_len: u16,
    pub corr_id: u64,
    pub cap_hex: String,
    pub payload_len: usize,
    pub wire_payload_len: usize,
    pub payload_utf8: Option<String>,
    pub payload_hex: String,
}

/// Parses hex, ignoring ASCII whitespace.
pub fn parse_hex(text: &str) -> Result<Vec<u8>, InspectError> {
    let digits: Vec<u8> = text.bytes().filter(|b| !b.is_ascii_whitespace()).collect();
    if !digits.len().is_multiple_of(2) {
        return Err(InspectError {
            label: "bad_hex",
            explanation: format!("odd number of hex digits ({})", digits.len()),
        });
    }
    hex::decode(&digits).map_err(|e| InspectError {
        label: "bad_hex",
        explanation: e.to_string(),
    })
}

/// Decodes exactly one frame with the frame-level checks; bytes after it are `trailing_bytes`.
pub fn decode(bytes: Vec<u8>) -> Result<FrameReport, InspectError> {
    let input = Bytes::from(bytes);
    let mut decoder = FrameDecoder::new(MAX_FRAME);
    let (frame, used) = decoder.decode_one(&input).map_err(|e| InspectError {
        label: e.reason().label(),
        explanation: e.to_string(),
    })?;
    if used != input.len() {
        return Err(InspectError {
            label: "trailing_bytes",
            explanation: format!("{} bytes follow the {used}-byte frame", input.len() - used),
        });
    }
    let h = frame.header;
    Ok(FrameReport {
        len: h.len,
        ver: h.ver,
        flags: h.flags.names().collect(),
        code: h.code,
        app_proto_id: h.app_proto_id,
        tenant_id: format!("0x{:032x}", h.tenant_id),
        cap_len: h.cap_len,
        corr_id: h.corr_id,
        cap_hex: hex::encode(&frame.cap),
        payload_len: frame.payload.len(),
        wire_payload_len: frame.wire_payload_len(),
        payload_utf8: std::str::from_utf8(&frame.payload).ok().map(str::to_owned),
        payload_hex: hex::encode(&frame.payload),
    })
}

/// The bytes of a HELLO request frame.
pub fn hello_frame(
    ua: &str,
    corr_id: u64,
    tenant_id: u128,
    max_frame: Option<u32>,
) -> Result<Vec<u8>, InspectError> {
    let payload = Control::Hello(Hello {
        ua: Some(ua.to_owned()),
        max_frame,
    })
    .to_vec();
    let frame = OutFrame {
        tenant_id,
        ..OutFrame::request(APP_CONTROL, corr_id, &payload)
    };
    debug_assert_eq!(frame.flags, Flags::REQ);
    let mut out = Vec::new();
    FrameEncoder::new(MAX_FRAME)
        .encode(&frame, &mut out)
        .map_err(|e| InspectError {
            label: e.reason().label(),
            explanation: e.to_string(),
        })?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hello_golden_frame() {
        let hex = hex::encode(hello_frame("sdk/0.1", 42, 0xaa, None).unwrap());
        let golden = "00000036 0001 0001 0000 0000 000000000000000000000000000000aa 0000 \
                      000000000000002a 7b227561223a2273646b2f302e31227d";
        assert_eq!(hex, golden.replace(' ', ""));
    }

    #[test]
    fn trailing_bytes_and_bad_hex() {
        let mut frame = hello_frame("x", 1, 0, None).unwrap();
        frame.push(0);
        assert_eq!(decode(frame).unwrap_err().label, "trailing_bytes");
        assert_eq!(parse_hex("0").unwrap_err().label, "bad_hex");
        assert_eq!(parse_hex("zz").unwrap_err().label, "bad_hex");
        assert_eq!(parse_hex(" 0a\n0b\t").unwrap(), vec![10, 11]);
    }
}
