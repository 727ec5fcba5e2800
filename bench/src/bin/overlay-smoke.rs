//! `overlay-smoke`: a load generator for ronode (OAP/1 GETs over TLS) and, with `--http`, for any
//! HTTPS server, with the same TLS stack and pacing; and the handshake bench (`--handshakes`).
//! Progress goes to stderr, one JSON report to stdout. See `docs/PERF.md`.

use std::net::{SocketAddr, ToSocketAddrs as _};
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{bail, Context as _};
use clap::Parser;
use ronode_bench::smoke::handshake::{run_handshakes, HandshakeOpts};
use ronode_bench::smoke::load::{run_load, LoadOpts};
use ronode_bench::smoke::session::{Target, Wire};
use ronode_bench::smoke::tls::{http_config, oap_config};
use ronode_bench::smoke::tracker::Expect;
use ronode_bench::smoke::{class_object, Class};
use ronode_client::{Client, ClientOptions, ObjectAddr, PqMode};
use rustls::pki_types::ServerName;

#[derive(Debug, Parser)]
#[command(name = "overlay-smoke", version, about)]
struct Args {
    /// ronode node to load (OAP/1 over TLS), IP:port.
    #[arg(long, default_value = "127.0.0.1:9500")]
    target: String,
    /// Load an HTTPS server instead: GET this URL over HTTP/1.1 keep-alive (pipelined by --depth).
    #[arg(long, value_name = "URL")]
    http: Option<String>,
    /// Object class: S (1 KiB), M (64 KiB), L (1 MiB).
    #[arg(long, default_value = "S")]
    class: Class,
    /// Object to GET (default: the class's own object, as --setup stores it).
    #[arg(long, value_name = "b3:HEX")]
    addr: Option<String>,
    /// TLS sessions.
    #[arg(long, default_value_t = 16)]
    conns: usize,
    /// Requests in flight per session (pipelining depth; ronode allows 64).
    #[arg(long, default_value_t = 8)]
    depth: usize,
    /// Requests per second over all sessions, open loop (latency from each request's scheduled
    /// send time); 0: flat out (closed loop at --depth).
    #[arg(long, default_value_t = 0.0)]
    rate: f64,
    /// Seconds of warm-up (not measured).
    #[arg(long, default_value_t = 2.0)]
    warmup: f64,
    /// Seconds measured.
    #[arg(long, default_value_t = 10.0)]
    duration: f64,
    /// Pin the client's one thread to this CPU.
    #[arg(long)]
    cpu: Option<usize>,
    /// Server process(es) whose CPU (delta over the window) and RSS to report; repeat or
    /// comma-separate (nginx: its worker).
    #[arg(long, value_delimiter = ',')]
    server_pid: Vec<String>,
    /// Key exchange offered: off (X25519) or hybrid (X25519MLKEM768, X25519).
    #[arg(long, default_value = "hybrid")]
    pq_mode: PqMode,
    /// Check the digest of every answer (default: one in --verify-every).
    #[arg(long)]
    verify: bool,
    /// Check the digest of one answer in this many (0: none; lengths are always checked).
    #[arg(long, default_value_t = 64)]
    verify_every: u64,
    /// PUT the class's object on --target with --cap and print its address, then exit.
    #[arg(long)]
    setup: bool,
    /// Capability (hex, from `ronode cap mint --scope put`) for --setup.
    #[arg(long, value_name = "HEX")]
    cap: Option<String>,
    /// Write every class's object into DIR (obj-1k, obj-64k, obj-1m) for an HTTP server, then exit.
    #[arg(long, value_name = "DIR")]
    write_objects: Option<PathBuf>,
    /// Handshake bench: connect, TLS, HELLO, close, back to back on --conns sessions, for
    /// pq_mode off then hybrid; prints both and the overhead ratios.
    #[arg(long)]
    handshakes: bool,
    /// No progress lines.
    #[arg(long)]
    quiet: bool,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    if let Some(dir) = &args.write_objects {
        std::fs::create_dir_all(dir)?;
        for c in Class::ALL {
            let bytes = class_object(c);
            let path = dir.join(c.file_name());
            std::fs::write(&path, &bytes).with_context(|| format!("writing {}", path.display()))?;
            println!("{} {}", path.display(), ObjectAddr::of(&bytes));
        }
        return Ok(());
    }
    if args.setup {
        return setup(&args);
    }
    if args.conns == 0 || args.depth == 0 {
        bail!("--conns and --depth must be at least 1");
    }
    if args.rate < 0.0 || args.warmup < 0.0 || args.duration <= 0.0 {
        bail!("--rate and --warmup must be >= 0, --duration > 0");
    }
    let warmup = Duration::from_secs_f64(args.warmup);
    let duration = Duration::from_secs_f64(args.duration);
    if args.handshakes {
        let addr = resolve(&args.target)?;
        let target = |mode| -> anyhow::Result<Target> {
            Ok(Target {
                addr,
                server_name: ServerName::from(addr.ip()),
                config: oap_config(mode)?,
                wire: Wire::oap(&ObjectAddr([0; 32])),
            })
        };
        let report = run_handshakes(HandshakeOpts {
            target_label: args.target.clone(),
            off: target(PqMode::Off)?,
            hybrid: target(PqMode::Hybrid)?,
            conns: args.conns,
            warmup,
            duration,
            cpu: args.cpu,
            server_pids: args.server_pid.clone(),
        })?;
        eprintln!(
            "overlay-smoke: hybrid overhead: p95 x{:.3}, rate x{:.3}, server CPU x{}",
            report.overhead_p95,
            report.overhead_rate,
            report
                .overhead_server_cpu
                .map_or("n/a".to_owned(), |r| format!("{r:.3}"))
        );
        println!("{}", serde_json::to_string(&report)?);
        return Ok(());
    }

    let object = class_object(args.class);
    let class_addr = ObjectAddr::of(&object);
    let addr = match &args.addr {
        Some(a) => ObjectAddr::parse(a).map_err(|e| anyhow::anyhow!("--addr {a}: {e}"))?,
        None => class_addr,
    };
    if addr != class_addr {
        bail!("--addr {addr} is not the class {} object ({class_addr}); lengths and digests are checked against it", args.class);
    }
    let (target, label) = match &args.http {
        Some(url) => {
            let (hostport, path) = parse_https(url)?;
            let addr = resolve(&hostport)?;
            let host = hostport
                .rsplit_once(':')
                .map_or(hostport.as_str(), |(h, _)| h);
            let server_name = match addr.ip().to_string() == host {
                true => ServerName::from(addr.ip()),
                false => ServerName::try_from(host.to_owned())?,
            };
            let target = Target {
                addr,
                server_name,
                config: http_config(args.pq_mode)?,
                wire: Wire::http(&hostport, &path),
            };
            (target, url.clone())
        }
        None => {
            let sock = resolve(&args.target)?;
            let target = Target {
                addr: sock,
                server_name: ServerName::from(sock.ip()),
                config: oap_config(args.pq_mode)?,
                wire: Wire::oap(&addr),
            };
            (target, args.target.clone())
        }
    };
    let report = run_load(LoadOpts {
        class: args.class,
        target_label: label,
        target,
        expect: Expect {
            len: object.len() as u64,
            digest: *addr.as_bytes(),
            verify_every: if args.verify { 1 } else { args.verify_every },
        },
        conns: args.conns,
        depth: args.depth,
        rate: args.rate,
        warmup,
        duration,
        cpu: args.cpu,
        server_pids: args.server_pid.clone(),
        quiet: args.quiet,
    })?;
    println!("{}", serde_json::to_string(&report)?);
    Ok(())
}

/// PUTs the class's object with the blocking SDK client; prints its address last.
fn setup(args: &Args) -> anyhow::Result<()> {
    let cap = args
        .cap
        .as_deref()
        .map(|h| hex::decode(h.trim()).context("--cap is not hex"))
        .transpose()?;
    let addr = resolve(&args.target)?;
    let opts = ClientOptions {
        pq_mode: args.pq_mode,
        ..ClientOptions::default()
    };
    let mut client =
        Client::connect(addr, &opts).with_context(|| format!("connecting to {addr}"))?;
    let object = class_object(args.class);
    let resp = client
        .put(&object, cap.as_deref())
        .with_context(|| format!("PUT of the class {} object", args.class))?;
    eprintln!(
        "overlay-smoke: class {} object, {} bytes, stored: {}",
        args.class, resp.size, resp.stored
    );
    println!("{}", resp.addr);
    Ok(())
}

fn resolve(hostport: &str) -> anyhow::Result<SocketAddr> {
    hostport
        .to_socket_addrs()
        .with_context(|| format!("resolving {hostport}"))?
        .next()
        .with_context(|| format!("{hostport} resolves to nothing"))
}

/// `https://host[:port]/path` -> (`host:port`, `/path`).
fn parse_https(url: &str) -> anyhow::Result<(String, String)> {
    let rest = url
        .strip_prefix("https://")
        .with_context(|| format!("--http {url}: only https:// URLs"))?;
    let (hostport, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    let hostport = match hostport.rsplit_once(':') {
        Some((_, port)) if port.parse::<u16>().is_ok() => hostport.to_owned(),
        _ => format!("{hostport}:443"),
    };
    Ok((hostport, path.to_owned()))
}
