#!/usr/bin/env bash
# The test command of the README: every crate's unit, vector, property, fuzz-smoke and
# system tests. Extra arguments go to `cargo test` (e.g. `scripts/test.sh -p ronode-proto`).
set -euo pipefail
cd "$(dirname "$0")/.."
exec cargo test --workspace "$@"
