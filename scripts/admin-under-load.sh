#!/usr/bin/env bash
# The admin plane under load (issue 10 item 5): /metrics and /readyz latency (p50/p99/max over
# N requests each) while a node serves S-class GETs flat out from overlay-smoke.
# Environment: N (500), SHARDS (2), CONNS (16), DEPTH (8). Builds both binaries (release).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
N=${N:-500} SHARDS=${SHARDS:-2} CONNS=${CONNS:-16} DEPTH=${DEPTH:-8}
TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}
cargo build --release -q -p ronode-engine -p ronode-bench --manifest-path "$ROOT/Cargo.toml"
DIR=$(mktemp -d /tmp/admin-load.XXXXXX)
"$TARGET_DIR/release/ronode" init --data-dir "$DIR" >/dev/null
RONODE_SESSION__MAX_RPS=1000000 RONODE_SESSION__BURST=1000000 \
  "$TARGET_DIR/release/ronode" run --shards "$SHARDS" --pin off --data-dir "$DIR" \
  --listen 127.0.0.1:19501 --admin 127.0.0.1:19601 >"$DIR/node.log" 2>&1 &
NODE=$!
trap 'kill $NODE 2>/dev/null; wait $NODE 2>/dev/null; rm -rf "$DIR"' EXIT
for _ in $(seq 100); do curl -sf 127.0.0.1:19601/readyz >/dev/null && break; sleep 0.05; done
CAP=$("$TARGET_DIR/release/ronode" cap mint --scope put --ttl 1h --data-dir "$DIR" | tail -1)
"$TARGET_DIR/release/overlay-smoke" --target 127.0.0.1:19501 --setup --class S --cap "$CAP" >/dev/null
"$TARGET_DIR/release/overlay-smoke" --target 127.0.0.1:19501 --class S --conns "$CONNS" \
  --depth "$DEPTH" --warmup 1 --duration 30 --quiet >"$DIR/load.json" 2>&1 &
LOAD=$!
sleep 2
python3 - "$N" <<'PY'
import sys, time, urllib.request
n = int(sys.argv[1])
for path in ("/metrics", "/readyz"):
    lat = []
    for _ in range(n):
        t = time.perf_counter()
        with urllib.request.urlopen("http://127.0.0.1:19601" + path, timeout=5) as r:
            r.read()
        lat.append((time.perf_counter() - t) * 1000)
    lat.sort()
    q = lambda p: lat[min(len(lat) - 1, int(p * len(lat)))]
    print(f"{path:9} under load: p50 {q(0.5):.2f} ms  p99 {q(0.99):.2f} ms  max {lat[-1]:.2f} ms  ({n} requests)")
PY
kill $LOAD 2>/dev/null; wait $LOAD 2>/dev/null || true
