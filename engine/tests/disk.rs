//! The disk object store through a running two-shard node: objects survive a restart, a
//! corrupted file is refused, quarantined and counted, and an amnesia node writes nothing.

mod common;

use common::{
    bytes, client, metric_sum, mint, object_file, on_shard, quarantine_file, scratch, start_local,
    start_with, Node,
};
use ronode_client::ClientError;
use ronode_proto::ObjectAddr;
use std::path::Path;

fn stop(node: Node) {
    let (code, stderr) = node.sigterm_and_wait();
    assert_eq!(code, Some(0), "SIGTERM exits 0; stderr: {stderr}");
}

/// Puts each object with a fresh capability and checks it was stored.
fn put_all(node: &Node, dir: &Path, objects: &[(ObjectAddr, Vec<u8>)]) {
    let cap = mint(dir, "put");
    let mut c = client(node);
    for (addr, data) in objects {
        let resp = c
            .put(data, Some(&cap))
            .unwrap_or_else(|e| panic!("PUT {} bytes: {e}", data.len()));
        assert_eq!((resp.addr, resp.stored), (*addr, true));
    }
}

#[test]
fn a_restarted_disk_node_keeps_every_object() {
    let dir = scratch("disk-restart");
    let objects = [
        on_shard(1024, 0),
        on_shard(300 * 1024, 1),
        on_shard(3 * 1024 * 1024, 0),
    ];
    let node = start_local(&dir, &[]);
    put_all(&node, &dir, &objects);
    stop(node);
    for (addr, _) in &objects {
        assert!(object_file(&dir, addr).is_file(), "{addr} is on disk");
    }

    let node = start_local(&dir, &[]);
    let mut c = client(&node);
    for (addr, data) in &objects {
        assert_eq!(c.head(addr).unwrap(), data.len() as u64, "HEAD {addr}");
        let got = c.get(addr).unwrap_or_else(|e| panic!("GET {addr}: {e}"));
        assert!(got == *data, "GET {addr}: {} bytes differ", data.len());
        // Verified now: a second read takes the plain path.
        assert!(c.get(addr).unwrap() == *data, "second GET {addr}");
    }
    common::eventually("store_objects counts the three objects", || {
        metric_sum(node.admin, "store_objects{") == 3.0
    });
    assert_eq!(metric_sum(node.admin, "store_quarantined_total{"), 0.0);
    stop(node);
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn a_corrupted_object_file_is_refused_and_counted() {
    let dir = scratch("disk-corrupt");
    let objects = [
        on_shard(300 * 1024, 1),
        on_shard(1024, 0),
        on_shard(5000, 1),
    ];
    let node = start_local(&dir, &[]);
    put_all(&node, &dir, &objects);
    stop(node);

    let (bad, _) = &objects[0];
    let path = object_file(&dir, bad);
    let mut file = std::fs::read(&path).unwrap();
    file[150 * 1024] ^= 0x01;
    std::fs::write(&path, file).unwrap();

    let node = start_local(&dir, &[]);
    let mut c = client(&node);
    // The first read hashes the file: a quarantined object is a miss, and says so.
    match c.get(bad) {
        Err(ClientError::Node(e)) => {
            assert_eq!((e.status, e.label.as_str()), (404, "not_found"), "{e}");
            assert!(e.message.contains("quarantined"), "{e}");
        }
        Err(other) => panic!("expected the node to refuse the GET, got {other}"),
        Ok(_) => panic!("a corrupted object was served"),
    }
    common::eventually("store_quarantined_total is 1", || {
        metric_sum(node.admin, "store_quarantined_total{") == 1.0
    });
    assert!(!path.exists(), "{} left in place", path.display());
    assert!(
        quarantine_file(&dir, bad).is_file(),
        "the file sits in quarantine"
    );

    let mut c = client(&node);
    let again = c.get(bad).unwrap_err();
    assert!(again.is_not_found(), "second GET: {again}");
    for (addr, data) in &objects[1..] {
        assert!(c.get(addr).unwrap() == *data, "GET {addr}");
    }
    assert_eq!(metric_sum(node.admin, "store_quarantined_total{"), 1.0);
    stop(node);
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn amnesia_writes_nothing_even_with_traffic() {
    let dir = scratch("disk-amnesia");
    let mut cmd = common::local_command(&dir, &["--amnesia"]);
    cmd.env("RONODE_OBJECTS__PUT_POLICY", "open");
    let node = start_with(cmd);
    let mut c = client(&node);
    for (addr, data) in [on_shard(1024, 0), on_shard(300 * 1024, 1)] {
        assert!(c.put(&data, None).unwrap().stored);
        assert_eq!(c.head(&addr).unwrap(), data.len() as u64);
        assert!(c.get(&addr).unwrap() == data, "GET {addr}");
    }
    stop(node);
    assert!(!dir.exists(), "amnesia created {}", dir.display());
}

/// The README's command: `ronode run` with no flags but ports, from a working directory, so the
/// data directory is the relative `./ronode-data`.
#[test]
fn a_node_on_the_default_relative_data_dir_stores_and_serves() {
    let cwd = scratch("relative");
    std::fs::create_dir_all(&cwd).unwrap();
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_ronode"));
    cmd.current_dir(&cwd)
        .args(["run", "--shards", "2", "--pin", "off"])
        .args(["--listen", "127.0.0.1:0", "--admin", "127.0.0.1:0"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let node = start_with(cmd);
    let body = bytes(300 * 1024, 11);
    let mut c = client(&node);
    let addr = c
        .put(&body, Some(&mint(&cwd.join("ronode-data"), "put")))
        .unwrap()
        .addr;
    assert_eq!(c.get(&addr).unwrap(), body);
    assert!(object_file(&cwd.join("ronode-data"), &addr).exists());
    drop(node);
    let _ = std::fs::remove_dir_all(cwd);
}
