//! Every frame-level row of PROTOCOL.md's reject table (section 2.4), produced from bytes, with its label and
//! status; the order of the checks; and zero-copy decoding.

use bytes::{Bytes, BytesMut};
use ronode_proto::frame::{FrameDecoder, FrameError, Header};
use ronode_proto::limits::{HEADER_LEN, MAX_FRAME};
use ronode_proto::{Flags, Reason};

fn header() -> Header {
    Header {
        len: HEADER_LEN as u32,
        ver: 1,
        flags: Flags::REQ,
        code: 0,
        app_proto_id: 1,
        tenant_id: 0,
        cap_len: 0,
        corr_id: 1,
    }
}

/// A frame whose header is `h` with `h.len - 38` bytes of body.
fn frame(h: Header, body: &[u8]) -> Bytes {
    let mut v = h.to_bytes().to_vec();
    v.extend_from_slice(body);
    Bytes::from(v)
}

fn with_body(mut h: Header, body: &[u8]) -> Bytes {
    h.len = (HEADER_LEN + body.len()) as u32;
    frame(h, body)
}

fn reject(bytes: &Bytes) -> FrameError {
    FrameDecoder::new(MAX_FRAME).decode_one(bytes).unwrap_err()
}

fn assert_reject(bytes: Bytes, label: &str, status: u16) {
    let err = reject(&bytes);
    assert_eq!(err.reason().label(), label, "{err}");
    assert_eq!(err.reason().status(), status, "{err}");
}

#[test]
fn truncated_header_and_body() {
    let whole = with_body(header(), b"abc");
    assert_reject(whole.slice(..10), "truncated", 400);
    assert_reject(whole.slice(..HEADER_LEN + 1), "truncated", 400);
    assert_reject(Bytes::new(), "truncated", 400);
}

#[test]
fn bad_len() {
    let h = Header {
        len: 37,
        ..header()
    };
    assert_reject(frame(h, &[]), "bad_len", 400);
}

#[test]
fn oversize_len_rejected_from_the_header_alone() {
    let h = Header {
        len: MAX_FRAME + 1,
        ..header()
    };
    // Only the header is there: the verdict does not wait for (or allocate) the body.
    assert_reject(frame(h, &[]), "oversize", 413);
    let h = Header {
        len: u32::MAX,
        ..header()
    };
    let mut dec = FrameDecoder::new(MAX_FRAME);
    let mut buf = BytesMut::from(&h.to_bytes()[..]);
    assert_eq!(dec.decode(&mut buf).unwrap_err().reason(), Reason::Oversize);
    assert!(
        buf.capacity() < 4096,
        "no room reserved for a rejected body"
    );
}

#[test]
fn oversize_against_negotiated_max_frame() {
    let mut dec = FrameDecoder::new(MAX_FRAME);
    dec.set_max_frame(4096);
    let bytes = with_body(header(), &[0u8; 4096]);
    assert_eq!(
        dec.decode_one(&bytes).unwrap_err().reason(),
        Reason::Oversize
    );
    let ok = with_body(header(), &[0u8; 4096 - HEADER_LEN]);
    assert!(dec.decode_one(&ok).is_ok());
}

#[test]
fn bad_version() {
    assert_reject(
        with_body(Header { ver: 2, ..header() }, b""),
        "bad_version",
        400,
    );
    assert_reject(
        with_body(Header { ver: 0, ..header() }, b""),
        "bad_version",
        400,
    );
}

#[test]
fn bad_flags_each_case() {
    let cases = [
        Flags::from_bits(0x0101),                  // unknown bit
        Flags::from_bits(0x8004),                  // unknown high bit
        Flags::REQ | Flags::RESP,                  // two kinds
        Flags::START,                              // no kind
        Flags::REQ | Flags::ACK_REQ,               // ACK_REQ not on EVENT
        Flags::RESP | Flags::ACK_REQ,              // ACK_REQ not on EVENT
        Flags::REQ | Flags::COMP | Flags::APP_E2E, // COMP with APP_E2E
    ];
    for flags in cases {
        let code = if flags.contains(Flags::RESP) { 200 } else { 0 };
        assert_reject(
            with_body(
                Header {
                    flags,
                    code,
                    ..header()
                },
                b"",
            ),
            "bad_flags",
            400,
        );
    }
    let ok = Flags::EVENT | Flags::ACK_REQ | Flags::APP_E2E | Flags::START | Flags::END;
    assert!(FrameDecoder::new(MAX_FRAME)
        .decode_one(&with_body(
            Header {
                flags: ok,
                ..header()
            },
            b""
        ))
        .is_ok());
}

#[test]
fn cap_on_non_start() {
    let h = Header {
        cap_len: 3,
        ..header()
    };
    assert_reject(with_body(h, b"cap"), "cap_on_non_start", 400);
}

#[test]
fn cap_out_of_bounds() {
    let h = Header {
        flags: Flags::REQ | Flags::START,
        cap_len: 4,
        ..header()
    };
    assert_reject(with_body(h, b"cap"), "cap_out_of_bounds", 400);
    let ok = with_body(h, b"capX");
    let (f, _) = FrameDecoder::new(MAX_FRAME).decode_one(&ok).unwrap();
    assert_eq!(&f.cap[..], b"capX");
    assert!(f.payload.is_empty());
}

#[test]
fn bad_code() {
    assert_reject(
        with_body(
            Header {
                code: 200,
                ..header()
            },
            b"",
        ),
        "bad_code",
        400,
    );
    let event = Header {
        flags: Flags::EVENT,
        code: 1,
        ..header()
    };
    assert_reject(with_body(event, b""), "bad_code", 400);
    for code in [0u16, 201, 302, 418, 599] {
        let resp = Header {
            flags: Flags::RESP,
            code,
            ..header()
        };
        assert_reject(with_body(resp, b""), "bad_code", 400);
    }
    for code in ronode_proto::reason::STATUSES {
        let resp = Header {
            flags: Flags::RESP,
            code,
            ..header()
        };
        assert!(FrameDecoder::new(MAX_FRAME)
            .decode_one(&with_body(resp, b""))
            .is_ok());
    }
}

fn comp_header() -> Header {
    Header {
        flags: Flags::REQ | Flags::COMP,
        ..header()
    }
}

#[test]
fn bad_comp() {
    assert_reject(
        with_body(comp_header(), b"not zstd at all"),
        "bad_comp",
        400,
    );
    assert_reject(with_body(comp_header(), b""), "bad_comp", 400);
    let one = zstd::bulk::compress(&b"abcabcabc".repeat(50), 3).unwrap();
    let mut two = one.clone();
    two.extend_from_slice(&one);
    assert_reject(with_body(comp_header(), &two), "bad_comp", 400);
    assert_reject(
        with_body(comp_header(), &one[..one.len() - 2]),
        "bad_comp",
        400,
    );
}

#[test]
fn comp_inflating_past_max_frame_is_oversize() {
    // Varied text: compresses about 3x, inflates past 1 MiB without crossing the ratio cap.
    let mut x = 7u32;
    let text: Vec<u8> = (0..1_400_000)
        .map(|_| {
            x = x.wrapping_mul(1_103_515_245).wrapping_add(12_345);
            b"abcdefghijklmnopqrstuvwxyz012345"[(x >> 16) as usize % 32]
        })
        .collect();
    let c = zstd::bulk::compress(&text, 3).unwrap();
    assert!(c.len() * 10 > text.len() && c.len() + HEADER_LEN < MAX_FRAME as usize);
    assert_reject(with_body(comp_header(), &c), "oversize", 413);
}

#[test]
fn comp_bomb_is_ratio_cap() {
    let bomb = zstd::bulk::compress(&vec![0u8; 1 << 20], 19).unwrap();
    assert_reject(with_body(comp_header(), &bomb), "ratio_cap", 400);
    // Even a bomb that would also pass max_frame in the same step is named `ratio_cap`.
    let huge = zstd::bulk::compress(&vec![0u8; 3 << 20], 19).unwrap();
    assert_reject(with_body(comp_header(), &huge), "ratio_cap", 400);
}

#[test]
fn checks_run_in_table_order() {
    // bad_len before bad_version, flags, ...
    let h = Header {
        len: 10,
        ver: 9,
        flags: Flags::from_bits(0xffff),
        ..header()
    };
    assert_reject(frame(h, &[]), "bad_len", 400);
    // oversize before bad_version
    let h = Header {
        len: MAX_FRAME + 1,
        ver: 9,
        ..header()
    };
    assert_reject(frame(h, &[]), "oversize", 413);
    // bad_version before bad_flags
    assert_reject(
        with_body(
            Header {
                ver: 9,
                flags: Flags::START,
                ..header()
            },
            b"",
        ),
        "bad_version",
        400,
    );
    // bad_flags before cap_on_non_start
    let h = Header {
        flags: Flags::REQ | Flags::RESP,
        cap_len: 1,
        ..header()
    };
    assert_reject(with_body(h, b"x"), "bad_flags", 400);
    // cap_on_non_start before cap_out_of_bounds
    let h = Header {
        cap_len: 100,
        ..header()
    };
    assert_reject(with_body(h, b"x"), "cap_on_non_start", 400);
    // cap_out_of_bounds before bad_code
    let h = Header {
        flags: Flags::REQ | Flags::START,
        cap_len: 100,
        code: 5,
        ..header()
    };
    assert_reject(with_body(h, b"x"), "cap_out_of_bounds", 400);
    // bad_code before bad_comp
    let h = Header {
        code: 5,
        ..comp_header()
    };
    assert_reject(with_body(h, b"garbage"), "bad_code", 400);
    // header faults are found before a truncated body is noticed
    let h = Header {
        len: 1000,
        ver: 3,
        ..header()
    };
    assert_reject(frame(h, b"short"), "bad_version", 400);
}

#[test]
fn full_frame_payload_points_into_the_read_buffer() {
    let body = vec![0x5au8; MAX_FRAME as usize - HEADER_LEN];
    let bytes = with_body(header(), &body);
    assert_eq!(bytes.len(), MAX_FRAME as usize);
    let mut buf = BytesMut::with_capacity(bytes.len());
    buf.extend_from_slice(&bytes);
    let range = buf.as_ptr() as usize..buf.as_ptr() as usize + buf.len();
    let f = FrameDecoder::new(MAX_FRAME)
        .decode(&mut buf)
        .unwrap()
        .unwrap();
    let p = f.payload.as_ptr() as usize;
    assert_eq!(f.payload.len(), body.len());
    assert!(range.contains(&p) && range.contains(&(p + f.payload.len() - 1)));
    assert_eq!(
        p,
        range.start + HEADER_LEN,
        "payload starts right after the header"
    );
}
