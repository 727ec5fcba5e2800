#!/usr/bin/env bash
# kill -9 during PUTs: ROUNDS rounds (default 5) of a two-shard disk node. Each round starts
# the node on a fresh data directory, runs parallel PUTs of random objects (bench/src/bin/
# crash-puts.rs; every tenth is 5 MiB) recording each one acknowledged, kills the node with
# SIGKILL at a random moment, restarts it on the same data directory, GETs every object
# acknowledged in that round and compares the bytes:
#
#   round N: acknowledged A, recovered R, wrong W (missing M, failed F)
#   acknowledged=... recovered=... wrong=...
#
# DAMAGE=1 also flips one byte in some object files (up to two over 4 MiB, two smaller) while
# the node runs, then, before the kill, GETs what was acknowledged so far from the running node:
# `served_wrong` counts the GETs that returned other bytes with 200 (must be 0: a node serves
# nothing that does not hash to its address). After the restart the damaged objects may be
# missing (quarantined), never wrong.
#
# Knobs: ROUNDS, THREADS (PUT sessions, default 8), DAMAGE, PROFILE (release | debug),
# SEED (for the kill moments and the damaged files).
set -euo pipefail
cd "$(dirname "$0")/.."

ROUNDS=${ROUNDS:-5}
THREADS=${THREADS:-8}
DAMAGE=${DAMAGE:-0}
PROFILE=${PROFILE:-release}
RANDOM=${SEED:-$$}

if [ "$PROFILE" = release ]; then
    cargo build -q --release -p ronode-engine -p ronode-bench --bin ronode --bin crash-puts
else
    cargo build -q -p ronode-engine -p ronode-bench --bin ronode --bin crash-puts
fi
bin=target/$PROFILE

work=$(mktemp -d "${TMPDIR:-/tmp}/ronode-crash.XXXXXX")
data=$work/data
node=""
putter=""
cleanup() {
    [ -n "$putter" ] && kill -9 "$putter" 2>/dev/null || true
    [ -n "$node" ] && kill -9 "$node" 2>/dev/null || true
    wait 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT

port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
addr=127.0.0.1:$port

start_node() {
    : >"$work/node.out"
    "$bin/ronode" run --shards 2 --pin off --listen "$addr" --admin 127.0.0.1:0 \
        --data-dir "$data" >"$work/node.out" 2>>"$work/node.err" &
    node=$!
    for _ in $(seq 300); do
        grep -q '^listening on' "$work/node.out" && return 0
        kill -0 "$node" 2>/dev/null || break
        sleep 0.1
    done
    echo "the node did not start; its stderr:" >&2
    cat "$work/node.err" >&2
    exit 1
}

stop_node() {
    kill -TERM "$node"
    wait "$node" || true
    node=""
}

# One byte flipped in the middle of up to two big and two small object files.
damage() {
    local files
    files=$( { find "$data/objects" -path '*/objects/[0-9a-f][0-9a-f]/*' -type f -size +4M |
        shuf -n 2 --random-source=<(yes "$RANDOM")
    find "$data/objects" -path '*/objects/[0-9a-f][0-9a-f]/*' -type f -size -4M |
        shuf -n 2 --random-source=<(yes "$RANDOM"); } || true)
    python3 - $files <<'EOF'
import os, sys
for path in sys.argv[1:]:
    with open(path, "r+b") as f:
        size = os.fstat(f.fileno()).st_size
        if size == 0:
            continue
        f.seek(size // 2)
        b = f.read(1)
        f.seek(size // 2)
        f.write(bytes([b[0] ^ 0x5A]))
print(len(sys.argv) - 1)
EOF
}

field() { # field NAME LINE: the number after NAME in a `check` line
    echo "$2" | awk -v k="$1" '{ for (i = 1; i < NF; i++) if ($i == k) print $(i + 1) }'
}

total_acked=0 total_recovered=0 total_wrong=0 total_served_wrong=0
for round in $(seq "$ROUNDS"); do
    # A fresh data directory each round: rounds do not fill the disk or damage each other.
    rm -rf "$data"
    "$bin/ronode" init --data-dir "$data" >/dev/null 2>&1
    cap=$("$bin/ronode" cap mint --scope put --ttl 1h --data-dir "$data" | tail -n 1)
    start_node
    acked=$work/acked-$round
    : >"$acked"
    "$bin/crash-puts" put --node "$addr" --cap "$cap" --acked "$acked" \
        --threads "$THREADS" --salt "$round" &
    putter=$!
    sleep "$(awk -v r="$RANDOM" 'BEGIN { srand(r); printf "%.2f", 1 + 2 * rand() }')"
    extra=""
    if [ "$DAMAGE" = 1 ]; then
        damaged=$(damage)
        cp "$acked" "$acked.so-far"
        running=$("$bin/crash-puts" check --node "$addr" --acked "$acked.so-far")
        served_wrong=$(field wrong "$running")
        total_served_wrong=$((total_served_wrong + served_wrong))
        extra=", damaged $damaged, served_wrong $served_wrong"
    fi
    kill -9 "$node"
    wait "$node" 2>/dev/null || true
    kill -9 "$putter" 2>/dev/null || true
    wait "$putter" 2>/dev/null || true
    putter=""
    start_node
    line=$("$bin/crash-puts" check --node "$addr" --acked "$acked")
    stop_node
    a=$(field acknowledged "$line") r=$(field recovered "$line") w=$(field wrong "$line")
    echo "round $round: acknowledged $a, recovered $r, wrong $w" \
        "(missing $(field missing "$line"), failed $(field failed "$line")$extra)"
    total_acked=$((total_acked + a))
    total_recovered=$((total_recovered + r))
    total_wrong=$((total_wrong + w))
done
if [ "$DAMAGE" = 1 ]; then
    echo "acknowledged=$total_acked recovered=$total_recovered wrong=$total_wrong served_wrong=$total_served_wrong"
else
    echo "acknowledged=$total_acked recovered=$total_recovered wrong=$total_wrong"
fi
