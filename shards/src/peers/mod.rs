//! [`PeerSet`]: the configured peers a shard dials, and when it dials them again.
//!
//! Each shard holds the peers whose NodeId it owns (`shard_of`). A peer is `Down` (waiting for
//! its next dial time), `Dialing` or `Up`. A dial that fails, or a session that ends, puts the
//! peer back `Down` with a jittered exponential backoff: the k-th failure in a row waits a time
//! drawn uniformly from `[d/2, d]` with `d = min(max_ms, initial_ms * 2^(k-1))`, and a session
//! that was up and ends waits as after a first failure. The jitter comes from a seeded
//! [`SplitMix64`](crate::rng::SplitMix64), so a run replays exactly; time is passed in.
//!
//! Drain order: call [`PeerSet::poll_dial`] until it returns `None` after every input, then
//! sleep until [`PeerSet::poll_timeout`].

mod backoff;

pub use backoff::Backoff;

use crate::rng::SplitMix64;
use ronode_proto::id::NodeId;
use std::collections::BTreeMap;
use std::net::SocketAddr;

/// A peer from configuration: where to dial it, and the NodeId it must prove.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PeerSpec {
    pub id: NodeId,
    pub addr: SocketAddr,
}

/// Where a peer stands; the `state` label of `overlay_peers`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum PeerState {
    Down,
    Dialing,
    Up,
}

impl PeerState {
    pub const ALL: [PeerState; 3] = [PeerState::Down, PeerState::Dialing, PeerState::Up];

    pub fn label(self) -> &'static str {
        match self {
            PeerState::Down => "down",
            PeerState::Dialing => "dialing",
            PeerState::Up => "up",
        }
    }
}

/// Why a dial failed; the `reason` label of `overlay_dial_failures_total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum DialFailure {
    /// TCP connect refused, reset or unreachable.
    Connect,
    /// No TLS session and HELLO within the dial timeout.
    Timeout,
    /// The TLS handshake or the HELLO failed.
    Handshake,
    /// The peer proved another NodeId than configured.
    Mismatch,
}

impl DialFailure {
    pub const ALL: [DialFailure; 4] = [
        DialFailure::Connect,
        DialFailure::Timeout,
        DialFailure::Handshake,
        DialFailure::Mismatch,
    ];

    pub fn label(self) -> &'static str {
        match self {
            DialFailure::Connect => "connect",
            DialFailure::Timeout => "timeout",
            DialFailure::Handshake => "handshake",
            DialFailure::Mismatch => "mismatch",
        }
    }
}

#[derive(Debug)]
struct Peer {
    spec: PeerSpec,
    state: PeerState,
    /// Failed dials in a row.
    failures: u32,
    /// When a `Down` peer is dialled next.
    next_dial_ms: u64,
}

/// See the module docs.
#[derive(Debug)]
pub struct PeerSet {
    /// By NodeId: deterministic iteration.
    peers: BTreeMap<NodeId, Peer>,
    backoff: Backoff,
    rng: SplitMix64,
    failures: BTreeMap<DialFailure, u64>,
}

impl PeerSet {
    /// Every peer `Down`, due at once.
    pub fn new(specs: impl IntoIterator<Item = PeerSpec>, backoff: Backoff, seed: u64) -> PeerSet {
        let peers = specs
            .into_iter()
            .map(|spec| {
                let peer = Peer {
                    spec,
                    state: PeerState::Down,
                    failures: 0,
                    next_dial_ms: 0,
                };
                (spec.id, peer)
            })
            .collect();
        PeerSet {
            peers,
            backoff,
            rng: SplitMix64::new(seed),
            failures: BTreeMap::new(),
        }
    }

    pub fn len(&self) -> usize {
        self.peers.len()
    }

    pub fn is_empty(&self) -> bool {
        self.peers.is_empty()
    }

    /// The next peer due for a dial (now `Dialing`).
    pub fn poll_dial(&mut self, now_ms: u64) -> Option<PeerSpec> {
        let peer = self
            .peers
            .values_mut()
            .find(|p| p.state == PeerState::Down && p.next_dial_ms <= now_ms)?;
        peer.state = PeerState::Dialing;
        Some(peer.spec)
    }

    /// When the next `Down` peer comes due.
    pub fn poll_timeout(&self) -> Option<u64> {
        self.peers
            .values()
            .filter(|p| p.state == PeerState::Down)
            .map(|p| p.next_dial_ms)
            .min()
    }

    /// A dial succeeded: the session is up.
    pub fn handle_up(&mut self, id: &NodeId) {
        if let Some(p) = self.peers.get_mut(id) {
            p.state = PeerState::Up;
            p.failures = 0;
        }
    }

    /// A dial failed.
    pub fn handle_dial_failed(&mut self, id: &NodeId, why: DialFailure, now_ms: u64) {
        *self.failures.entry(why).or_default() += 1;
        if let Some(p) = self.peers.get_mut(id) {
            p.failures = p.failures.saturating_add(1);
            p.state = PeerState::Down;
            p.next_dial_ms = now_ms + self.backoff.delay_ms(p.failures, &mut self.rng);
        }
    }

    /// An established session ended: dial again after a first-failure backoff.
    pub fn handle_down(&mut self, id: &NodeId, now_ms: u64) {
        if let Some(p) = self.peers.get_mut(id) {
            p.failures = 0;
            p.state = PeerState::Down;
            p.next_dial_ms = now_ms + self.backoff.delay_ms(1, &mut self.rng);
        }
    }

    /// When a `Down` peer is dialled next.
    pub fn next_dial_ms(&self, id: &NodeId) -> Option<u64> {
        self.peers
            .get(id)
            .filter(|p| p.state == PeerState::Down)
            .map(|p| p.next_dial_ms)
    }

    pub fn state(&self, id: &NodeId) -> Option<PeerState> {
        self.peers.get(id).map(|p| p.state)
    }

    /// Peers in each state, for `overlay_peers{state}`.
    pub fn count(&self, state: PeerState) -> usize {
        self.peers.values().filter(|p| p.state == state).count()
    }

    /// Failed dials since start, by reason.
    pub fn failures(&self, why: DialFailure) -> u64 {
        self.failures.get(&why).copied().unwrap_or(0)
    }

    /// The peers that are up, in NodeId order.
    pub fn up(&self) -> impl Iterator<Item = &PeerSpec> {
        self.peers
            .values()
            .filter(|p| p.state == PeerState::Up)
            .map(|p| &p.spec)
    }
}

#[cfg(test)]
mod tests;
