// Byte-identical encoding: the golden frames of the wire spec and every example of
// docs/PROTOCOL.md, built with this package's encoders and read back with its decoders.

import assert from "node:assert/strict";
import { existsSync, readFileSync } from "node:fs";
import { dirname, resolve } from "node:path";
import { test } from "node:test";
import { fileURLToPath } from "node:url";
import {
  BadRequest,
  Busy,
  Forbidden,
  Internal,
  NotFound,
  NotReady,
  NodeError,
  ProtocolError,
  Quota,
  SlowClient,
  StoreFull,
  TooLarge,
  Unauthorized,
  UpstreamTimeout,
  BadDigest,
  addrOf,
  blake3Keyed,
  nodeError,
  nodeIdOf,
  parseAddr,
  toHex,
  wire,
} from "../dist/index.js";
import { assignments, examples, frame, frames } from "./support/page.js";

const { App, Flags, encodeFrame, decodeFrame, encodeCbor, decodeCbor, FrameReader } = wire;
const here = dirname(fileURLToPath(import.meta.url));
const utf8 = (s) => Buffer.from(s, "utf8");
const hex = (s) => Buffer.from(s.replace(/\s+/g, ""), "hex");
const HELLO_ADDR = parseAddr("b3:d74981efa70a0c880b8d8c1985d075dbcbf679b99a5f9914e5aaf96b831a9e24");
const ex = examples();

// The wire spec's golden frames, as it writes them (hex, spaces only for reading).
const GOLDEN = {
  hello_request: "00000036 0001 0001 0000 0000 000000000000000000000000000000aa 0000 000000000000002a 7b227561223a2273646b2f302e31227d",
  hello_reply_header: "0000008b00010002 00c8 0000 000000000000000000000000000000bb 0000 0000000000000007",
  resp_app_200: "0000003100010002 00c8 00c8 000000000000000000000000000000dd 0000 000000000000007b 68656c6c6f20776f726c64",
};
const DEFAULT_HELLO_REPLY = '{"max_frame":1048576,"max_inflight":64,"flags_supported":255,"versions":[1],"transports":["tcp+tls"]}';

test("the wire spec's golden frames, encoded byte for byte", () => {
  const hello = encodeFrame({ flags: Flags.REQ, app: App.CONTROL, tenant: 0xaan, corrId: 42, payload: wire.helloRequest("sdk/0.1") });
  assert.equal(hello.toString("hex"), hex(GOLDEN.hello_request).toString("hex"));

  const reply = encodeFrame({ flags: Flags.RESP, code: 200, app: App.CONTROL, tenant: 0xbbn, corrId: 7, payload: utf8(DEFAULT_HELLO_REPLY) });
  assert.equal(reply.length, 139);
  assert.equal(reply.subarray(0, 38).toString("hex"), hex(GOLDEN.hello_reply_header).toString("hex"));
  assert.deepEqual(wire.parseHelloReply(decodeFrame(reply).payload), JSON.parse(DEFAULT_HELLO_REPLY));

  const r200 = encodeFrame({ flags: Flags.RESP, code: 200, app: 200, tenant: 0xddn, corrId: 123, payload: utf8("hello world") });
  assert.equal(r200.toString("hex"), hex(GOLDEN.resp_app_200).toString("hex"));
  const back = decodeFrame(r200);
  assert.equal(back.app, 200);
  assert.equal(back.tenant, 0xddn);
  assert.equal(back.corrId, 123);
});

test("the golden frames above are the ones the wire spec holds, when it is beside the repository", (t) => {
  const spec = resolve(here, "../../../../../shared/spec/WIRE.md");
  if (!existsSync(spec)) {
    // docs/PROTOCOL.md stands alone and the next tests check its copies of these frames.
    t.skip("no ../shared/spec/WIRE.md beside the repository");
    return;
  }
  const text = readFileSync(spec, "utf8");
  for (const [name, golden] of Object.entries(GOLDEN)) assert.ok(text.includes("`" + golden), `${name} not found in WIRE.md as written here`);
});

test("every frame example of the page decodes and encodes back to the same bytes", () => {
  let n = 0;
  for (const [name, lines] of ex) {
    for (const f of frames(lines)) {
      if (f.bytes === null) continue; // the stream example elides its bodies
      const d = decodeFrame(f.bytes);
      const again = encodeFrame({ flags: d.flags, code: d.code, app: d.app, tenant: d.tenant, corrId: d.corrId, cap: d.cap, payload: d.payload });
      assert.equal(again.toString("hex"), f.bytes.toString("hex"), name);
      n++;
    }
  }
  assert.ok(n >= 30, `only ${n} frame examples found on the page`);
});

test("page: control plane (HELLO, PING, GOAWAY, the app 200 frame)", () => {
  const req = (corrId, payload, tenant = 0n) => encodeFrame({ flags: Flags.REQ, app: App.CONTROL, tenant, corrId, payload });
  assert.deepEqual(req(42, wire.helloRequest("sdk/0.1"), 0xaan), frame(ex, "hello_request"));
  assert.deepEqual(req(1, wire.helloRequest(null, 65536)), frame(ex, "hello_lower_max_frame"));
  assert.deepEqual(
    encodeFrame({ flags: Flags.RESP, code: 200, app: App.CONTROL, tenant: 0xbbn, corrId: 7, payload: utf8(DEFAULT_HELLO_REPLY) }),
    frame(ex, "hello_reply"),
  );
  assert.equal(wire.parseHelloReply(decodeFrame(frame(ex, "hello_reply")).payload).max_inflight, 64);
  assert.deepEqual(req(2, wire.pingRequest(99)), frame(ex, "ping"));
  assert.equal(wire.parsePong(decodeFrame(frame(ex, "pong")).payload), 99);
  const goaway = encodeFrame({ flags: Flags.EVENT, app: App.CONTROL, corrId: 0, payload: wire.goawayEvent("draining", 41) });
  assert.deepEqual(goaway, frame(ex, "goaway"));
  assert.deepEqual(wire.parseGoaway(decodeFrame(goaway).payload), { reason: "draining", last_corr_id: 41 });
  assert.deepEqual(
    encodeFrame({ flags: Flags.RESP, code: 200, app: 200, tenant: 0xddn, corrId: 123, payload: utf8("hello world") }),
    frame(ex, "resp_app_200"),
  );
  // The COMP example decodes (its zstd payload is kept as is: this client never compresses).
  const comp = decodeFrame(frame(ex, "comp_event"));
  assert.equal(comp.flags, Flags.EVENT | Flags.COMP);
  assert.deepEqual(comp.payload.subarray(0, 4), Buffer.from("28b52ffd", "hex"));
});

test("page: objects (GET, ranges, HEAD, PUT with the example capability, answers)", () => {
  const objReq = (corrId, payload, extra = {}) => encodeFrame({ flags: Flags.REQ, app: App.OBJECTS, corrId, payload, ...extra });
  assert.deepEqual(objReq(1, wire.getRequest(HELLO_ADDR)), frame(ex, "objects_get"));
  assert.deepEqual(objReq(2, wire.getRequest(HELLO_ADDR, { start: 6, end: 100 })), frame(ex, "objects_get_range"));
  assert.deepEqual(objReq(5, wire.headRequest(HELLO_ADDR)), frame(ex, "objects_head"));

  const got = decodeFrame(frame(ex, "objects_get_response"));
  assert.equal(addrOf(got.payload), "b3:" + toHex(HELLO_ADDR));
  const ranged = decodeFrame(frame(ex, "objects_get_range_response"));
  assert.equal(ranged.code, 206);
  assert.equal(Buffer.from(ranged.payload).toString(), "world");
  assert.equal(wire.parseHeadResponse(decodeFrame(frame(ex, "objects_head_response")).payload), 11);

  // The capability of section 10.1, re-encoded from its fields: the same CBOR bytes.
  const cap = encodeCbor({
    v: 1,
    kid: utf8("rootkey1"),
    caveats: ["scope=get,put", "tenant=0xaa", "exp=1700003600"],
    tag: hex("f0ab8f012eb9e0d96c5599fffb74511436d53fc6180dd4f523d4b5858208a94e"),
  });
  const tokenHex = ex
    .get("cap_token")
    .map((l) => l.split("#")[0].replace(/\s+/g, ""))
    .join("");
  assert.equal(cap.toString("hex"), tokenHex);
  const start = encodeFrame({ flags: Flags.REQ | Flags.START, app: App.OBJECTS, tenant: 0xaan, corrId: 3, cap, payload: wire.putRequest(HELLO_ADDR, 11) });
  assert.deepEqual(start, frame(ex, "objects_put_start"));
  const end = encodeFrame({ flags: Flags.REQ | Flags.END, app: App.OBJECTS, tenant: 0xaan, corrId: 3, payload: utf8("hello world") });
  assert.deepEqual(end, frame(ex, "objects_put_end"));
  const put = wire.parsePutResponse(decodeFrame(frame(ex, "objects_put_response")).payload);
  assert.deepEqual(put, { addr: new Uint8Array(HELLO_ADDR), size: 11, stored: true });
  assert.deepEqual({ ...decodeCbor(cap) }, { v: 1, kid: new Uint8Array(utf8("rootkey1")), caveats: ["scope=get,put", "tenant=0xaa", "exp=1700003600"], tag: new Uint8Array(hex("f0ab8f012eb9e0d96c5599fffb74511436d53fc6180dd4f523d4b5858208a94e")) });

  // The stream example: START, a middle frame, END, each with the status, 65,536 bytes a chunk.
  const stream = frames(ex.get("objects_get_stream"));
  const flags = [Flags.RESP | Flags.START, Flags.RESP, Flags.RESP | Flags.END];
  const sizes = [65536, 65536, 150000 - 131072];
  stream.forEach((f, i) => {
    const built = encodeFrame({ flags: flags[i], code: 200, app: App.OBJECTS, corrId: 4, payload: Buffer.alloc(sizes[i]) });
    assert.deepEqual(built.subarray(0, 38), f.header, `stream frame ${i}`);
  });
});

test("page: error bodies map to their typed errors", () => {
  const err = (name) => {
    const f = decodeFrame(frame(ex, name));
    return nodeError(wire.parseErrorBody(f.app, f.code, f.payload));
  };
  const busy = err("error_busy");
  assert.ok(busy instanceof Busy && busy.retryable && busy.retryAfterMs === 250 && busy.corrId === 9, String(busy));
  const forbidden = err("objects_put_forbidden");
  assert.ok(forbidden instanceof Forbidden && !forbidden.retryable && forbidden.status === 403);
  assert.equal(forbidden.detail, "capability expired at 1700003600 (now 1700003600)");
  assert.ok(err("objects_not_found") instanceof NotFound);
  const quota = err("gossip_error"); // a CBOR error body (app 2)
  assert.ok(quota instanceof Quota && quota.retryAfterMs === 1000 && quota.corrId === 5, String(quota));

  // Section 4's table: every label to its class; retryable exactly for the five it names.
  const table = [
    ["malformed", 400, BadRequest, false],
    ["bad_sequence", 400, BadRequest, false],
    ["bad_digest", 400, BadDigest, false],
    ["bad_sig", 400, BadRequest, false],
    ["unauthorized", 401, Unauthorized, false],
    ["forbidden", 403, Forbidden, false],
    ["not_found", 404, NotFound, false],
    ["slow_client", 408, SlowClient, false],
    ["oversize", 413, TooLarge, false],
    ["quota", 429, Quota, true],
    ["internal", 500, Internal, true],
    ["busy", 503, Busy, true],
    ["not_ready", 503, NotReady, true],
    ["timeout", 504, UpstreamTimeout, true],
    ["store_full", 507, StoreFull, false],
  ];
  for (const [reason, code, cls, retryable] of table) {
    const e = nodeError({ code, reason, message: "m", retryable });
    assert.ok(e instanceof cls && e instanceof NodeError, `${reason} -> ${e.name}`);
    assert.equal(e.retryable, retryable, reason);
  }
});

test("page: gossip (msg_id, EVENTs, SUBSCRIBE, UNSUBSCRIBE, answers)", () => {
  const lines = ex.get("gossip_msg_id").filter((l) => !l.startsWith("#"));
  const id = wire.gossipMsgId("news", 1700000000000, utf8("hello"));
  assert.equal(toHex(id), lines[1]);
  const ev = { topic: "news", msgId: id, ts: 1700000000000, hops: 0, data: utf8("hello") };
  const event = encodeFrame({ flags: Flags.EVENT, app: App.GOSSIP, corrId: 0, payload: wire.gossipEvent(ev) });
  assert.deepEqual(event, frame(ex, "gossip_event"));
  const relayed = wire.parseGossipEvent(decodeFrame(frame(ex, "gossip_event_relayed")).payload);
  assert.equal(relayed.hops, 1);
  assert.deepEqual(encodeFrame({ flags: Flags.EVENT, app: App.GOSSIP, corrId: 0, payload: wire.gossipEvent(relayed) }), frame(ex, "gossip_event_relayed"));
  // A forged id is refused as a node refuses it.
  const forged = Buffer.from(wire.gossipEvent({ ...ev, data: utf8("hellO") }));
  assert.throws(() => wire.parseGossipEvent(forged), (e) => e instanceof ProtocolError && e.reason === "malformed");

  const req = (corrId, payload) => encodeFrame({ flags: Flags.REQ, app: App.GOSSIP, corrId, payload });
  assert.deepEqual(req(1, wire.subscribeRequest("news")), frame(ex, "gossip_subscribe"));
  assert.deepEqual(req(2, wire.unsubscribeRequest("news")), frame(ex, "gossip_unsubscribe"));
  wire.parseGossipOk(decodeFrame(frame(ex, "gossip_ok")).payload);
});

test("page: every CBOR payload of the page decodes and re-encodes to the same bytes", () => {
  let n = 0;
  for (const [name, lines] of ex) {
    for (const f of frames(lines)) {
      if (f.bytes === null) continue;
      const d = decodeFrame(f.bytes);
      if (d.app < 1 || d.app > 3 || (d.flags & Flags.COMP) !== 0 || d.payload.length === 0) continue;
      if (d.app === 1 && ((d.flags & Flags.RESP) === 0 ? (d.flags & Flags.END) !== 0 : d.code !== 200 || name === "objects_get_response")) continue; // raw bodies, JSON errors
      assert.equal(encodeCbor(decodeCbor(d.payload)).toString("hex"), Buffer.from(d.payload).toString("hex"), name);
      n++;
    }
  }
  assert.ok(n >= 15, `only ${n} CBOR payloads`);
});

test("page: addresses, the capability tag chain, the NodeId derivation", () => {
  for (const line of ex.get("object_addresses")) {
    const m = /^"(.*)"\s+-> (b3:[0-9a-f]{64})$/.exec(line);
    assert.ok(m, line);
    assert.equal(addrOf(utf8(m[1])), m[2]);
  }
  const chain = assignments(ex.get("cap_chain"));
  let tag = blake3Keyed(hex(chain.get("root_key")), utf8("rootkey1"));
  assert.equal(toHex(tag), chain.get("tag_0"));
  [["tag_1", "scope=get,put"], ["tag_2", "tenant=0xaa"], ["tag_3", "exp=1700003600"]].forEach(([k, caveat]) => {
    tag = blake3Keyed(tag, utf8(caveat));
    assert.equal(toHex(tag), chain.get(k), k);
  });
  const id = assignments(ex.get("identity_derivation"));
  assert.equal(nodeIdOf(hex(id.get("ed25519_pk")), hex(id.get("ml_dsa_pk_hash"))), id.get("NodeId"));
});

test("addresses parse strictly", () => {
  for (const bad of ["B3:" + "a".repeat(64), "b3:" + "A".repeat(64), "b3:" + "a".repeat(63), "b3:" + "g".repeat(64), "a".repeat(64)]) {
    assert.throws(() => parseAddr(bad), TypeError, bad);
  }
});

test("frame reader: any split of the input gives the same frames; bad headers are named", () => {
  const all = Buffer.concat([frame(ex, "hello_reply"), frame(ex, "objects_get_response"), frame(ex, "gossip_event")]);
  for (const step of [1, 5, 37, 38, 39, 100, all.length]) {
    const r = new FrameReader();
    const got = [];
    for (let at = 0; at < all.length; at += step) {
      r.push(all.subarray(at, at + step));
      for (let f = r.next(); f !== undefined; f = r.next()) got.push(f);
    }
    assert.deepEqual(got.map((f) => f.corrId), [7, 1, 0], `step ${step}`);
    assert.equal(Buffer.from(got[1].payload).toString(), "hello world");
    assert.equal(r.bufferedBytes, 0);
  }
  const bad = (mutate, label, maxFrame) => {
    const b = Buffer.from(frame(ex, "pong"));
    mutate(b);
    const r = new FrameReader(maxFrame);
    r.push(b);
    assert.throws(() => r.next(), (e) => e instanceof ProtocolError && e.reason === label, label);
  };
  bad((b) => b.writeUInt32BE(37, 0), "bad_len");
  bad(() => {}, "oversize", 40);
  bad((b) => b.writeUInt16BE(2, 4), "bad_version");
  bad((b) => b.writeUInt16BE(0x0102, 6), "bad_flags");
  bad((b) => b.writeUInt16BE(0x0003, 6), "bad_flags");
  bad((b) => b.writeUInt16BE(1, 28), "cap_on_non_start");
  bad((b) => {
    b.writeUInt16BE(Flags.RESP | Flags.START, 6);
    b.writeUInt16BE(100, 28);
  }, "cap_out_of_bounds");
  bad((b) => b.writeUInt16BE(201, 8), "bad_code");
  // A hostile len is refused from its header alone, before any of its body is buffered.
  const r = new FrameReader();
  const h = Buffer.from(frame(ex, "pong").subarray(0, 38));
  h.writeUInt32BE(0xffff_ffff, 0);
  r.push(h);
  assert.throws(() => r.next(), (e) => e.reason === "oversize");
});

test("CBOR decoding is strict (section 5)", () => {
  const refused = {
    "indefinite map": "bf6161 01ff",
    "a tag": "c11a514b67b0",
    "a float": "fa3f800000",
    "a negative integer": "20",
    "trailing bytes": "0101",
    "cut short": "5820aa",
    "duplicate key": "a2616101616102",
    "a non-text key": "a10101",
    "undefined": "f7",
    "nine levels of nesting": "818181818181818181 01",
  };
  for (const [what, h] of Object.entries(refused)) {
    assert.throws(() => decodeCbor(hex(h)), (e) => e instanceof ProtocolError && e.reason === "malformed", what);
  }
  assert.deepEqual(decodeCbor(hex("8181818181818101")), [[[[[[[1]]]]]]]);
  // Any integer width is accepted when reading; the shortest is written.
  assert.equal(decodeCbor(hex("1b000000000000000b")), 11);
  assert.equal(encodeCbor(11).toString("hex"), "0b");
  assert.equal(encodeCbor(1700000000000).toString("hex"), "1b0000018bcfe56800");
  assert.equal(decodeCbor(hex("1bffffffffffffffff")), 0xffff_ffff_ffff_ffffn);
});

test("backoff: full jitter over a doubling window, on top of the node's retry_after_ms", () => {
  const p = wire.retryPolicy({ attempts: 5, baseMs: 100, maxMs: 1000 }, () => 0.5);
  const plain = new ProtocolError("x", "y");
  assert.deepEqual([1, 2, 3, 4, 5].map((i) => wire.backoffMs(p, i, plain)), [50, 100, 200, 400, 500]);
  const busy = nodeError({ code: 503, reason: "busy", message: "", retryable: true, retry_after_ms: 250 });
  assert.equal(wire.backoffMs(p, 1, busy), 300);
  const r = wire.seededRandom(42);
  const xs = Array.from({ length: 1000 }, r);
  assert.ok(xs.every((x) => x >= 0 && x < 1));
  assert.ok(new Set(xs).size > 990);
});

test("frame reader: the partial frame's payload so far, for hashing while the rest arrives", () => {
  const put = frame(ex, "objects_put_start"); // a frame with a cap: the payload starts past it
  const payload = decodeFrame(put).payload;
  for (const step of [10, 38, 50, 120, 150]) {
    const r = new FrameReader();
    for (let at = 0; at < put.length; at += step) {
      r.push(put.subarray(at, at + step));
      const whole = at + step >= put.length;
      const f = r.next(); // as the session does: whole frames first, then what is partial
      const part = r.partial();
      if (whole) {
        assert.equal(part, undefined, "nothing is partial once the frame is whole");
        assert.deepEqual(Buffer.from(f.payload), Buffer.from(payload));
      } else if (at + step >= 38) {
        assert.equal(f, undefined);
        assert.equal(part.corrId, 3);
        assert.equal(part.flags, Flags.REQ | Flags.START);
        const so = Buffer.concat(part.payload);
        const capEnd = 38 + decodeFrame(put).cap.length;
        assert.deepEqual(so, put.subarray(capEnd, Math.max(capEnd, at + step)), `step ${step} at ${at}`);
      }
    }
  }
});
