//! Unit tests of the gossip plane: single-plane checks (msg_id, hops, budgets, dedupe, bounds)
//! and small hand-driven exchanges between planes (repair after a lost push).

use bytes::Bytes;
use ronode_proto::id::NodeId;
use ronode_proto::msg::gossip::{GossipEvent, IHave, IWant, MsgId};
use ronode_proto::reason::Reason;

use super::*;

mod repair;

const T0: u64 = 1_700_000_000_000;
const SUB: u32 = 0;
const PUBLISHER: u32 = 1;

fn peer(n: u8) -> NodeId {
    NodeId([n; 32])
}

fn config() -> GossipConfig {
    GossipConfig {
        relay_fanout: 2,
        ihave_interval_ms: 100,
        ihave_window_ms: 300,
        ..GossipConfig::default()
    }
}

/// A plane with peers 1..=`peers` up and `SUB` subscribed to "t".
fn plane(config: GossipConfig, peers: u8) -> GossipPlane<u32> {
    let mut p = GossipPlane::new(config, 42, T0).unwrap();
    for n in 1..=peers {
        assert!(p.handle_peer_up(peer(n), T0));
    }
    p.handle_subscribe(SUB, "t", T0).unwrap();
    p
}

fn event(topic: &str, ts: u64, data: &[u8], hops: u8) -> (MsgId, Bytes) {
    let e = GossipEvent {
        hops,
        ..GossipEvent::new(topic, ts, data.to_vec())
    };
    let mut out = Vec::new();
    e.encode(&mut out);
    (e.msg_id, Bytes::from(out))
}

fn deliveries(p: &mut GossipPlane<u32>) -> Vec<Delivery<u32>> {
    std::iter::from_fn(|| p.poll_delivery()).collect()
}

fn frames(p: &mut GossipPlane<u32>) -> Vec<PeerFrame> {
    std::iter::from_fn(|| p.poll_transmit()).collect()
}

#[test]
fn a_forged_msg_id_is_malformed_and_nothing_moves() {
    let mut p = plane(config(), 3);
    let mut forged = GossipEvent::new("t", T0, b"x".to_vec());
    forged.msg_id.0[0] ^= 1;
    let mut out = Vec::new();
    forged.encode(&mut out);
    assert_eq!(
        p.handle_event(peer(1), Bytes::from(out), T0),
        Err(Reason::Malformed)
    );
    assert_eq!(
        p.handle_event(peer(1), Bytes::from_static(b"\xa0"), T0),
        Err(Reason::Malformed)
    );
    assert_eq!(p.counters().malformed, 2);
    assert!(deliveries(&mut p).is_empty() && frames(&mut p).is_empty());
    assert_eq!(p.seen_len(), 0);
}

#[test]
fn publish_delivers_once_to_others_and_pushes_to_fanout_peers() {
    let mut p = plane(config(), 4);
    p.handle_subscribe(PUBLISHER, "t", T0).unwrap();
    p.handle_subscribe(7, "t", T0).unwrap();
    p.handle_subscribe(8, "other", T0).unwrap();
    let id = p.handle_publish(PUBLISHER, "t", T0, b"hello", T0).unwrap();
    let d = deliveries(&mut p);
    // Not to the publisher, not to another topic's subscriber.
    assert_eq!(
        d.iter().map(|d| d.subscriber).collect::<Vec<_>>(),
        vec![SUB, 7]
    );
    let e = GossipEvent::decode(&d[0].payload).unwrap();
    assert_eq!(
        (e.msg_id, e.ts, e.hops, &e.data[..]),
        (id, T0, 0, &b"hello"[..])
    );
    let f = frames(&mut p);
    assert_eq!(f.len(), 2, "relay_fanout");
    assert_ne!(f[0].peer, f[1].peer);
    assert!(f
        .iter()
        .all(|f| f.msg.flags() == ronode_proto::flags::Flags::EVENT
            && f.msg.payload() == d[0].payload));
    assert_eq!(
        p.handle_publish(PUBLISHER, "t", T0, b"hello", T0),
        Err(PublishError::Duplicate)
    );
    // It comes back from a peer: a duplicate, not delivered again.
    let (_, bytes) = event("t", T0, b"hello", 1);
    assert_eq!(
        p.handle_event(peer(3), bytes, T0 + 5),
        Ok(EventOutcome::Duplicate)
    );
    assert!(deliveries(&mut p).is_empty() && frames(&mut p).is_empty());
    let c = p.counters();
    assert_eq!(
        (c.published, c.delivered, c.relayed, c.duplicates),
        (1, 2, 2, 2)
    );
    assert_eq!(
        p.handle_publish(PUBLISHER, "", T0, b"x", T0),
        Err(PublishError::BadTopic)
    );
}

#[test]
fn a_publish_keeps_the_publishers_ts_and_id_within_the_allowed_skew() {
    let mut p = plane(config(), 2);
    // The publisher's clock, not the plane's: subscribers see the id the publisher computed.
    let ts = T0 - 1_234;
    let mine = GossipEvent::new("t", ts, b"mine".to_vec());
    assert_eq!(
        p.handle_publish(PUBLISHER, "t", ts, b"mine", T0),
        Ok(mine.msg_id)
    );
    let d = deliveries(&mut p);
    let got = GossipEvent::decode(&d[0].payload).unwrap();
    assert_eq!((got.msg_id, got.ts, got.hops), (mine.msg_id, ts, 0));
    assert!(frames(&mut p)
        .iter()
        .all(|f| f.msg.payload() == d[0].payload));
    // The publisher's retry carries the same id: a duplicate, delivered and pushed no more.
    assert_eq!(
        p.handle_publish(PUBLISHER, "t", ts, b"mine", T0 + 50),
        Err(PublishError::Duplicate)
    );
    assert!(deliveries(&mut p).is_empty() && frames(&mut p).is_empty());
    // Up to the allowed skew either way; past it, refused and nothing moves.
    let skew = ronode_proto::limits::MAX_CLOCK_SKEW_S * 1_000;
    assert!(p
        .handle_publish(PUBLISHER, "t", T0 - skew, b"a", T0)
        .is_ok());
    assert!(p
        .handle_publish(PUBLISHER, "t", T0 + skew, b"b", T0)
        .is_ok());
    deliveries(&mut p);
    frames(&mut p);
    for ts in [T0 - skew - 1, T0 + skew + 1] {
        let refused = p.handle_publish(PUBLISHER, "t", ts, b"c", T0);
        assert_eq!(refused, Err(PublishError::BadTs { ts, now_ms: T0 }));
        assert_eq!(refused.unwrap_err().reason(), Reason::BadTs);
    }
    assert!(deliveries(&mut p).is_empty() && frames(&mut p).is_empty());
    assert_eq!(p.counters().published, 3);
}

#[test]
fn a_relay_never_pushes_back_to_the_source_and_bumps_hops() {
    let mut p = plane(
        GossipConfig {
            relay_fanout: 8,
            ..config()
        },
        3,
    );
    let (id, bytes) = event("t", T0, b"x", 4);
    assert_eq!(
        p.handle_event(peer(2), bytes.clone(), T0),
        Ok(EventOutcome::Accepted)
    );
    let d = deliveries(&mut p);
    assert_eq!(d.len(), 1);
    assert_eq!(d[0].payload, bytes, "delivered as received");
    let f = frames(&mut p);
    let mut to: Vec<NodeId> = f.iter().map(|f| f.peer).collect();
    to.sort();
    assert_eq!(to, vec![peer(1), peer(3)]);
    let relayed = GossipEvent::decode(&f[0].msg.payload()).unwrap();
    assert_eq!((relayed.msg_id, relayed.hops), (id, 5));
}

#[test]
fn the_hop_limit_drops_above_and_stops_at_the_limit() {
    let mut p = plane(
        GossipConfig {
            max_hops: 3,
            ..config()
        },
        3,
    );
    let (_, over) = event("t", T0, b"over", 4);
    assert_eq!(
        p.handle_event(peer(1), over, T0),
        Ok(EventOutcome::HopLimited)
    );
    assert_eq!(p.counters().hop_limited, 1);
    assert!(deliveries(&mut p).is_empty() && frames(&mut p).is_empty());

    // At the limit: delivered, but neither pushed nor announced nor served.
    let (at_id, at) = event("t", T0, b"at", 3);
    assert_eq!(p.handle_event(peer(1), at, T0), Ok(EventOutcome::Accepted));
    assert_eq!(deliveries(&mut p).len(), 1);
    assert!(frames(&mut p).is_empty());
    p.handle_timeout(T0 + 100);
    assert!(frames(&mut p).is_empty(), "no IHAVE for it");
    p.handle_iwant(peer(2), &IWant { ids: vec![at_id] }, T0 + 100);
    assert!(frames(&mut p).is_empty(), "no IWANT answer either");

    // One below: pushed with hops at the limit.
    let (_, below) = event("t", T0, b"below", 2);
    assert_eq!(
        p.handle_event(peer(1), below, T0),
        Ok(EventOutcome::Accepted)
    );
    let f = frames(&mut p);
    assert_eq!(f.len(), 2);
    assert_eq!(GossipEvent::decode(&f[0].msg.payload()).unwrap().hops, 3);
}

#[test]
fn the_seen_cache_is_bounded_and_forgets_the_oldest() {
    let cfg = GossipConfig {
        seen_cache: 4,
        message_cache: 4,
        ..config()
    };
    let mut p = plane(cfg, 1);
    let msgs: Vec<(MsgId, Bytes)> = (0..5u8).map(|n| event("t", T0, &[n], 0)).collect();
    for (_, bytes) in &msgs {
        assert_eq!(
            p.handle_event(peer(1), bytes.clone(), T0),
            Ok(EventOutcome::Accepted)
        );
    }
    assert_eq!((p.seen_len(), p.cached_len()), (4, 4));
    // The newest is still known; the oldest was forgotten and is taken as new again.
    assert_eq!(
        p.handle_event(peer(1), msgs[4].1.clone(), T0),
        Ok(EventOutcome::Duplicate)
    );
    assert_eq!(
        p.handle_event(peer(1), msgs[0].1.clone(), T0),
        Ok(EventOutcome::Accepted)
    );
    assert_eq!(p.seen_len(), 4);
    assert_eq!(
        p.handle_event(peer(1), msgs[1].1.clone(), T0),
        Ok(EventOutcome::Accepted),
        "re-adding the oldest pushed out the next"
    );
}

#[test]
fn per_peer_and_per_topic_budgets_shed_and_count() {
    let cfg = GossipConfig {
        peer_rate_per_s: 1,
        peer_burst: 3,
        topic_rate_per_s: 1,
        topic_burst: 4,
        ..config()
    };
    let mut p = plane(cfg, 2);
    let outcomes: Vec<EventOutcome> = (0..5u8)
        .map(|n| {
            p.handle_event(peer(1), event("t", T0, &[n], 0).1, T0)
                .unwrap()
        })
        .collect();
    assert_eq!(
        outcomes
            .iter()
            .filter(|o| **o == EventOutcome::Shed)
            .count(),
        2
    );
    assert_eq!(p.counters().budget_shed, 2);
    // A shed message is not marked seen: it may come in later, when the budget has refilled.
    let (_, shed) = event("t", T0, &[4], 0);
    assert_eq!(
        p.handle_event(peer(1), shed, T0 + 1_000),
        Ok(EventOutcome::Accepted)
    );
    // The topic's budget (4, 3 taken, 1 refilled) is spent after one more, whoever sends.
    assert_eq!(
        p.handle_event(peer(2), event("t", T0, b"a", 0).1, T0 + 1_000),
        Ok(EventOutcome::Accepted)
    );
    assert_eq!(
        p.handle_event(peer(2), event("t", T0, b"b", 0).1, T0 + 1_000),
        Ok(EventOutcome::Shed)
    );
    assert!(matches!(
        p.handle_publish(PUBLISHER, "t", T0 + 1_000, b"c", T0 + 1_000),
        Err(PublishError::Shed {
            retry_after_ms: 1..=1_000
        })
    ));
    assert_eq!(p.counters().budget_shed, 4);
    // Duplicates cost nothing, and other topics have their own budget.
    assert_eq!(
        p.handle_event(peer(2), event("t", T0, b"a", 0).1, T0 + 1_000),
        Ok(EventOutcome::Duplicate)
    );
    assert!(p
        .handle_publish(PUBLISHER, "u", T0 + 1_000, b"c", T0 + 1_000)
        .is_ok());
}

#[test]
fn unknown_peers_subscriptions_and_tables_are_bounded() {
    let cfg = GossipConfig {
        max_peers: 2,
        max_topics: 2,
        max_subscriptions: 3,
        ..config()
    };
    let mut p = plane(cfg, 2);
    assert!(!p.handle_peer_up(peer(3), T0));
    assert_eq!(p.counters().peers_refused, 1);
    assert_eq!(
        p.handle_event(peer(3), event("t", T0, b"x", 0).1, T0),
        Ok(EventOutcome::UnknownPeer)
    );
    // "t" is subscribed; a second topic fits; a third replaces the idle one.
    p.handle_subscribe(5, "a", T0).unwrap();
    assert!(p
        .handle_publish(PUBLISHER, "b", T0, b"x", T0)
        .is_err_and(|e| e == PublishError::TopicsFull));
    p.handle_unsubscribe(5, "a");
    assert!(p.handle_publish(PUBLISHER, "b", T0, b"x", T0).is_ok());
    p.handle_subscribe(5, "b", T0).unwrap();
    p.handle_subscribe(6, "b", T0).unwrap();
    assert_eq!(p.handle_subscribe(7, "b", T0), Err(SubscribeError::Full));
    p.handle_session_closed(5);
    p.handle_subscribe(7, "b", T0).unwrap();
    assert_eq!(p.handle_subscribe(7, "", T0), Err(SubscribeError::BadTopic));
    // Peer down: no longer pushed to.
    p.handle_peer_down(&peer(1));
    frames(&mut p);
    p.handle_publish(PUBLISHER, "t", T0, b"y", T0).unwrap();
    assert!(frames(&mut p).iter().all(|f| f.peer == peer(2)));
}

#[test]
fn output_queues_are_bounded() {
    let cfg = GossipConfig {
        max_queued_frames: 3,
        max_queued_deliveries: 1,
        ..config()
    };
    let mut p = plane(cfg, 4);
    p.handle_subscribe(9, "t", T0).unwrap();
    p.handle_publish(PUBLISHER, "t", T0, b"1", T0).unwrap();
    p.handle_publish(PUBLISHER, "t", T0, b"2", T0).unwrap();
    assert_eq!(frames(&mut p).len(), 3);
    assert_eq!(deliveries(&mut p).len(), 1);
    let c = p.counters();
    assert_eq!((c.frames_dropped, c.deliveries_dropped), (1, 3));
    assert_eq!((c.relayed, c.delivered), (3, 1));
}

#[test]
fn the_same_seed_chooses_the_same_peers() {
    let run = |seed| {
        let mut p = GossipPlane::<u32>::new(config(), seed, T0).unwrap();
        for n in 1..=8 {
            p.handle_peer_up(peer(n), T0);
        }
        (0..20u8)
            .flat_map(|n| {
                p.handle_publish(PUBLISHER, "t", T0, &[n], T0).unwrap();
                frames(&mut p).into_iter().map(|f| f.peer.0[0])
            })
            .collect::<Vec<u8>>()
    };
    assert_eq!(run(1), run(1));
    assert_ne!(run(1), run(2));
}

#[test]
fn ihave_is_answered_with_iwant_for_unseen_ids_only() {
    let mut p = plane(config(), 2);
    let (known, bytes) = event("t", T0, b"known", 0);
    p.handle_event(peer(1), bytes, T0).unwrap();
    frames(&mut p);
    let (missing, _) = event("t", T0, b"missing", 0);
    let ihave = IHave {
        topic: "t".into(),
        ids: vec![known, missing],
    };
    p.handle_ihave(peer(2), &ihave, T0);
    let f = frames(&mut p);
    assert_eq!(f.len(), 1);
    assert_eq!(f[0].peer, peer(2));
    assert_eq!(f[0].msg, PeerMsg::IWant(IWant { ids: vec![missing] }));
    // Asked already: another announcer is not asked until the IWANT timed out.
    p.handle_ihave(peer(1), &ihave, T0 + 10);
    assert!(frames(&mut p).is_empty());
    p.handle_ihave(peer(1), &ihave, T0 + config().iwant_timeout_ms);
    assert_eq!(frames(&mut p).len(), 1);
    assert_eq!(
        (p.counters().ihave_received, p.counters().iwant_sent),
        (3, 2)
    );
}
