//! The objects plane (app 1, PROTOCOL.md section 6) of one shard, sans-IO: GET (whole and
//! ranged, 206), HEAD, and PUT streamed in chunks, BLAKE3-verified as it arrives, stored by
//! digest, deduplicated, and acknowledged only once the store has it; capabilities checked
//! (section 10). No I/O, no clock, no threads: time comes in as `now` (unix seconds).
//!
//! # Model
//!
//! [`ObjectsPlane`] is a state machine with `handle_*` inputs and `poll_*` outputs (quinn-proto's
//! shape). It does not own the store: it **emits store operations** ([`StoreOp`]) and takes
//! their **completions** ([`StoreDone`]). That keeps one model for both stores:
//!
//! - A synchronous store ([`RamStore`], implementing [`ObjectStore`]) runs each operation on the
//!   spot: [`StoreOp::execute`], or [`ObjectsPlane::run_store`] for all pending ones.
//! - The disk store (engine, glommio DMA files) runs each operation as a task and hands the
//!   completion back when its I/O is done. The plane cannot tell the difference, and the tests
//!   exercise both orders (completion at once, and completion after later frames arrived).
//!
//! Every operation names its address, so with several shards the operation itself is the bounded
//! cross-shard message: the engine sends it to the store of `shard_of(addr)` and routes the
//! completion back by [`OpId::shard`]. Protocol work (capabilities, hashing, framing) stays on
//! the shard that holds the session.
//!
//! Inputs:
//! - [`ObjectsPlane::handle_frame`]: a [`Received`](ronode_proto::inbound::Received) of app 1 from
//!   the session's `Inbound` pipeline (framing, sequence rules and message shape already
//!   checked), the session's [`SessionId`], and `now`.
//! - [`ObjectsPlane::handle_store_done`]: a completion.
//! - [`ObjectsPlane::handle_timeout`]: `now`, when it reaches [`ObjectsPlane::poll_timeout`].
//! - [`ObjectsPlane::handle_session_closed`], [`ObjectsPlane::set_session_max_frame`],
//!   [`ObjectsPlane::set_session_blocked`]: session events (the setters only for live sessions:
//!   they create the session's entry, which `handle_session_closed` removes).
//!
//! Outputs, and the drain order: after any input, loop
//! 1. [`ObjectsPlane::poll_store_op`] until `None`, running or dispatching each operation (a
//!    synchronous store's completion goes straight back into `handle_store_done`, which may
//!    queue answers and further operations);
//! 2. one [`ObjectsPlane::poll_transmit`]: whole-frame answers first, in the order they were
//!    decided, then body frames of GET streams, one frame per stream in turn (round-robin);
//!    cutting a stream's last buffered frame queues its next read, hence the loop;
//!
//! until both are empty (or the engine's write budget for this turn is spent: what is left stays
//! queued, bounded). Each [`Transmit`] is a RESP frame's header fields plus its payload as
//! `Bytes`: a GET body frame is a slice of the stored object (never copied), ready for
//! `FrameEncoder::encode` or a vectored write of `header().to_bytes()` and `payload`.
//!
//! # Requests
//!
//! - **GET / HEAD**: open unless `get_policy` is [`Policy::Token`] (then a capability allowing
//!   `get`). A body that fits one frame is one RESP frame; a larger one streams RESP|START ..
//!   RESP|END in frames of `chunk_bytes` (bounded by the session's `max_frame`), each carrying
//!   200 or 206; a failure after START ends the stream with an error END frame. 404
//!   `not_found` when the store does not hold the address.
//! - **PUT**: the START frame carries the request and the capability. Checked there, in order:
//!   the capability (`put_policy` [`Policy::Token`]: none 401 `unauthorized`, bad, expired or
//!   out of scope 403 `forbidden`), `size` over `max_bytes` (413 `oversize`), the session's
//!   uploads (429 `quota`), the shard's uploads and in-progress bytes (503 `busy`, with
//!   `retry_after_ms`). Then the store is asked to begin: 507 `store_full` when the object cannot
//!   fit, or a duplicate (the body is then only hashed, not kept). Body frames are hashed with
//!   BLAKE3 as they arrive and copied once into a buffer of exactly `size` bytes; more bytes than
//!   `size`, fewer, or another digest is 400 `bad_digest`; a body not complete within
//!   `put_timeout_s` is 408 `slow_client`. Only when the commit completed is the PUT answered 200
//!   `{addr, size, stored}` (`stored: false` for a duplicate). An answer given before the END
//!   frame (any refusal) ends the upload: its later frames are counted and thrown away.
//!   Concurrent PUTs of a session (different corr_ids) are independent.
//!
//! Every refusal is counted by its label ([`ObjectsCounters::refused`]); the shard's stats read
//! them from [`ObjectsPlane::counters`].
//!
//! # Bounds
//!
//! Every table has a bound from [`ObjectsConfig`]: uploads per session (`max_puts_per_session`)
//! and per shard (`max_puts`), buffered upload bytes (`max_inflight_put_bytes`, charged at START
//! with the announced size, released for duplicates and when the upload ends), GET and HEAD
//! answers in progress (`max_reads`; each holds at most one read's bytes). Whole-frame answers
//! are at most one per request in progress, which the session's `max_inflight` bounds. Sessions
//! are known from their first frame until `handle_session_closed`: the engine's session bound
//! applies.
//!
//! # Eviction and reads
//!
//! A GET holds the `Bytes` the store answered. When the [`RamStore`] evicts an object that a GET
//! is still streaming, only the store's reference goes: the answer completes intact from the
//! GET's slice, and the memory is freed with its last frame (see [`ram`]). The RAM store answers
//! a read with the whole rest of the range, so one read serves a GET.
//!
//! # What the engine does
//!
//! Per shard: one plane ([`ObjectsPlane::new`] with the shard, the [`ObjectsConfig`] mapped from
//! its configuration, and the [`CapKeys`] from `cap_root.key` or `--cap-key`). Per loop turn,
//! with `now` read once: feed every app-1 frame its sessions' `Inbound` yields to
//! `handle_frame`, the completions the disk store finished to `handle_store_done`, and `now` to
//! `handle_timeout` when `poll_timeout` has passed; then drain as above. For each transmit,
//! record it with the session's `SequenceTracker::on_send(&t.header())` and queue it on the
//! session's writer; when a writer queue reaches its bound, `set_session_blocked(s, true)`, and
//! `false` when it drains. After HELLO, `set_session_max_frame`. When a session ends,
//! `handle_session_closed`. A store operation that cannot be queued (a full mesh channel) is
//! answered at once with [`StoreDone::busy`] (503 for the client), except `AbortPut` and
//! `CommitPut`, which the engine keeps until they can be queued (a body accepted whole is never
//! refused for want of room: that is decided at `BeginPut`). The operations of one upload
//! (`BeginPut`, then `CommitPut` or `AbortPut`) must run in order.
//!
//! # The disk store (engine)
//!
//! Same contract as [`StoreOp`], over glommio DMA files:
//! - The index (address -> size, verified since start) is rebuilt at start from the file names
//!   and sizes under the objects directory, without hashing. `Stat` answers from it, no I/O.
//! - `BeginPut`: `Duplicate` from the index; otherwise reserve `size` against `capacity_bytes`
//!   minus used and reserved bytes (no eviction on disk: `Full`, 507).
//! - `CommitPut { body: Some }`: write the body to a temporary file, fsync it, rename it to its
//!   address, fsync the directory, add it to the index, release the reservation, and only then
//!   complete (`stored: true`); on failure, remove the temporary file, release, complete `Io`.
//!   `CommitPut { body: None }`: confirm from the index. `AbortPut`: release the reservation.
//! - `Read`: an object not verified since start is hashed first (streamed through a bounded
//!   buffer); a mismatch moves the file to quarantine, drops it from the index, counts it, and
//!   completes `Corrupt` (500; never served). Then it answers a window of the range, at least
//!   `min_len` bytes and a multiple of it (say 1 MiB), copied once from the DMA buffer into
//!   `Bytes`; the plane asks for the rest as the stream drains, so a GET holds one window.

mod config;
mod counters;
pub mod fetch;
mod get;
pub mod on_miss;
mod plane;
mod put;
pub mod ram;
pub mod store;
mod transmit;

#[cfg(test)]
mod tests;

use std::fmt;

use crate::placement::ShardId;

pub use config::{
    CapKeys, ConfigError, ObjectsConfig, Policy, TooManyKeys, DEFAULT_CHUNK_BYTES,
    DEFAULT_MAX_BYTES, DEFAULT_MAX_INFLIGHT_PUT_BYTES, DEFAULT_MAX_PUTS, DEFAULT_MAX_READS,
    DEFAULT_PUT_TIMEOUT_S, DEFAULT_RETRY_AFTER_MS, MAX_CAP_KEYS,
};
pub use counters::ObjectsCounters;
pub use fetch::{FetchConfig, Fetcher};
pub use on_miss::{MissOut, OnMiss};
pub use plane::ObjectsPlane;
pub use ram::{RamStats, RamStore};
pub use store::{
    Begun, BusyCause, Committed, ObjectStore, ReadChunk, StoreDone, StoreError, StoreOp,
};
pub use transmit::Transmit;

/// A session of this shard, as the engine numbers them (never reused while the plane may still
/// hold state for it, i.e. before `handle_session_closed`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SessionId(pub u64);

impl fmt::Display for SessionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// Names a store operation: the shard whose plane emitted it and a sequence number of that
/// plane. A PUT's `BeginPut`, `CommitPut` and `AbortPut` all carry the upload's id; a store
/// keys its reservations by it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct OpId {
    pub shard: ShardId,
    pub seq: u64,
}

impl fmt::Display for OpId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.shard, self.seq)
    }
}
