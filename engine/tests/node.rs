//! `ronode run` as a process on real io_uring over loopback: start, HELLO and PING over TLS 1.3
//! with the hybrid group, readiness, the data directory and port guards, amnesia, and SIGTERM
//! draining to exit 0. Every node gets fresh ports (port 0) and its own directory.

use ronode_client::{Client, ClientOptions};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

const WAIT: Duration = Duration::from_secs(30);

struct Node {
    child: Child,
    listen: SocketAddr,
    admin: SocketAddr,
    node_id: String,
}

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("ronode-node-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

fn command(args: &[&str]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_ronode"));
    cmd.arg("run")
        .args(["--shards", "2", "--pin", "off"])
        .args(args);
    cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
    cmd
}

/// Starts a node and waits (bounded) for the lines that say where it listens.
fn start(args: &[&str]) -> Node {
    let mut child = command(args).spawn().expect("spawn ronode run");
    let stdout = child.stdout.take().expect("stdout");
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let (mut listen, mut admin, mut node_id) = (None, None, None);
    let deadline = Instant::now() + WAIT;
    while admin.is_none() || listen.is_none() || node_id.is_none() {
        let left = deadline.saturating_duration_since(Instant::now());
        let line = rx.recv_timeout(left).unwrap_or_else(|_| {
            let _ = child.kill();
            let mut err = String::new();
            let _ = child.stderr.take().unwrap().read_to_string(&mut err);
            panic!("node did not say where it listens within {WAIT:?}; stderr: {err}")
        });
        if let Some(rest) = line.strip_prefix("listening on ") {
            listen = Some(rest.split_whitespace().next().unwrap().parse().unwrap());
        } else if let Some(rest) = line.strip_prefix("admin on http://") {
            admin = Some(rest.trim().parse().unwrap());
        } else if let Some(i) = line.find("node_id ") {
            node_id = Some(line[i + 8..].trim().to_owned());
        }
    }
    Node {
        child,
        listen: listen.unwrap(),
        admin: admin.unwrap(),
        node_id: node_id.unwrap(),
    }
}

impl Node {
    fn sigterm_and_wait(mut self) -> (Option<i32>, String) {
        let ok = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(ok.success());
        let deadline = Instant::now() + WAIT;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                let mut err = String::new();
                self.child
                    .stderr
                    .take()
                    .unwrap()
                    .read_to_string(&mut err)
                    .unwrap();
                return (status.code(), err);
            }
            assert!(
                Instant::now() < deadline,
                "node did not exit within {WAIT:?} of SIGTERM"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn http_get(addr: SocketAddr, path: &str) -> (u16, String) {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(WAIT)).unwrap();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut text = String::new();
    s.read_to_string(&mut text).unwrap();
    let status = text[9..12].parse().unwrap();
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    (status, body)
}

fn run_to_exit(args: &[&str]) -> (Option<i32>, String) {
    let out = command(args).output().unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn serves_hello_and_ping_over_hybrid_tls_then_drains_on_sigterm() {
    let dir = scratch("serve");
    let node = start(&[
        "--listen",
        "127.0.0.1:0",
        "--admin",
        "127.0.0.1:0",
        "--data-dir",
        dir.to_str().unwrap(),
    ]);
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
    let node = start(&[
        "--listen",
        "127.0.0.1:0",
        "--admin",
        "127.0.0.1:0",
        "--data-dir",
        dir.to_str().unwrap(),
    ]);

    let (code, stderr) = run_to_exit(&[
        "--listen",
        "127.0.0.1:0",
        "--admin",
        "127.0.0.1:0",
        "--data-dir",
        dir.to_str().unwrap(),
    ]);
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
    let node = start(&[
        "--amnesia",
        "--listen",
        "127.0.0.1:0",
        "--admin",
        "127.0.0.1:0",
        "--data-dir",
        dir.to_str().unwrap(),
    ]);
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
