// Starts a real `ronode` for the tests, as engine/tests/common/mod.rs does: fresh loopback ports
// (127.0.0.1:0) and a fresh data directory, its NodeId and ports read from the lines it prints,
// every wait bounded with a message saying what did not happen.

import { spawn, execFileSync } from "node:child_process";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
const repo = resolve(here, "../../../..");
const WAIT_MS = 20_000;

/** RONODE_BIN, else the release build, else the debug build of this repository. */
export function ronodeBin() {
  const candidates = [process.env.RONODE_BIN, join(repo, "target/release/ronode"), join(repo, "target/debug/ronode")];
  for (const c of candidates) if (c && existsSync(c)) return c;
  throw new Error(`no ronode binary: set RONODE_BIN or build it (cargo build -p ronode-engine); looked at ${candidates.filter(Boolean).join(", ")}`);
}

/**
 * The environment without RONODE_* variables: the node refuses unknown ones by name (RONODE_BIN
 * is the tests' own), and an operator's knobs must not change what the tests see.
 */
function nodeEnv() {
  return Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith("RONODE_")));
}

/** `ronode run` on fresh ports; `env` adds RONODE_* knobs. Resolves once it says where it listens. */
export async function startNode(env = {}) {
  const dir = mkdtempSync(join(tmpdir(), "ronode-sdk-ts-"));
  const child = spawn(
    ronodeBin(),
    ["run", "--listen", "127.0.0.1:0", "--admin", "127.0.0.1:0", "--data-dir", dir, "--shards", "2", "--pin", "off"],
    { env: { ...nodeEnv(), ...env }, stdio: ["ignore", "pipe", "pipe"] },
  );
  let stderr = "";
  child.stderr.on("data", (d) => {
    stderr = (stderr + d).slice(-4000);
  });
  const exited = new Promise((res) => child.once("exit", (code, signal) => res({ code, signal })));
  const info = await new Promise((res, rej) => {
    const got = {};
    const timer = setTimeout(() => {
      child.kill("SIGKILL");
      rej(new Error(`ronode did not say where it listens within ${WAIT_MS} ms; stderr: ${stderr}`));
    }, WAIT_MS);
    exited.then(({ code }) => {
      clearTimeout(timer);
      rej(new Error(`ronode exited (${code}) before listening; stderr: ${stderr}`));
    });
    createInterface({ input: child.stdout }).on("line", (line) => {
      let m;
      if ((m = /^listening on (\S+)/.exec(line))) got.listen = m[1];
      else if ((m = /^admin on http:\/\/(\S+)/.exec(line))) got.admin = m[1];
      else if ((m = /node_id ([0-9a-f]{64})/.exec(line))) got.nodeId = m[1];
      if (got.listen && got.admin && got.nodeId) {
        clearTimeout(timer);
        res(got);
      }
    });
  });
  return {
    ...info,
    dir,
    /** `host:port#NodeId`. */
    addr: `${info.listen}#${info.nodeId}`,
    /** A capability of `scope` (e.g. "put", "put,gossip") minted from this node's root key, hex. */
    mint(scope, extra = []) {
      const out = execFileSync(ronodeBin(), ["cap", "mint", "--scope", scope, "--ttl", "1h", "--data-dir", dir, ...extra], { encoding: "utf8", env: nodeEnv() });
      return out.trim().split("\n").pop().trim();
    },
    /** SIGTERM; resolves with the exit status (bounded wait). */
    async stop() {
      if (child.exitCode === null && child.signalCode === null) child.kill("SIGTERM");
      const timer = setTimeout(() => child.kill("SIGKILL"), WAIT_MS);
      const status = await exited;
      clearTimeout(timer);
      rmSync(dir, { recursive: true, force: true });
      return status;
    },
    /** The sum of a metric's samples from the admin plane, e.g. `rejected_total`. */
    async metric(name) {
      const text = await (await fetch(`http://${info.admin}/metrics`)).text();
      return text
        .split("\n")
        .filter((l) => l.startsWith(name + "{") || l.startsWith(name + " "))
        .reduce((sum, l) => sum + Number(l.split(" ").pop()), 0);
    },
  };
}

/** Deterministic bytes (xorshift), different for every seed. */
export function bytes(n, seed) {
  let x = (seed | 1) >>> 0;
  const out = new Uint8Array(n);
  for (let i = 0; i < n; i++) {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    out[i] = x & 0xff;
  }
  return out;
}

/** Rejects with `what` if `p` has not settled within WAIT_MS: no test hangs. */
export function within(p, what) {
  let timer;
  return Promise.race([
    p,
    new Promise((_, rej) => {
      timer = setTimeout(() => rej(new Error(`${what}: not within ${WAIT_MS} ms`)), WAIT_MS);
    }),
  ]).finally(() => clearTimeout(timer));
}
