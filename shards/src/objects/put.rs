//! One upload in progress: its body hashed with BLAKE3 as it arrives (no second pass) and, unless
//! the store already holds the object, buffered for the commit.

use bytes::{Bytes, BytesMut};
use ronode_proto::id::ObjectAddr;

use super::transmit::ReplyTo;

/// What the store said about the upload's `BeginPut`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Begin {
    /// Not answered yet (a disk store's completion is on its way).
    Pending,
    /// Room reserved: the body is kept for the commit.
    New,
    /// Held already: the body is only hashed.
    Duplicate,
}

/// Where the upload is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Phase {
    /// Body frames are arriving.
    Receiving,
    /// The body checked out; waiting for `BeginPut` to complete before committing.
    Verified(Option<Bytes>),
    /// `CommitPut` was emitted; waiting for its completion.
    Committing,
}

/// Why a body does not match its request (all answered 400 `bad_digest`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum BodyError {
    TooLong { size: u64 },
    TooShort { got: u64, size: u64 },
    Digest { got: ObjectAddr, want: ObjectAddr },
}

impl BodyError {
    pub fn message(&self) -> String {
        match self {
            BodyError::TooLong { size } => {
                format!("body has more bytes than the {size} the request announced")
            }
            BodyError::TooShort { got, size } => {
                format!("body has {got} bytes, the request announced {size}")
            }
            BodyError::Digest { got, want } => format!("body hashes to {got}, not to {want}"),
        }
    }
}

#[derive(Debug)]
pub(crate) struct PutState {
    pub to: ReplyTo,
    pub addr: ObjectAddr,
    pub size: u64,
    /// Bytes of the shard's in-progress budget this upload holds (`size`, until it is known to
    /// be a duplicate or it ends).
    pub charged: u64,
    /// Unix seconds past which a still-receiving upload is answered 408.
    pub deadline: u64,
    pub begin: Begin,
    pub phase: Phase,
    /// The session closed while the commit was running: nobody to answer.
    pub orphaned: bool,
    hasher: blake3::Hasher,
    received: u64,
    /// The body so far, allocated at the first body bytes with room for exactly `size`; `None`
    /// before, and for a duplicate.
    body: Option<BytesMut>,
}

impl PutState {
    pub fn new(to: ReplyTo, addr: ObjectAddr, size: u64, deadline: u64) -> PutState {
        PutState {
            to,
            addr,
            size,
            charged: size,
            deadline,
            begin: Begin::Pending,
            phase: Phase::Receiving,
            orphaned: false,
            hasher: blake3::Hasher::new(),
            received: 0,
            body: None,
        }
    }

    fn keeps_body(&self) -> bool {
        self.begin != Begin::Duplicate
    }

    /// Takes one frame's worth of body.
    pub fn absorb(&mut self, bytes: &[u8]) -> Result<(), BodyError> {
        let n = bytes.len() as u64;
        if n > self.size - self.received {
            return Err(BodyError::TooLong { size: self.size });
        }
        self.hasher.update(bytes);
        self.received += n;
        if self.keeps_body() && n > 0 {
            let size = self.size as usize;
            self.body
                .get_or_insert_with(|| BytesMut::with_capacity(size))
                .extend_from_slice(bytes);
        }
        Ok(())
    }

    /// The store holds the object already: stop keeping the body.
    pub fn become_duplicate(&mut self) {
        self.begin = Begin::Duplicate;
        self.body = None;
    }

    /// At the END frame: the body when it is exactly `size` bytes hashing to `addr` (`None` for a
    /// duplicate, whose bytes were not kept).
    pub fn finish(&mut self) -> Result<Option<Bytes>, BodyError> {
        if self.received != self.size {
            return Err(BodyError::TooShort {
                got: self.received,
                size: self.size,
            });
        }
        let got = ObjectAddr(*self.hasher.finalize().as_bytes());
        if got != self.addr {
            return Err(BodyError::Digest {
                got,
                want: self.addr,
            });
        }
        if !self.keeps_body() {
            return Ok(None);
        }
        Ok(Some(
            self.body.take().map(BytesMut::freeze).unwrap_or_default(),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::objects::SessionId;

    fn state(body: &[u8]) -> PutState {
        let to = ReplyTo {
            session: SessionId(1),
            corr_id: 1,
            tenant_id: 0,
        };
        PutState::new(to, ObjectAddr::of(body), body.len() as u64, 10)
    }

    #[test]
    fn hashes_incrementally_and_keeps_one_exact_buffer() {
        let body: Vec<u8> = (0..100_000u32).map(|i| i as u8).collect();
        let mut p = state(&body);
        for part in body.chunks(7_000) {
            p.absorb(part).unwrap();
        }
        let out = p.finish().unwrap().unwrap();
        assert_eq!(&out[..], &body[..]);
        let mut empty = state(b"");
        assert_eq!(empty.finish(), Ok(Some(Bytes::new())));
    }

    #[test]
    fn refuses_long_short_and_wrong_bodies() {
        let mut p = state(b"hello world");
        p.absorb(b"hello").unwrap();
        assert_eq!(p.absorb(b" world!"), Err(BodyError::TooLong { size: 11 }));
        assert_eq!(p.finish(), Err(BodyError::TooShort { got: 5, size: 11 }));
        let mut q = state(b"hello world");
        q.absorb(b"hello World").unwrap();
        let err = q.finish().unwrap_err();
        assert!(matches!(err, BodyError::Digest { .. }));
        assert!(err.message().starts_with("body hashes to b3:"));
    }

    #[test]
    fn duplicates_hash_without_keeping() {
        let mut p = state(b"abc");
        p.absorb(b"a").unwrap();
        p.become_duplicate();
        p.absorb(b"bc").unwrap();
        assert!(p.body.is_none());
        assert_eq!(p.finish(), Ok(None));
    }
}
