//! `sdk-parity`: the Rust side of `scripts/sdk-parity.sh`. GETs of the given objects through the
//! Rust SDK (`ronode_client::AsyncClient`) at a fixed rate: `--conns` sessions, each sending a
//! round of `--depth` pipelined GETs (`get_many`) every `conns * depth / rate` seconds. A
//! round's latency counts from when it was due, not from when it went out, so a client that
//! falls behind its schedule shows it (no coordinated omission). Prints one JSON line with
//! p50/p95/p99 in milliseconds. The TypeScript side (`sdk/ts/bench/parity.js`) does the same.

use anyhow::Context;
use clap::Parser;
use hdrhistogram::Histogram;
use ronode_client::{AsyncClient, ClientOptions, NodeId, ObjectAddr};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

#[derive(Parser, Clone)]
struct Args {
    /// The node, IP:port.
    #[arg(long)]
    addr: SocketAddr,
    /// Its NodeId, pinned.
    #[arg(long)]
    node_id: Option<String>,
    /// Comma-separated `b3:` addresses of the objects, GET in turn.
    #[arg(long)]
    objects: String,
    #[arg(long, default_value_t = 1)]
    conns: usize,
    #[arg(long, default_value_t = 1)]
    depth: usize,
    /// GETs per second, all sessions together.
    #[arg(long)]
    rate: f64,
    /// Timed GETs, all sessions together.
    #[arg(long)]
    count: usize,
    /// Untimed rounds per session first (TLS, allocator and caches warm).
    #[arg(long, default_value_t = 50)]
    warmup: usize,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let objects: Vec<ObjectAddr> = args
        .objects
        .split(',')
        .map(|s| s.parse().map_err(|e| anyhow::anyhow!("{s}: {e:?}")))
        .collect::<anyhow::Result<_>>()?;
    let pin: Option<NodeId> = match &args.node_id {
        Some(s) => Some(s.parse().map_err(|e| anyhow::anyhow!("--node-id: {e:?}"))?),
        None => None,
    };
    let rounds = args.count.div_ceil(args.conns * args.depth);
    let period = Duration::from_secs_f64((args.conns * args.depth) as f64 / args.rate);
    // One thread and one current-thread runtime per session: sessions do not share a core's queue.
    let workers: Vec<_> = (0..args.conns)
        .map(|w| {
            let (args, objects) = (args.clone(), objects.clone());
            std::thread::spawn(move || -> anyhow::Result<Vec<u64>> {
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()?;
                rt.block_on(session(w, &args, pin, &objects, rounds, period))
            })
        })
        .collect();
    let mut hist = Histogram::<u64>::new(3)?;
    for w in workers {
        for us in w.join().expect("worker panicked")? {
            hist.record(us)?;
        }
    }
    let ms = |q: f64| hist.value_at_quantile(q) as f64 / 1000.0;
    println!(
        "{}",
        serde_json::json!({
            "sdk": "rust", "count": hist.len(), "conns": args.conns, "depth": args.depth,
            "p50_ms": ms(0.50), "p95_ms": ms(0.95), "p99_ms": ms(0.99),
        })
    );
    Ok(())
}

/// One session's rounds; the latency of each GET of a round (the round's, in microseconds).
async fn session(
    w: usize,
    args: &Args,
    pin: Option<NodeId>,
    objects: &[ObjectAddr],
    rounds: usize,
    period: Duration,
) -> anyhow::Result<Vec<u64>> {
    let opts = ClientOptions {
        pin,
        timeout: Duration::from_secs(30),
        ..ClientOptions::default()
    };
    let mut client = AsyncClient::connect(args.addr, &opts)
        .await
        .context("connect")?;
    let mut next = w;
    let mut batch = || -> Vec<ObjectAddr> {
        (0..args.depth)
            .map(|_| {
                next += 1;
                objects[next % objects.len()]
            })
            .collect()
    };
    for _ in 0..args.warmup {
        round(&mut client, &batch()).await?;
    }
    // Sessions start their schedules spread over one period, not all at once.
    let start = Instant::now() + period.mul_f64(w as f64 / args.conns as f64);
    let mut out = Vec::with_capacity(rounds * args.depth);
    for i in 0..rounds {
        let due = start + period.mul_f64(i as f64);
        sleep_until(due).await;
        round(&mut client, &batch()).await?;
        let us = due.elapsed().as_micros() as u64;
        out.extend(std::iter::repeat_n(us, args.depth));
    }
    client.close().await?;
    Ok(out)
}

/// One round: the GETs of `batch` pipelined, every answer checked (verified bytes, no error).
async fn round(client: &mut AsyncClient, batch: &[ObjectAddr]) -> anyhow::Result<()> {
    for answer in client.get_many(batch).await? {
        answer?;
    }
    Ok(())
}

/// Wakes at `due` to the microsecond: tokio's timer for all but the last 2 ms of the wait (it
/// rounds to milliseconds, and may wake up to one late), then yields until the instant. The
/// TypeScript side waits the same way, so neither side's latency holds a timer's rounding.
async fn sleep_until(due: Instant) {
    let margin = Duration::from_millis(2);
    if let Some(left) = due.checked_duration_since(Instant::now()) {
        if left > margin {
            tokio::time::sleep(left - margin).await;
        }
    }
    while Instant::now() < due {
        tokio::task::yield_now().await;
    }
}
