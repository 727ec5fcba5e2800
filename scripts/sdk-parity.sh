#!/usr/bin/env bash
# Polyglot parity (issue 19): the Rust SDK (bench/src/bin/sdk-parity.rs over ronode-client) and
# the TypeScript SDK (sdk/ts/bench/parity.js over @ronode/client) run the same GET workload
# against the SAME release-built node: 1 KiB and 64 KiB objects, one session at depth 1, then
# 8 sessions at depth 8, each at a fixed rate, latency from when each round was due. Prints
# p50/p95/p99 of both SDKs and their ratios (TS / Rust); the last line on stdout is
#   ratio_p95_d1_1k=<TS p95 / Rust p95, depth 1, 1 KiB> ratio_p95_d1_64k=<the same, 64 KiB>
#
# The node runs one shard on SERVER_CPU, each client (one at a time) on CLIENT_CPU, so that on a
# small machine the two do not take turns on one core.
#
# Environment: RATE_D1 (GETs/s at depth 1: 200), RATE_D8 (GETs/s over the 8 sessions: 1600),
# COUNT_D1 (timed GETs at depth 1: 2000), COUNT_D8 (6400), SHARDS (1), SERVER_CPU (0),
# CLIENT_CPU (1), PORT (19800), ADMIN_PORT (19801). Needs cargo, Node 20 and npm (sdk/ts is
# installed with `npm ci` if needed).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
RATE_D1=${RATE_D1:-200} RATE_D8=${RATE_D8:-1600} COUNT_D1=${COUNT_D1:-2000} COUNT_D8=${COUNT_D8:-6400}
SHARDS=${SHARDS:-1} SERVER_CPU=${SERVER_CPU:-0} CLIENT_CPU=${CLIENT_CPU:-1} PORT=${PORT:-19800} ADMIN_PORT=${ADMIN_PORT:-19801}
log() { echo "sdk-parity: $*" >&2; }

log "building ronode and sdk-parity (release), and the TypeScript SDK"
(cd "$ROOT" && cargo build --release -q -p ronode-engine -p ronode-bench --bin ronode --bin sdk-parity) >&2
TARGET=${CARGO_TARGET_DIR:-$ROOT/target}
RONODE=$TARGET/release/ronode
RUST=(taskset -c "$CLIENT_CPU" "$TARGET/release/sdk-parity")
(cd "$ROOT/sdk/ts" && { [[ -d node_modules ]] || npm ci --no-audit --no-fund; } && npm run -s build) >&2
TS=(taskset -c "$CLIENT_CPU" node "$ROOT/sdk/ts/bench/parity.js")

WORK=$(mktemp -d /tmp/sdk-parity.XXXXXX)
PID=""
cleanup() { [[ -n "$PID" ]] && kill "$PID" 2>/dev/null && wait "$PID" 2>/dev/null; rm -rf "$WORK"; }
trap cleanup EXIT
"$RONODE" init --data-dir "$WORK/d" >/dev/null
# The session rate limit is raised so that neither SDK's load is refused (429) on the way.
RONODE_SESSION__MAX_RPS=1000000 RONODE_SESSION__BURST=1000000 \
  taskset -c "$SERVER_CPU" "$RONODE" run --shards "$SHARDS" --pin off --listen "127.0.0.1:$PORT" --admin "127.0.0.1:$ADMIN_PORT" \
  --data-dir "$WORK/d" >"$WORK/out" 2>"$WORK/err" &
PID=$!
for _ in $(seq 100); do grep -q "^listening on" "$WORK/out" && break; sleep 0.1; done
grep -q "^listening on" "$WORK/out" || { log "ronode did not start: $(cat "$WORK/err")"; exit 1; }
NODE_ID=$(grep -o 'node_id [0-9a-f]*' "$WORK/out" | cut -d' ' -f2)
CAP=$("$RONODE" cap mint --scope put --ttl 1h --data-dir "$WORK/d" | tail -1)

# 8 distinct objects of each size (deterministic bytes), stored with the CLI.
objects() {
  local size=$1 list=""
  for i in $(seq 8); do
    python3 -c "import random,sys; random.seed($size*100+$i); sys.stdout.buffer.write(random.randbytes($size))" >"$WORK/obj"
    list+="$("$RONODE" put "$WORK/obj" --peer "127.0.0.1:$PORT" --cap "$CAP" 2>>"$WORK/put.err" | tail -1),"
  done
  echo "${list%,}"
}
OBJ_1K=$(objects 1024)
OBJ_64K=$(objects 65536)

# run NAME OBJECTS CONNS DEPTH RATE COUNT: both SDKs, Rust first; prints a line, writes the
# p95 ratio to $WORK/ratio.
run() {
  local name=$1 objs=$2 conns=$3 depth=$4 rate=$5 count=$6 common rust ts
  common=(--addr "127.0.0.1:$PORT" --node-id "$NODE_ID" --objects "$objs" --conns "$conns" --depth "$depth" --rate "$rate" --count "$count")
  rust=$("${RUST[@]}" "${common[@]}")
  ts=$("${TS[@]}" "${common[@]}")
  python3 - "$name" "$rust" "$ts" "$WORK/ratio" <<'PY'
import json, sys
name, r, t = sys.argv[1], json.loads(sys.argv[2]), json.loads(sys.argv[3])
q = ["p50_ms", "p95_ms", "p99_ms"]
fmt = lambda d: " ".join(f"{k[:3]}={d[k]:.3f}" for k in q)
ratio = {k: t[k] / r[k] for k in q}
print(f"{name:8} rust {fmt(r)} | ts {fmt(t)} | ts/rust " + " ".join(f"{k[:3]}={v:.2f}" for k, v in ratio.items()))
with open(sys.argv[4], "w") as f:
    f.write(f"{ratio['p95_ms']:.3f}\n")
PY
}

log "node $NODE_ID on 127.0.0.1:$PORT, $SHARDS shard(s); latency in ms, TS / Rust ratios"
run "d1 1k" "$OBJ_1K" 1 1 "$RATE_D1" "$COUNT_D1"; R1=$(cat "$WORK/ratio")
run "d1 64k" "$OBJ_64K" 1 1 "$RATE_D1" "$COUNT_D1"; R64=$(cat "$WORK/ratio")
run "d8x8 1k" "$OBJ_1K" 8 8 "$RATE_D8" "$COUNT_D8"; R8_1=$(cat "$WORK/ratio")
run "d8x8 64k" "$OBJ_64K" 8 8 "$RATE_D8" "$COUNT_D8"; R8_64=$(cat "$WORK/ratio")
echo "ratio_p95_d8_1k=$R8_1 ratio_p95_d8_64k=$R8_64"
echo "ratio_p95_d1_1k=$R1 ratio_p95_d1_64k=$R64"
