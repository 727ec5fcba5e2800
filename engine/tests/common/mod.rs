//! Shared harness for the system tests: start `ronode run` on fresh ports, wait (bounded) for
//! the lines that say where it listens, talk HTTP to its admin plane, stop it with SIGTERM.
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

pub const WAIT: Duration = Duration::from_secs(30);

pub struct Node {
    pub child: Child,
    pub listen: SocketAddr,
    pub admin: SocketAddr,
    pub node_id: String,
}

pub fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("ronode-node-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

pub fn command(args: &[&str]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_ronode"));
    cmd.arg("run")
        .args(["--shards", "2", "--pin", "off"])
        .args(args);
    cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
    cmd
}

/// Starts a node and waits (bounded) for the lines that say where it listens.
/// `ronode run` on fresh loopback ports with `dir` as its data directory, plus `extra` flags.
pub fn local_command(dir: &std::path::Path, extra: &[&str]) -> Command {
    let mut args = vec![
        "--listen",
        "127.0.0.1:0",
        "--admin",
        "127.0.0.1:0",
        "--data-dir",
    ];
    args.push(dir.to_str().expect("temp paths are UTF-8"));
    args.extend_from_slice(extra);
    command(&args)
}

/// Starts a node as [`local_command`] makes it.
pub fn start_local(dir: &std::path::Path, extra: &[&str]) -> Node {
    start_with(local_command(dir, extra))
}

pub fn start(args: &[&str]) -> Node {
    start_with(command(args))
}

/// Starts a prepared command (extra environment, say) and waits for its listen lines.
pub fn start_with(mut cmd: Command) -> Node {
    let mut child = cmd.spawn().expect("spawn ronode run");
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
    pub fn sigterm_and_wait(mut self) -> (Option<i32>, String) {
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

pub fn http_get(addr: SocketAddr, path: &str) -> (u16, String) {
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

/// Runs a node as [`local_command`] makes it, expecting it to exit by itself.
pub fn run_local_to_exit(dir: &std::path::Path, extra: &[&str]) -> (Option<i32>, String) {
    let out = local_command(dir, extra).output().unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

pub fn run_to_exit(args: &[&str]) -> (Option<i32>, String) {
    let out = command(args).output().unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// The value of one metric sample (`name{labels}`) in the node's /metrics, or 0 when absent.
pub fn metric(admin: SocketAddr, sample: &str) -> f64 {
    let (_, body) = http_get(admin, "/metrics");
    body.lines()
        .find_map(|l| l.strip_prefix(sample).and_then(|v| v.trim().parse().ok()))
        .unwrap_or(0.0)
}

/// The sum of a labelled sample over every shard, e.g. `rejected_total{reason="bad_len"`.
pub fn metric_sum(admin: SocketAddr, prefix: &str) -> f64 {
    let (_, body) = http_get(admin, "/metrics");
    body.lines()
        .filter(|l| l.starts_with(prefix))
        .filter_map(|l| l.rsplit(' ').next().and_then(|v| v.parse::<f64>().ok()))
        .sum()
}

/// Waits (bounded) until `check` holds; shards publish their counters at least every 100 ms.
pub fn eventually(what: &str, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + WAIT;
    while !check() {
        assert!(Instant::now() < deadline, "not within {WAIT:?}: {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A blocking SDK session to `node` with the harness's bounded wait.
pub fn client(node: &Node) -> ronode_client::Client {
    let opts = ronode_client::ClientOptions {
        timeout: WAIT,
        ..Default::default()
    };
    ronode_client::Client::connect(node.listen, &opts).expect("TLS + HELLO")
}

/// A TLS session that has done no HELLO: raw bytes go straight to the node's frame decoder.
pub fn raw_session(node: &Node) -> rustls::StreamOwned<rustls::ClientConnection, TcpStream> {
    use ronode_client::tls::{client_config, PqMode};
    let config = client_config(PqMode::Hybrid, None, None).unwrap();
    let name = rustls::pki_types::ServerName::IpAddress(node.listen.ip().into());
    let conn = rustls::ClientConnection::new(std::sync::Arc::clone(&config), name).unwrap();
    let tcp = TcpStream::connect(node.listen).unwrap();
    tcp.set_read_timeout(Some(WAIT)).unwrap();
    rustls::StreamOwned::new(conn, tcp)
}

/// A capability of `scope` minted with `ronode cap mint` from `dir`'s root key.
pub fn mint(dir: &std::path::Path, scope: &str) -> Vec<u8> {
    let out = Command::new(env!("CARGO_BIN_EXE_ronode"))
        .args(["cap", "mint", "--scope", scope, "--ttl", "1h", "--data-dir"])
        .arg(dir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    hex::decode(
        String::from_utf8(out.stdout)
            .unwrap()
            .lines()
            .last()
            .unwrap(),
    )
    .unwrap()
}

/// Deterministic bytes (xorshift), different for every seed.
pub fn bytes(n: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

/// A loopback port free now (the node's own probe refuses it clearly should it be taken since).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// `ronode init`: the NodeId of the data directory's identity.
pub fn init(dir: &Path) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_ronode"))
        .arg("init")
        .arg("--data-dir")
        .arg(dir)
        .output()
        .unwrap();
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    let line = text.lines().find(|l| l.starts_with("node_id ")).unwrap();
    line["node_id ".len()..].trim().to_owned()
}

/// A node of the test overlay: its data directory, NodeId and fixed port.
pub struct Member {
    pub dir: PathBuf,
    pub id: String,
    pub port: u16,
}

impl Member {
    pub fn new(name: &str) -> Member {
        let dir = scratch(name);
        let id = init(&dir);
        Member {
            dir,
            id,
            port: free_port(),
        }
    }

    pub fn peer_arg(&self) -> String {
        format!("127.0.0.1:{}#{}", self.port, self.id)
    }

    /// `ronode run` for this member on its fixed port, dialling `peers`.
    pub fn command(&self, peers: &[&Member]) -> Command {
        let listen = format!("127.0.0.1:{}", self.port);
        let list: Vec<String> = peers.iter().map(|p| p.peer_arg()).collect();
        let mut args = vec!["--listen", &listen, "--admin", "127.0.0.1:0", "--data-dir"];
        args.push(self.dir.to_str().unwrap());
        let joined = list.join(",");
        if !list.is_empty() {
            args.extend_from_slice(&["--peers", &joined]);
        }
        command(&args)
    }

    pub fn start(&self, peers: &[&Member]) -> Node {
        start_with(self.command(peers))
    }
}

/// Bytes of `size` whose address shard `shard` of a two-shard node owns (so that a test can
/// put objects on both shards, or on the one it means).
pub fn on_shard(size: usize, shard: u16) -> (ronode_proto::ObjectAddr, Vec<u8>) {
    (1..)
        .map(|seed| bytes(size, seed * 7 + u64::from(shard)))
        .map(|data| (ronode_proto::ObjectAddr::of(&data), data))
        .find(|(addr, _)| ronode_shards::shard_of(addr.as_bytes(), 2).0 == shard)
        .expect("half of all addresses")
}

/// Where a disk node under `dir` keeps `addr`'s file.
pub fn object_file(dir: &Path, addr: &ronode_proto::ObjectAddr) -> PathBuf {
    let hex = hex::encode(addr.as_bytes());
    dir.join("objects").join(&hex[..2]).join(hex)
}

/// Where a disk node under `dir` moves `addr`'s file when it finds it damaged.
pub fn quarantine_file(dir: &Path, addr: &ronode_proto::ObjectAddr) -> PathBuf {
    dir.join("objects/quarantine")
        .join(hex::encode(addr.as_bytes()))
}
