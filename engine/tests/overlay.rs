//! The overlay between nodes on loopback: peers from configuration, fetch on miss through a
//! line of nodes, a peer serving forged bytes skipped and counted, 404 everywhere for an object
//! nobody has (with no fetch loop), and a killed peer dialled again once it is back.

mod common;

use common::{eventually, metric_sum, scratch, Member, Node, WAIT};
use ronode_client::{Client, ClientError, ClientOptions};
use ronode_proto::ObjectAddr;

fn opts() -> ClientOptions {
    ClientOptions {
        timeout: WAIT,
        ..Default::default()
    }
}

fn peers_up(node: &Node) -> f64 {
    metric_sum(node.admin, "overlay_peers{state=\"up\"")
}

fn fetches(node: &Node, result: &str) -> f64 {
    metric_sum(
        node.admin,
        &format!("objects_fetch_total{{result=\"{result}\""),
    )
}

#[test]
fn an_object_put_on_one_end_of_a_line_is_served_at_the_other() {
    let (a, b, c) = (
        Member::new("line-a"),
        Member::new("line-b"),
        Member::new("line-c"),
    );
    let na = a.start(&[&b]);
    let nb = b.start(&[&a, &c]);
    let nc = c.start(&[&b]);
    for (node, n) in [(&na, 1.0), (&nb, 2.0), (&nc, 1.0)] {
        eventually("every configured peer is up", || peers_up(node) == n);
    }
    let body: Vec<u8> = (0..1024u32).map(|i| (i * 7) as u8).collect();
    let addr = Client::connect(na.listen, &opts())
        .unwrap()
        .put(&body, Some(&common::mint(&a.dir, "put")))
        .unwrap()
        .addr;
    // C holds nothing and knows only B; B holds nothing either and asks A.
    let mut from_c = Client::connect(nc.listen, &opts()).unwrap();
    assert_eq!(
        from_c.get(&addr).unwrap(),
        body,
        "served through B, digest verified"
    );
    eventually("C and B each count a fetch found", || {
        fetches(&nc, "found") == 1.0 && fetches(&nb, "found") == 1.0
    });
    // Now cached along the way: served by C itself.
    assert_eq!(from_c.get(&addr).unwrap(), body);

    // An object nobody has: 404 from every node, and the fetches end (no loop).
    let missing = ObjectAddr::of(b"nobody has this");
    for node in [&na, &nb, &nc] {
        let mut client = Client::connect(node.listen, &opts()).unwrap();
        match client.get(&missing) {
            Err(ClientError::Node(e)) => assert_eq!(e.status, 404, "{e}"),
            other => panic!("expected 404, got {other:?}"),
        }
    }
    let tries: f64 = [&na, &nb, &nc]
        .iter()
        .map(|n| metric_sum(n.admin, "objects_fetch_total{"))
        .sum();
    assert!(
        tries < 50.0,
        "fetches of a missing object stay bounded: {tries}"
    );
    for (node, m) in [(na, a), (nb, b), (nc, c)] {
        drop(node);
        let _ = std::fs::remove_dir_all(m.dir);
    }
}

#[test]
fn a_killed_peer_is_dialled_again_and_objects_resolve_meanwhile() {
    let (a, b, c) = (
        Member::new("kill-a"),
        Member::new("kill-b"),
        Member::new("kill-c"),
    );
    let na = a.start(&[]);
    let nb = b.start(&[]);
    let nc = c.start(&[&a, &b]);
    eventually("C has both peers up", || peers_up(&nc) == 2.0);
    // The same object on A and B; A is killed.
    let body = b"held by two peers".to_vec();
    let addr = Client::connect(na.listen, &opts())
        .unwrap()
        .put(&body, Some(&common::mint(&a.dir, "put")))
        .unwrap()
        .addr;
    Client::connect(nb.listen, &opts())
        .unwrap()
        .put(&body, Some(&common::mint(&b.dir, "put")))
        .unwrap();
    let (code, _) = na.sigterm_and_wait();
    assert_eq!(code, Some(0));
    eventually("C sees A down", || peers_up(&nc) == 1.0);
    let mut from_c = Client::connect(nc.listen, &opts()).unwrap();
    assert_eq!(
        from_c.get(&addr).unwrap(),
        body,
        "resolved from B meanwhile"
    );

    // A comes back on the same port: C dials it again (backoff) and uses it. The kernel may
    // take a moment to release the old listener.
    eventually("A's port is free again", || {
        std::net::TcpListener::bind(("127.0.0.1", a.port)).is_ok()
    });
    let na = a.start(&[]);
    eventually("C dials A again", || peers_up(&nc) == 2.0);
    let only_a = b"only A has this one".to_vec();
    let addr = Client::connect(na.listen, &opts())
        .unwrap()
        .put(&only_a, Some(&common::mint(&a.dir, "put")))
        .unwrap()
        .addr;
    assert_eq!(from_c.get(&addr).unwrap(), only_a, "fetched from A again");
    for (node, m) in [(na, a), (nb, b), (nc, c)] {
        drop(node);
        let _ = std::fs::remove_dir_all(m.dir);
    }
}

/// A peer that completes TLS and HELLO like a node, answers PING, and answers every GET with
/// forged bytes. Serves connections until the test ends.
fn forging_peer(seed: u8) -> (String, u16) {
    use ronode_proto::control::{Control, HelloReply, APP_CONTROL};
    use ronode_proto::frame::{FrameDecoder, FrameEncoder, OutFrame};
    use ronode_proto::identity::{Identity, IdentitySeeds};
    use std::io::{Read, Write};
    let identity = Identity::from_seeds(&IdentitySeeds {
        ed25519: [seed; 32],
        ml_dsa: [seed; 32],
    });
    let (cert, key) = ronode_proto::cert::node_certificate(&identity).unwrap();
    let config =
        ronode_client::tls::server_config(&cert, &key, ronode_client::tls::PqMode::Hybrid).unwrap();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for tcp in listener.incoming().map_while(Result::ok) {
            let config = config.clone();
            std::thread::spawn(move || {
                let conn = rustls::ServerConnection::new(config).unwrap();
                let mut s = rustls::StreamOwned::new(conn, tcp);
                let (mut dec, mut enc) = (FrameDecoder::new(1 << 20), FrameEncoder::new(1 << 20));
                let mut buf = bytes::BytesMut::new();
                let mut chunk = [0u8; 4096];
                while let Ok(n @ 1..) = s.read(&mut chunk) {
                    buf.extend_from_slice(&chunk[..n]);
                    let mut out = Vec::new();
                    while let Ok(Some(f)) = dec.decode(&mut buf) {
                        let h = f.header;
                        let payload = if h.app_proto_id == APP_CONTROL {
                            match Control::parse(&f.payload) {
                                Ok(Control::Hello(hello)) => Control::HelloReply(
                                    HelloReply::negotiate(&hello, 1 << 20).unwrap(),
                                )
                                .to_vec(),
                                Ok(Control::Ping(n)) => Control::Pong(n).to_vec(),
                                _ => continue,
                            }
                        } else {
                            b"forged bytes, not the object".to_vec()
                        };
                        let frame = OutFrame::response(h.app_proto_id, h.corr_id, 200, &payload);
                        enc.encode(&frame, &mut out).unwrap();
                    }
                    if s.write_all(&out).and_then(|_| s.flush()).is_err() {
                        break;
                    }
                }
            });
        }
    });
    (identity.node_id().to_string(), port)
}

#[test]
fn a_peer_serving_forged_bytes_is_skipped_and_counted() {
    let (forger_id, forger_port) = forging_peer(9);
    let forger = Member {
        dir: scratch("forger-unused"),
        id: forger_id.clone(),
        port: forger_port,
    };
    let (a, n) = (Member::new("forge-a"), Member::new("forge-n"));
    let na = a.start(&[]);
    let nn = n.start(&[&forger, &a]);
    eventually("both peers are up", || peers_up(&nn) == 2.0);
    // An object closer (XOR) to the forger than to A, so that the forger is asked first.
    let forger_node = ronode_proto::NodeId::parse_hex(&forger_id).unwrap();
    let a_node = ronode_proto::NodeId::parse_hex(&a.id).unwrap();
    let body = (0u32..)
        .map(|i| format!("object number {i}").into_bytes())
        .find(|b| {
            let addr = ObjectAddr::of(b);
            forger_node.distance(&addr.0) < a_node.distance(&addr.0)
        })
        .unwrap();
    let addr = Client::connect(na.listen, &opts())
        .unwrap()
        .put(&body, Some(&common::mint(&a.dir, "put")))
        .unwrap()
        .addr;
    let got = Client::connect(nn.listen, &opts())
        .unwrap()
        .get(&addr)
        .unwrap();
    assert_eq!(got, body, "the forged answer was never served");
    eventually("the forger is counted once", || {
        fetches(&nn, "bad_digest") == 1.0
    });
    for (node, m) in [(na, a), (nn, n)] {
        drop(node);
        let _ = std::fs::remove_dir_all(m.dir);
    }
}

#[test]
fn a_peer_proving_another_node_id_is_refused_and_counted() {
    let (a, n) = (Member::new("mismatch-a"), Member::new("mismatch-n"));
    let na = a.start(&[]);
    // N is told that A's address belongs to some other NodeId.
    let impostor = Member {
        dir: scratch("mismatch-unused"),
        id: "ab".repeat(32),
        port: a.port,
    };
    let nn = n.start(&[&impostor]);
    eventually("the mismatch is counted", || {
        metric_sum(nn.admin, "overlay_dial_failures_total{reason=\"mismatch\"") >= 1.0
    });
    assert_eq!(
        peers_up(&nn),
        0.0,
        "a peer that is not who it should be is never up"
    );
    for (node, m) in [(na, a), (nn, n)] {
        drop(node);
        let _ = std::fs::remove_dir_all(m.dir);
    }
}
