//! `fetch-latency`: fetch on miss through one hop. PUTs `--count` distinct 1 KiB objects on
//! `--origin`, then GETs each once from `--via` (a node that has `--origin` as its peer and holds
//! none of them: every GET is a miss fetched from the origin) and once more (now held by `--via`),
//! one request at a time on one session; prints p50/p99 of both passes as JSON.

use clap::Parser;
use hdrhistogram::Histogram;
use ronode_client::{Client, ClientOptions};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

#[derive(Parser)]
struct Args {
    /// The node the objects are PUT on.
    #[arg(long)]
    origin: SocketAddr,
    /// The node they are fetched through (it has --origin as a peer).
    #[arg(long)]
    via: SocketAddr,
    /// A `scope=put` capability of --origin, hex.
    #[arg(long)]
    cap: String,
    #[arg(long, default_value_t = 1000)]
    count: u32,
    /// Distinguishes the objects of one run from another's (so that every GET is a miss).
    #[arg(long, default_value_t = 1)]
    salt: u64,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let cap = hex::decode(&args.cap)?;
    let opts = ClientOptions {
        timeout: Duration::from_secs(30),
        ..Default::default()
    };
    let mut origin = Client::connect(args.origin, &opts)?;
    let mut addrs = Vec::with_capacity(args.count as usize);
    for i in 0..args.count {
        let body: Vec<u8> = (0..1024u32)
            .map(|j| (u64::from(i) * 131 + u64::from(j) * 7 + args.salt * 977) as u8)
            .chain(format!("{}:{i}", args.salt).into_bytes())
            .collect();
        addrs.push((origin.put(&body, Some(&cap))?.addr, body));
    }
    let mut via = Client::connect(args.via, &opts)?;
    let mut report = serde_json::Map::new();
    for pass in ["miss", "held"] {
        let mut hist = Histogram::<u64>::new(3)?;
        for (addr, body) in &addrs {
            let t = Instant::now();
            let got = via.get(addr)?;
            hist.record(t.elapsed().as_micros() as u64)?;
            anyhow::ensure!(&got == body, "wrong bytes for {addr}");
        }
        let ms = |q: f64| hist.value_at_quantile(q) as f64 / 1000.0;
        report.insert(
            pass.into(),
            serde_json::json!({"count": hist.len(), "p50_ms": ms(0.5), "p99_ms": ms(0.99), "max_ms": hist.max() as f64 / 1000.0}),
        );
    }
    println!("{}", serde_json::Value::Object(report));
    Ok(())
}
