//! `sim`: the simulator's entry point (`scripts/sim.sh` runs it). Prints one JSON object.

use std::process::ExitCode;

use ronode_shards::sim::{GossipScenario, Profile};

const USAGE: &str = "usage: sim --scenario gossip|overlay [--nodes N] [--shards M] \
[--profile intra|inter] [--seed S] [--messages K] [--degree D] [--kill-pct P] [--partition-pct P]
  gossip:  N nodes (default 1000) each dialling D (8) others, 4 topics each subscribed by half of
           the nodes, K (200) messages one every 20 ms, P % (10) cut off from 1.5 s to 3 s,
           P % (10) killed at 3.5 s. Prints gossip_delivery, gossip_p50_ms, gossip_p99_ms,
           trace_hash, wall_s, rss_mb, events_per_s and the network's counters;
           fetch_success is null until the shard core lands (issue 16).
  overlay: needs the shard core (issue 16).";

fn main() -> ExitCode {
    match run(std::env::args().skip(1).collect()) {
        Ok(json) => {
            println!("{json}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("sim: {e}");
            ExitCode::from(2)
        }
    }
}

fn run(args: Vec<String>) -> Result<String, String> {
    let mut scenario = "gossip".to_owned();
    let (mut nodes, mut shards, mut seed) = (1_000u32, 1u16, 1u64);
    let mut profile = Profile::INTRA;
    let (mut messages, mut degree, mut kill, mut partition) = (None, None, None, None);
    let mut it = args.into_iter();
    while let Some(flag) = it.next() {
        if flag == "-h" || flag == "--help" {
            return Err(USAGE.to_owned());
        }
        let value = it
            .next()
            .ok_or_else(|| format!("{flag} needs a value\n{USAGE}"))?;
        let num = |v: &str| {
            v.parse::<u64>()
                .map_err(|_| format!("{flag}: not a number: {v}"))
        };
        match flag.as_str() {
            "--scenario" => scenario = value,
            "--nodes" => nodes = num(&value)?.clamp(2, u64::from(u32::MAX)) as u32,
            "--shards" => shards = num(&value)?.clamp(1, 256) as u16,
            "--profile" => {
                profile = Profile::by_name(&value)
                    .ok_or_else(|| format!("--profile: intra or inter, not {value}"))?
            }
            "--seed" => seed = num(&value)?,
            "--messages" => messages = Some(num(&value)? as usize),
            "--degree" => degree = Some(num(&value)? as usize),
            "--kill-pct" => kill = Some(num(&value)?.min(100) as u32 * 10),
            "--partition-pct" => partition = Some(num(&value)?.min(100) as u32 * 10),
            _ => return Err(format!("unknown flag {flag}\n{USAGE}")),
        }
    }
    match scenario.as_str() {
        "gossip" => {
            let mut s = GossipScenario::new(seed, nodes, shards, profile);
            s.messages = messages.unwrap_or(s.messages);
            s.degree = degree.unwrap_or(s.degree);
            s.kill_permille = kill.unwrap_or(s.kill_permille);
            s.partition_permille = partition.unwrap_or(s.partition_permille);
            s.run().map(|o| o.json).map_err(|e| e.to_string())
        }
        "overlay" => Err("--scenario overlay needs the shard core (issue 16)".to_owned()),
        other => Err(format!("unknown scenario {other}\n{USAGE}")),
    }
}
