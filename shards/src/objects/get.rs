//! One GET answer in progress: the bytes read from the store and not yet sent, cut into frames of
//! the session's chunk size when the plane is polled.

use std::ops::Range;

use bytes::Bytes;
use ronode_proto::flags::Flags;
use ronode_proto::id::ObjectAddr;

use super::store::{clamp, ReadChunk};
use super::transmit::ReplyTo;
use super::OpId;

/// What a read brought the stream to.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Filled {
    /// The whole answer fits one frame: here it is.
    Whole(Bytes),
    /// Frames are ready to be cut.
    Stream,
}

/// The next step of a streaming answer.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Next {
    Frame {
        flags: Flags,
        payload: Bytes,
        last: bool,
    },
    /// Nothing buffered that makes a whole frame: read this range.
    Read(Range<u64>),
}

#[derive(Debug)]
pub(crate) struct GetStream {
    pub to: ReplyTo,
    pub addr: ObjectAddr,
    /// 200, or 206 for a ranged GET.
    pub code: u16,
    /// The offsets asked for (`0..u64::MAX` for the whole object), clamped at the first read.
    requested: Range<u64>,
    /// Offsets still to send: `next..end`, known once the first read told the object's size.
    next: u64,
    end: u64,
    sized: bool,
    /// Bytes at `next..next + buf.len()`, read and not sent.
    buf: Bytes,
    /// Whether the START frame went out.
    pub started: bool,
    /// The store read in flight, if any.
    pub read_op: Option<OpId>,
    /// Whether the stream sits in the plane's ready queue.
    pub queued: bool,
}

impl GetStream {
    pub fn new(to: ReplyTo, addr: ObjectAddr, code: u16, requested: Range<u64>) -> GetStream {
        GetStream {
            to,
            addr,
            code,
            requested,
            next: 0,
            end: 0,
            sized: false,
            buf: Bytes::new(),
            started: false,
            read_op: None,
            queued: false,
        }
    }

    /// The range the next read asks for.
    pub fn read_range(&self) -> Range<u64> {
        if self.sized {
            self.next..self.end
        } else {
            self.requested.clone()
        }
    }

    pub fn has_buffered(&self) -> bool {
        !self.buf.is_empty()
    }

    /// Takes a read's answer. An error is the store breaking its contract (see
    /// `StoreOp::Read`): too many bytes, or too few.
    pub fn fill(&mut self, chunk: ReadChunk, frame_len: usize) -> Result<Filled, String> {
        if !self.sized {
            let served = clamp(&self.requested, chunk.object_size);
            self.next = served.start;
            self.end = served.end;
            self.sized = true;
        }
        let remaining = self.end - self.next;
        let n = chunk.bytes.len() as u64;
        if n > remaining || n < remaining.min(frame_len as u64) {
            return Err(format!(
                "store answered {n} bytes at offset {} of {}, where {remaining} remain",
                self.next, self.addr
            ));
        }
        if !self.started && remaining <= frame_len as u64 {
            return Ok(Filled::Whole(chunk.bytes));
        }
        self.buf = chunk.bytes;
        Ok(Filled::Stream)
    }

    /// Cuts the next frame of at most `frame_len` bytes. A buffered tail shorter than a frame
    /// while more of the object remains is dropped and read again with what follows, so that
    /// every frame but the last is `frame_len` long.
    pub fn next_frame(&mut self, frame_len: usize) -> Next {
        let remaining = self.end - self.next;
        let buffered = self.buf.len();
        if buffered == 0 || (buffered < frame_len && (buffered as u64) < remaining) {
            self.buf = Bytes::new();
            return Next::Read(self.next..self.end);
        }
        let payload = self.buf.split_to(buffered.min(frame_len));
        self.next += payload.len() as u64;
        let last = self.next == self.end;
        let mut flags = Flags::RESP;
        if !self.started {
            flags = flags | Flags::START;
        }
        if last {
            flags = flags | Flags::END;
        }
        self.started = true;
        Next::Frame {
            flags,
            payload,
            last,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::objects::SessionId;

    fn stream(requested: Range<u64>) -> GetStream {
        let to = ReplyTo {
            session: SessionId(1),
            corr_id: 4,
            tenant_id: 0,
        };
        GetStream::new(to, ObjectAddr::of(b"x"), 200, requested)
    }

    fn chunk(object_size: u64, bytes: &'static [u8]) -> ReadChunk {
        ReadChunk {
            object_size,
            bytes: Bytes::from_static(bytes),
        }
    }

    #[test]
    fn small_answers_are_whole() {
        let mut s = stream(0..u64::MAX);
        assert_eq!(
            s.fill(chunk(5, b"hello"), 8),
            Ok(Filled::Whole(Bytes::from_static(b"hello")))
        );
        let mut empty = stream(9..20);
        assert_eq!(
            empty.fill(chunk(5, b""), 8),
            Ok(Filled::Whole(Bytes::new()))
        );
    }

    #[test]
    fn frames_cut_at_the_chunk_size_with_start_and_end() {
        let mut s = stream(0..u64::MAX);
        assert_eq!(s.fill(chunk(10, b"0123456789"), 4), Ok(Filled::Stream));
        let mut got = Vec::new();
        loop {
            match s.next_frame(4) {
                Next::Frame {
                    flags,
                    payload,
                    last,
                } => {
                    got.push((flags, payload));
                    if last {
                        break;
                    }
                }
                Next::Read(r) => panic!("unexpected read {r:?}"),
            }
        }
        assert_eq!(
            got,
            vec![
                (Flags::RESP | Flags::START, Bytes::from_static(b"0123")),
                (Flags::RESP, Bytes::from_static(b"4567")),
                (Flags::RESP | Flags::END, Bytes::from_static(b"89")),
            ]
        );
    }

    #[test]
    fn short_reads_continue_and_contract_breaches_are_caught() {
        // A store answering windows of 6 bytes with frames of 4: the 2-byte tail is read again.
        let mut s = stream(0..u64::MAX);
        assert_eq!(s.fill(chunk(10, b"012345"), 4), Ok(Filled::Stream));
        assert!(matches!(s.next_frame(4), Next::Frame { last: false, .. }));
        assert_eq!(s.next_frame(4), Next::Read(4..10));
        assert_eq!(s.read_range(), 4..10);
        assert_eq!(s.fill(chunk(10, b"456789"), 4), Ok(Filled::Stream));
        // Too few bytes (fewer than a frame while more remain), or too many.
        let mut t = stream(0..u64::MAX);
        assert!(t.fill(chunk(10, b"012"), 4).is_err());
        let mut u = stream(0..3);
        assert!(u.fill(chunk(10, b"0123"), 4).is_err());
    }
}
