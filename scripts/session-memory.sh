#!/usr/bin/env bash
# Memory per idle session (issue 15, item 10): a node's RSS before and after N idle TLS sessions
# (handshake and HELLO done, then idle), per session, and again once they closed (whether the
# allocator gave the memory back). One fresh node per N.
# Environment:
#   COUNTS   sessions per round ("1000 10000")
#   GET_KIB  0: sessions only say HELLO; else each first GETs an object of that many KiB, so that
#            its buffers have been used before it idles (0)
#   SHARDS   (2), THREADS client threads opening sessions (4)
#   RONODE   a ronode binary to measure instead of this tree's release build (e.g. main's)
# Needs `ulimit -n` above the largest count (the client and the node each hold one fd per
# session); the soft limit is raised to the hard one here.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
COUNTS=${COUNTS:-"1000 10000"} GET_KIB=${GET_KIB:-0} SHARDS=${SHARDS:-2} THREADS=${THREADS:-4}
TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}
cargo build --release -q -p ronode-engine -p ronode-bench --manifest-path "$ROOT/Cargo.toml"
RONODE=${RONODE:-$TARGET_DIR/release/ronode}
ulimit -n "$(ulimit -Hn)"
for n in $COUNTS; do
  if (( n + 256 > $(ulimit -n) )); then
    echo "ulimit -n is $(ulimit -n): too low for $n sessions" >&2
    exit 1
  fi
done

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
  DIR=$(mktemp -d /tmp/session-memory.XXXXXX)
  "$RONODE" init --data-dir "$DIR" >/dev/null
  RONODE_SESSION__MAX_CONNS=$((n + 1000)) \
    "$RONODE" run --shards "$SHARDS" --pin off --data-dir "$DIR" \
    --listen 127.0.0.1:0 --admin 127.0.0.1:0 >"$DIR/node.out" 2>"$DIR/node.err" &
  NODE=$!
  trap 'kill $NODE 2>/dev/null; wait $NODE 2>/dev/null; rm -rf "$DIR"' EXIT
  for _ in $(seq 300); do grep -q '^admin on' "$DIR/node.out" && break; sleep 0.1; done
  LISTEN=$(sed -n 's/^listening on \([^ ]*\).*/\1/p' "$DIR/node.out")
  ADMIN=$(sed -n 's|^admin on http://||p' "$DIR/node.out")
  GET=()
  if (( GET_KIB > 0 )); then
    CAP=$("$RONODE" cap mint --scope put --ttl 1h --data-dir "$DIR" | tail -1)
    head -c $((GET_KIB * 1024)) /dev/urandom >"$DIR/object"
    ADDR=$("$RONODE" put "$DIR/object" --peer "$LISTEN" --cap "$CAP" 2>/dev/null)
    GET=(--get "$ADDR")
  fi
  wait_sessions "$ADMIN" 0
  sleep 0.5
  BEFORE=$(rss_kib $NODE)
  # The client holds its sessions until its stdin gets a line.
  coproc CLIENT { "$TARGET_DIR/release/idle-sessions" --target "$LISTEN" --count "$n" \
    --threads "$THREADS" "${GET[@]}"; }
  read -r -u "${CLIENT[0]}" line
  [[ $line == "open $n" ]] || { echo "client: $line" >&2; exit 1; }
  wait_sessions "$ADMIN" "$n"
  # Idle for a while: a few shard ticks (100 ms) for sessions to give their buffers back.
  sleep 1
  IDLE=$(rss_kib $NODE)
  echo >&"${CLIENT[1]}"
  wait "$CLIENT_PID" 2>/dev/null || true
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
