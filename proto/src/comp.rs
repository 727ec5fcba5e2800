//! The COMP flag: one zstd frame per payload, inflated in steps under two caps (PROTOCOL.md
//! section 2), and the sender rule that keeps honest peers clear of both.

use crate::frame::FrameError;
use crate::limits::{INFLATE_STEP, ZSTD_WINDOW_LOG_MAX};
use zstd::stream::raw::{Decoder, InBuffer, Operation, OutBuffer};
use zstd::zstd_safe;

/// Little-endian magic number that opens every (non-skippable) zstd frame.
const ZSTD_MAGIC: [u8; 4] = [0x28, 0xb5, 0x2f, 0xfd];

/// Inflates COMP payloads with one reusable zstd context.
pub struct Inflater {
    decoder: Decoder<'static>,
}

impl std::fmt::Debug for Inflater {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Inflater").finish_non_exhaustive()
    }
}

impl Inflater {
    pub fn new() -> Inflater {
        let mut decoder = Decoder::new().expect("zstd decompression context");
        decoder
            .set_parameter(zstd::stream::raw::DParameter::WindowLogMax(
                ZSTD_WINDOW_LOG_MAX,
            ))
            .expect("zstd window parameter");
        Inflater { decoder }
    }

    /// Inflates `src`, which must be exactly one well-formed zstd frame, into `out` (cleared
    /// first). Output is produced [`INFLATE_STEP`] bytes at a time; after each step the total is
    /// checked against `max_bytes` (`oversize`) and `ratio_cap` x `src.len()` (`ratio_cap`);
    /// the first bound crossed names the reject, and `ratio_cap` wins when one step crosses both.
    pub fn inflate(
        &mut self,
        src: &[u8],
        max_bytes: usize,
        ratio_cap: u32,
        out: &mut Vec<u8>,
    ) -> Result<(), FrameError> {
        out.clear();
        if src.len() < ZSTD_MAGIC.len() || src[..4] != ZSTD_MAGIC {
            return Err(FrameError::BadComp("payload does not start a zstd frame"));
        }
        match zstd_safe::find_frame_compressed_size(src) {
            Ok(n) if n == src.len() => {}
            Ok(_) => return Err(FrameError::BadComp("bytes follow the zstd frame")),
            Err(_) => return Err(FrameError::BadComp("zstd frame is incomplete or corrupt")),
        }
        let ratio_limit = src.len().saturating_mul(ratio_cap as usize);
        self.decoder
            .reinit()
            .map_err(|_| FrameError::BadComp("zstd context reset failed"))?;
        let mut input = InBuffer::around(src);
        loop {
            let start = out.len();
            out.resize(start + INFLATE_STEP, 0);
            let (written, hint) = {
                let mut output = OutBuffer::around_pos(&mut out[..], start);
                let hint = self
                    .decoder
                    .run(&mut input, &mut output)
                    .map_err(|_| FrameError::BadComp("zstd frame does not decode"))?;
                (output.pos(), hint)
            };
            out.truncate(written);
            let total = out.len();
            let over_ratio = total > ratio_limit;
            let over_max = total > max_bytes;
            if over_ratio {
                return Err(FrameError::RatioCap {
                    compressed: src.len(),
                    cap: ratio_cap,
                });
            }
            if over_max {
                return Err(FrameError::InflatedOversize { max: max_bytes });
            }
            if hint == 0 {
                return Ok(());
            }
            if written == start && input.pos() == src.len() {
                return Err(FrameError::BadComp("zstd frame ends early"));
            }
        }
    }
}

impl Default for Inflater {
    fn default() -> Self {
        Inflater::new()
    }
}

/// Compresses payloads for senders, with one reusable zstd context.
pub struct Deflater {
    compressor: zstd::bulk::Compressor<'static>,
    scratch: Vec<u8>,
}

impl std::fmt::Debug for Deflater {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Deflater").finish_non_exhaustive()
    }
}

impl Deflater {
    pub fn new(level: i32) -> Deflater {
        let compressor = zstd::bulk::Compressor::new(level).expect("zstd compression context");
        Deflater {
            compressor,
            scratch: Vec::new(),
        }
    }

    /// The sender rule: returns the compressed payload only when it is smaller than `payload`
    /// and within `ratio_cap`, so that an honest receiver never rejects it. `None` means "send
    /// uncompressed, without COMP".
    pub fn compress(&mut self, payload: &[u8], ratio_cap: u32) -> Option<&[u8]> {
        if payload.is_empty() {
            return None;
        }
        let bound = zstd_safe::compress_bound(payload.len());
        self.scratch.clear();
        self.scratch.reserve(bound);
        self.compressor
            .compress_to_buffer(payload, &mut self.scratch)
            .ok()?;
        let n = self.scratch.len();
        let within_ratio = payload.len() <= n.saturating_mul(ratio_cap as usize);
        (n < payload.len() && within_ratio).then_some(&self.scratch[..])
    }
}

impl Default for Deflater {
    fn default() -> Self {
        Deflater::new(3)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reason::Reason;

    fn pseudo_text(n: usize) -> Vec<u8> {
        // Compressible but not degenerate: ratio well under 10.
        let mut x: u32 = 12345;
        (0..n)
            .map(|_| {
                x = x.wrapping_mul(1_103_515_245).wrapping_add(12345);
                b"abcdefghijklmnop"[(x >> 16) as usize % 16]
            })
            .collect()
    }

    #[test]
    fn round_trip_within_caps() {
        let data = pseudo_text(100_000);
        let mut d = Deflater::default();
        let c = d.compress(&data, 10).expect("compressible").to_vec();
        let mut out = Vec::new();
        Inflater::new().inflate(&c, 1 << 20, 10, &mut out).unwrap();
        assert_eq!(out, data);
    }

    #[test]
    fn sender_skips_incompressible_and_bombs() {
        let mut d = Deflater::default();
        assert!(d.compress(&[0u8; 1 << 20], 10).is_none(), "ratio over cap");
        let mut x = 1u64;
        let noise: Vec<u8> = (0..4096)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x as u8
            })
            .collect();
        assert!(d.compress(&noise, 10).is_none(), "not smaller");
    }

    #[test]
    fn bomb_trips_ratio_cap() {
        let bomb = zstd::bulk::compress(&vec![0u8; 1 << 20], 19).unwrap();
        let err = Inflater::new()
            .inflate(&bomb, 1 << 20, 10, &mut Vec::new())
            .unwrap_err();
        assert_eq!(err.reason(), Reason::RatioCap);
    }

    #[test]
    fn large_inflation_trips_oversize() {
        let data = pseudo_text(1_600_000);
        let c = zstd::bulk::compress(&data, 3).unwrap();
        assert!(data.len() < c.len() * 10);
        let err = Inflater::new()
            .inflate(&c, 1 << 20, 10, &mut Vec::new())
            .unwrap_err();
        assert_eq!(err.reason(), Reason::Oversize);
    }

    #[test]
    fn not_exactly_one_frame_is_bad_comp() {
        let one = zstd::bulk::compress(b"hello hello hello hello", 3).unwrap();
        let mut two = one.clone();
        two.extend_from_slice(&one);
        let mut inf = Inflater::new();
        for bad in [&b"nope"[..], &one[..one.len() - 1], &two[..], &[][..]] {
            let err = inf.inflate(bad, 1 << 20, 10, &mut Vec::new()).unwrap_err();
            assert_eq!(err.reason(), Reason::BadComp, "{bad:?}");
        }
        let mut out = Vec::new();
        inf.inflate(&one, 1 << 20, 10, &mut out).unwrap();
        assert_eq!(out, b"hello hello hello hello");
    }
}
