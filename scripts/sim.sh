#!/usr/bin/env bash
# The simulator's entry point: many nodes on one thread in virtual time over a seeded network
# (shards/src/sim). Prints one JSON object on stdout.
#
#   scripts/sim.sh --scenario gossip --nodes N --shards M --profile intra|inter --seed S
#                  [--messages K] [--degree D] [--kill-pct P] [--partition-pct P]
#
# gossip: fields gossip_delivery, gossip_p50_ms, gossip_p99_ms (virtual ms), trace_hash (equal
# across runs with the same arguments), wall_s, rss_mb, events_per_s, and the network's counters.
# fetch_success is null until the shard core lands (issue 16); --scenario overlay needs it too.
set -euo pipefail
cd "$(dirname "$0")/.."
if [[ "${1:-}" == "-h" || "${1:-}" == "--help" ]]; then
    sed -n '2,10p' "$0"
    exit 0
fi
cargo build --release -q -p ronode-shards --features sim --bin sim
exec target/release/sim "$@"
