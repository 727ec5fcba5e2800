#!/usr/bin/env bash
# The test command of the README: every crate's unit, vector, property, fuzz-smoke and
# system tests. Extra arguments go to `cargo test` (e.g. `scripts/test.sh -p ronode-proto`).
# Then the simulator's tests (feature `sim`, off by default: a few seconds) when no arguments
# narrowed the run.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo test --workspace "$@"
if [[ $# -eq 0 ]]; then
    cargo test -p ronode-shards --features sim --lib --test sim_network --test gossip_sim
fi
