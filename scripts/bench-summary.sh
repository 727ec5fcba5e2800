#!/usr/bin/env bash
# Summarises the last `cargo bench -p ronode-bench` run from criterion's output
# (target/criterion/**/new/estimates.json): one line per benchmark with its median in ns and the
# relative spread of the median's 95 % confidence interval (half its width over the median), then
# the ratios the issues ask for:
#   - decode of a full OAP/1 frame over a 1 MiB memcpy, measured in the same run (must be < 10 %);
#   - Ed25519 single verification over batched verification, per signature.
# Usage: scripts/bench-summary.sh [CRITERION_DIR]   (default: target/criterion)
# Exits 1 when the frame-decode budget is blown, 2 when there is nothing to summarise.
set -euo pipefail
cd "$(dirname "$0")/.."
dir="${1:-${CARGO_TARGET_DIR:-target}/criterion}"
exec python3 - "$dir" <<'EOF'
import json, os, sys

root = sys.argv[1]
rows = {}
for base, dirs, files in os.walk(root):
    if os.path.basename(base) != "new" or "estimates.json" not in files:
        continue
    with open(os.path.join(base, "estimates.json")) as f:
        median = json.load(f)["median"]
    name = os.path.relpath(os.path.dirname(base), root)
    meta = os.path.join(base, "benchmark.json")
    if os.path.exists(meta):
        with open(meta) as f:
            name = json.load(f).get("full_id", name)
    ci = median["confidence_interval"]
    mid = median["point_estimate"]
    spread = (ci["upper_bound"] - ci["lower_bound"]) / 2 / mid if mid else 0.0
    mtime = os.path.getmtime(os.path.join(base, "estimates.json"))
    rows[name] = (mid, spread, mtime)

if not rows:
    print(f"no criterion results under {root}: run `cargo bench -p ronode-bench` first", file=sys.stderr)
    sys.exit(2)

width = max(len(n) for n in rows)
print(f"{'benchmark':<{width}}  {'median ns':>14}  spread")
for name in sorted(rows):
    mid, spread, _ = rows[name]
    print(f"{name:<{width}}  {mid:>14.1f}  +-{spread * 100:.1f} %")
print()

status = 0

def ratio(label, num, den, scale=1.0):
    if num not in rows or den not in rows:
        missing = [n for n in (num, den) if n not in rows]
        print(f"{label}: n/a (missing {', '.join(missing)})")
        return None
    (a, _, ta), (b, _, tb) = rows[num], rows[den]
    r = a / (b / scale)
    apart = abs(ta - tb)
    note = f"  (measured {apart / 60:.0f} min apart: not the same run?)" if apart > 3600 else ""
    return r, note

got = ratio("decode(full_frame) / memcpy_1MiB", "oap1/decode/full_frame", "yardstick_1MiB/memcpy")
if got:
    r, note = got
    verdict = "ok" if r < 0.10 else "OVER BUDGET"
    if r >= 0.10:
        status = 1
    print(f"decode(full_frame) / memcpy_1MiB = {r * 100:.2f} % (budget < 10 %: {verdict}){note}")

batch = [n for n in rows if n.startswith("ed25519_verify/batch/")]
if batch:
    n = int(batch[0].rsplit("/", 1)[1])
    got = ratio("ed25519", "ed25519_verify/single/1", batch[0], scale=n)
    if got:
        r, note = got
        per_sig = rows[batch[0]][0] / n
        print(
            f"ed25519 single / batch-of-{n}, per signature = {r:.2f}x "
            f"({rows['ed25519_verify/single/1'][0]:.0f} ns vs {per_sig:.0f} ns){note}"
        )
else:
    print("ed25519 single / batch: n/a (no ed25519_verify/batch/* result)")
sys.exit(status)
EOF
