// Message payloads: the JSON control plane (section 3), the CBOR objects and gossip requests
// (sections 6, 7), their answers and the error bodies (section 4). Encoders write keys in the
// page's order and leave absent optional fields out, so the bytes equal the page's examples.

import { CborValue, decodeCbor, encodeCbor } from "./cbor.js";
import { ErrorBody, ProtocolError } from "./errors.js";
import { App, DEFAULT_MAX_FRAME, MIN_MAX_FRAME } from "./frame.js";
import { blake3, sameBytes } from "./ids.js";

const utf8 = new TextEncoder();
const utf8Strict = new TextDecoder("utf-8", { fatal: true });

export const MAX_UA_BYTES = 256;
export const MAX_TOPIC_BYTES = 256;

/** The HELLO reply's negotiated limits (section 3.1). */
export interface HelloReply {
  max_frame: number;
  max_inflight: number;
  flags_supported: number;
  versions: number[];
  transports: string[];
}

export function helloRequest(ua: string | null, maxFrame?: number): Buffer {
  if (ua !== null && utf8.encode(ua).length > MAX_UA_BYTES) throw new RangeError(`ua is over ${MAX_UA_BYTES} bytes`);
  if (maxFrame !== undefined && (maxFrame < MIN_MAX_FRAME || maxFrame > DEFAULT_MAX_FRAME)) {
    throw new RangeError(`max_frame ${maxFrame} is outside ${MIN_MAX_FRAME}..${DEFAULT_MAX_FRAME}`);
  }
  return Buffer.from(JSON.stringify(maxFrame === undefined ? { ua } : { ua, max_frame: maxFrame }));
}

function json(payload: Uint8Array, what: string): Record<string, unknown> {
  let v: unknown;
  try {
    v = JSON.parse(utf8Strict.decode(payload));
  } catch (e) {
    throw new ProtocolError("malformed", `${what} is not JSON: ${(e as Error).message}`);
  }
  if (typeof v !== "object" || v === null || Array.isArray(v)) throw new ProtocolError("malformed", `${what} is not a JSON object`);
  return v as Record<string, unknown>;
}

const isU32 = (v: unknown): v is number => Number.isInteger(v) && (v as number) >= 0 && (v as number) <= 0xffff_ffff;

export function parseHelloReply(payload: Uint8Array): HelloReply {
  const v = json(payload, "HELLO reply");
  const r = v as unknown as HelloReply;
  if (
    !isU32(r.max_frame) ||
    r.max_frame < MIN_MAX_FRAME ||
    r.max_frame > DEFAULT_MAX_FRAME ||
    !isU32(r.max_inflight) ||
    r.max_inflight < 1 ||
    !isU32(r.flags_supported) ||
    !Array.isArray(r.versions) ||
    !r.versions.includes(1) ||
    !Array.isArray(r.transports)
  ) {
    throw new ProtocolError("malformed", `HELLO reply: ${utf8Strict.decode(payload).slice(0, 300)}`);
  }
  return r;
}

export function pingRequest(nonce: number): Buffer {
  return Buffer.from(`{"ping":${nonce}}`);
}

export function parsePong(payload: Uint8Array): number {
  const v = json(payload, "PONG");
  if (!Number.isInteger(v.pong)) throw new ProtocolError("malformed", "PONG without an integer pong");
  return v.pong as number;
}

/** A GOAWAY EVENT's payload, or undefined when the control EVENT is something else. */
export function parseGoaway(payload: Uint8Array): { reason: string; last_corr_id: number } {
  const v = json(payload, "control EVENT");
  const g = v.goaway as { reason?: unknown; last_corr_id?: unknown } | undefined;
  if (typeof g !== "object" || g === null || typeof g.reason !== "string" || !Number.isInteger(g.last_corr_id)) {
    throw new ProtocolError("malformed", `control EVENT that is not a GOAWAY: ${utf8Strict.decode(payload).slice(0, 200)}`);
  }
  return { reason: g.reason, last_corr_id: g.last_corr_id as number };
}

export function goawayEvent(reason: string, lastCorrId: number): Buffer {
  return Buffer.from(JSON.stringify({ goaway: { reason, last_corr_id: lastCorrId } }));
}

/** The error body of a RESP: JSON on apps 0 and 1, CBOR on apps 2 and 3. */
export function parseErrorBody(app: number, status: number, payload: Uint8Array): ErrorBody {
  let v: Record<string, unknown>;
  if (app === App.CONTROL || app === App.OBJECTS) v = json(payload, `${status} error body`);
  else {
    const c = decodeCbor(payload);
    if (typeof c !== "object" || c === null || Array.isArray(c) || c instanceof Uint8Array) {
      throw new ProtocolError("malformed", `${status} error body is not a CBOR map`);
    }
    v = c as Record<string, unknown>;
  }
  const num = (x: unknown): number | undefined => (typeof x === "number" && Number.isInteger(x) ? x : undefined);
  if (typeof v.reason !== "string" || typeof v.message !== "string" || typeof v.retryable !== "boolean") {
    throw new ProtocolError("malformed", `${status} error body without reason, message or retryable`);
  }
  const body: ErrorBody = {
    code: num(v.code) ?? status,
    reason: v.reason,
    message: v.message,
    retryable: v.retryable,
  };
  const corr = num(v.corr_id);
  if (corr !== undefined) body.corr_id = corr;
  const after = num(v.retry_after_ms);
  if (after !== undefined) body.retry_after_ms = after;
  return body;
}

// ---- objects (app 1) ----

export interface Range {
  /** First byte offset. */
  start: number;
  /** End offset, exclusive; must be above `start`. */
  end: number;
}

/** `{"get": {"addr": h'...'}}` up to the address: a whole-object GET is this and the 32 bytes. */
const GET_PREFIX = Buffer.from("a163676574a164616464725820", "hex");

export function getRequest(addr: Uint8Array, range?: Range, hops?: number): Buffer {
  if (range === undefined && hops === undefined && addr.length === 32) {
    // The hot path: the same bytes the CBOR encoder writes, without walking a value.
    const out = Buffer.allocUnsafe(GET_PREFIX.length + 32);
    GET_PREFIX.copy(out, 0);
    out.set(addr, GET_PREFIX.length);
    return out;
  }
  let r: CborValue | undefined;
  if (range !== undefined) {
    if (!Number.isSafeInteger(range.start) || !Number.isSafeInteger(range.end) || range.start < 0 || range.start >= range.end) {
      throw new RangeError(`range ${range.start}..${range.end}: start < end is required`);
    }
    r = { start: range.start, end: range.end };
  }
  return encodeCbor({ get: { addr, range: r, hops } });
}

export function headRequest(addr: Uint8Array): Buffer {
  return encodeCbor({ head: { addr } });
}

export function putRequest(addr: Uint8Array, size: number): Buffer {
  return encodeCbor({ put: { addr, size } });
}

function cborMap(payload: Uint8Array, what: string): Record<string, CborValue> {
  const v = decodeCbor(payload);
  if (typeof v !== "object" || v === null || Array.isArray(v) || v instanceof Uint8Array) {
    throw new ProtocolError("malformed", `${what} is not a CBOR map`);
  }
  return v as Record<string, CborValue>;
}

function onlyKeys(m: Record<string, CborValue>, keys: string[], what: string): void {
  for (const k of Object.keys(m)) if (!keys.includes(k)) throw new ProtocolError("malformed", `${what}: unknown key ${k}`);
}

export function parseHeadResponse(payload: Uint8Array): number {
  const m = cborMap(payload, "HEAD answer");
  onlyKeys(m, ["size"], "HEAD answer");
  if (typeof m.size !== "number") throw new ProtocolError("malformed", "HEAD answer without a u64 size");
  return m.size;
}

/** What a PUT answered: the address, the size, and whether the node wrote it (false: it had it). */
export interface PutResult {
  addr: string;
  size: number;
  stored: boolean;
}

export function parsePutResponse(payload: Uint8Array): { addr: Uint8Array; size: number; stored: boolean } {
  const m = cborMap(payload, "PUT answer");
  onlyKeys(m, ["addr", "size", "stored"], "PUT answer");
  if (!(m.addr instanceof Uint8Array) || m.addr.length !== 32 || typeof m.size !== "number" || typeof m.stored !== "boolean") {
    throw new ProtocolError("malformed", "PUT answer is not {addr: bstr32, size: u64, stored: bool}");
  }
  return { addr: m.addr, size: m.size, stored: m.stored };
}

// ---- gossip (app 2) ----

/** A message of a topic, as received by a subscriber or sent by a publisher. */
export interface GossipMessage {
  topic: string;
  /** BLAKE3-256 of u16_be(len(topic)) || topic || u64_be(ts) || data, 32 bytes. */
  msgId: Uint8Array;
  /** The publisher's clock, unix milliseconds. */
  ts: number;
  /** Relays so far (0 at the publisher). */
  hops: number;
  data: Uint8Array;
}

function topicBytes(topic: string): Uint8Array {
  const t = utf8.encode(topic);
  if (t.length < 1 || t.length > MAX_TOPIC_BYTES) throw new RangeError(`a topic is 1 to ${MAX_TOPIC_BYTES} bytes, not ${t.length}`);
  return t;
}

/** The message id of section 7.1. */
export function gossipMsgId(topic: string, ts: number, data: Uint8Array): Uint8Array {
  const t = topicBytes(topic);
  const pre = Buffer.allocUnsafe(2 + t.length + 8 + data.length);
  pre.writeUInt16BE(t.length, 0);
  pre.set(t, 2);
  pre.writeBigUInt64BE(BigInt(ts), 2 + t.length);
  pre.set(data, 10 + t.length);
  return blake3(pre);
}

export function gossipEvent(m: GossipMessage): Buffer {
  return encodeCbor({ topic: m.topic, msg_id: m.msgId, ts: m.ts, hops: m.hops, data: m.data });
}

/** Decodes an EVENT on app 2 and checks its id (a forged id is refused, as a node does). */
export function parseGossipEvent(payload: Uint8Array): GossipMessage {
  const m = cborMap(payload, "gossip EVENT");
  onlyKeys(m, ["topic", "msg_id", "ts", "hops", "data"], "gossip EVENT");
  const { topic, msg_id, ts, hops, data } = m;
  if (
    typeof topic !== "string" ||
    !(msg_id instanceof Uint8Array) ||
    msg_id.length !== 32 ||
    typeof ts !== "number" ||
    typeof hops !== "number" ||
    hops > 255 ||
    !(data instanceof Uint8Array)
  ) {
    throw new ProtocolError("malformed", "gossip EVENT is not {topic, msg_id: bstr32, ts: u64, hops: u8, data: bstr}");
  }
  let want: Uint8Array;
  try {
    want = gossipMsgId(topic, ts, data);
  } catch (e) {
    throw new ProtocolError("malformed", `gossip EVENT: ${(e as Error).message}`);
  }
  if (!sameBytes(want, msg_id)) throw new ProtocolError("malformed", "gossip EVENT whose msg_id is not the hash of its topic, ts and data");
  return { topic, msgId: msg_id, ts, hops, data };
}

export function subscribeRequest(topic: string): Buffer {
  topicBytes(topic);
  return encodeCbor({ subscribe: { topic } });
}

export function unsubscribeRequest(topic: string): Buffer {
  topicBytes(topic);
  return encodeCbor({ unsubscribe: { topic } });
}

export function parseGossipOk(payload: Uint8Array): void {
  const m = cborMap(payload, "gossip answer");
  onlyKeys(m, ["ok"], "gossip answer");
  if (m.ok !== true) throw new ProtocolError("malformed", "gossip answer is not {ok: true}");
}
