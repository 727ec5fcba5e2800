//! The admin plane over real HTTP on a fresh loopback port, with a hand-written GET over a std
//! `TcpStream` (no HTTP client crate).

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::time::Duration;

use ronode_admin::{AdminHandle, AdminServer, Readiness, VersionInfo};
use ronode_proto::reason::Reason;
use ronode_shards::stats::{
    App, Dir, FrameKind, Publish, Queue, ShardStats, StatsBoard, TlsFailure,
};
use ronode_shards::ShardId;

#[derive(Debug)]
struct Response {
    status: u16,
    headers: Vec<(String, String)>,
    body: String,
}

impl Response {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

fn get(addr: SocketAddr, path: &str) -> Response {
    let mut stream = TcpStream::connect(addr).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).expect("read response");
    let raw = String::from_utf8(raw).expect("utf-8 response");
    let (head, body) = raw.split_once("\r\n\r\n").expect("header end");
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap();
    let status = status_line
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("status line {status_line:?}"));
    let headers: Vec<(String, String)> = lines
        .map(|l| {
            let (k, v) = l.split_once(':').expect("header line");
            (k.trim().to_owned(), v.trim().to_owned())
        })
        .collect();
    let mut response = Response {
        status,
        headers,
        body: body.to_owned(),
    };
    if response.header("transfer-encoding") == Some("chunked") {
        response.body = dechunk(body);
    } else if let Some(len) = response.header("content-length") {
        assert_eq!(len.parse::<usize>().unwrap(), response.body.len());
    }
    response
}

fn dechunk(mut body: &str) -> String {
    let mut out = String::new();
    loop {
        let (size, rest) = body.split_once("\r\n").expect("chunk size");
        let size = usize::from_str_radix(size.trim(), 16).expect("hex chunk size");
        if size == 0 {
            return out;
        }
        out.push_str(&rest[..size]);
        body = &rest[size + 2..];
    }
}

fn start(shards: u16) -> (Arc<StatsBoard>, Arc<Readiness>, AdminHandle) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind a fresh port");
    let board = Arc::new(StatsBoard::new(shards));
    let readiness = Arc::new(Readiness::new(&["overlay", "dht"]));
    let version = VersionInfo::new(["tls13", "x25519mlkem768", "oap1", "amnesia"]);
    let handle = AdminServer::start(listener, board.clone(), readiness.clone(), version)
        .expect("admin starts");
    (board, readiness, handle)
}

#[test]
fn metrics_every_family_at_zero_then_published_values() {
    let (board, _readiness, admin) = start(2);
    let addr = admin.local_addr();

    let r = get(addr, "/metrics");
    assert_eq!(r.status, 200);
    assert_eq!(
        r.header("content-type"),
        Some("application/openmetrics-text; version=1.0.0; charset=utf-8")
    );
    let text = &r.body;
    assert!(text.ends_with("# EOF\n"), "{text}");
    for (family, kind) in [
        ("request_latency_seconds", "histogram"),
        ("rejected", "counter"),
        ("tls_handshake_failures", "counter"),
        ("overlay_sessions_active", "gauge"),
        ("overlay_frames", "counter"),
        ("overlay_bytes", "counter"),
        ("bus_lagged", "counter"),
        ("queue_depth", "gauge"),
        ("queue_dropped", "counter"),
        ("conns_refused", "counter"),
        ("drain_cut", "counter"),
        ("sessions_shed", "counter"),
        ("readyz_state", "gauge"),
    ] {
        let line = format!("# TYPE {family} {kind}\n");
        assert!(text.contains(&line), "missing {line:?}");
    }
    let mut expected = vec!["readyz_state 0".to_owned()];
    for shard in ["0", "1"] {
        let s = format!("shard=\"{shard}\"");
        for r in Reason::ALL {
            expected.push(format!("rejected_total{{reason=\"{r}\",{s}}} 0"));
        }
        for t in TlsFailure::ALL {
            let t = t.label();
            expected.push(format!(
                "tls_handshake_failures_total{{reason=\"{t}\",{s}}} 0"
            ));
        }
        for d in Dir::ALL {
            let d = d.label();
            for k in FrameKind::ALL {
                let k = k.label();
                expected.push(format!(
                    "overlay_frames_total{{dir=\"{d}\",kind=\"{k}\",{s}}} 0"
                ));
            }
            expected.push(format!("overlay_bytes_total{{dir=\"{d}\",{s}}} 0"));
        }
        for q in Queue::ALL {
            let q = q.label();
            expected.push(format!("queue_depth{{queue=\"{q}\",{s}}} 0"));
            expected.push(format!("queue_dropped_total{{queue=\"{q}\",{s}}} 0"));
        }
        expected.push(format!("overlay_sessions_active{{{s}}} 0"));
        expected.push(format!("bus_lagged_total{{{s}}} 0"));
        expected.push(format!("conns_refused_total{{{s}}} 0"));
        expected.push(format!("drain_cut_total{{{s}}} 0"));
        expected.push(format!("sessions_shed_total{{{s}}} 0"));
        for a in App::ALL {
            let a = format!("app=\"{}\"", a.label());
            expected.push(format!("request_latency_seconds_count{{{a},{s}}} 0"));
            expected.push(format!("request_latency_seconds_sum{{{a},{s}}} 0.0"));
            expected.push(format!(
                "request_latency_seconds_bucket{{le=\"+Inf\",{a},{s}}} 0"
            ));
        }
    }
    let lines: std::collections::HashSet<&str> = text.lines().collect();
    for line in &expected {
        assert!(lines.contains(line.as_str()), "missing {line:?} in\n{text}");
    }

    // A shard counts and publishes; the next scrape shows it.
    let mut stats = ShardStats::new(ShardId(1));
    stats.rejected(Reason::Oversize);
    stats.tls_handshake_failed(TlsFailure::Timeout);
    stats.session_opened();
    stats.bus_lagged();
    stats.conn_refused();
    stats.request_latency_us(App::Objects, 2_000);
    assert_eq!(board.publish(&mut stats, 0), Publish::Published);
    let text = get(addr, "/metrics").body;
    for line in [
        "rejected_total{reason=\"oversize\",shard=\"1\"} 1",
        "rejected_total{reason=\"oversize\",shard=\"0\"} 0",
        "tls_handshake_failures_total{reason=\"timeout\",shard=\"1\"} 1",
        "overlay_sessions_active{shard=\"1\"} 1",
        "bus_lagged_total{shard=\"1\"} 1",
        "conns_refused_total{shard=\"1\"} 1",
        "request_latency_seconds_count{app=\"objects\",shard=\"1\"} 1",
        "request_latency_seconds_bucket{le=\"0.0025\",app=\"objects\",shard=\"1\"} 1",
        "request_latency_seconds_bucket{le=\"0.001\",app=\"objects\",shard=\"1\"} 0",
    ] {
        assert!(
            text.lines().any(|l| l == line),
            "missing {line:?} in\n{text}"
        );
    }

    admin.shutdown().expect("clean shutdown");
    assert!(
        TcpStream::connect_timeout(&addr, Duration::from_secs(1)).is_err(),
        "the port is closed after shutdown"
    );
}

#[test]
fn readyz_follows_planes_and_draining() {
    let (_board, readiness, admin) = start(1);
    let addr = admin.local_addr();

    let r = get(addr, "/readyz");
    assert_eq!(r.status, 503);
    assert_eq!(r.header("content-type"), Some("application/json"));
    let body: serde_json::Value = serde_json::from_str(&r.body).unwrap();
    assert_eq!(body["ready"], false);
    assert_eq!(body["planes"][0]["plane"], "overlay");
    assert_eq!(
        body["planes"][0]["missing"],
        serde_json::json!(["starting"])
    );
    assert!(get(addr, "/metrics").body.contains("\nreadyz_state 0\n"));

    readiness.set_ready("overlay");
    assert_eq!(get(addr, "/readyz").status, 503, "dht is not ready yet");
    readiness.set_ready("dht");
    let r = get(addr, "/readyz");
    assert_eq!(r.status, 200, "{}", r.body);
    let body: serde_json::Value = serde_json::from_str(&r.body).unwrap();
    assert_eq!(body["ready"], true);
    assert!(get(addr, "/metrics").body.contains("\nreadyz_state 1\n"));

    readiness.set_draining();
    let r = get(addr, "/readyz");
    assert_eq!(r.status, 503);
    let body: serde_json::Value = serde_json::from_str(&r.body).unwrap();
    assert_eq!(body["ready"], false);
    assert_eq!(body["missing"], serde_json::json!(["draining"]));
    assert!(get(addr, "/metrics").body.contains("\nreadyz_state 0\n"));
    admin.shutdown().unwrap();
}

#[test]
fn healthz_version_and_unknown_paths() {
    let (_board, _readiness, admin) = start(1);
    let addr = admin.local_addr();

    let r = get(addr, "/healthz");
    assert_eq!((r.status, r.body.as_str()), (200, "ok"));

    let r = get(addr, "/version");
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-type"), Some("application/json"));
    let body: serde_json::Value = serde_json::from_str(&r.body).unwrap();
    assert_eq!(body["version"], env!("CARGO_PKG_VERSION"));
    let git = body["git"].as_str().expect("git is a string");
    assert!(
        git == "unknown" || (git.len() >= 7 && git.chars().all(|c| c.is_ascii_hexdigit())),
        "{git}"
    );
    assert_eq!(
        body["features"],
        serde_json::json!(["tls13", "x25519mlkem768", "oap1", "amnesia"])
    );

    assert_eq!(get(addr, "/nope").status, 404);
    assert_eq!(get(addr, "/metrics/extra").status, 404);
    assert_eq!(get(addr, "/").status, 404);
    drop(admin); // Drop shuts down too.
}

#[test]
fn a_stalled_client_neither_blocks_others_nor_shutdown() {
    let (_board, _readiness, admin) = start(1);
    let addr = admin.local_addr();
    // Half a request, never finished, and a connection that sends nothing.
    let mut stalled = TcpStream::connect(addr).unwrap();
    stalled
        .write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\n")
        .unwrap();
    let _silent = TcpStream::connect(addr).unwrap();
    assert_eq!(get(addr, "/healthz").status, 200);
    assert_eq!(get(addr, "/metrics").status, 200);

    let t0 = std::time::Instant::now();
    admin.shutdown().unwrap();
    let took = t0.elapsed();
    assert!(
        took < ronode_admin::server::SHUTDOWN_GRACE + Duration::from_secs(1),
        "shutdown took {took:?}"
    );
}
