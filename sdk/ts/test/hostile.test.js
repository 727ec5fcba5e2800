// A fake node that misbehaves: bytes that do not hash to their address, an answer to nothing,
// a certificate that is not the one dialled, refusals to retry, GOAWAY mid-pipeline.

import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import {
  BadDigest,
  Busy,
  ConnectionError,
  IdentityError,
  ProtocolError,
  addrOf,
  connect,
  nodeIdFromCert,
  wire,
} from "../dist/index.js";
import { fakeNode, nodeCert } from "./support/fake-node.js";
import { within } from "./support/node.js";

const { Flags, App, decodeCbor } = wire;
const REAL = Buffer.from("the bytes that were asked for");
const FAKE = Buffer.from("other bytes, served instead");
const REAL_ADDR = addrOf(REAL);
const busyBody = (corrId) =>
  Buffer.from(JSON.stringify({ code: 503, reason: "busy", message: "work queue full", retryable: true, corr_id: corrId, retry_after_ms: 5 }));

let cert;
before(() => {
  cert = nodeCert();
});

/** The address a GET frame asks for, as `b3:` text. */
function askedAddr(f) {
  return "b3:" + Buffer.from(decodeCbor(f.payload).get.addr).toString("hex");
}

test("a GET answered with bytes that do not hash to the address is refused (whole and streamed)", async () => {
  const node = await fakeNode((f, reply) => {
    // One frame for the whole GET, and a START..END stream for the streamed one.
    if (f.corrId % 2 === 0) reply({ flags: Flags.RESP, code: 200, app: App.OBJECTS, corrId: f.corrId, payload: FAKE });
    else {
      reply({ flags: Flags.RESP | Flags.START, code: 200, app: App.OBJECTS, corrId: f.corrId, payload: FAKE.subarray(0, 10) });
      reply({ flags: Flags.RESP | Flags.END, code: 200, app: App.OBJECTS, corrId: f.corrId, payload: FAKE.subarray(10) });
    }
  }, cert);
  try {
    const c = await connect(`127.0.0.1:${node.port}#${node.nodeId}`);
    await assert.rejects(c.get(REAL_ADDR), (e) => {
      assert.ok(e instanceof BadDigest && !e.retryable, String(e));
      assert.match(e.message, new RegExp(`hash to ${addrOf(FAKE)}, not to the address ${REAL_ADDR}`));
      return true;
    });
    assert.equal(c.stats.retries, 0, "a wrong digest is not retried");
    const reader = c.getStream(REAL_ADDR).getReader();
    const read = async () => {
      for (;;) if ((await reader.read()).done) return;
    };
    await assert.rejects(within(read(), "the stream's end"), BadDigest);
    assert.equal(askedAddr(node.received.at(-1)), REAL_ADDR);
    c.close();
  } finally {
    await node.close();
  }
});

test("the NodeId is read from the certificate; a different pinned one is refused", async () => {
  const node = await fakeNode(() => {}, cert);
  try {
    assert.equal(nodeIdFromCert(cert.der), node.nodeId);
    assert.throws(() => nodeIdFromCert(nodeCert("cd".repeat(32), ["ron1:" + "cd".repeat(32), "ron1:" + "cd".repeat(32)]).der), /2 CommonNames/);
    assert.throws(() => nodeIdFromCert(nodeCert("cd".repeat(32), []).der), /0 CommonNames/);
    const c = await connect(`127.0.0.1:${node.port}`);
    assert.equal(c.nodeId, node.nodeId);
    c.close();
    const wrong = nodeCert("ce".repeat(32)).nodeId;
    await assert.rejects(connect(`127.0.0.1:${node.port}#${wrong}`), IdentityError);
  } finally {
    await node.close();
  }
});

test("a certificate that is not of the node form is refused", async () => {
  const bad = nodeCert("cd".repeat(32), ["ron1:" + "CD".repeat(32)]); // uppercase: not a node's CommonName
  const node = await fakeNode(() => {}, bad);
  try {
    await assert.rejects(connect(`127.0.0.1:${node.port}`, { retry: false }), (e) => e instanceof IdentityError && /CommonName/.test(e.message));
  } finally {
    await node.close();
  }
});

test("503 busy is retried after retry_after_ms plus jitter, then the GET succeeds", async () => {
  let gets = 0;
  const node = await fakeNode((f, reply) => {
    gets++;
    if (gets === 1) reply({ flags: Flags.RESP, code: 503, app: App.OBJECTS, corrId: f.corrId, payload: busyBody(f.corrId) });
    else reply({ flags: Flags.RESP, code: 200, app: App.OBJECTS, corrId: f.corrId, payload: REAL });
  }, cert);
  try {
    const c = await connect(`127.0.0.1:${node.port}`, { retry: { attempts: 3, baseMs: 1, maxMs: 2 } });
    assert.deepEqual(Buffer.from(await c.get(REAL_ADDR)), REAL);
    assert.equal(c.stats.retries, 1);
    assert.equal(gets, 2);
    c.close();
    gets = 0;
    const bare = await connect(`127.0.0.1:${node.port}`, { retry: false });
    await assert.rejects(bare.get(REAL_ADDR), (e) => e instanceof Busy && e.retryAfterMs === 5 && e.retryable);
    bare.close();
  } finally {
    await node.close();
  }
});

test("an answer to a request never sent ends the session with a ProtocolError", async () => {
  const node = await fakeNode((f, reply) => {
    reply({ flags: Flags.RESP, code: 200, app: App.OBJECTS, corrId: f.corrId + 1000, payload: REAL });
  }, cert);
  try {
    const c = await connect(`127.0.0.1:${node.port}`, { retry: false });
    await assert.rejects(c.get(REAL_ADDR), (e) => e instanceof ProtocolError && e.reason === "bad_sequence");
    assert.equal(c.session.usable, false);
    c.close();
  } finally {
    await node.close();
  }
});

test("GOAWAY: requests up to last_corr_id are answered, later ones fail retryable", async () => {
  const seen = [];
  const node = await fakeNode((f, reply) => {
    seen.push(f.corrId);
    if (seen.length < 3) return;
    // Three GETs in flight: take the first two, refuse the third.
    reply({ flags: Flags.EVENT, app: App.CONTROL, corrId: 0, payload: wire.goawayEvent("draining", seen[1]) });
    for (const id of seen.slice(0, 2)) reply({ flags: Flags.RESP, code: 200, app: App.OBJECTS, corrId: id, payload: REAL });
  }, cert);
  try {
    const c = await connect(`127.0.0.1:${node.port}`, { retry: false });
    const results = await within(Promise.allSettled([c.get(REAL_ADDR), c.get(REAL_ADDR), c.get(REAL_ADDR)]), "three GETs");
    assert.deepEqual(results.map((r) => r.status), ["fulfilled", "fulfilled", "rejected"]);
    assert.ok(results[2].reason instanceof ConnectionError && results[2].reason.retryable && results[2].reason.reason === "goaway");
    assert.deepEqual(c.session.goingAway, { reason: "draining", lastCorrId: seen[1] });
    c.close();
  } finally {
    await node.close();
  }
});

test("the HELLO this client sends is the page's, and PUT streams START (cap) .. END", async () => {
  const node = await fakeNode((f, reply) => {
    if ((f.flags & Flags.END) !== 0) {
      const put = { addr: Buffer.from(REAL_ADDR.slice(3), "hex"), size: REAL.length, stored: true };
      reply({ flags: Flags.RESP, code: 200, app: App.OBJECTS, tenant: f.tenant, corrId: f.corrId, payload: wire.encodeCbor(put) });
    }
  }, cert);
  try {
    const cap = new Uint8Array([0xa0]);
    const c = await connect(`127.0.0.1:${node.port}`, { ua: "sdk/0.1", tenant: 0xaa, maxFrame: 4096 });
    assert.deepEqual(await c.put(REAL, { cap }), { addr: REAL_ADDR, size: REAL.length, stored: true });
    const [hello, start, end] = node.received;
    assert.equal(Buffer.from(hello.payload).toString(), '{"ua":"sdk/0.1","max_frame":4096}');
    assert.equal(hello.tenant, 0xaan);
    assert.equal(start.flags, Flags.REQ | Flags.START);
    assert.deepEqual(Buffer.from(start.cap), Buffer.from(cap));
    assert.deepEqual(Buffer.from(start.payload), wire.putRequest(Buffer.from(REAL_ADDR.slice(3), "hex"), REAL.length));
    assert.equal(end.flags, Flags.REQ | Flags.END);
    assert.equal(end.corrId, start.corrId);
    assert.deepEqual(Buffer.from(end.payload), REAL);
    c.close();
  } finally {
    await node.close();
  }
});
