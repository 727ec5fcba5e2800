// The TypeScript side of scripts/sdk-parity.sh, the same workload as bench/src/bin/sdk-parity.rs:
// `--conns` sessions, each sending a round of `--depth` pipelined GETs every
// `conns * depth / rate` seconds; a round's latency counts from when it was due. All sessions
// run on Node's one event loop, as an application's would. Prints one JSON line.
//
//   node bench/parity.js --addr 127.0.0.1:9500 [--node-id HEX] --objects b3:..,b3:.. \
//     --conns 1 --depth 1 --rate 200 --count 1000 [--warmup 50]

import { parseArgs } from "node:util";
import { connect } from "../dist/index.js";

const { values: a } = parseArgs({
  options: {
    addr: { type: "string" },
    "node-id": { type: "string" },
    objects: { type: "string" },
    conns: { type: "string", default: "1" },
    depth: { type: "string", default: "1" },
    rate: { type: "string" },
    count: { type: "string" },
    warmup: { type: "string", default: "50" },
  },
});
const conns = Number(a.conns);
const depth = Number(a.depth);
const rate = Number(a.rate);
const warmup = Number(a.warmup);
const objects = a.objects.split(",");
const rounds = Math.ceil(Number(a.count) / (conns * depth));
const periodMs = (conns * depth * 1000) / rate;
const now = () => Number(process.hrtime.bigint()) / 1e6;

/**
 * Resolves at `due` (ms, hrtime clock): a timer for all but the last 2 ms (timers round to
 * milliseconds and may fire one late), then event-loop turns until the instant, as the Rust side.
 */
async function sleepUntil(due) {
  for (;;) {
    const left = due - now();
    if (left <= 0) return;
    await new Promise((go) => (left > 2 ? setTimeout(go, left - 2) : setImmediate(go)));
  }
}

async function session(w) {
  const client = await connect(a["node-id"] ? `${a.addr}#${a["node-id"]}` : a.addr, { timeoutMs: 30_000, retry: false });
  let next = w;
  const round = () =>
    Promise.all(
      Array.from({ length: depth }, () => {
        next += 1;
        return client.get(objects[next % objects.length]);
      }),
    );
  for (let i = 0; i < warmup; i++) await round();
  return { client, round };
}

const sessions = await Promise.all(Array.from({ length: conns }, (_, w) => session(w)));
const lat = [];
const start = now();
await Promise.all(
  sessions.map(async ({ round }, w) => {
    const first = start + (periodMs * w) / conns;
    for (let i = 0; i < rounds; i++) {
      const due = first + periodMs * i;
      await sleepUntil(due);
      await round();
      const ms = now() - due;
      for (let d = 0; d < depth; d++) lat.push(ms);
    }
  }),
);
for (const { client } of sessions) client.close();
lat.sort((x, y) => x - y);
const q = (p) => lat[Math.min(lat.length - 1, Math.ceil(p * lat.length) - 1)];
const r3 = (x) => Math.round(x * 1000) / 1000;
console.log(JSON.stringify({ sdk: "ts", count: lat.length, conns, depth, p50_ms: r3(q(0.5)), p95_ms: r3(q(0.95)), p99_ms: r3(q(0.99)) }));
