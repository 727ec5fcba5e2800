//! Store integrity through a running two-shard disk node: bytes that do not hash to their address
//! are never served (whole or ranged, written in this run or found at start), damage quarantines
//! the object and turns it into a miss (404 `not_found` saying so), a duplicate upload replaces a
//! file it cannot vouch for, HEAD answers only sizes it has checked, and a full disk is 507
//! `store_full` with nothing left behind.

mod common;

use common::{
    client, metric_sum, mint, object_file, on_shard, quarantine_file, scratch, start_local, Node,
};
use ronode_client::{Client, ClientError, NodeError};
use ronode_proto::ObjectAddr;
use std::path::{Path, PathBuf};
use std::process::Command;

/// Flips one bit of the byte at `at` of `addr`'s file, in place (same inode, same size).
fn flip(dir: &Path, addr: &ObjectAddr, at: usize) {
    use std::io::{Read, Seek, SeekFrom, Write};
    let mut f = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(object_file(dir, addr))
        .unwrap();
    let mut b = [0u8; 1];
    f.seek(SeekFrom::Start(at as u64)).unwrap();
    f.read_exact(&mut b).unwrap();
    b[0] ^= 0x01;
    f.seek(SeekFrom::Start(at as u64)).unwrap();
    f.write_all(&b).unwrap();
    f.sync_all().unwrap();
}

fn stop(node: Node) {
    let (code, stderr) = node.sigterm_and_wait();
    assert_eq!(code, Some(0), "SIGTERM exits 0; stderr: {stderr}");
}

fn put(node: &Node, dir: &Path, data: &[u8]) -> bool {
    let cap = mint(dir, "put");
    client(node)
        .put(data, Some(&cap))
        .unwrap_or_else(|e| panic!("PUT {} bytes: {e}", data.len()))
        .stored
}

/// The node's error, or a panic naming what came instead.
fn node_error<T>(what: &str, r: Result<T, ClientError>) -> NodeError {
    match r {
        Err(ClientError::Node(e)) => e,
        Err(other) => panic!("{what}: expected the node to refuse, the client saw: {other}"),
        Ok(_) => panic!("{what}: the node answered with success"),
    }
}

/// A quarantined object is a miss: 404 `not_found`, not retryable, saying why.
fn assert_quarantined_miss(what: &str, e: &NodeError) {
    assert_eq!(
        (e.status, e.label.as_str(), e.retryable),
        (404, "not_found", false),
        "{what}: {e}"
    );
    assert!(e.message.contains("quarantined"), "{what}: {e}");
}

fn quarantined(node: &Node) -> f64 {
    metric_sum(node.admin, "store_quarantined_total{")
}

/// A GET (on session `c`) of `addr`, whose file was damaged, finds the damage out: 404
/// `not_found` saying it was quarantined, counted once, the file moved to quarantine; a second
/// GET, on a fresh session, is a plain miss.
fn assert_get_quarantines(node: &Node, dir: &Path, addr: &ObjectAddr, c: &mut Client, what: &str) {
    let e = node_error(what, c.get(addr));
    assert_quarantined_miss(what, &e);
    common::eventually("store_quarantined_total is 1", || quarantined(node) == 1.0);
    assert!(
        !object_file(dir, addr).exists(),
        "{what}: the damaged file is left in place"
    );
    assert!(
        quarantine_file(dir, addr).is_file(),
        "{what}: the file sits in quarantine"
    );
    let again = node_error("second GET", client(node).get(addr));
    assert!(again.is_not_found(), "{what}, second GET: {again}");
}

#[test]
fn damage_to_an_object_written_in_this_run_is_never_served() {
    let dir = scratch("integrity-damage");
    // Over the 4 MiB read-cache limit of a shard: served from disk on every GET.
    let (addr, data) = on_shard(5 * 1024 * 1024 + 333, 1);
    let (other, other_data) = on_shard(5 * 1024 * 1024, 0);
    let node = start_local(&dir, &[]);
    assert!(put(&node, &dir, &data));
    assert!(put(&node, &dir, &other_data));
    let mut c = client(&node);
    assert!(c.get(&addr).unwrap() == data, "the intact object is served");

    flip(&dir, &addr, 3 * 1024 * 1024 + 77);
    assert_get_quarantines(&node, &dir, &addr, &mut c, "GET of the damaged object");

    let mut c = client(&node);
    assert!(
        c.get(&other).unwrap() == other_data,
        "the other object is untouched"
    );
    assert_eq!(quarantined(&node), 1.0);
    stop(node);
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn a_range_over_a_damaged_piece_is_refused() {
    let dir = scratch("integrity-range");
    let (addr, data) = on_shard(6 * 1024 * 1024, 0);
    let node = start_local(&dir, &[]);
    assert!(put(&node, &dir, &data));
    let bad = 4 * 1024 * 1024 + 12_345;
    flip(&dir, &addr, bad);

    let mut c = client(&node);
    // Ranges over intact pieces are served: each piece is checked on its own.
    let head = c.get_range(&addr, 100, 200_000).unwrap();
    assert!(head == data[100..200_000], "an intact range");
    let e = node_error(
        "a range over the damaged byte",
        c.get_range(&addr, bad as u64 - 10, bad as u64 + 10),
    );
    assert_quarantined_miss("a range over the damaged byte", &e);
    common::eventually("store_quarantined_total is 1", || quarantined(&node) == 1.0);
    let e = node_error(
        "an intact range after",
        client(&node).get_range(&addr, 0, 10),
    );
    assert!(e.is_not_found(), "the object is gone: {e}");
    stop(node);
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn a_duplicate_put_after_a_restart_replaces_a_damaged_file() {
    let dir = scratch("integrity-dup");
    let (small, small_data) = on_shard(300 * 1024, 1);
    let (large, large_data) = on_shard(5 * 1024 * 1024, 0);
    let node = start_local(&dir, &[]);
    assert!(put(&node, &dir, &small_data));
    assert!(put(&node, &dir, &large_data));
    // Written and verified in this run: a second upload is a duplicate.
    assert!(
        !put(&node, &dir, &small_data),
        "a verified object is a duplicate"
    );
    stop(node);
    flip(&dir, &small, 1000);
    flip(&dir, &large, 4 * 1024 * 1024);

    let node = start_local(&dir, &[]);
    // Not verified since the start: the uploads are written again, replacing the files.
    assert!(
        put(&node, &dir, &small_data),
        "the small object is written again"
    );
    assert!(
        put(&node, &dir, &large_data),
        "the large object is written again"
    );
    let mut c = client(&node);
    assert!(
        c.get(&small).unwrap() == small_data,
        "the good bytes of {small}"
    );
    assert!(
        c.get(&large).unwrap() == large_data,
        "the good bytes of {large}"
    );
    assert_eq!(
        std::fs::read(object_file(&dir, &large)).unwrap(),
        large_data
    );
    let total = (small_data.len() + large_data.len()) as f64;
    common::eventually("store_bytes counts each object once", || {
        metric_sum(node.admin, "store_bytes{") == total
            && metric_sum(node.admin, "store_objects{") == 2.0
    });
    assert_eq!(quarantined(&node), 0.0);
    let tmp = std::fs::read_dir(dir.join("objects/tmp")).unwrap().count();
    assert_eq!(tmp, 0, "nothing left in tmp/");
    stop(node);
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn a_file_truncated_while_the_node_runs_is_quarantined() {
    let dir = scratch("integrity-truncated");
    let (addr, data) = on_shard(5 * 1024 * 1024, 1);
    let node = start_local(&dir, &[]);
    assert!(put(&node, &dir, &data));
    let f = std::fs::OpenOptions::new()
        .write(true)
        .open(object_file(&dir, &addr))
        .unwrap();
    f.set_len(2 * 1024 * 1024 + 5).unwrap();
    f.sync_all().unwrap();
    drop(f);

    let mut c = client(&node);
    assert_get_quarantines(&node, &dir, &addr, &mut c, "GET of the truncated object");
    stop(node);
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn head_of_a_damaged_unverified_object_checks_it_first() {
    let dir = scratch("integrity-head");
    let (bad, bad_data) = on_shard(300 * 1024, 0);
    let (good, good_data) = on_shard(200 * 1024, 1);
    let node = start_local(&dir, &[]);
    assert!(put(&node, &dir, &bad_data));
    assert!(put(&node, &dir, &good_data));
    stop(node);
    flip(&dir, &bad, 150 * 1024);

    let node = start_local(&dir, &[]);
    let mut c = client(&node);
    assert_eq!(c.head(&good).unwrap(), good_data.len() as u64);
    let e = node_error("HEAD of the damaged object", c.head(&bad));
    assert_quarantined_miss("HEAD of the damaged object", &e);
    common::eventually("store_quarantined_total is 1", || quarantined(&node) == 1.0);
    assert!(c.get(&good).unwrap() == good_data);
    stop(node);
    let _ = std::fs::remove_dir_all(dir);
}

/// A tmpfs mounted for one test, unmounted (and its mount point removed) when dropped, also on
/// a panic.
struct Mount(PathBuf);

impl Mount {
    fn tmpfs(dir: &Path, size: &str) -> Mount {
        std::fs::create_dir_all(dir).unwrap();
        let out = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir)
            .output()
            .unwrap_or_else(|e| panic!("cannot run mount(8) for the disk-full test: {e}"));
        assert!(
            out.status.success(),
            "the disk-full test needs to mount a tmpfs at {} (run the tests as root): {}",
            dir.display(),
            String::from_utf8_lossy(&out.stderr)
        );
        Mount(dir.to_owned())
    }
}

impl Drop for Mount {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
        let _ = std::fs::remove_dir(&self.0);
    }
}

#[test]
fn a_full_disk_is_store_full_and_leaves_nothing_behind() {
    let dir = scratch("integrity-full");
    let mount = Mount::tmpfs(&dir, "3m");
    let node = start_local(&dir, &[]);
    let (addr, data) = on_shard(4 * 1024 * 1024, 1);
    let cap = mint(&dir, "put");
    let mut c = client(&node);
    let e = node_error("PUT onto a full disk", c.put(&data, Some(&cap)));
    assert_eq!(
        (e.status, e.label.as_str(), e.retryable),
        (507, "store_full", false),
        "{e}"
    );
    assert!(
        e.message.contains("disk"),
        "the message says the disk is full: {e}"
    );
    common::eventually("store_disk_full_total is 1", || {
        metric_sum(node.admin, "store_disk_full_total{") == 1.0
    });
    let tmp = std::fs::read_dir(dir.join("objects/tmp")).unwrap().count();
    assert_eq!(tmp, 0, "nothing left in tmp/");
    assert!(!object_file(&dir, &addr).exists());
    assert_eq!(metric_sum(node.admin, "store_objects{"), 0.0);
    assert_eq!(metric_sum(node.admin, "store_bytes{"), 0.0);

    // The reservation was released and the disk has room again: a small object is stored.
    let (small, small_data) = on_shard(100 * 1024, 1);
    assert!(c.put(&small_data, Some(&cap)).unwrap().stored);
    assert!(c.get(&small).unwrap() == small_data);
    stop(node);
    drop(mount);
    let _ = std::fs::remove_dir_all(dir);
}
