// Every operation and every error class a real node can be made to answer, against `ronode`
// started by the test (the debug or release build; RONODE_BIN to choose).

import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import {
  Client,
  ConnectionError,
  Forbidden,
  IdentityError,
  NotFound,
  Quota,
  StoreFull,
  TooLarge,
  Unauthorized,
  addrOf,
  connect,
  toHex,
  wire,
} from "../dist/index.js";
import { bytes, startNode, within } from "./support/node.js";

/** Byte equality whatever the Uint8Array subclass (the client hands out Buffers). */
const sameBytes = (a, b) => assert.ok(Buffer.from(a).equals(Buffer.from(b)), `${a.length} bytes differ from ${b.length} expected`);

describe("against a real node", () => {
  let node;
  let put; // a capability with scope=put,gossip
  before(async () => {
    node = await startNode();
    put = node.mint("put,gossip");
  });
  after(async () => {
    await node.stop();
  });

  test("connect checks the pinned NodeId and learns the limits from HELLO", async () => {
    const c = await connect(node.addr);
    assert.equal(c.nodeId, node.nodeId);
    assert.deepEqual(c.hello, {
      max_frame: 1048576,
      max_inflight: 64,
      flags_supported: 255,
      versions: [1],
      transports: ["tcp+tls"],
    });
    assert.ok((await c.ping()) >= 0);
    c.close();

    const other = "ab".repeat(32);
    await assert.rejects(connect(node.listen, { nodeId: other }), (e) => {
      assert.ok(e instanceof IdentityError, String(e));
      assert.match(e.message, new RegExp(`dialled NodeId ${other}, .* is ${node.nodeId}`));
      return true;
    });
  });

  test("a HELLO lowering max_frame is honoured: a 150 kB object comes in small frames", async () => {
    const c = await connect(node.addr, { maxFrame: 4096 });
    assert.equal(c.hello.max_frame, 4096);
    const body = bytes(150_000, 11);
    const r = await c.put(body, { cap: put });
    sameBytes(await c.get(r.addr), body);
    c.close();
  });

  test("put, get (verified), head, ranges", async () => {
    const c = await connect(node.addr);
    const hello = new TextEncoder().encode("hello world");
    const r = await c.put(hello, { cap: put });
    assert.deepEqual(r, { addr: addrOf(hello), size: 11, stored: true });
    assert.equal(r.addr, "b3:d74981efa70a0c880b8d8c1985d075dbcbf679b99a5f9914e5aaf96b831a9e24");
    // A duplicate PUT of an object the node verified succeeds without writing it.
    assert.equal((await c.put(hello, { cap: put })).stored, false);
    sameBytes(await c.get(r.addr), hello);
    assert.equal(await c.head(r.addr), 11);
    const dec = (b) => Buffer.from(b).toString();
    assert.equal(dec(await c.get(r.addr, { range: { start: 6, end: 100 } })), "world");
    assert.equal(dec(await c.get(r.addr, { range: { start: 0, end: 5 } })), "hello");
    assert.equal((await c.get(r.addr, { range: { start: 11, end: 20 } })).length, 0);
    await assert.rejects(c.get(r.addr, { range: { start: 5, end: 5 } }), RangeError);
    const empty = await c.put(new Uint8Array(0), { cap: put });
    assert.equal(empty.addr, "b3:af1349b9f5f9a1a6a0404dea36dcc9499bcb25c9adc112b7cc9a93cae41f3262");
    assert.equal((await c.get(empty.addr)).length, 0);
    c.close();
  });

  test("a multi-frame object, whole and as a stream", async () => {
    const c = await connect(node.addr);
    const body = bytes(1_500_000, 7); // 23 frames of 64 KiB on the way back, 2 MiB-class upload
    const r = await c.put(body, { cap: put });
    assert.equal(r.size, body.length);
    sameBytes(await c.get(r.addr), body);
    const pieces = [];
    // A slow reader: the stream pauses the session instead of buffering without bound.
    const reader = c.getStream(r.addr, { highWaterMark: 2 }).getReader();
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      pieces.push(value);
      await new Promise((go) => setImmediate(go));
    }
    assert.ok(pieces.length > 2, `${pieces.length} pieces`);
    assert.deepEqual(Buffer.concat(pieces), Buffer.from(body));
    // Other requests on the same session still work after the stream.
    assert.equal(await c.head(r.addr), body.length);
    c.close();
  });

  test("typed errors: NotFound, Unauthorized, Forbidden", async () => {
    const c = await connect(node.addr, { retry: false });
    const missing = addrOf(new TextEncoder().encode("never stored"));
    await assert.rejects(c.get(missing), (e) => e instanceof NotFound && e.status === 404 && e.reason === "not_found" && !e.retryable);
    await assert.rejects(c.head(missing), NotFound);
    const body = bytes(100, 3);
    await assert.rejects(c.put(body), (e) => e instanceof Unauthorized && e.status === 401);
    const gossipOnly = node.mint("gossip");
    await assert.rejects(c.put(body, { cap: gossipOnly }), (e) => {
      assert.ok(e instanceof Forbidden, String(e));
      assert.match(e.detail, /scope/);
      return true;
    });
    // A holder can narrow a token, never change it: a flipped tag bit is forged.
    const forged = Buffer.from(put, "hex");
    forged[forged.length - 1] ^= 1;
    await assert.rejects(c.put(body, { cap: forged }), Forbidden);
    // None of these closed the session.
    assert.equal(c.stats.sessionsOpened, 1);
    c.close();
  });

  test("pipelining: 300 concurrent GETs on one session stay within max_inflight", async () => {
    const c = await connect(node.addr, { retry: false });
    const objs = [];
    for (let i = 0; i < 5; i++) objs.push(await c.put(bytes(1000 + i, 100 + i), { cap: put }));
    const answers = await within(
      Promise.all(Array.from({ length: 300 }, (_, i) => c.get(objs[i % 5].addr))),
      "300 pipelined GETs",
    );
    answers.forEach((a, i) => assert.equal(a.length, 1000 + (i % 5)));
    // Had the client sent a 65th unanswered request, the node would have answered 429 (no retries here).
    assert.equal(c.stats.retries, 0);
    c.close();
  });

  test("subscribe (async iterator) and publish (acknowledged), across two sessions", async () => {
    const sub = await connect(node.addr);
    const pub = await connect(node.addr, { retry: false });
    const s = await sub.subscribe("news");
    const first = s.next();
    // The node answers SUBSCRIBE before the topic's shard has registered it (noticed here), so a
    // publish from another session may pass it by: publish (a new ts each time) until delivered.
    let ts;
    let id;
    let got;
    for (let i = 0; i < 200 && got === undefined; i++) {
      ts = Date.now() + i;
      id = await pub.publish("news", "hello", { cap: put, ts });
      assert.equal(id, toHex(wire.gossipMsgId("news", ts, new TextEncoder().encode("hello"))));
      got = await Promise.race([first, new Promise((go) => setTimeout(go, 50))]);
    }
    assert.ok(got !== undefined, "no message delivered after 200 publishes");
    const { value, done } = got;
    assert.equal(done, false);
    assert.equal(value.topic, "news");
    assert.equal(Buffer.from(value.data).toString(), "hello");
    assert.equal(value.hops, 0);
    assert.equal(toHex(value.msgId), toHex(wire.gossipMsgId("news", value.ts, value.data)));
    // Later messages of the same topic come in order; drain the earlier tries' copies first.
    const seen = new Set([toHex(value.msgId)]);
    // Publishing needs scope=gossip under the default policy.
    await assert.rejects(pub.publish("news", "no cap"), Unauthorized);
    await assert.rejects(pub.publish("news", "put only", { cap: node.mint("put") }), Forbidden);
    // A retried publish (same ts and data) is acknowledged and not delivered twice.
    await pub.publish("news", "hello", { cap: put, ts });
    await pub.publish("news", "second", { cap: put });
    for (;;) {
      const next = await within(s.next(), "the second message");
      const text = Buffer.from(next.value.data).toString();
      const hex = toHex(next.value.msgId);
      assert.ok(!seen.has(hex), `message ${hex} (${text}) delivered twice`);
      seen.add(hex);
      if (text === "second") break;
      assert.equal(text, "hello");
    }
    assert.ok(seen.has(id), "the last publish of hello was delivered");
    await s.close();
    assert.deepEqual(await s.next(), { value: undefined, done: true });
    assert.equal(s.dropped, 0);
    sub.close();
    pub.close();
  });
});

describe("errors that need a configured node", () => {
  test("TooLarge: 413 oversize over objects.max_bytes", async () => {
    const node = await startNode({ RONODE_OBJECTS__MAX_BYTES: "1024" });
    try {
      const c = await connect(node.addr, { retry: false });
      await assert.rejects(c.put(bytes(2000, 1), { cap: node.mint("put") }), (e) => e instanceof TooLarge && e.status === 413 && e.reason === "oversize");
      assert.equal((await c.put(bytes(1024, 1), { cap: node.mint("put") })).size, 1024);
      c.close();
    } finally {
      await node.stop();
    }
  });

  test("StoreFull: 507 store_full at store.capacity_bytes", async () => {
    const node = await startNode({ RONODE_STORE__CAPACITY_BYTES: "1048576", RONODE_OBJECTS__MAX_BYTES: "1048576" });
    try {
      const c = await connect(node.addr, { retry: false });
      const cap = node.mint("put");
      // The capacity is shared out among the 2 shards (512 KiB each): PUTs of 200 kB fill one.
      let full;
      for (let i = 0; i < 12 && full === undefined; i++) {
        await c.put(bytes(200_000, i + 1), { cap }).catch((e) => {
          full = e;
        });
      }
      assert.ok(full instanceof StoreFull && full.status === 507 && !full.retryable, String(full));
      c.close();
    } finally {
      await node.stop();
    }
  });

  test("Quota: 429 with retry_after_ms, and retried with backoff until it passes", async () => {
    const node = await startNode({ RONODE_SESSION__MAX_RPS: "1", RONODE_SESSION__BURST: "1" });
    try {
      const bare = await connect(node.addr, { retry: false });
      const missing = addrOf(new Uint8Array([1]));
      const results = await Promise.allSettled([1, 2, 3].map(() => bare.head(missing)));
      const quota = results.filter((r) => r.status === "rejected" && r.reason instanceof Quota);
      assert.ok(quota.length >= 1, JSON.stringify(results.map((r) => r.reason?.name)));
      assert.ok(quota[0].reason.retryable && quota[0].reason.retryAfterMs > 0, String(quota[0].reason));
      bare.close();

      let seed = 7;
      const random = () => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31);
      const c = await connect(node.addr, { retry: { attempts: 8, baseMs: 10, maxMs: 50 }, random });
      const again = await Promise.allSettled([1, 2].map(() => c.head(missing)));
      // Every answer is NotFound in the end: the 429s in between were retried.
      assert.deepEqual(again.map((r) => r.reason?.name), ["NotFound", "NotFound"]);
      assert.ok(c.stats.retries >= 1, `retries ${c.stats.retries}`);
      c.close();
    } finally {
      await node.stop();
    }
  });

  test("GOAWAY draining on SIGTERM: the session ends, the next call fails as a ConnectionError", async () => {
    const node = await startNode();
    const c = await connect(node.addr, { retry: { attempts: 2, baseMs: 1, maxMs: 1 } });
    const goaway = new Promise((res) => c.session.once("goaway", res));
    const closed = new Promise((res) => c.session.once("closed", res));
    await node.stop();
    assert.equal((await within(goaway, "GOAWAY")).reason, "draining");
    assert.ok((await within(closed, "session end")) instanceof ConnectionError);
    await assert.rejects(c.head(addrOf(new Uint8Array(0))), ConnectionError);
    c.close();
  });

  test("the address forms are strict", () => {
    assert.throws(() => new Client("127.0.0.1"), TypeError);
    assert.throws(() => new Client("127.0.0.1:9500#ABC"), TypeError);
    const c = new Client("[::1]:9500#" + "a".repeat(64));
    assert.equal(c.host, "::1");
    assert.equal(c.nodeId, "a".repeat(64));
  });
});

test("the README's example runs against a node", async () => {
  const { execFile } = await import("node:child_process");
  const node = await startNode();
  try {
    const out = await within(
      new Promise((res, rej) =>
        execFile(process.execPath, [new URL("../examples/quickstart.js", import.meta.url).pathname], {
          env: { ...process.env, NODE: node.addr, CAP: node.mint("put,gossip") },
        }, (err, stdout, stderr) => (err ? rej(new Error(`${err.message}\n${stderr}`)) : res(stdout))),
      ),
      "examples/quickstart.js",
    );
    assert.match(out, new RegExp(`connected to ${node.nodeId}`));
    assert.match(out, /put b3:d74981efa70a0c880b8d8c1985d075dbcbf679b99a5f9914e5aaf96b831a9e24 \(11 bytes/);
    assert.match(out, /get: hello world; head: 11 bytes/);
    assert.match(out, /range 6\.\.11: world/);
    assert.match(out, /as expected, NotFound: no object b3:0{64}/);
    assert.match(out, /message received on news: ronode from TypeScript/);
  } finally {
    await node.stop();
  }
});
