//! `idle-sessions`: opens `--count` TLS sessions to a node (handshake and HELLO done; with
//! `--get`, each GETs that object once first, so its buffers have been used), keeps them open
//! and idle, prints `open N` on stdout, and holds them until stdin closes or gives a line.
//! `scripts/session-memory.sh` reads the node's RSS around it.
//!
//! Sessions are opened by `--threads` threads, each holding one fd. Towards one node address a
//! client address has at most the ephemeral port range (about 28,000 on Linux) of them: for more,
//! name several `--target`s, the same node port on other loopback addresses (127.0.0.2, ...,
//! the node listening on 0.0.0.0), and sessions are spread over them in turn. One process holds
//! at most `ulimit -n` of them: for more, run several (`scripts/session-memory.sh` does).

use clap::Parser;
use ronode_client::{Client, ClientOptions};
use ronode_proto::ObjectAddr;
use std::io::BufRead;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

#[derive(Parser)]
struct Args {
    /// The node's listen address; repeated, sessions go to each in turn.
    #[arg(long, required = true)]
    target: Vec<SocketAddr>,
    #[arg(long, default_value_t = 1000)]
    count: usize,
    #[arg(long, default_value_t = 4)]
    threads: usize,
    /// An object address (hex) each session GETs once before it idles.
    #[arg(long)]
    get: Option<String>,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let get: Option<ObjectAddr> = args.get.as_deref().map(str::parse).transpose()?;
    let threads = args.threads.max(1);
    let started = Instant::now();
    let workers: Vec<_> = (0..threads)
        .map(|t| {
            let n = args.count / threads + usize::from(t < args.count % threads);
            // Thread t opens sessions t, t + threads, ...: target (t + i * threads) mod len.
            let targets: Vec<SocketAddr> = (0..n)
                .map(|i| args.target[(t + i * threads) % args.target.len()])
                .collect();
            std::thread::spawn(move || open(&targets, get))
        })
        .collect();
    let mut held = Vec::with_capacity(args.count);
    for w in workers {
        held.extend(w.join().expect("a worker panicked")?);
    }
    println!("open {}", held.len());
    eprintln!(
        "{} sessions open in {:.1} s",
        held.len(),
        started.elapsed().as_secs_f64()
    );
    // Hold them until told (a line, or stdin closing).
    let _ = std::io::stdin().lock().lines().next();
    drop(held);
    Ok(())
}

/// One session to each of `targets`.
fn open(targets: &[SocketAddr], get: Option<ObjectAddr>) -> anyhow::Result<Vec<Client>> {
    let opts = ClientOptions {
        timeout: Duration::from_secs(60),
        ..Default::default()
    };
    targets
        .iter()
        .map(|&target| {
            let mut c = Client::connect(target, &opts)?;
            if let Some(addr) = &get {
                c.get(addr)?;
            }
            Ok(c)
        })
        .collect()
}
