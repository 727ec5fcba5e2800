//! Lazy repair between planes driven by hand: a lost eager push is made good by
//! IHAVE -> IWANT -> EVENT.

use super::*;

/// Three planes, peers of each other (node `i` is `peer(i + 1)`), fanout 1, each with `SUB`.
fn three() -> Vec<GossipPlane<u32>> {
    let cfg = GossipConfig {
        relay_fanout: 1,
        ..config()
    };
    (0..3u8)
        .map(|i| {
            let mut p = GossipPlane::new(cfg.clone(), u64::from(i), T0).unwrap();
            for j in (0..3u8).filter(|j| *j != i) {
                p.handle_peer_up(peer(j + 1), T0);
            }
            p.handle_subscribe(SUB, "t", T0).unwrap();
            p
        })
        .collect()
}

/// Hands `f`, sent by node `from`, to its peer.
fn deliver(nodes: &mut [GossipPlane<u32>], from: usize, f: PeerFrame, now: u64) {
    let to = usize::from(f.peer.0[0] - 1);
    let src = peer(from as u8 + 1);
    match f.msg {
        PeerMsg::Event { payload, .. } => {
            nodes[to].handle_event(src, payload, now).unwrap();
        }
        PeerMsg::IHave(ihave) => nodes[to].handle_ihave(src, &ihave, now),
        PeerMsg::IWant(iwant) => nodes[to].handle_iwant(src, &iwant, now),
    }
}

#[test]
fn a_lost_push_is_repaired_by_ihave_iwant_event() {
    let mut nodes = three();
    // Published 10 ms before the first tick: at the tick its pushes may still be in flight.
    let id = nodes[0]
        .handle_publish(PUBLISHER, "t", T0 + 10, b"m", T0 + 10)
        .unwrap();
    assert_eq!(deliveries(&mut nodes[0]).len(), 1);
    // Node 0 pushes to one peer (fanout 1); that push is lost.
    let push = frames(&mut nodes[0]);
    assert_eq!(push.len(), 1);
    let lost_to = usize::from(push[0].peer.0[0] - 1);
    let other = 3 - lost_to;

    // The tick: node 0 announces to the peer it did not push to, not to the one it did.
    nodes[0].handle_timeout(T0 + 100);
    let ihave = frames(&mut nodes[0]);
    assert_eq!(ihave.len(), 1);
    assert_eq!(ihave[0].peer, peer(other as u8 + 1));
    assert!(matches!(&ihave[0].msg, PeerMsg::IHave(h) if h.ids == vec![id] && h.topic == "t"));
    deliver(&mut nodes, 0, ihave.into_iter().next().unwrap(), T0 + 101);

    // IWANT back, EVENT (repair) in answer, delivered once.
    let iwant = frames(&mut nodes[other]);
    assert!(matches!(&iwant[0].msg, PeerMsg::IWant(w) if w.ids == vec![id]));
    deliver(
        &mut nodes,
        other,
        iwant.into_iter().next().unwrap(),
        T0 + 102,
    );
    let answer = frames(&mut nodes[0]);
    assert!(matches!(
        answer[..],
        [PeerFrame {
            msg: PeerMsg::Event { repair: true, .. },
            ..
        }]
    ));
    deliver(&mut nodes, 0, answer.into_iter().next().unwrap(), T0 + 103);
    assert_eq!(deliveries(&mut nodes[other]).len(), 1);
    assert_eq!(nodes[other].counters().pulled, 1);

    // The repaired node pushes on to the node whose push was lost (its only other peer).
    let on = frames(&mut nodes[other]);
    assert_eq!(on.len(), 1);
    assert_eq!(on[0].peer, peer(lost_to as u8 + 1));
    deliver(&mut nodes, other, on.into_iter().next().unwrap(), T0 + 104);
    assert_eq!(deliveries(&mut nodes[lost_to]).len(), 1);
    // Which pushes it on to node 0: a duplicate there, which tells node 0 that it holds it.
    let back = frames(&mut nodes[lost_to]);
    assert_eq!(back.len(), 1);
    deliver(
        &mut nodes,
        lost_to,
        back.into_iter().next().unwrap(),
        T0 + 105,
    );
    assert!(deliveries(&mut nodes[0]).is_empty());

    // A second IWANT of the same id by the same peer is not served twice.
    nodes[0].handle_iwant(peer(other as u8 + 1), &IWant { ids: vec![id] }, T0 + 105);
    assert!(frames(&mut nodes[0]).is_empty());
    assert_eq!(nodes[0].counters().repaired, 1);

    // Everyone holds it: later ticks announce nothing within the window, and nothing after.
    for n in &mut nodes {
        n.handle_timeout(T0 + 200);
    }
    for n in &mut nodes {
        assert!(
            frames(n).is_empty(),
            "holders known, or pushes still in flight"
        );
    }
    for n in &mut nodes {
        n.handle_timeout(T0 + 1_000);
        assert!(frames(n).is_empty(), "out of the IHAVE window");
    }
}

#[test]
fn expired_messages_are_not_served_and_ihave_is_split_by_topic() {
    let mut p = plane(config(), 2);
    let (a, bytes) = event("t", T0, b"a", 0);
    p.handle_event(peer(1), bytes, T0 + 10).unwrap();
    let (b, bytes) = event("u", T0, b"b", 0);
    p.handle_event(peer(1), bytes, T0 + 10).unwrap();
    frames(&mut p);
    // Fanout 2 with two peers: peer 2 was pushed to. Peer 3 comes up and is told.
    p.handle_peer_up(peer(3), T0);
    p.handle_timeout(T0 + 100);
    let f = frames(&mut p);
    let digests: Vec<(NodeId, String, Vec<MsgId>)> = f
        .into_iter()
        .map(|f| match f.msg {
            PeerMsg::IHave(h) => (f.peer, h.topic, h.ids),
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(
        digests,
        vec![
            (peer(3), "t".to_string(), vec![a]),
            (peer(3), "u".to_string(), vec![b])
        ]
    );
    // One interval later, the pushed peer has not shown it holds them: announced to as well.
    p.handle_timeout(T0 + 200);
    let to: Vec<NodeId> = frames(&mut p).iter().map(|f| f.peer).collect();
    assert_eq!(to, vec![peer(2), peer(2), peer(3), peer(3)]);
    // Past message_ttl_ms, an IWANT finds nothing.
    let late = T0 + 10 + config().message_ttl_ms;
    p.handle_timeout(late);
    assert_eq!(p.cached_len(), 0);
    p.handle_iwant(peer(3), &IWant { ids: vec![a, b] }, late);
    assert!(frames(&mut p).is_empty());
}
