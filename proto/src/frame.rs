//! OAP/1 frames (PROTOCOL.md section 2): the 38-byte header, its checks in the reject table's order,
//! an incremental zero-copy decoder over a caller-owned read buffer, and an encoder.

use crate::comp::{Deflater, Inflater};
use crate::flags::{Flags, Kind};
use crate::limits::{DECOMPRESS_RATIO_CAP, HEADER_LEN, MAX_FRAME};
use crate::reason::{is_status, Reason};
use bytes::{BufMut, Bytes, BytesMut};

/// The protocol version this crate speaks.
pub const VERSION: u16 = 1;

/// An OAP/1 header, field for field. `len` counts the whole frame, header included.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    pub len: u32,
    pub ver: u16,
    pub flags: Flags,
    pub code: u16,
    pub app_proto_id: u16,
    pub tenant_id: u128,
    pub cap_len: u16,
    pub corr_id: u64,
}

impl Header {
    /// Reads the fields without checking any of them.
    pub fn parse(b: &[u8; HEADER_LEN]) -> Header {
        let u16_at = |o: usize| u16::from_be_bytes([b[o], b[o + 1]]);
        Header {
            len: u32::from_be_bytes([b[0], b[1], b[2], b[3]]),
            ver: u16_at(4),
            flags: Flags::from_bits(u16_at(6)),
            code: u16_at(8),
            app_proto_id: u16_at(10),
            tenant_id: u128::from_be_bytes(b[12..28].try_into().expect("16 bytes")),
            cap_len: u16_at(28),
            corr_id: u64::from_be_bytes(b[30..38].try_into().expect("8 bytes")),
        }
    }

    /// Writes the fields, big-endian, as they are.
    pub fn to_bytes(&self) -> [u8; HEADER_LEN] {
        let mut b = [0u8; HEADER_LEN];
        b[0..4].copy_from_slice(&self.len.to_be_bytes());
        b[4..6].copy_from_slice(&self.ver.to_be_bytes());
        b[6..8].copy_from_slice(&self.flags.bits().to_be_bytes());
        b[8..10].copy_from_slice(&self.code.to_be_bytes());
        b[10..12].copy_from_slice(&self.app_proto_id.to_be_bytes());
        b[12..28].copy_from_slice(&self.tenant_id.to_be_bytes());
        b[28..30].copy_from_slice(&self.cap_len.to_be_bytes());
        b[30..38].copy_from_slice(&self.corr_id.to_be_bytes());
        b
    }

    /// The header-only rows of the reject table, in its order: `bad_len`, `oversize`,
    /// `bad_version`, `bad_flags`, `cap_on_non_start`, `cap_out_of_bounds`, `bad_code`.
    /// Runs as soon as 38 bytes are buffered, before any of the body is.
    pub fn check(&self, max_frame: u32) -> Result<Kind, FrameError> {
        if (self.len as usize) < HEADER_LEN {
            return Err(FrameError::BadLen(self.len));
        }
        if self.len > max_frame {
            return Err(FrameError::Oversize {
                len: self.len,
                max: max_frame,
            });
        }
        if self.ver != VERSION {
            return Err(FrameError::BadVersion(self.ver));
        }
        let f = self.flags;
        if f.unknown_bits() != 0 {
            return Err(FrameError::BadFlags("unknown flag bit set"));
        }
        let kind = f
            .kind()
            .ok_or(FrameError::BadFlags("not exactly one of REQ, RESP, EVENT"))?;
        if f.contains(Flags::ACK_REQ) && kind != Kind::Event {
            return Err(FrameError::BadFlags(
                "ACK_REQ on a frame that is not an EVENT",
            ));
        }
        if f.contains(Flags::COMP) && f.contains(Flags::APP_E2E) {
            return Err(FrameError::BadFlags("COMP together with APP_E2E"));
        }
        if self.cap_len > 0 && !f.contains(Flags::START) {
            return Err(FrameError::CapOnNonStart);
        }
        if HEADER_LEN + self.cap_len as usize > self.len as usize {
            return Err(FrameError::CapOutOfBounds {
                cap_len: self.cap_len,
                len: self.len,
            });
        }
        let code_ok = match kind {
            Kind::Req | Kind::Event => self.code == 0,
            Kind::Resp => is_status(self.code),
        };
        if !code_ok {
            return Err(FrameError::BadCode(self.code));
        }
        Ok(kind)
    }

    pub fn kind(&self) -> Option<Kind> {
        self.flags.kind()
    }
}

/// Why a frame was rejected. Each variant maps to exactly one label of PROTOCOL.md's table.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    #[error("input ends inside a frame: have {have} bytes, need {need}")]
    Truncated { have: usize, need: usize },
    #[error("len {0} is below the 38-byte header")]
    BadLen(u32),
    #[error("len {len} exceeds max_frame {max}")]
    Oversize { len: u32, max: u32 },
    #[error("version {0} is not 1")]
    BadVersion(u16),
    #[error("{0}")]
    BadFlags(&'static str),
    #[error("cap_len is non-zero on a frame without START")]
    CapOnNonStart,
    #[error("cap_len {cap_len} does not fit in a frame of len {len}")]
    CapOutOfBounds { cap_len: u16, len: u32 },
    #[error("code {0} is not allowed for this kind of frame")]
    BadCode(u16),
    #[error("{0}")]
    BadComp(&'static str),
    #[error("inflated payload exceeds {max} bytes")]
    InflatedOversize { max: usize },
    #[error("inflated payload exceeds {cap} x its {compressed} compressed bytes")]
    RatioCap { compressed: usize, cap: u32 },
}

impl FrameError {
    pub fn reason(&self) -> Reason {
        match self {
            FrameError::Truncated { .. } => Reason::Truncated,
            FrameError::BadLen(_) => Reason::BadLen,
            FrameError::Oversize { .. } | FrameError::InflatedOversize { .. } => Reason::Oversize,
            FrameError::BadVersion(_) => Reason::BadVersion,
            FrameError::BadFlags(_) => Reason::BadFlags,
            FrameError::CapOnNonStart => Reason::CapOnNonStart,
            FrameError::CapOutOfBounds { .. } => Reason::CapOutOfBounds,
            FrameError::BadCode(_) => Reason::BadCode,
            FrameError::BadComp(_) => Reason::BadComp,
            FrameError::RatioCap { .. } => Reason::RatioCap,
        }
    }
}

/// A decoded frame. `cap` and `payload` are slices of the read buffer the frame arrived in
/// (zero copy), except a COMP payload, which is the inflated bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    /// The header as it was on the wire (`len`, `flags` including COMP).
    pub header: Header,
    pub cap: Bytes,
    pub payload: Bytes,
}

impl Frame {
    pub fn kind(&self) -> Kind {
        self.header.kind().expect("checked at decode")
    }
    pub fn flags(&self) -> Flags {
        self.header.flags
    }
    pub fn corr_id(&self) -> u64 {
        self.header.corr_id
    }
    pub fn app_proto_id(&self) -> u16 {
        self.header.app_proto_id
    }
    /// Payload bytes as they travelled (compressed when COMP is set).
    pub fn wire_payload_len(&self) -> usize {
        self.header.len as usize - HEADER_LEN - self.header.cap_len as usize
    }
}

/// Incremental OAP/1 decoder: call [`FrameDecoder::decode`] each time bytes are appended to the
/// read buffer. The header is checked as soon as 38 bytes are there, so a hostile `len` costs
/// nothing; the body is split off the buffer without copying.
#[derive(Debug)]
pub struct FrameDecoder {
    max_frame: u32,
    ratio_cap: u32,
    inflater: Option<Inflater>,
    scratch: Vec<u8>,
}

impl FrameDecoder {
    pub fn new(max_frame: u32) -> FrameDecoder {
        FrameDecoder {
            max_frame: max_frame.min(MAX_FRAME),
            ratio_cap: DECOMPRESS_RATIO_CAP,
            inflater: None,
            scratch: Vec::new(),
        }
    }

    /// Lowers the limit after HELLO negotiated a smaller `max_frame` (never raises it).
    pub fn set_max_frame(&mut self, max_frame: u32) {
        self.max_frame = self.max_frame.min(max_frame);
    }

    pub fn max_frame(&self) -> u32 {
        self.max_frame
    }

    /// Gives back what decompressing took (the zstd context, about 100 KiB, and its output
    /// buffer, up to `max_frame`): for a session gone idle. The next compressed frame makes
    /// them again.
    pub fn release_buffers(&mut self) {
        self.inflater = None;
        self.scratch = Vec::new();
    }

    /// Checks the header at the front of `buf` if 38 bytes are there: `Ok(Some(len))` tells the
    /// caller how many bytes the whole frame needs, so it can size its next read.
    pub fn peek_header(&self, buf: &[u8]) -> Result<Option<Header>, FrameError> {
        let Some(head) = buf.first_chunk::<HEADER_LEN>() else {
            return Ok(None);
        };
        let header = Header::parse(head);
        header.check(self.max_frame)?;
        Ok(Some(header))
    }

    /// Takes one whole frame off the front of `buf`, or returns `Ok(None)` when more bytes are
    /// needed (having reserved room for the rest of a frame whose header is valid).
    pub fn decode(&mut self, buf: &mut BytesMut) -> Result<Option<Frame>, FrameError> {
        let Some(header) = self.peek_header(buf)? else {
            return Ok(None);
        };
        let len = header.len as usize;
        if buf.len() < len {
            buf.reserve(len - buf.len());
            return Ok(None);
        }
        let bytes = buf.split_to(len).freeze();
        self.finish(header, bytes).map(Some)
    }

    /// Decodes exactly one frame from the front of `input`; a frame cut short is `truncated`.
    /// Returns the frame and how many bytes it took. Used by the inspector and the fuzzers.
    pub fn decode_one(&mut self, input: &Bytes) -> Result<(Frame, usize), FrameError> {
        let header = self.peek_header(input)?.ok_or(FrameError::Truncated {
            have: input.len(),
            need: HEADER_LEN,
        })?;
        let len = header.len as usize;
        if input.len() < len {
            return Err(FrameError::Truncated {
                have: input.len(),
                need: len,
            });
        }
        Ok((self.finish(header, input.slice(..len))?, len))
    }

    fn finish(&mut self, header: Header, bytes: Bytes) -> Result<Frame, FrameError> {
        let cap_end = HEADER_LEN + header.cap_len as usize;
        let cap = bytes.slice(HEADER_LEN..cap_end);
        let mut payload = bytes.slice(cap_end..);
        if header.flags.contains(Flags::COMP) {
            let inflater = self.inflater.get_or_insert_with(Inflater::new);
            inflater.inflate(
                &payload,
                self.max_frame as usize,
                self.ratio_cap,
                &mut self.scratch,
            )?;
            payload = Bytes::copy_from_slice(&self.scratch);
            self.scratch.clear();
        }
        Ok(Frame {
            header,
            cap,
            payload,
        })
    }
}

/// A frame to send, borrowing its capability and payload.
#[derive(Debug, Clone, Copy)]
pub struct OutFrame<'a> {
    /// REQ, RESP or EVENT plus any of START, END, ACK_REQ, APP_E2E. COMP asks the encoder to
    /// compress; it is kept only when the sender rule allows it.
    pub flags: Flags,
    pub code: u16,
    pub app_proto_id: u16,
    pub tenant_id: u128,
    pub corr_id: u64,
    pub cap: &'a [u8],
    pub payload: &'a [u8],
}

impl<'a> OutFrame<'a> {
    /// A whole one-frame request (`REQ|START|END` is not needed: a frame with neither START nor
    /// END and no open stream is a whole message).
    pub fn request(app_proto_id: u16, corr_id: u64, payload: &'a [u8]) -> OutFrame<'a> {
        OutFrame {
            flags: Flags::REQ,
            code: 0,
            app_proto_id,
            tenant_id: 0,
            corr_id,
            cap: &[],
            payload,
        }
    }

    /// A whole one-frame response with status `code`.
    pub fn response(app_proto_id: u16, corr_id: u64, code: u16, payload: &'a [u8]) -> OutFrame<'a> {
        OutFrame {
            flags: Flags::RESP,
            code,
            app_proto_id,
            tenant_id: 0,
            corr_id,
            cap: &[],
            payload,
        }
    }

    /// The header this frame gets when sent uncompressed.
    pub fn header(&self) -> Header {
        Header {
            len: (HEADER_LEN + self.cap.len() + self.payload.len()).min(u32::MAX as usize) as u32,
            ver: VERSION,
            flags: self.flags,
            code: self.code,
            app_proto_id: self.app_proto_id,
            tenant_id: self.tenant_id,
            cap_len: self.cap.len().min(u16::MAX as usize) as u16,
            corr_id: self.corr_id,
        }
    }
}

/// Writes frames, applying the COMP sender rule, into any `BufMut` (a reused `Vec<u8>` or
/// `BytesMut` allocates nothing once warm).
#[derive(Debug)]
pub struct FrameEncoder {
    max_frame: u32,
    deflater: Option<Deflater>,
}

impl FrameEncoder {
    pub fn new(max_frame: u32) -> FrameEncoder {
        FrameEncoder {
            max_frame: max_frame.min(MAX_FRAME),
            deflater: None,
        }
    }

    pub fn set_max_frame(&mut self, max_frame: u32) {
        self.max_frame = self.max_frame.min(max_frame);
    }

    /// Encodes `frame` into `out`. The same header checks as the decoder's run first, so this
    /// node never sends what a peer must reject; a cap or payload too large is `oversize`.
    pub fn encode<B: BufMut>(
        &mut self,
        frame: &OutFrame<'_>,
        out: &mut B,
    ) -> Result<usize, FrameError> {
        if frame.cap.len() > u16::MAX as usize {
            return Err(FrameError::Oversize {
                len: u32::MAX,
                max: self.max_frame,
            });
        }
        let want_comp = frame.flags.contains(Flags::COMP);
        let plain = OutFrame {
            flags: frame.flags.without(Flags::COMP),
            ..*frame
        };
        if want_comp && !frame.flags.contains(Flags::APP_E2E) {
            let deflater = self.deflater.get_or_insert_with(Deflater::default);
            if let Some(compressed) = deflater.compress(frame.payload, DECOMPRESS_RATIO_CAP) {
                let comp = OutFrame {
                    flags: frame.flags,
                    payload: compressed,
                    ..*frame
                };
                return write_checked(&comp, self.max_frame, out);
            }
        }
        write_checked(&plain, self.max_frame, out)
    }
}

fn write_checked<B: BufMut>(
    frame: &OutFrame<'_>,
    max_frame: u32,
    out: &mut B,
) -> Result<usize, FrameError> {
    let header = frame.header();
    let total = HEADER_LEN + frame.cap.len() + frame.payload.len();
    if total > max_frame as usize {
        return Err(FrameError::Oversize {
            len: total.min(u32::MAX as usize) as u32,
            max: max_frame,
        });
    }
    header.check(max_frame)?;
    out.put_slice(&header.to_bytes());
    out.put_slice(frame.cap);
    out.put_slice(frame.payload);
    Ok(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_round_trips() {
        let h = Header {
            len: 1234,
            ver: 1,
            flags: Flags::REQ | Flags::START,
            code: 0,
            app_proto_id: 3,
            tenant_id: 0x0102_0304_0506_0708_090a_0b0c_0d0e_0f10,
            cap_len: 17,
            corr_id: u64::MAX - 1,
        };
        assert_eq!(Header::parse(&h.to_bytes()), h);
    }

    #[test]
    fn encoder_refuses_what_decoder_rejects() {
        let mut enc = FrameEncoder::new(MAX_FRAME);
        let mut out = Vec::new();
        let mut f = OutFrame::request(1, 1, b"x");
        f.cap = b"cap";
        assert_eq!(
            enc.encode(&f, &mut out).unwrap_err().reason(),
            Reason::CapOnNonStart
        );
        let big = vec![0u8; MAX_FRAME as usize];
        let f = OutFrame::request(1, 1, &big);
        assert_eq!(
            enc.encode(&f, &mut out).unwrap_err().reason(),
            Reason::Oversize
        );
        assert!(out.is_empty(), "nothing written on error");
    }

    #[test]
    fn incremental_decode_checks_header_before_body() {
        let mut dec = FrameDecoder::new(MAX_FRAME);
        let mut buf = BytesMut::new();
        let mut head = Header {
            len: MAX_FRAME + 1,
            ver: 1,
            flags: Flags::REQ,
            code: 0,
            app_proto_id: 1,
            tenant_id: 0,
            cap_len: 0,
            corr_id: 1,
        }
        .to_bytes();
        buf.extend_from_slice(&head[..37]);
        assert_eq!(dec.decode(&mut buf), Ok(None));
        buf.extend_from_slice(&head[37..]);
        assert_eq!(dec.decode(&mut buf).unwrap_err().reason(), Reason::Oversize);
        // A valid header with the body still missing asks for more and keeps the bytes.
        head[0..4].copy_from_slice(&100u32.to_be_bytes());
        let mut buf = BytesMut::from(&head[..]);
        assert_eq!(dec.decode(&mut buf), Ok(None));
        assert_eq!(buf.len(), HEADER_LEN);
        buf.extend_from_slice(&[7u8; 62]);
        let frame = dec.decode(&mut buf).unwrap().unwrap();
        assert_eq!(frame.payload.len(), 62);
        assert!(buf.is_empty());
    }

    #[test]
    fn comp_round_trip_and_sender_rule() {
        let text = b"the quick brown fox jumps over the lazy dog. ".repeat(200);
        let mut enc = FrameEncoder::new(MAX_FRAME);
        let mut out = BytesMut::new();
        let mut f = OutFrame::request(1, 9, &text);
        f.flags = Flags::REQ | Flags::COMP;
        enc.encode(&f, &mut out).unwrap();
        let frame = FrameDecoder::new(MAX_FRAME)
            .decode(&mut out)
            .unwrap()
            .unwrap();
        // Either compressed within the ratio cap, or sent plain: both decode to the text.
        assert_eq!(&frame.payload[..], &text[..]);
        let tiny = OutFrame {
            flags: Flags::REQ | Flags::COMP,
            ..OutFrame::request(1, 9, b"ab")
        };
        let mut out = BytesMut::new();
        enc.encode(&tiny, &mut out).unwrap();
        let frame = FrameDecoder::new(MAX_FRAME)
            .decode(&mut out)
            .unwrap()
            .unwrap();
        assert!(
            !frame.flags().contains(Flags::COMP),
            "COMP only when smaller"
        );
    }
}
