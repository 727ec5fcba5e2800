//! [`Sim`]: the event loop. One thread, virtual time in ms, a binary heap of events ordered by
//! (time, sequence number), so that equal times run in the order they were scheduled and a run
//! is a pure function of the seed, the nodes and the scenario's calls.

use std::cmp::Ordering;
use std::collections::{BTreeMap, BTreeSet, BinaryHeap, HashMap};

use bytes::Bytes;
use ronode_proto::id::NodeId;

use super::net::{mix, Link, Profile, PURPOSE_NET, PURPOSE_NODE};
use super::node::{ConnId, Now, SimNode, UNIX_ORIGIN_MS};
use super::report::Counters;
use crate::rng::SplitMix64;

/// How long a dial across a partition waits before it fails (a SYN timeout, shortened).
pub const DIAL_TIMEOUT_MS: u64 = 1_000;

/// What the simulator is built from, besides its nodes.
#[derive(Debug, Clone, Copy)]
pub struct SimConfig {
    pub seed: u64,
    pub profile: Profile,
    /// Whether a restarted node keeps its state (it is told its connections closed) or is built
    /// again by the factory.
    pub keep_ram_on_restart: bool,
}

/// A run that stopped: a node's invariant failed, with what is needed to replay it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SimError {
    pub seed: u64,
    /// Events processed before and including the failing one.
    pub step: u64,
    pub time_ms: u64,
    pub node: u32,
    pub message: String,
}

impl std::fmt::Display for SimError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "invariant violated: seed {} step {} at {} ms, node {}: {}",
            self.seed, self.step, self.time_ms, self.node, self.message
        )
    }
}

impl std::error::Error for SimError {}

/// Builds node `index` with id `id` and its own seed (at start, and at a restart without
/// kept RAM).
pub type Factory<N> = Box<dyn FnMut(u32, NodeId, u64) -> N>;

#[derive(Debug)]
enum Event {
    Connected {
        conn: ConnId,
        to: u32,
    },
    DialFailed {
        to: u32,
        incarnation: u32,
        peer: NodeId,
    },
    Bytes {
        conn: ConnId,
        to: u32,
        bytes: Bytes,
    },
    Closed {
        conn: ConnId,
        to: u32,
    },
    Timer {
        node: u32,
        generation: u64,
    },
}

#[derive(Debug)]
struct Entry {
    at: u64,
    seq: u64,
    event: Event,
}

impl PartialEq for Entry {
    fn eq(&self, other: &Entry) -> bool {
        (self.at, self.seq) == (other.at, other.seq)
    }
}
impl Eq for Entry {}
impl PartialOrd for Entry {
    fn partial_cmp(&self, other: &Entry) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Entry {
    /// Reversed: `BinaryHeap` is a max-heap and the earliest (time, seq) must come first.
    fn cmp(&self, other: &Entry) -> Ordering {
        (other.at, other.seq).cmp(&(self.at, self.seq))
    }
}

/// Why bytes in flight were not delivered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DropCause {
    /// The receiving end closed the connection, or the sender closed it before a dial ended.
    Closed,
    /// The receiving node was killed.
    Dead,
    /// A partition cut the connection.
    Partition,
}

impl DropCause {
    pub fn name(self) -> &'static str {
        match self {
            DropCause::Closed => "closed",
            DropCause::Dead => "dead",
            DropCause::Partition => "partition",
        }
    }
}

/// One connection. End 0 dialled, end 1 accepted.
#[derive(Debug)]
struct Conn {
    ends: [u32; 2],
    /// Per direction (toward end i): the latest arrival scheduled, for FIFO order.
    last_arrival: [u64; 2],
    /// Whether end i still takes deliveries (false once it closed, died, or was cut).
    open_to: [bool; 2],
    /// Whether end i was told `handle_connected`; and whether it is done with the connection
    /// (closed it, or was told `handle_closed`).
    connected: [bool; 2],
    done: [bool; 2],
    /// Why the connection went down, for the drops that follow.
    cause: Option<DropCause>,
    /// A partition cut it: nothing more is delivered either way.
    cut: bool,
    /// Events in the queue that name it.
    in_flight: u32,
}

impl Conn {
    fn end_of(&self, node: u32) -> Option<usize> {
        self.ends.iter().position(|e| *e == node)
    }
}

struct Slot<N> {
    id: NodeId,
    node: Option<N>,
    /// A killed node's state, when RAM is kept across the restart.
    parked: Option<N>,
    incarnation: u32,
    /// The armed timer: its time and a generation that makes older timer events stale.
    timer_at: Option<u64>,
    timer_generation: u64,
    conns: BTreeSet<ConnId>,
    /// The connections a parked node had, told `handle_closed` at its restart.
    lost: Vec<ConnId>,
    /// Dials asked for and not yet answered (connected or failed), by peer; a parked node is
    /// told at its restart that they failed.
    dialling: BTreeMap<NodeId, u32>,
    lost_dials: Vec<NodeId>,
}

/// The simulator. See the module docs.
pub struct Sim<N: SimNode> {
    config: SimConfig,
    factory: Factory<N>,
    slots: Vec<Slot<N>>,
    index: HashMap<NodeId, u32>,
    /// Open connections by id: a HashMap for O(1) lookups on every delivery; walked only
    /// by `partition`, which sorts what it found.
    conns: HashMap<ConnId, Conn>,
    next_conn: u64,
    queue: BinaryHeap<Entry>,
    seq: u64,
    now_ms: u64,
    step: u64,
    net_rng: SplitMix64,
    /// Nodes on the cut-off side of the current partition.
    cut: Option<Vec<bool>>,
    notes: Vec<(u64, u32, N::Note)>,
    trace: blake3::Hasher,
    counters: Counters,
    failure: Option<SimError>,
}

impl<N: SimNode> std::fmt::Debug for Sim<N> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sim")
            .field("config", &self.config)
            .field("nodes", &self.slots.len())
            .field("now_ms", &self.now_ms)
            .field("step", &self.step)
            .field("connections", &self.conns.len())
            .field("pending_events", &self.queue.len())
            .field("counters", &self.counters)
            .finish_non_exhaustive()
    }
}

impl<N: SimNode> Sim<N> {
    /// `nodes` nodes, built by `factory`; node ids are drawn from the seed.
    pub fn new(config: SimConfig, nodes: u32, mut factory: Factory<N>) -> Sim<N> {
        let mut slots = Vec::with_capacity(nodes as usize);
        let mut index = HashMap::with_capacity(nodes as usize);
        for i in 0..nodes {
            let id = node_id(config.seed, i);
            index.insert(id, i);
            slots.push(Slot {
                id,
                node: Some(factory(i, id, mix(config.seed, PURPOSE_NODE, u64::from(i)))),
                parked: None,
                incarnation: 0,
                timer_at: None,
                timer_generation: 0,
                conns: BTreeSet::new(),
                lost: Vec::new(),
                dialling: BTreeMap::new(),
                lost_dials: Vec::new(),
            });
        }
        let mut sim = Sim {
            net_rng: SplitMix64::new(mix(config.seed, PURPOSE_NET, 0)),
            config,
            factory,
            slots,
            index,
            conns: HashMap::new(),
            next_conn: 0,
            queue: BinaryHeap::new(),
            seq: 0,
            now_ms: 0,
            step: 0,
            cut: None,
            notes: Vec::new(),
            trace: blake3::Hasher::new(),
            counters: Counters::default(),
            failure: None,
        };
        // Nodes may want to dial or arm a timer from their constructor.
        for i in 0..nodes {
            sim.drain(i);
        }
        sim
    }

    pub fn now_ms(&self) -> u64 {
        self.now_ms
    }

    pub fn config(&self) -> &SimConfig {
        &self.config
    }

    pub fn len(&self) -> usize {
        self.slots.len()
    }

    pub fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }

    pub fn node_id(&self, index: u32) -> NodeId {
        self.slots[index as usize].id
    }

    pub fn index_of(&self, id: &NodeId) -> Option<u32> {
        self.index.get(id).copied()
    }

    /// The live node `index` (None while killed).
    pub fn node(&self, index: u32) -> Option<&N> {
        self.slots[index as usize].node.as_ref()
    }

    pub fn is_alive(&self, index: u32) -> bool {
        self.slots[index as usize].node.is_some()
    }

    /// The link between two nodes (its parameters come from the seed and the pair).
    pub fn link(&self, a: u32, b: u32) -> Link {
        self.config.profile.link(self.config.seed, a, b)
    }

    pub fn counters(&self) -> &Counters {
        &self.counters
    }

    /// Open connections (both ends not yet done).
    pub fn open_connections(&self) -> usize {
        self.conns.len()
    }

    /// The BLAKE3 of every delivery so far (time, from, to, length, bytes), hex.
    pub fn trace_hash(&self) -> String {
        self.trace.finalize().to_hex().to_string()
    }

    /// The notes the nodes made since the last call, with their time and node.
    pub fn take_notes(&mut self) -> Vec<(u64, u32, N::Note)> {
        std::mem::take(&mut self.notes)
    }

    /// A client operation on node `index` now (ignored while it is killed; returns whether it
    /// ran). Its outputs are drained and its invariants checked as after any input.
    pub fn op(&mut self, index: u32, op: N::Op) -> Result<bool, SimError> {
        let now = self.now();
        let Some(node) = self.slots[index as usize].node.as_mut() else {
            return Ok(false);
        };
        node.handle_op(now, op);
        self.step += 1;
        self.drain(index);
        self.result().map(|()| true)
    }

    /// Runs every event due up to `until_ms`, then sets the clock there.
    pub fn run_until(&mut self, until_ms: u64) -> Result<(), SimError> {
        while self.failure.is_none() {
            match self.queue.peek() {
                Some(e) if e.at <= until_ms => {}
                _ => break,
            }
            let Entry { at, event, .. } = self.queue.pop().expect("peeked");
            self.now_ms = self.now_ms.max(at);
            self.step += 1;
            self.counters.events += 1;
            self.dispatch(event);
        }
        self.result()?;
        self.now_ms = self.now_ms.max(until_ms);
        Ok(())
    }

    fn result(&self) -> Result<(), SimError> {
        match &self.failure {
            Some(e) => Err(e.clone()),
            None => Ok(()),
        }
    }

    fn now(&self) -> Now {
        Now {
            mono_ms: self.now_ms,
            mono_us: self.now_ms * 1000,
            unix_s: (UNIX_ORIGIN_MS + self.now_ms) / 1_000,
        }
    }

    fn schedule(&mut self, at: u64, event: Event) {
        self.seq += 1;
        self.queue.push(Entry {
            at,
            seq: self.seq,
            event,
        });
    }

    /// Schedules `event` toward end `to_end` of `conn` after a sampled delay, never before the
    /// previous event in that direction (FIFO).
    fn schedule_on(&mut self, conn_id: ConnId, to_end: usize, event: Event) {
        self.schedule_on_after(conn_id, to_end, self.now_ms, event);
    }

    /// [`Sim::schedule_on`], the delay counted from `base_ms` (a packet answering another).
    fn schedule_on_after(&mut self, conn_id: ConnId, to_end: usize, base_ms: u64, event: Event) {
        let conn = self
            .conns
            .get(&conn_id)
            .expect("scheduled on a known connection");
        let link = self
            .config
            .profile
            .link(self.config.seed, conn.ends[0], conn.ends[1]);
        let delay = link.sample(&mut self.net_rng);
        if delay.retransmitted {
            self.counters.retransmits += 1;
        }
        let conn = self.conns.get_mut(&conn_id).expect("known");
        conn.in_flight += 1;
        let at = (base_ms + delay.ms).max(conn.last_arrival[to_end]);
        conn.last_arrival[to_end] = at;
        self.schedule(at, event);
    }

    fn dispatch(&mut self, event: Event) {
        let conn = match &event {
            Event::Connected { conn, .. }
            | Event::Bytes { conn, .. }
            | Event::Closed { conn, .. } => Some(*conn),
            _ => None,
        };
        if let Some(c) = conn.and_then(|c| self.conns.get_mut(&c)) {
            c.in_flight -= 1;
        }
        self.run_event(event);
        if let Some(conn) = conn {
            self.retire(conn);
        }
    }

    fn run_event(&mut self, event: Event) {
        match event {
            Event::Timer { node, generation } => {
                let now = self.now();
                let slot = &mut self.slots[node as usize];
                if slot.timer_generation != generation {
                    return;
                }
                slot.timer_at = None;
                let Some(n) = slot.node.as_mut() else { return };
                n.handle_timeout(now);
                self.drain(node);
                // A timer that stays due would run at this millisecond for ever.
                let slot = &self.slots[node as usize];
                if slot.node.is_some() && slot.timer_at.is_some_and(|t| t <= self.now_ms) {
                    self.failure.get_or_insert(SimError {
                        seed: self.config.seed,
                        step: self.step,
                        time_ms: self.now_ms,
                        node,
                        message: "poll_timeout still due after handle_timeout".to_owned(),
                    });
                }
            }
            Event::DialFailed {
                to,
                incarnation,
                peer,
            } => {
                let now = self.now();
                let slot = &mut self.slots[to as usize];
                if slot.incarnation != incarnation {
                    return;
                }
                let Some(n) = slot.node.as_mut() else { return };
                self.counters.dial_failures += 1;
                answered(&mut slot.dialling, &peer);
                n.handle_dial_failed(now, peer);
                self.drain(to);
            }
            Event::Connected { conn, to } => {
                let Some(c) = self.conns.get_mut(&conn) else {
                    return;
                };
                let end = c.end_of(to).expect("an end");
                if !c.open_to[end] || c.done[end] || c.cut {
                    return;
                }
                c.connected[end] = true;
                let peer = self.slots[c.ends[1 - end] as usize].id;
                let now = self.now();
                if end == 0 {
                    answered(&mut self.slots[to as usize].dialling, &peer);
                }
                let n = self.slots[to as usize]
                    .node
                    .as_mut()
                    .expect("open end is alive");
                n.handle_connected(now, conn, peer, end == 0);
                self.drain(to);
            }
            Event::Bytes { conn, to, bytes } => {
                let cause = match self.conns.get(&conn) {
                    None => Some(DropCause::Closed),
                    Some(c) => {
                        let end = c.end_of(to).expect("an end");
                        if c.cut {
                            Some(DropCause::Partition)
                        } else {
                            (!c.open_to[end]).then(|| c.cause.unwrap_or(DropCause::Closed))
                        }
                    }
                };
                if let Some(cause) = cause {
                    self.counters.drop(cause.name(), bytes.len());
                    return;
                }
                let from = {
                    let c = &self.conns[&conn];
                    c.ends[1 - c.end_of(to).expect("an end")]
                };
                self.trace.update(&self.now_ms.to_le_bytes());
                self.trace.update(&from.to_le_bytes());
                self.trace.update(&to.to_le_bytes());
                self.trace.update(&(bytes.len() as u64).to_le_bytes());
                self.trace.update(&bytes);
                self.counters.messages += 1;
                self.counters.bytes += bytes.len() as u64;
                let now = self.now();
                let n = self.slots[to as usize]
                    .node
                    .as_mut()
                    .expect("open end is alive");
                n.handle_bytes(now, conn, bytes);
                self.drain(to);
            }
            Event::Closed { conn, to } => {
                let Some(c) = self.conns.get_mut(&conn) else {
                    return;
                };
                let end = c.end_of(to).expect("an end");
                if c.done[end] {
                    return;
                }
                c.done[end] = true;
                let was_open = c.open_to[end];
                c.open_to[end] = false;
                let connected = c.connected[end];
                let peer = self.slots[c.ends[1 - end] as usize].id;
                if !was_open {
                    return;
                }
                let now = self.now();
                let n = self.slots[to as usize]
                    .node
                    .as_mut()
                    .expect("open end is alive");
                if connected {
                    n.handle_closed(now, conn);
                } else if end == 0 {
                    // Cut before the dialler heard back: the dial failed.
                    self.counters.dial_failures += 1;
                    answered(&mut self.slots[to as usize].dialling, &peer);
                    let n = self.slots[to as usize]
                        .node
                        .as_mut()
                        .expect("open end is alive");
                    n.handle_dial_failed(now, peer);
                }
                self.drain(to);
            }
        }
    }

    /// Forgets a connection both of whose ends are done once nothing in flight names it (so
    /// that its drops are still counted by cause).
    fn retire(&mut self, conn: ConnId) {
        let Some(c) = self.conns.get(&conn) else {
            return;
        };
        if c.done[0] && c.done[1] && c.in_flight == 0 {
            let ends = c.ends;
            self.conns.remove(&conn);
            for e in ends {
                self.slots[e as usize].conns.remove(&conn);
            }
        }
    }

    /// Executes node `i`'s outputs, re-arms its timer and checks its invariants.
    fn drain(&mut self, i: u32) {
        loop {
            let Some(n) = self.slots[i as usize].node.as_mut() else {
                return;
            };
            let Some((conn, bytes)) = n.poll_transmit() else {
                break;
            };
            self.send(i, conn, bytes);
        }
        while let Some(peer) = self.slots[i as usize]
            .node
            .as_mut()
            .and_then(|n| n.poll_dial())
        {
            self.dial(i, peer);
        }
        while let Some(conn) = self.slots[i as usize]
            .node
            .as_mut()
            .and_then(|n| n.poll_close())
        {
            self.close(i, conn, DropCause::Closed);
        }
        let now = self.now_ms;
        let slot = &mut self.slots[i as usize];
        let n = slot.node.as_mut().expect("alive");
        while let Some(note) = n.poll_note() {
            self.notes.push((now, i, note));
        }
        let due = n.poll_timeout();
        if due != slot.timer_at {
            slot.timer_at = due;
            slot.timer_generation += 1;
            let generation = slot.timer_generation;
            if let Some(t) = due {
                self.schedule(
                    t.max(now),
                    Event::Timer {
                        node: i,
                        generation,
                    },
                );
            }
        }
        if let Err(message) = self.slots[i as usize]
            .node
            .as_ref()
            .expect("alive")
            .check_invariants()
        {
            self.failure.get_or_insert(SimError {
                seed: self.config.seed,
                step: self.step,
                time_ms: now,
                node: i,
                message,
            });
        }
    }

    fn send(&mut self, from: u32, conn: ConnId, bytes: Bytes) {
        let to_end = match self.conns.get(&conn) {
            Some(c) => match c.end_of(from) {
                Some(end) if !c.done[end] => 1 - end,
                _ => {
                    self.counters.drop("bad_conn", bytes.len());
                    return;
                }
            },
            None => {
                self.counters.drop("bad_conn", bytes.len());
                return;
            }
        };
        let to = self.conns[&conn].ends[to_end];
        self.counters.sent += 1;
        self.schedule_on(conn, to_end, Event::Bytes { conn, to, bytes });
    }

    fn dial(&mut self, from: u32, peer: NodeId) {
        self.counters.dials += 1;
        *self.slots[from as usize].dialling.entry(peer).or_default() += 1;
        let incarnation = self.slots[from as usize].incarnation;
        let fail_at = |sim: &Sim<N>, ms: u64| {
            (
                sim.now_ms + ms,
                Event::DialFailed {
                    to: from,
                    incarnation,
                    peer,
                },
            )
        };
        let Some(to) = self.index_of(&peer).filter(|to| *to != from) else {
            let (at, ev) = fail_at(self, 1);
            return self.schedule(at, ev);
        };
        if self.is_cut(from, to) {
            let (at, ev) = fail_at(self, DIAL_TIMEOUT_MS);
            return self.schedule(at, ev);
        }
        if !self.is_alive(to) {
            // Connection refused: a RST after one round trip.
            let rtt = self.link(from, to).rtt_ms;
            let (at, ev) = fail_at(self, rtt);
            return self.schedule(at, ev);
        }
        let conn = ConnId(self.next_conn);
        self.next_conn += 1;
        self.conns.insert(
            conn,
            Conn {
                ends: [from, to],
                last_arrival: [self.now_ms; 2],
                open_to: [true; 2],
                connected: [false; 2],
                done: [false; 2],
                cause: None,
                cut: false,
                in_flight: 0,
            },
        );
        self.slots[from as usize].conns.insert(conn);
        self.slots[to as usize].conns.insert(conn);
        // SYN, then SYN-ACK: the acceptor hears first, the dialler one trip later.
        self.schedule_on(conn, 1, Event::Connected { conn, to });
        let syn_at = self.conns[&conn].last_arrival[1];
        self.schedule_on_after(conn, 0, syn_at, Event::Connected { conn, to: from });
    }

    /// Node `by` closes `conn` (or dies, or is cut): it takes nothing more; the other end hears
    /// after what is in flight toward it.
    fn close(&mut self, by: u32, conn: ConnId, cause: DropCause) {
        let Some(c) = self.conns.get_mut(&conn) else {
            return;
        };
        let Some(end) = c.end_of(by) else { return };
        if c.done[end] {
            return;
        }
        self.counters.closes += 1;
        c.done[end] = true;
        c.open_to[end] = false;
        c.cause.get_or_insert(cause);
        let other = c.ends[1 - end];
        if !c.done[1 - end] {
            self.schedule_on(conn, 1 - end, Event::Closed { conn, to: other });
        }
        self.retire(conn);
    }

    fn is_cut(&self, a: u32, b: u32) -> bool {
        self.cut
            .as_ref()
            .is_some_and(|cut| cut[a as usize] != cut[b as usize])
    }

    /// Kills node `index`: its state goes (or is parked, with `keep_ram_on_restart`), its
    /// connections close at their other ends, what is in flight to it is dropped (`dead`).
    pub fn kill(&mut self, index: u32) {
        let slot = &mut self.slots[index as usize];
        let Some(node) = slot.node.take() else { return };
        self.counters.kills += 1;
        slot.incarnation += 1;
        slot.timer_generation += 1;
        slot.timer_at = None;
        let conns: Vec<ConnId> = slot.conns.iter().copied().collect();
        let dialling = std::mem::take(&mut slot.dialling);
        if self.config.keep_ram_on_restart {
            slot.parked = Some(node);
            // Told at the restart: the connections it knew, and the dials still out.
            slot.lost = conns
                .iter()
                .filter(|c| {
                    let c = &self.conns[c];
                    c.end_of(index).is_some_and(|e| c.connected[e])
                })
                .copied()
                .collect();
            for (peer, n) in dialling {
                slot.lost_dials
                    .extend(std::iter::repeat_n(peer, n as usize));
            }
        }
        for conn in conns {
            self.close(index, conn, DropCause::Dead);
        }
    }

    /// Restarts a killed node: built again by the factory, or its parked state told that its
    /// connections closed.
    pub fn restart(&mut self, index: u32) {
        let now = self.now();
        let seed = self.config.seed;
        let slot = &mut self.slots[index as usize];
        if slot.node.is_some() {
            return;
        }
        self.counters.restarts += 1;
        let node = match slot.parked.take() {
            Some(mut n) => {
                for conn in std::mem::take(&mut slot.lost) {
                    n.handle_closed(now, conn);
                }
                for peer in std::mem::take(&mut slot.lost_dials) {
                    n.handle_dial_failed(now, peer);
                }
                n
            }
            None => {
                let s = mix(
                    seed,
                    PURPOSE_NODE,
                    u64::from(index) | (u64::from(slot.incarnation) << 32),
                );
                (self.factory)(index, slot.id, s)
            }
        };
        self.slots[index as usize].node = Some(node);
        self.drain(index);
    }

    /// Cuts `nodes` off from the others (replacing any earlier partition): dials across the cut
    /// fail after [`DIAL_TIMEOUT_MS`], and open connections across it close at both ends at
    /// once (as a keepalive would find them dead), what was in flight dropped (`partition`).
    pub fn partition(&mut self, nodes: &[u32]) {
        let mut cut = vec![false; self.slots.len()];
        for n in nodes {
            cut[*n as usize] = true;
        }
        self.cut = Some(cut);
        let mut crossing: Vec<(ConnId, [u32; 2])> = self
            .conns
            .iter()
            .filter(|(_, c)| self.is_cut(c.ends[0], c.ends[1]))
            .map(|(id, c)| (*id, c.ends))
            .collect();
        // The map's order is random: the events scheduled below must not depend on it.
        crossing.sort_unstable_by_key(|c| c.0);
        self.counters.partitions += 1;
        for (conn, ends) in crossing {
            let c = self.conns.get_mut(&conn).expect("listed");
            c.cut = true;
            c.cause.get_or_insert(DropCause::Partition);
            let done = c.done;
            c.in_flight += done.iter().filter(|d| !**d).count() as u32;
            for end in 0..2 {
                if !done[end] {
                    self.schedule(
                        self.now_ms,
                        Event::Closed {
                            conn,
                            to: ends[end],
                        },
                    );
                }
            }
        }
    }

    /// Ends the partition; nodes dial again on their own schedule.
    pub fn heal(&mut self) {
        self.cut = None;
    }

    /// The events not yet run (for reports).
    pub fn pending_events(&self) -> usize {
        self.queue.len()
    }
}

/// One dial to `peer` was answered.
fn answered(dialling: &mut BTreeMap<NodeId, u32>, peer: &NodeId) {
    if let Some(n) = dialling.get_mut(peer) {
        *n -= 1;
        if *n == 0 {
            dialling.remove(peer);
        }
    }
}

/// Node `i`'s id under `seed`: BLAKE3 of both, so ids are spread over the keyspace like real
/// ones and differ between seeds.
pub fn node_id(seed: u64, i: u32) -> NodeId {
    let mut h = blake3::Hasher::new();
    h.update(b"ronode-sim node");
    h.update(&seed.to_le_bytes());
    h.update(&i.to_le_bytes());
    NodeId(*h.finalize().as_bytes())
}
