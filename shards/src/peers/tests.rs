use super::*;

fn spec(n: u8) -> PeerSpec {
    PeerSpec {
        id: NodeId([n; 32]),
        addr: SocketAddr::from(([127, 0, 0, 1], 9500 + u16::from(n))),
    }
}

#[test]
fn every_peer_is_dialled_at_once_then_waits_for_its_backoff() {
    let mut set = PeerSet::new([spec(2), spec(1)], Backoff::default(), 7);
    // NodeId order, each once.
    assert_eq!(set.poll_dial(0), Some(spec(1)));
    assert_eq!(set.poll_dial(0), Some(spec(2)));
    assert_eq!(set.poll_dial(0), None);
    assert_eq!(set.poll_timeout(), None, "nothing is down");

    set.handle_dial_failed(&spec(1).id, DialFailure::Connect, 10);
    set.handle_up(&spec(2).id);
    assert_eq!(set.count(PeerState::Up), 1);
    assert_eq!(set.failures(DialFailure::Connect), 1);
    let due = set.poll_timeout().expect("the failed peer is due again");
    assert!(
        (10 + 500..=10 + 1_000).contains(&due),
        "first backoff in [0.5 s, 1 s]: {due}"
    );
    assert_eq!(set.poll_dial(due - 1), None);
    assert_eq!(set.poll_dial(due), Some(spec(1)));
    assert_eq!(set.up().copied().collect::<Vec<_>>(), vec![spec(2)]);
}

#[test]
fn backoff_doubles_with_jitter_up_to_five_minutes_and_resets_after_a_session() {
    let b = Backoff::default();
    let mut rng = SplitMix64::new(3);
    for (failures, d) in [
        (1, 1_000),
        (2, 2_000),
        (3, 4_000),
        (9, 256_000),
        (10, 300_000),
    ] {
        for _ in 0..50 {
            let w = b.delay_ms(failures, &mut rng);
            assert!(
                (d / 2..=d).contains(&w),
                "failure {failures}: {w} not in [{}, {d}]",
                d / 2
            );
        }
    }
    assert!(b.delay_ms(u32::MAX, &mut rng) <= 300_000);

    let mut set = PeerSet::new([spec(1)], b, 1);
    let mut now = 0;
    for _ in 0..12 {
        assert!(set.poll_dial(now).is_some());
        set.handle_dial_failed(&spec(1).id, DialFailure::Timeout, now);
        now = set.poll_timeout().unwrap();
    }
    assert!(set.poll_dial(now).is_some());
    set.handle_up(&spec(1).id);
    set.handle_down(&spec(1).id, now);
    let wait = set.poll_timeout().unwrap() - now;
    assert!(
        wait <= 1_000,
        "a session that ended is redialled soon: {wait} ms"
    );
}

#[test]
fn the_same_seed_replays_the_same_schedule() {
    let run = |seed| {
        let mut set = PeerSet::new([spec(1), spec(2), spec(3)], Backoff::default(), seed);
        let mut now = 0;
        let mut log = Vec::new();
        for _ in 0..30 {
            while let Some(p) = set.poll_dial(now) {
                set.handle_dial_failed(&p.id, DialFailure::Connect, now);
                log.push((now, p.id.0[0]));
            }
            now = set.poll_timeout().unwrap();
        }
        log
    };
    assert_eq!(run(5), run(5));
    assert_ne!(run(5), run(6));
}
