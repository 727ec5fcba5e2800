//! `ronode run` as a process on real io_uring over loopback: start, HELLO and PING over TLS 1.3
//! with the hybrid group, readiness, the data directory and port guards, amnesia, and SIGTERM
//! draining to exit 0. Every node gets fresh ports (port 0) and its own directory.

mod common;

use common::{http_get, run_local_to_exit, run_to_exit, scratch, start_local, WAIT};
use ronode_client::{Client, ClientOptions};

#[test]
fn serves_hello_and_ping_over_hybrid_tls_then_drains_on_sigterm() {
    let dir = scratch("serve");
    let node = start_local(&dir, &[]);
    let (status, body) = http_get(node.admin, "/readyz");
    assert_eq!(status, 200, "{body}");

    let pin = ronode_proto::NodeId::parse_hex(&node.node_id).unwrap();
    let opts = ClientOptions {
        pin: Some(pin),
        timeout: WAIT,
        ..Default::default()
    };
    let mut client = Client::connect(node.listen, &opts).expect("TLS + HELLO");
    assert_eq!(client.negotiated_group().as_deref(), Some("X25519MLKEM768"));
    assert_eq!(client.peer_node_id(), Some(pin));
    client.ping().expect("PING answered");
    client.close().unwrap();

    let (status, metrics) = http_get(node.admin, "/metrics");
    assert_eq!(status, 200);
    assert!(
        metrics.contains("overlay_sessions_active{shard=\"1\"}"),
        "every shard is exposed"
    );

    let (code, stderr) = node.sigterm_and_wait();
    assert_eq!(code, Some(0), "{stderr}");
    assert!(stderr.contains("drained"), "{stderr}");
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn a_second_node_on_the_same_data_dir_or_port_fails_clearly() {
    let dir = scratch("guard");
    let node = start_local(&dir, &[]);

    let (code, stderr) = run_local_to_exit(&dir, &[]);
    assert_eq!(code, Some(1), "{stderr}");
    assert!(
        stderr.contains("in use by another ronode process"),
        "{stderr}"
    );

    let other = scratch("guard-other");
    let listen = node.listen.to_string();
    let (code, stderr) = run_to_exit(&[
        "--listen",
        &listen,
        "--admin",
        "127.0.0.1:0",
        "--data-dir",
        other.to_str().unwrap(),
    ]);
    assert_eq!(code, Some(1), "{stderr}");
    assert!(
        stderr.contains(&format!("listen address {listen} is already in use")),
        "{stderr}"
    );
    drop(node);
    let _ = std::fs::remove_dir_all(dir);
    let _ = std::fs::remove_dir_all(other);
}

#[test]
fn amnesia_leaves_the_disk_untouched() {
    let dir = scratch("amnesia");
    let node = start_local(&dir, &["--amnesia"]);
    let mut client = Client::connect(
        node.listen,
        &ClientOptions {
            timeout: WAIT,
            ..Default::default()
        },
    )
    .unwrap();
    client.ping().unwrap();
    let (code, stderr) = node.sigterm_and_wait();
    assert_eq!(code, Some(0), "{stderr}");
    assert!(!dir.exists(), "amnesia created {}", dir.display());
}
