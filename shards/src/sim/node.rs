//! [`SimNode`]: what a node implements to run in the simulator, modelled on how the engine
//! drives a shard: inputs `handle_*`, outputs drained from `poll_*` after every input, one
//! timer from `poll_timeout`.

use bytes::Bytes;
use ronode_proto::id::NodeId;

pub use crate::session::Now;

/// Unix milliseconds at virtual time 0: the simulator's unix clock is
/// `UNIX_ORIGIN_MS + mono_ms`, so a node that needs unix milliseconds (gossip's `ts`) derives
/// them with [`unix_ms`] and every run sees the same dates.
pub const UNIX_ORIGIN_MS: u64 = 1_700_000_000_000;

/// The unix milliseconds of `now` (see [`UNIX_ORIGIN_MS`]).
pub fn unix_ms(now: Now) -> u64 {
    UNIX_ORIGIN_MS + now.mono_ms
}

/// One connection between two nodes, named the same at both ends. Ids are never reused within
/// a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ConnId(pub u64);

/// A node the simulator runs. Every input is followed by draining `poll_transmit`,
/// `poll_dial` and `poll_close` until `None`, then reading `poll_timeout` and calling
/// `check_invariants`; the node never sees the simulator, only these calls.
pub trait SimNode {
    /// A client operation a scenario injects (a publish, a PUT, a lookup).
    type Op;
    /// What the node tells the scenario (a delivery, an answer): collected by the simulator
    /// with the time and the node's index, read by the scenario with
    /// [`Sim::take_notes`](super::Sim::take_notes).
    type Note;

    /// A connection is up: `dialled` is true at the end that asked for it with `poll_dial`.
    fn handle_connected(&mut self, now: Now, conn: ConnId, peer: NodeId, dialled: bool);
    /// A dial asked for with `poll_dial` failed (the peer is down or cut off).
    fn handle_dial_failed(&mut self, now: Now, peer: NodeId);
    /// Bytes arrived on `conn`, in the order the other end sent them. The simulator delivers
    /// each `poll_transmit` buffer whole; a node must not rely on that (TCP does not).
    fn handle_bytes(&mut self, now: Now, conn: ConnId, bytes: Bytes);
    /// `conn` closed: the other end closed it or died, or a partition cut it. Not called for
    /// a connection this node closed itself.
    fn handle_closed(&mut self, now: Now, conn: ConnId);
    /// `now.mono_ms` reached what `poll_timeout` said (or later).
    fn handle_timeout(&mut self, now: Now);
    /// A client operation.
    fn handle_op(&mut self, now: Now, op: Self::Op);

    /// Bytes to send on a connection.
    fn poll_transmit(&mut self) -> Option<(ConnId, Bytes)>;
    /// A node to connect to.
    fn poll_dial(&mut self) -> Option<NodeId>;
    /// A connection to close (the other end sees `handle_closed`).
    fn poll_close(&mut self) -> Option<ConnId>;
    /// A note for the scenario.
    fn poll_note(&mut self) -> Option<Self::Note>;
    /// When `handle_timeout` is next due, in `mono_ms`.
    fn poll_timeout(&self) -> Option<u64>;

    /// The node's invariants; an `Err` stops the run with the seed and the step.
    fn check_invariants(&self) -> Result<(), String>;
}
