#!/usr/bin/env bash
# Heap allocations per GET on the node's hot path (issue 10): a one-shard ronode built with
# `--features count-allocs` counts its shard thread's allocations (`heap_allocations_total` on
# /metrics); overlay-smoke drives GETs of one object for DURATION seconds; the change in
# allocations is divided by the requests answered meanwhile (overlay-smoke's count; at most
# CONNS x DEPTH are in flight at either end of the window).
# A quiet interval of the same length is measured first and subtracted (the shard's tick and
# housekeeping allocate a little while idle).
#
# Environment: CLASS (S: 1 KiB; M, L), CONNS (16), DEPTH (8), RATE (0: flat out), DURATION (5),
# SERVER_CPU (0), CLIENT_CPU (1), PORT (19700), ADMIN_PORT (19701). Last line on stdout:
#   allocs_per_get=<allocations per answered GET>
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
CLASS=${CLASS:-S} CONNS=${CONNS:-16} DEPTH=${DEPTH:-8} RATE=${RATE:-0} DURATION=${DURATION:-5}
SERVER_CPU=${SERVER_CPU:-0} CLIENT_CPU=${CLIENT_CPU:-1} PORT=${PORT:-19700} ADMIN_PORT=${ADMIN_PORT:-19701}
log() { echo "allocs-per-get: $*" >&2; }

# A target dir of its own: the counting allocator must not end up in the normal binary.
TARGET=${ALLOC_TARGET_DIR:-$ROOT/target/count-allocs}
log "building ronode --features count-allocs (into $TARGET) and overlay-smoke"
(cd "$ROOT" && cargo build --release -q -p ronode-engine --features count-allocs --target-dir "$TARGET" \
  && cargo build --release -q -p ronode-bench --bin overlay-smoke) >&2
RONODE=$TARGET/release/ronode
SMOKE=${CARGO_TARGET_DIR:-$ROOT/target}/release/overlay-smoke

WORK=$(mktemp -d /tmp/allocs-per-get.XXXXXX)
PID=""
cleanup() { [[ -n "$PID" ]] && kill "$PID" 2>/dev/null && wait "$PID" 2>/dev/null; rm -rf "$WORK"; }
trap cleanup EXIT
"$RONODE" init --data-dir "$WORK/d" >/dev/null
RONODE_SESSION__MAX_RPS=1000000 RONODE_SESSION__BURST=1000000 \
  taskset -c "$SERVER_CPU" "$RONODE" run --shards 1 --pin off --pq-mode off --listen "127.0.0.1:$PORT" \
  --admin "127.0.0.1:$ADMIN_PORT" --data-dir "$WORK/d" >"$WORK/out" 2>"$WORK/err" &
PID=$!
for _ in $(seq 100); do grep -q "^listening on" "$WORK/out" && break; sleep 0.1; done
grep -q "^listening on" "$WORK/out" || { log "ronode did not start: $(cat "$WORK/err")"; exit 1; }
CAP=$("$RONODE" cap mint --scope put --ttl 1h --data-dir "$WORK/d" | tail -1)
"$SMOKE" --setup --class "$CLASS" --target "127.0.0.1:$PORT" --pq-mode off --cap "$CAP" >/dev/null

# scrape: the shard threads' allocations so far
scrape() {
  python3 - "$ADMIN_PORT" <<'PY'
import sys, urllib.request
text = urllib.request.urlopen("http://127.0.0.1:%s/metrics" % sys.argv[1], timeout=10).read().decode()
print(sum(int(float(l.split()[-1])) for l in text.splitlines() if l.startswith("heap_allocations_total")))
PY
}

a0=$(scrape)
sleep "$DURATION"
a1=$(scrape)
idle=$((a1 - a0))
log "idle for ${DURATION}s: $idle allocations"

a0=$(scrape)
taskset -c "$CLIENT_CPU" "$SMOKE" --target "127.0.0.1:$PORT" --class "$CLASS" --conns "$CONNS" \
  --depth "$DEPTH" --rate "$RATE" --warmup 0 --duration "$DURATION" --cpu "$CLIENT_CPU" \
  --pq-mode off --quiet >"$WORK/report.json"
a1=$(scrape)
python3 - "$a0" "$a1" "$idle" "$WORK/report.json" <<'PY'
import json, sys
a0, a1, idle = map(int, sys.argv[1:4])
rep = json.load(open(sys.argv[4]))
reqs = rep["requests"]
allocs = a1 - a0 - idle
sys.stderr.write("allocs-per-get: loaded: %d allocations (%d after the idle share), %d requests answered, "
                 "client saw %d errors, %.0f req/s\n" % (a1 - a0, allocs, reqs, rep["errors"], rep["rps"]))
print("allocs_per_get=%.3f" % (allocs / reqs if reqs else float("nan")))
PY
