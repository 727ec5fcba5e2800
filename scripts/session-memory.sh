#!/usr/bin/env bash
# Memory per idle session (issue 15, item 10): a node's RSS before and after N idle TLS sessions
# (handshake and HELLO done, then idle), per session, and again once they closed (whether the
# allocator gave the memory back). One fresh node per N and run.
# Environment:
#   COUNTS      sessions per round ("1000 10000"; "100000" for the issue's goal, see below)
#   RUNS        rounds per count (1): each a fresh node, one line each
#   GET_KIB     0: sessions only say HELLO; else each first GETs an object of that many KiB, so
#               that its buffers have been used before it idles (0)
#   SHARDS      (2), THREADS client threads per client process opening sessions (4)
#   PER_TARGET  sessions per node address (25000): one client address has about 28,000
#               ephemeral ports towards one address and port, so above this the node listens on
#               0.0.0.0 and the clients spread over 127.0.0.1, 127.0.0.2, ... (same port)
#   PER_CLIENT  sessions per client process (the fd limit less 256): above it, several clients
#   RONODE      a ronode binary to measure instead of this tree's release build (e.g. main's)
# The node holds one fd per session, so `ulimit -n` must be above the largest count: the soft
# limit is raised to what the count needs (the hard one too, as root with CAP_SYS_RESOURCE:
# also fs.nr_open and fs.file-max when below it), and the script stops, saying so, where it
# cannot be. 100,000 sessions: COUNTS=100000 as root (about 2 GB for the node and 5-6 GB for the
# clients with GET_KIB=0).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
COUNTS=${COUNTS:-"1000 10000"} RUNS=${RUNS:-1} GET_KIB=${GET_KIB:-0} SHARDS=${SHARDS:-2}
THREADS=${THREADS:-4} PER_TARGET=${PER_TARGET:-25000}
TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}
cargo build --release -q -p ronode-engine -p ronode-bench --manifest-path "$ROOT/Cargo.toml"
RONODE=${RONODE:-$TARGET_DIR/release/ronode}

max=0
for n in $COUNTS; do (( n > max )) && max=$n; done
need=$((max + 1024))
if (( need > $(ulimit -Hn) )); then
  # Only a process with CAP_SYS_RESOURCE may raise its hard limit (root in a container may not).
  for key in fs.nr_open fs.file-max; do
    if (( $(sysctl -n $key) < need )); then sysctl -qw "$key=$need" 2>/dev/null || true; fi
  done
  ulimit -Hn "$need" 2>/dev/null || true
fi
if (( need <= $(ulimit -Hn) )); then ulimit -n "$need"; else ulimit -n "$(ulimit -Hn)"; fi
if (( max + 256 > $(ulimit -n) )); then
  echo "ulimit -n is $(ulimit -n) (hard $(ulimit -Hn)) and cannot be raised here: too low for" \
    "$max sessions in one node" >&2
  exit 1
fi
PER_CLIENT=${PER_CLIENT:-$(($(ulimit -n) - 256))}

rss_kib() { awk '/^VmRSS:/ { print $2 }' "/proc/$1/status"; }
# Waits (bounded) for the node's session gauge to read `want` (summed over shards).
wait_sessions() {
  local admin=$1 want=$2
  for _ in $(seq 600); do
    local got
    got=$(curl -sf "http://$admin/metrics" |
      awk '/^overlay_sessions_active\{/ { s += $2 } END { print s + 0 }')
    [[ $got == "$want" ]] && return 0
    sleep 0.1
  done
  echo "the node never counted $want sessions" >&2
  return 1
}

echo "binary: $RONODE"
printf '%-8s %-8s %12s %12s %14s %14s\n' sessions get_kib rss_before rss_idle per_session rss_closed
for n in $COUNTS; do
 for _run in $(seq "$RUNS"); do
  DIR=$(mktemp -d /tmp/session-memory.XXXXXX)
  "$RONODE" init --data-dir "$DIR" >/dev/null 2>&1
  targets=$(((n + PER_TARGET - 1) / PER_TARGET))
  HOST=127.0.0.1
  (( targets > 1 )) && HOST=0.0.0.0
  RONODE_SESSION__MAX_CONNS=$((n + 1000)) \
    "$RONODE" run --shards "$SHARDS" --pin off --data-dir "$DIR" \
    --listen "$HOST:0" --admin 127.0.0.1:0 >"$DIR/node.out" 2>"$DIR/node.err" &
  NODE=$!
  trap 'kill $NODE 2>/dev/null; wait $NODE 2>/dev/null; rm -rf "$DIR"' EXIT
  for _ in $(seq 300); do grep -q '^admin on' "$DIR/node.out" && break; sleep 0.1; done
  LISTEN=$(sed -n 's/^listening on \([^ ]*\).*/\1/p' "$DIR/node.out")
  PORT=${LISTEN##*:}
  ADMIN=$(sed -n 's|^admin on http://||p' "$DIR/node.out")
  TARGETS=()
  for t in $(seq "$targets"); do TARGETS+=(--target "127.0.0.$t:$PORT"); done
  GET=()
  if (( GET_KIB > 0 )); then
    CAP=$("$RONODE" cap mint --scope put --ttl 1h --data-dir "$DIR" | tail -1)
    head -c $((GET_KIB * 1024)) /dev/urandom >"$DIR/object"
    ADDR=$("$RONODE" put "$DIR/object" --peer "127.0.0.1:$PORT" --cap "$CAP" 2>/dev/null)
    GET=(--get "$ADDR")
  fi
  wait_sessions "$ADMIN" 0
  sleep 0.5
  BEFORE=$(rss_kib $NODE)
  # The clients hold their sessions until their stdin (one fifo, held open here, fd 3, which
  # they must not inherit) sees its last writer close.
  mkfifo "$DIR/hold"
  exec 3<>"$DIR/hold"
  clients=$(((n + PER_CLIENT - 1) / PER_CLIENT))
  PIDS=()
  for c in $(seq 0 $((clients - 1))); do
    each=$((n / clients + (c < n % clients ? 1 : 0)))
    "$TARGET_DIR/release/idle-sessions" "${TARGETS[@]}" --count "$each" \
      --threads "$THREADS" "${GET[@]}" <"$DIR/hold" >"$DIR/client-$c.out" 2>"$DIR/client-$c.err" 3>&- &
    PIDS+=($!)
  done
  # Bounded: each client says `open N` or exits.
  for c in $(seq 0 $((clients - 1))); do
    while ! grep -q '^open ' "$DIR/client-$c.out"; do
      kill -0 "${PIDS[$c]}" 2>/dev/null || { echo "client $c: $(cat "$DIR/client-$c.err")" >&2; exit 1; }
      sleep 0.2
    done
  done
  wait_sessions "$ADMIN" "$n"
  # Idle for a while: a few shard ticks (100 ms) for sessions to give their buffers back.
  sleep 1
  IDLE=$(rss_kib $NODE)
  exec 3>&-
  for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
  wait_sessions "$ADMIN" 0
  sleep 1
  CLOSED=$(rss_kib $NODE)
  printf '%-8s %-8s %9s KiB %9s KiB %10s B %11s KiB\n' "$n" "$GET_KIB" "$BEFORE" "$IDLE" \
    $(((IDLE - BEFORE) * 1024 / n)) "$CLOSED"
  kill $NODE
  wait $NODE 2>/dev/null || true
  rm -rf "$DIR"
  trap - EXIT
 done
done
