//! The simulator's network model and its rules, checked with a probe node that sends numbered,
//! timestamped buffers: determinism of the trace, latency and jitter per profile, FIFO order per
//! connection (also under heavy loss), kill and restart, partitions, and invariant failures
//! reported with seed and step.
#![cfg(feature = "sim")]

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use bytes::Bytes;
use ronode_proto::id::NodeId;
use ronode_shards::sim::{
    ConnId, Now, Profile, Sim, SimConfig, SimError, SimNode, DIAL_TIMEOUT_MS,
};

#[derive(Debug, Clone)]
enum ProbeOp {
    Dial(NodeId),
    /// Sends `count` buffers on `conn`, one every `every_ms`.
    Stream {
        conn: ConnId,
        count: u64,
        every_ms: u64,
    },
    Close(ConnId),
    /// Makes `check_invariants` fail from now on.
    Break,
    /// Arms a timer at now that `handle_timeout` never moves.
    StickTimer,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum ProbeNote {
    Connected {
        conn: ConnId,
        peer: NodeId,
        dialled: bool,
    },
    DialFailed {
        peer: NodeId,
    },
    Got {
        conn: ConnId,
        seq: u64,
        sent_ms: u64,
        at_ms: u64,
    },
    Closed {
        conn: ConnId,
    },
}

#[derive(Default)]
struct Probe {
    out: VecDeque<(ConnId, Bytes)>,
    dials: VecDeque<NodeId>,
    closes: VecDeque<ConnId>,
    notes: VecDeque<ProbeNote>,
    rbuf: BTreeMap<ConnId, Vec<u8>>,
    conns: BTreeSet<ConnId>,
    /// (conn, next seq, last seq + 1, every_ms, next send)
    stream: Option<(ConnId, u64, u64, u64, u64)>,
    broken: bool,
    stuck: Option<u64>,
}

impl Probe {
    fn send_due(&mut self, now: Now) {
        while let Some((conn, seq, end, every, at)) = self.stream {
            if at > now.mono_ms {
                return;
            }
            let mut b = seq.to_le_bytes().to_vec();
            b.extend_from_slice(&now.mono_ms.to_le_bytes());
            self.out.push_back((conn, Bytes::from(b)));
            self.stream = (seq + 1 < end).then_some((conn, seq + 1, end, every, at + every));
        }
    }
}

impl SimNode for Probe {
    type Op = ProbeOp;
    type Note = ProbeNote;

    fn handle_connected(&mut self, _: Now, conn: ConnId, peer: NodeId, dialled: bool) {
        self.conns.insert(conn);
        self.notes.push_back(ProbeNote::Connected {
            conn,
            peer,
            dialled,
        });
    }
    fn handle_dial_failed(&mut self, _: Now, peer: NodeId) {
        self.notes.push_back(ProbeNote::DialFailed { peer });
    }
    fn handle_bytes(&mut self, now: Now, conn: ConnId, bytes: Bytes) {
        assert!(
            self.conns.contains(&conn),
            "bytes on a connection never connected"
        );
        let buf = self.rbuf.entry(conn).or_default();
        buf.extend_from_slice(&bytes);
        while buf.len() >= 16 {
            let seq = u64::from_le_bytes(buf[..8].try_into().unwrap());
            let sent_ms = u64::from_le_bytes(buf[8..16].try_into().unwrap());
            buf.drain(..16);
            self.notes.push_back(ProbeNote::Got {
                conn,
                seq,
                sent_ms,
                at_ms: now.mono_ms,
            });
        }
    }
    fn handle_closed(&mut self, _: Now, conn: ConnId) {
        assert!(
            self.conns.remove(&conn),
            "close of a connection not open here"
        );
        self.notes.push_back(ProbeNote::Closed { conn });
    }
    fn handle_timeout(&mut self, now: Now) {
        self.send_due(now);
    }
    fn handle_op(&mut self, now: Now, op: ProbeOp) {
        match op {
            ProbeOp::Dial(p) => self.dials.push_back(p),
            ProbeOp::Stream {
                conn,
                count,
                every_ms,
            } => {
                self.stream = Some((conn, 0, count, every_ms, now.mono_ms));
                self.send_due(now);
            }
            ProbeOp::Close(c) => {
                self.conns.remove(&c);
                self.closes.push_back(c);
            }
            ProbeOp::Break => self.broken = true,
            ProbeOp::StickTimer => self.stuck = Some(now.mono_ms),
        }
    }
    fn poll_transmit(&mut self) -> Option<(ConnId, Bytes)> {
        self.out.pop_front()
    }
    fn poll_dial(&mut self) -> Option<NodeId> {
        self.dials.pop_front()
    }
    fn poll_close(&mut self) -> Option<ConnId> {
        self.closes.pop_front()
    }
    fn poll_note(&mut self) -> Option<ProbeNote> {
        self.notes.pop_front()
    }
    fn poll_timeout(&self) -> Option<u64> {
        self.stuck.or(self.stream.map(|s| s.4))
    }
    fn check_invariants(&self) -> Result<(), String> {
        if self.broken {
            return Err("probe broken on purpose".into());
        }
        Ok(())
    }
}

fn sim(seed: u64, nodes: u32, profile: Profile, keep_ram: bool) -> Sim<Probe> {
    let config = SimConfig {
        seed,
        profile,
        keep_ram_on_restart: keep_ram,
    };
    Sim::new(config, nodes, Box::new(|_, _, _| Probe::default()))
}

/// Node 0 dials node 1; returns the connection once both ends know it.
fn connect(s: &mut Sim<Probe>, a: u32, b: u32) -> ConnId {
    let peer = s.node_id(b);
    s.op(a, ProbeOp::Dial(peer)).unwrap();
    let t = s.now_ms() + 1_000;
    s.run_until(t).unwrap();
    let notes = s.take_notes();
    let mine: Vec<_> = notes.iter().filter(|(_, n, _)| *n == a).collect();
    let theirs: Vec<_> = notes.iter().filter(|(_, n, _)| *n == b).collect();
    let (
        t_a,
        _,
        ProbeNote::Connected {
            conn,
            peer: p,
            dialled: true,
        },
    ) = mine[0]
    else {
        panic!("the dialler was not connected: {notes:?}");
    };
    assert_eq!(*p, peer);
    let (
        t_b,
        _,
        ProbeNote::Connected {
            conn: c2,
            peer: p2,
            dialled: false,
        },
    ) = theirs[0]
    else {
        panic!("the acceptor was not connected: {notes:?}");
    };
    assert_eq!((*c2, *p2), (*conn, s.node_id(a)));
    assert!(
        t_b < t_a,
        "the acceptor hears first (SYN), the dialler a trip later"
    );
    *conn
}

/// Streams `count` buffers from `a` to `b`, one every `every_ms`; returns (seq, delay) in
/// arrival order.
fn stream(s: &mut Sim<Probe>, a: u32, b: u32, count: u64, every_ms: u64) -> Vec<(u64, u64)> {
    let conn = connect(s, a, b);
    s.op(
        a,
        ProbeOp::Stream {
            conn,
            count,
            every_ms,
        },
    )
    .unwrap();
    let t = s.now_ms() + count * every_ms + 5_000;
    s.run_until(t).unwrap();
    s.take_notes()
        .into_iter()
        .filter_map(|(_, n, note)| match note {
            ProbeNote::Got {
                seq,
                sent_ms,
                at_ms,
                ..
            } if n == b => Some((seq, at_ms - sent_ms)),
            _ => None,
        })
        .collect()
}

fn trace(seed: u64) -> (String, u64) {
    let mut s = sim(seed, 6, Profile::INTER, false);
    for (a, b) in [(0, 1), (2, 3), (4, 5)] {
        let conn = connect(&mut s, a, b);
        s.op(
            a,
            ProbeOp::Stream {
                conn,
                count: 200,
                every_ms: 3,
            },
        )
        .unwrap();
    }
    s.run_until(10_000).unwrap();
    (s.trace_hash(), s.counters().messages)
}

#[test]
fn same_seed_same_trace_hash_other_seed_another() {
    let (h1, m1) = trace(7);
    let (h2, m2) = trace(7);
    assert_eq!(h1, h2, "the same seed must replay the same deliveries");
    assert_eq!(m1, 600);
    assert_eq!(m1, m2);
    let (h3, _) = trace(8);
    assert_ne!(h1, h3, "another seed draws other delays");
}

fn check_profile(profile: Profile, seed: u64) {
    let mut s = sim(seed, 2, profile, false);
    let link = s.link(0, 1);
    assert!(
        (profile.rtt_min_ms..=profile.rtt_max_ms).contains(&link.rtt_ms),
        "{link:?}"
    );
    assert!(link.loss_ppm < profile.loss_max_ppm);
    // Spaced wider than the jitter, so FIFO order never holds one back behind another (except
    // behind a retransmit).
    let every = 2 * profile.jitter_ms + 2;
    let got = stream(&mut s, 0, 1, 2_000, every);
    assert_eq!(got.len(), 2_000);
    let lo = (link.one_way_ms()).saturating_sub(profile.jitter_ms).max(1);
    let hi = link.one_way_ms() + profile.jitter_ms;
    let retransmits = s.counters().retransmits;
    let mut late = 0;
    for (seq, delay) in &got {
        assert!(
            *delay >= lo,
            "{}: seq {seq} took {delay} ms < {lo}",
            profile.name
        );
        assert!(
            *delay <= hi + link.retransmit_ms(),
            "{}: seq {seq} took {delay} ms",
            profile.name
        );
        late += u64::from(*delay > hi);
    }
    // Only a retransmit, or a buffer queued behind one (FIFO), is late.
    let behind = link.retransmit_ms() / every + 1;
    assert!(
        late <= retransmits * behind,
        "{late} late, {retransmits} retransmits"
    );
    // 2,000 draws reach both ends of the jitter window.
    let on_time: Vec<u64> = got.iter().map(|g| g.1).filter(|d| *d <= hi).collect();
    assert_eq!(on_time.iter().min(), Some(&lo), "{}", profile.name);
    assert_eq!(on_time.iter().max(), Some(&hi), "{}", profile.name);
}

#[test]
fn latency_and_jitter_stay_within_each_profile() {
    for seed in [1, 2, 3] {
        check_profile(Profile::INTRA, seed);
        check_profile(Profile::INTER, seed);
    }
    // Links differ: over many pairs the RTTs cover the profile's range.
    let s = sim(1, 64, Profile::INTER, false);
    let rtts: BTreeSet<u64> = (1..64).map(|b| s.link(0, b).rtt_ms).collect();
    assert!(rtts.len() > 20, "{rtts:?}");
    assert_eq!(s.link(3, 9), s.link(9, 3), "links are symmetric");
}

#[test]
fn each_connection_delivers_in_order_even_under_heavy_loss() {
    let lossy = Profile {
        name: "lossy",
        loss_max_ppm: 500_000,
        ..Profile::INTER
    };
    for seed in [1, 2, 3, 4] {
        let mut s = sim(seed, 2, lossy, false);
        // Sent every millisecond, well inside the jitter: order is the network's job.
        let got = stream(&mut s, 0, 1, 1_000, 1);
        let seqs: Vec<u64> = got.iter().map(|g| g.0).collect();
        assert_eq!(seqs, (0..1_000).collect::<Vec<_>>(), "seed {seed}");
        if s.link(0, 1).loss_ppm > 10_000 {
            assert!(
                s.counters().retransmits > 0,
                "seed {seed}: loss shows as retransmits"
            );
            let max = got.iter().map(|g| g.1).max().unwrap();
            assert!(max >= s.link(0, 1).retransmit_ms(), "seed {seed}: {max} ms");
        }
    }
}

#[test]
fn a_close_reaches_the_other_end_after_what_was_in_flight() {
    let mut s = sim(11, 2, Profile::INTER, false);
    let conn = connect(&mut s, 0, 1);
    s.op(
        0,
        ProbeOp::Stream {
            conn,
            count: 5,
            every_ms: 0,
        },
    )
    .unwrap();
    s.op(0, ProbeOp::Close(conn)).unwrap();
    // Node 1 sends toward the closed end: dropped.
    s.op(
        1,
        ProbeOp::Stream {
            conn,
            count: 1,
            every_ms: 0,
        },
    )
    .unwrap();
    s.run_until(s.now_ms() + 1_000).unwrap();
    let notes: Vec<ProbeNote> = s.take_notes().into_iter().map(|n| n.2).collect();
    let got: Vec<u64> = notes
        .iter()
        .filter_map(|n| match n {
            ProbeNote::Got { seq, .. } => Some(*seq),
            _ => None,
        })
        .collect();
    assert_eq!(got, vec![0, 1, 2, 3, 4], "{notes:?}");
    assert_eq!(
        notes.last(),
        Some(&ProbeNote::Closed { conn }),
        "the close comes last"
    );
    assert_eq!(s.counters().drops.get("closed"), Some(&1));
    assert_eq!(s.open_connections(), 0);
}

#[test]
fn a_killed_nodes_peers_see_the_close_and_a_restart_starts_afresh() {
    for keep_ram in [false, true] {
        let mut s = sim(5, 3, Profile::INTRA, keep_ram);
        let c01 = connect(&mut s, 0, 1);
        let c21 = connect(&mut s, 2, 1);
        s.op(
            1,
            ProbeOp::Stream {
                conn: c01,
                count: 50,
                every_ms: 1,
            },
        )
        .unwrap();
        // A dial still out when the node dies.
        s.op(1, ProbeOp::Dial(s.node_id(2))).unwrap();
        s.kill(1);
        assert!(!s.is_alive(1));
        s.run_until(s.now_ms() + 100).unwrap();
        let notes = s.take_notes();
        let closed: BTreeSet<(u32, ConnId)> = notes
            .iter()
            .filter_map(|(_, n, note)| match note {
                ProbeNote::Closed { conn } => Some((*n, *conn)),
                _ => None,
            })
            .collect();
        // Both connections, and the one being dialled (node 2 accepted it, then saw it close).
        assert!(
            closed.contains(&(0, c01)) && closed.contains(&(2, c21)),
            "{notes:?}"
        );
        assert_eq!(closed.len(), 3, "{notes:?}");
        // Only the first buffer (sent before the kill) reaches node 0; the rest never left.
        let got = notes
            .iter()
            .filter(|n| matches!(n.2, ProbeNote::Got { .. }))
            .count();
        assert_eq!(got, 1);
        // A dial to the dead node is refused.
        s.op(0, ProbeOp::Dial(s.node_id(1))).unwrap();
        s.run_until(s.now_ms() + 100).unwrap();
        let notes = s.take_notes();
        assert!(
            matches!(notes[..], [(_, 0, ProbeNote::DialFailed { .. })]),
            "{notes:?}"
        );
        s.restart(1);
        assert!(s.is_alive(1));
        assert_eq!(
            s.node(1).unwrap().stream.is_some(),
            keep_ram,
            "RAM kept or not"
        );
        assert!(
            s.node(1).unwrap().conns.is_empty(),
            "the restarted node has no connection"
        );
        let notes = s.take_notes();
        if keep_ram {
            // The parked node is told its connections closed and its dial failed.
            assert_eq!(notes.len(), 3, "{notes:?}");
            let failed = notes
                .iter()
                .filter(|n| matches!(n.2, ProbeNote::DialFailed { .. }));
            assert_eq!(failed.count(), 1, "{notes:?}");
        } else {
            assert!(notes.is_empty(), "{notes:?}");
        }
        connect(&mut s, 0, 1);
        assert_eq!(s.counters().kills, 1);
        assert_eq!(s.counters().restarts, 1);
    }
}

#[test]
fn a_partition_closes_and_blocks_then_heals() {
    let mut s = sim(9, 4, Profile::INTRA, false);
    let c01 = connect(&mut s, 0, 1);
    let c23 = connect(&mut s, 2, 3);
    // Node 1 streams to node 0 while the cut comes.
    s.op(
        1,
        ProbeOp::Stream {
            conn: c01,
            count: 1_000,
            every_ms: 1,
        },
    )
    .unwrap();
    s.run_until(s.now_ms() + 20).unwrap();
    let before = s.take_notes().len();
    assert!(before > 10);
    s.partition(&[1, 3]);
    let cut_at = s.now_ms();
    s.run_until(cut_at + 50).unwrap();
    let notes = s.take_notes();
    let closed: BTreeSet<(u32, ConnId)> = notes
        .iter()
        .filter_map(|(t, n, note)| match note {
            ProbeNote::Closed { conn } => {
                assert_eq!(*t, cut_at, "closed at once");
                Some((*n, *conn))
            }
            _ => None,
        })
        .collect();
    assert_eq!(
        closed,
        BTreeSet::from([(0, c01), (1, c01), (2, c23), (3, c23)])
    );
    assert!(
        !notes.iter().any(|n| matches!(n.2, ProbeNote::Got { .. })),
        "nothing after the cut"
    );
    assert!(s.counters().drops.get("partition").copied().unwrap_or(0) > 0);
    // Across the cut dials time out; within a side they work.
    s.op(0, ProbeOp::Dial(s.node_id(3))).unwrap();
    let dialled_at = s.now_ms();
    s.run_until(dialled_at + 2 * DIAL_TIMEOUT_MS).unwrap();
    let notes = s.take_notes();
    assert!(
        matches!(notes[..], [(t, 0, ProbeNote::DialFailed { .. })] if t == dialled_at + DIAL_TIMEOUT_MS),
        "{notes:?}"
    );
    connect(&mut s, 1, 3);
    connect(&mut s, 0, 2);
    s.heal();
    let c03 = connect(&mut s, 0, 3);
    s.op(
        3,
        ProbeOp::Stream {
            conn: c03,
            count: 10,
            every_ms: 1,
        },
    )
    .unwrap();
    s.run_until(s.now_ms() + 100).unwrap();
    let got = s
        .take_notes()
        .iter()
        .filter(|n| matches!(n.2, ProbeNote::Got { .. }))
        .count();
    assert_eq!(got, 10);
}

#[test]
fn an_invariant_violation_stops_the_run_with_seed_and_step() {
    let mut s = sim(0x5eed, 2, Profile::INTRA, false);
    connect(&mut s, 0, 1);
    let steps_before = s.counters().events;
    let err: SimError = s.op(1, ProbeOp::Break).unwrap_err();
    assert_eq!(err.seed, 0x5eed);
    assert_eq!(err.node, 1);
    assert!(
        err.step > steps_before,
        "the step counts every event and op"
    );
    let text = err.to_string();
    assert!(
        text.contains("seed 24301") && text.contains("step") && text.contains("broken on purpose"),
        "{text}"
    );
    // The run stays stopped.
    assert_eq!(s.run_until(s.now_ms() + 10), Err(err));
}

#[test]
fn a_timer_that_stays_due_stops_the_run_instead_of_spinning() {
    let mut s = sim(3, 2, Profile::INTRA, false);
    s.run_until(10).unwrap();
    s.op(0, ProbeOp::StickTimer).unwrap();
    let err = s.run_until(20).unwrap_err();
    assert_eq!((err.seed, err.node, err.time_ms), (3, 0, 10));
    assert!(err.message.contains("still due"), "{err}");
}
