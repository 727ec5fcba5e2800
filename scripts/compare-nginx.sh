#!/usr/bin/env bash
# ronode vs nginx serving the same objects over TLS 1.3 from one core (issue 10, item 3).
#
# Both servers run pinned to SERVER_CPU (default 0): nginx with one worker, TLS 1.3 only, one
# cipher suite, keep-alive, sendfile, no access log; ronode with one shard. overlay-smoke, pinned
# to CLIENT_CPU (default 1), drives each in turn with the same TLS stack, sessions and depth.
# Only the server being measured is loaded; the other sits idle (its CPU is not counted: each
# server's CPU is read from its own /proc entries).
#
# For each size (1 KiB = class S, 1 MiB = class L):
#   (b) flat out, each server RUNS times: rps and the server's core utilisation (client_util is
#       shown too, so a client-bound run is visible);
#   (a) both at the same fixed rate, RATE_FRACTION (0.7) of nginx's median flat-out rps, RUNS
#       times: server CPU microseconds per request.
# Medians over the runs. The last line is
#   ratio_1k=<nginx CPU-us/req / ronode CPU-us/req at 1 KiB> ratio_1m=<the same at 1 MiB>
#
# Environment: RUNS (3), QUICK=1 (1 run, 1 s warm-up, 2 s measured: a smoke run), CONNS (16),
# DEPTH (8), WARMUP (2), DURATION (8), SERVER_CPU (0), CLIENT_CPU (1), PQ_MODE (off: Debian's
# OpenSSL has no X25519MLKEM768, so both use X25519), RATE_FRACTION (0.7), SIZES ("1k 1m"),
# NGINX_PORT (18443), RONODE_PORT (19500), RESULTS (a file to keep every run's JSON line in).
# Progress on stderr. Needs root (or sudo) only to install nginx when it is missing.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
RUNS=${RUNS:-3}
WARMUP=${WARMUP:-2}
DURATION=${DURATION:-8}
if [[ "${QUICK:-0}" == 1 ]]; then
  RUNS=1 WARMUP=1 DURATION=2
fi
CONNS=${CONNS:-16}
DEPTH=${DEPTH:-8}
SERVER_CPU=${SERVER_CPU:-0}
CLIENT_CPU=${CLIENT_CPU:-1}
PQ_MODE=${PQ_MODE:-off}
RATE_FRACTION=${RATE_FRACTION:-0.7}
SIZES=${SIZES:-"1k 1m"}
NGINX_PORT=${NGINX_PORT:-18443}
RONODE_PORT=${RONODE_PORT:-19500}
ADMIN_PORT=${ADMIN_PORT:-19600}

log() { echo "compare-nginx: $*" >&2; }
die() { log "error: $*"; exit 1; }

# --- build ---
TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}
log "building ronode and overlay-smoke (release)"
(cd "$ROOT" && cargo build --release -q -p ronode-engine --bin ronode -p ronode-bench --bin overlay-smoke) >&2
RONODE=$TARGET_DIR/release/ronode
SMOKE=$TARGET_DIR/release/overlay-smoke

# --- nginx ---
if ! command -v nginx >/dev/null; then
  SUDO=""
  [[ $(id -u) == 0 ]] || SUDO=sudo
  log "installing nginx from the Debian packages"
  $SUDO apt-get update -qq >&2
  $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nginx-light >&2 \
    || $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nginx >&2
fi
NGINX=$(command -v nginx) || die "nginx is not installed"
for p in "$NGINX_PORT" "$RONODE_PORT" "$ADMIN_PORT"; do
  if (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then die "port $p is in use"; fi
done

WORK=$(mktemp -d /tmp/compare-nginx.XXXXXX)
NGINX_PID="" RONODE_PID=""
cleanup() {
  [[ -n "$NGINX_PID" ]] && kill "$NGINX_PID" 2>/dev/null && wait "$NGINX_PID" 2>/dev/null
  [[ -n "$RONODE_PID" ]] && kill "$RONODE_PID" 2>/dev/null && wait "$RONODE_PID" 2>/dev/null
  rm -rf "$WORK"
}
trap cleanup EXIT
chmod 755 "$WORK" # nginx's worker runs as an unprivileged user and reads www/
log "work dir $WORK"

# The same bytes for both servers (overlay-smoke makes them deterministically).
"$SMOKE" --write-objects "$WORK/www" >&2

# A self-signed Ed25519 certificate, like a node's.
openssl req -x509 -newkey ed25519 -nodes -keyout "$WORK/key.pem" -out "$WORK/cert.pem" \
  -days 2 -subj /CN=localhost 2>/dev/null

# ronode negotiates TLS_AES_256_GCM_SHA384 with this client (rustls' first TLS 1.3 suite, which
# overlay-smoke offers first); nginx is held to the same suite and, with PQ_MODE=off, the same
# group. overlay-smoke reports both (tls_suite, kx_group) for every run.
CURVE=X25519
[[ "$PQ_MODE" == off ]] || CURVE="X25519MLKEM768:X25519"
mkdir -p "$WORK/nginx"
cat >"$WORK/nginx.conf" <<EOF
worker_processes 1;
daemon off;
master_process on;
pid $WORK/nginx/nginx.pid;
error_log $WORK/nginx/error.log warn;
events { worker_connections 4096; multi_accept on; }
http {
  access_log off;
  sendfile on;
  tcp_nopush on;
  tcp_nodelay on;
  keepalive_timeout 300s;
  keepalive_requests 100000000;
  default_type application/octet-stream;
  client_body_temp_path $WORK/nginx/body;
  proxy_temp_path $WORK/nginx/proxy;
  fastcgi_temp_path $WORK/nginx/fastcgi;
  uwsgi_temp_path $WORK/nginx/uwsgi;
  scgi_temp_path $WORK/nginx/scgi;
  server {
    listen 127.0.0.1:$NGINX_PORT ssl;
    ssl_certificate $WORK/cert.pem;
    ssl_certificate_key $WORK/key.pem;
    ssl_protocols TLSv1.3;
    ssl_conf_command Ciphersuites TLS_AES_256_GCM_SHA384;
    ssl_ecdh_curve $CURVE;
    ssl_session_cache off;
    ssl_session_tickets off;
    root $WORK/www;
    location / { }
  }
}
EOF
log "starting nginx on CPU $SERVER_CPU (127.0.0.1:$NGINX_PORT)"
taskset -c "$SERVER_CPU" "$NGINX" -e "$WORK/nginx/error.log" -c "$WORK/nginx.conf" -p "$WORK/nginx" 2>&2 &
NGINX_PID=$!
NGINX_WORKER=""
for _ in $(seq 100); do
  NGINX_WORKER=$(pgrep -P "$NGINX_PID" | head -1 || true)
  [[ -n "$NGINX_WORKER" ]] && break
  sleep 0.1
done
[[ -n "$NGINX_WORKER" ]] || die "nginx did not start: $(cat "$WORK/nginx/error.log" 2>/dev/null)"

log "starting ronode (one shard) on CPU $SERVER_CPU (127.0.0.1:$RONODE_PORT)"
"$RONODE" init --data-dir "$WORK/ronode" >/dev/null
PIN=off
[[ "$SERVER_CPU" == 0 ]] && PIN=on # --pin on pins shard 0 to the first CPU
# Per-session rate limits are for hostile peers, not this bench.
RONODE_SESSION__MAX_RPS=1000000 RONODE_SESSION__BURST=1000000 \
  taskset -c "$SERVER_CPU" "$RONODE" run --shards 1 --pin "$PIN" --pq-mode "$PQ_MODE" \
  --listen "127.0.0.1:$RONODE_PORT" --admin "127.0.0.1:$ADMIN_PORT" --data-dir "$WORK/ronode" \
  >"$WORK/ronode.out" 2>"$WORK/ronode.err" &
RONODE_PID=$!
for _ in $(seq 100); do
  grep -q "^listening on" "$WORK/ronode.out" && break
  kill -0 "$RONODE_PID" 2>/dev/null || die "ronode exited: $(cat "$WORK/ronode.err")"
  sleep 0.1
done
grep -q "^listening on" "$WORK/ronode.out" || die "ronode did not start: $(cat "$WORK/ronode.err")"
CAP=$("$RONODE" cap mint --scope put --ttl 1h --data-dir "$WORK/ronode" | tail -1)

class_of() { case $1 in 1k) echo S ;; 64k) echo M ;; 1m) echo L ;; *) die "unknown size $1" ;; esac; }
file_of() { echo "obj-$1"; }

for size in $SIZES; do
  "$SMOKE" --setup --class "$(class_of "$size")" --target "127.0.0.1:$RONODE_PORT" \
    --pq-mode "$PQ_MODE" --cap "$CAP" >/dev/null
done

RESULTS_FILE=$WORK/results.jsonl
: >"$RESULTS_FILE"

# measure SERVER SIZE PHASE RATE RUN: one overlay-smoke run, its JSON tagged and kept.
measure() {
  local server=$1 size=$2 phase=$3 rate=$4 run=$5 target pid
  if [[ $server == nginx ]]; then
    target=(--http "https://127.0.0.1:$NGINX_PORT/$(file_of "$size")")
    pid=$NGINX_WORKER
  else
    target=(--target "127.0.0.1:$RONODE_PORT")
    pid=$RONODE_PID
  fi
  local json
  json=$(taskset -c "$CLIENT_CPU" "$SMOKE" "${target[@]}" --class "$(class_of "$size")" \
    --conns "$CONNS" --depth "$DEPTH" --rate "$rate" --warmup "$WARMUP" --duration "$DURATION" \
    --cpu "$CLIENT_CPU" --server-pid "$pid" --pq-mode "$PQ_MODE" --quiet)
  python3 -c '
import json, sys
r = json.loads(sys.argv[1])
r.update(server=sys.argv[2], size=sys.argv[3], phase=sys.argv[4], run=int(sys.argv[5]))
print(json.dumps(r))
sys.stderr.write("compare-nginx: %-6s %-2s %-4s run %d: %9.0f req/s %6.3f GB/s p99 %7.3f ms, "
                 "server %5.1f us/req util %.2f, client util %.2f, errors %d, %s %s\n" % (
    r["server"], r["size"], r["phase"], r["run"], r["rps"], r["gbytes_s"], r["p99_ms"],
    r["server_cpu_us_per_req"] or 0, r["server_util"] or 0, r["client_util"], r["errors"],
    r["tls_suite"], r["kx_group"]))
' "$json" "$server" "$size" "$phase" "$run" >>"$RESULTS_FILE"
}

median_of() { # median of FIELD over SERVER SIZE PHASE
  python3 -c '
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
v = [r[sys.argv[2]] or 0 for r in rows
     if (r["server"], r["size"], r["phase"]) == (sys.argv[3], sys.argv[4], sys.argv[5])]
print(statistics.median(v) if v else 0)
' "$RESULTS_FILE" "$@"
}

for size in $SIZES; do
  log "== $size: flat out, $RUNS run(s) each, $CONNS sessions x depth $DEPTH"
  for run in $(seq "$RUNS"); do
    measure nginx "$size" flat 0 "$run"
    measure ronode "$size" flat 0 "$run"
  done
  nginx_max=$(median_of rps nginx "$size" flat)
  python3 -c "import sys; sys.exit(0 if $nginx_max > 0 else 1)" \
    || die "nginx served nothing at $size (see the errors above; $WORK/nginx/error.log: $(tail -3 "$WORK/nginx/error.log" 2>/dev/null))"
  rate=$(python3 -c "print(max(1, round($nginx_max * $RATE_FRACTION)))")
  log "== $size: both at $rate req/s ($RATE_FRACTION of nginx's median $nginx_max)"
  for run in $(seq "$RUNS"); do
    measure nginx "$size" rate "$rate" "$run"
    measure ronode "$size" rate "$rate" "$run"
  done
done

[[ -n "${RESULTS:-}" ]] && cp "$RESULTS_FILE" "$RESULTS"

python3 - "$RESULTS_FILE" "$SIZES" <<'EOF'
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
sizes = sys.argv[2].split()
def med(server, size, phase, field):
    v = [r[field] or 0 for r in rows if (r["server"], r["size"], r["phase"]) == (server, size, phase)]
    return statistics.median(v) if v else 0.0
err = sys.stderr
err.write("\ncompare-nginx: medians\n")
err.write("%-5s %-7s | %-49s | %-31s\n" % ("size", "server", "flat out: req/s  GB/s  server util  client util",
                                          "fixed rate: req/s  CPU-us/req"))
ratios = {}
for size in sizes:
    for server in ("nginx", "ronode"):
        su, cu = med(server, size, "flat", "server_util"), med(server, size, "flat", "client_util")
        note = "  (client-bound?)" if cu > 0.9 and su < 0.9 else ""
        err.write("%-5s %-7s | %9.0f %6.3f %12.2f %12.2f | %12.0f %13.1f%s\n" % (
            size, server, med(server, size, "flat", "rps"), med(server, size, "flat", "gbytes_s"),
            su, cu, med(server, size, "rate", "rps"), med(server, size, "rate", "server_cpu_us_per_req"), note))
    n, r = med("nginx", size, "rate", "server_cpu_us_per_req"), med("ronode", size, "rate", "server_cpu_us_per_req")
    ratios[size] = n / r if r > 0 else 0.0
    errors = sum(x["errors"] for x in rows if x["size"] == size)
    if errors:
        err.write("compare-nginx: warning: %d errors in the %s runs\n" % (errors, size))
print("ratio_1k=%.3f ratio_1m=%.3f" % (ratios.get("1k", 0.0), ratios.get("1m", 0.0)))
EOF
