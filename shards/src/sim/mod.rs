//! The simulator (feature `sim`): many nodes on one thread, in virtual time, over a seeded
//! simulated network carrying the bytes the nodes would write to their sockets (encoded OAP/1
//! frames; TLS left out).
//!
//! # How a node plugs in
//! A node implements [`SimNode`], the shape the engine drives a shard with: inputs
//! `handle_connected` / `handle_dial_failed` / `handle_bytes` / `handle_closed` /
//! `handle_timeout` / `handle_op` (a client operation the scenario injects, the associated type
//! `Op`), and after every input the simulator drains its outputs: `poll_transmit` (bytes for a
//! connection), `poll_dial` (a NodeId to connect to), `poll_close`, `poll_note` (the associated
//! type `Note`: what the node tells the scenario, e.g. a delivery), then reads `poll_timeout` (one
//! timer per node, re-armed when it changes) and calls `check_invariants`: an `Err` stops the run
//! with a [`SimError`] naming the seed, the step, the virtual time and the node. Time is a
//! [`Now`] (`mono_ms` from 0 at the start; `unix_s` from [`UNIX_ORIGIN_MS`]). A [`Factory`]
//! builds each node at the start and again at a restart. [`GossipNode`] runs today's gossip
//! plane this way; the shard core will be the next `SimNode`.
//!
//! # Network model
//! - Connections are streams between two nodes, named by one [`ConnId`] at both ends. A dial
//!   reaches the acceptor after one sampled one-way delay and the dialler one more later (SYN,
//!   SYN-ACK); a dial to a dead node fails after one RTT (refused), across a partition after
//!   [`DIAL_TIMEOUT_MS`].
//! - Each link's RTT and loss rate are drawn from the seed and the pair ([`Profile::link`]),
//!   each delivery's jitter from the network's RNG stream ([`Link::sample`]). Loss is a
//!   retransmit: extra delay of `max(200 ms, 2 RTT) + RTT`, never lost bytes. Per direction the
//!   order sent is the order delivered (an arrival is never before the previous one).
//! - A node that closes a connection takes nothing more on it; the other end gets
//!   `handle_closed` after what was in flight toward it.
//! - [`Sim::kill`]: the node's state goes (with `keep_ram_on_restart`, it is parked and told at
//!   [`Sim::restart`] that its connections closed); its peers see the close after the one-way
//!   delay; what was in flight to it is dropped (`dead`).
//! - [`Sim::partition`]: the nodes named are cut off from the rest until [`Sim::heal`]. Open
//!   connections across the cut **close** at both ends at once (what a keepalive would find;
//!   the engine's peer link gives up on an unanswered PING), what was in flight is dropped
//!   (`partition`), and dials across fail. Nodes redial on their own schedule after the heal.
//!
//! # Determinism
//! No wall clock (only the report's `wall_s`), no global RNG: every draw comes from the run's
//! seed split by purpose ([`net::mix`]): link parameters per pair, one network stream for
//! delays, one seed per node (and per incarnation), one for the scenario. Events run in
//! (time, sequence) order from a binary heap; node tables are BTreeMaps where they are walked.
//! The trace hash is BLAKE3 over every delivery (time, from, to, length, bytes): the same seed
//! gives the same hash, run after run.
//!
//! # Scale
//! Nothing is stored per link beyond the open connections (link parameters are recomputed from
//! the seed), and a node costs the simulator a slot and its connections; about 90,000 events a
//! second on one core of the 2-core VM, where a 10,000-node gossip run of 20 messages takes
//! about 26 s (`scripts/sim.sh`, figures in docs/PERF.md). The nodes' own work dominates.

pub mod gossip_node;
pub mod gossip_scenario;
pub mod net;
pub mod node;
pub mod report;
pub mod world;

pub use gossip_node::{GossipNode, GossipNodeConfig, GossipNote, GossipOp};
pub use gossip_scenario::{GossipOutcome, GossipScenario};
pub use net::{Link, Profile};
pub use node::{unix_ms, ConnId, Now, SimNode, UNIX_ORIGIN_MS};
pub use report::{percentile, rss_mb, Counters, Json};
pub use world::{node_id, DropCause, Factory, Sim, SimConfig, SimError, DIAL_TIMEOUT_MS};
