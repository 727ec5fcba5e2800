// OAP/1 frames (docs/PROTOCOL.md section 2): the 38-byte header, encoding, and an incremental
// decoder that checks each header as soon as its 38 bytes are buffered, before the body is.

import { ProtocolError } from "./errors.js";

export const HEADER_LEN = 38;
/** The largest frame a node accepts unless HELLO lowered it (section 2.1). */
export const DEFAULT_MAX_FRAME = 1_048_576;
/** Lowest `max_frame` a HELLO may ask for (section 3.1). */
export const MIN_MAX_FRAME = 4096;

export const Flags = {
  REQ: 0x0001,
  RESP: 0x0002,
  EVENT: 0x0004,
  START: 0x0008,
  END: 0x0010,
  ACK_REQ: 0x0020,
  COMP: 0x0040,
  APP_E2E: 0x0080,
} as const;
const KNOWN_FLAGS = 0x00ff;
const KIND_FLAGS = Flags.REQ | Flags.RESP | Flags.EVENT;

export const App = { CONTROL: 0, OBJECTS: 1, GOSSIP: 2, DHT: 3 } as const;

/** The statuses of section 4: a RESP with any other code is `bad_code`. */
export const STATUSES: ReadonlySet<number> = new Set([
  200, 206, 400, 401, 403, 404, 408, 413, 429, 500, 503, 504, 507,
]);

/** One decoded frame. `cap` and `payload` may be views into the receive buffer. */
export interface Frame {
  flags: number;
  code: number;
  app: number;
  /** u128; 0 = unspecified. */
  tenant: bigint;
  /** u64 as a number: this client numbers its requests from 1 and never passes 2^53. */
  corrId: number;
  cap: Uint8Array;
  payload: Uint8Array;
}

export interface FrameInit {
  flags: number;
  code?: number;
  app: number;
  tenant?: bigint;
  corrId: number;
  cap?: Uint8Array;
  payload?: Uint8Array;
}

const EMPTY = new Uint8Array(0);
const U64_MASK = (1n << 64n) - 1n;

/** Writes the 38-byte header of a frame of `payloadLen` bytes after its cap into `out` at `at`. */
export function writeHeader(out: Buffer, at: number, f: FrameInit, capLen: number, payloadLen: number): void {
  const tenant = f.tenant ?? 0n;
  out.writeUInt32BE(HEADER_LEN + capLen + payloadLen, at);
  out.writeUInt16BE(1, at + 4);
  out.writeUInt16BE(f.flags, at + 6);
  out.writeUInt16BE(f.code ?? 0, at + 8);
  out.writeUInt16BE(f.app, at + 10);
  if (tenant === 0n) out.fill(0, at + 12, at + 28); // the usual case, without bigint arithmetic
  else {
    out.writeBigUInt64BE((tenant >> 64n) & U64_MASK, at + 12);
    out.writeBigUInt64BE(tenant & U64_MASK, at + 20);
  }
  out.writeUInt16BE(capLen, at + 28);
  // corr_id as two 32-bit halves: exact for every id below 2^53, no bigint on the hot path.
  out.writeUInt32BE(Math.floor(f.corrId / 0x1_0000_0000), at + 30);
  out.writeUInt32BE(f.corrId >>> 0, at + 34);
}

/** The whole frame's bytes. */
export function encodeFrame(f: FrameInit): Buffer {
  const cap = f.cap ?? EMPTY;
  const payload = f.payload ?? EMPTY;
  const out = Buffer.allocUnsafe(HEADER_LEN + cap.length + payload.length);
  writeHeader(out, 0, f, cap.length, payload.length);
  out.set(cap, HEADER_LEN);
  out.set(payload, HEADER_LEN + cap.length);
  return out;
}

/**
 * The header checks of section 2.4 that a client applies to what a node sends, in the table's
 * order; the first that fails names the label. Returns the frame's `len`.
 */
export function checkHeader(h: Buffer, at: number, maxFrame: number): number {
  const len = h.readUInt32BE(at);
  if (len < HEADER_LEN) throw new ProtocolError("bad_len", `frame len ${len} is below 38`);
  if (len > maxFrame) throw new ProtocolError("oversize", `frame len ${len} is over max_frame ${maxFrame}`);
  const ver = h.readUInt16BE(at + 4);
  if (ver !== 1) throw new ProtocolError("bad_version", `frame version ${ver}, expected 1`);
  const flags = h.readUInt16BE(at + 6);
  const kinds = flags & KIND_FLAGS;
  if (
    (flags & ~KNOWN_FLAGS) !== 0 ||
    (kinds !== Flags.REQ && kinds !== Flags.RESP && kinds !== Flags.EVENT) ||
    ((flags & Flags.ACK_REQ) !== 0 && kinds !== Flags.EVENT) ||
    ((flags & Flags.COMP) !== 0 && (flags & Flags.APP_E2E) !== 0)
  ) {
    throw new ProtocolError("bad_flags", `frame flags 0x${flags.toString(16)}`);
  }
  const capLen = h.readUInt16BE(at + 28);
  if (capLen > 0 && (flags & Flags.START) === 0) {
    throw new ProtocolError("cap_on_non_start", `cap_len ${capLen} without START`);
  }
  if (HEADER_LEN + capLen > len) throw new ProtocolError("cap_out_of_bounds", `cap_len ${capLen} past len ${len}`);
  const code = h.readUInt16BE(at + 8);
  if (kinds === Flags.RESP ? !STATUSES.has(code) : code !== 0) {
    throw new ProtocolError("bad_code", `code ${code} on flags 0x${flags.toString(16)}`);
  }
  return len;
}

/** Decodes one whole frame from `buf` (exactly its bytes), checking its header. */
export function decodeFrame(buf: Buffer, maxFrame = DEFAULT_MAX_FRAME): Frame {
  if (buf.length < HEADER_LEN) throw new ProtocolError("truncated", `${buf.length} bytes, a header is 38`);
  const len = checkHeader(buf, 0, maxFrame);
  if (len !== buf.length) throw new ProtocolError("truncated", `frame len ${len}, ${buf.length} bytes given`);
  return frameAt(buf, 0, len);
}

/** The u128 tenant_id at `at + 12`; 0 (the usual case) without bigint arithmetic. */
function tenantAt(buf: Buffer, at: number): bigint {
  if ((buf.readUInt32BE(at + 12) | buf.readUInt32BE(at + 16) | buf.readUInt32BE(at + 20) | buf.readUInt32BE(at + 24)) === 0) return 0n;
  return (buf.readBigUInt64BE(at + 12) << 64n) | buf.readBigUInt64BE(at + 20);
}

function frameAt(buf: Buffer, at: number, len: number): Frame {
  const capLen = buf.readUInt16BE(at + 28);
  const hi = buf.readUInt32BE(at + 30);
  const lo = buf.readUInt32BE(at + 34);
  return {
    flags: buf.readUInt16BE(at + 6),
    code: buf.readUInt16BE(at + 8),
    app: buf.readUInt16BE(at + 10),
    tenant: tenantAt(buf, at),
    // Ids at or above 2^53 are none this client sent; they map to a value no request has.
    corrId: hi >= 0x20_0000 ? -1 : hi * 0x1_0000_0000 + lo,
    cap: buf.subarray(at + HEADER_LEN, at + HEADER_LEN + capLen),
    payload: buf.subarray(at + HEADER_LEN + capLen, at + len),
  };
}

/**
 * Splits a byte stream into frames. Chunks are kept as received; a frame that lies inside one
 * chunk is handed out as a view of it (no copy), one that spans chunks is joined once.
 */
export class FrameReader {
  private chunks: Buffer[] = [];
  private buffered = 0;
  /** Offset of the first unread byte in chunks[0]. */
  private head = 0;
  /** The negotiated limit; lowered after HELLO if the client asked for less. */
  maxFrame: number;

  constructor(maxFrame = DEFAULT_MAX_FRAME) {
    this.maxFrame = maxFrame;
  }

  get bufferedBytes(): number {
    return this.buffered;
  }

  push(chunk: Buffer): void {
    if (chunk.length === 0) return;
    this.chunks.push(chunk);
    this.buffered += chunk.length;
  }

  /** The next whole frame, or undefined when more bytes are needed. Throws on a bad header. */
  next(): Frame | undefined {
    if (this.buffered < HEADER_LEN) return undefined;
    let first = this.chunks[0]!;
    if (first.length - this.head < HEADER_LEN) {
      this.coalesce(HEADER_LEN);
      first = this.chunks[0]!;
    }
    const len = checkHeader(first, this.head, this.maxFrame);
    if (this.buffered < len) return undefined;
    if (first.length - this.head < len) {
      this.coalesce(len);
      first = this.chunks[0]!;
    }
    const frame = frameAt(first, this.head, len);
    this.head += len;
    this.buffered -= len;
    if (this.head === first.length) {
      this.chunks.shift();
      this.head = 0;
    }
    return frame;
  }

  /**
   * After `next` returned undefined, the frame being received, once its header is in (and
   * checked by `next`) but not all its body: its corr_id, flags and code, and the payload bytes buffered so far as views, in order.
   * A reader can hash them while the rest is on its way.
   */
  partial(): { corrId: number; flags: number; code: number; payload: Buffer[] } | undefined {
    if (this.buffered < HEADER_LEN) return undefined;
    const first = this.chunks[0]!;
    if (first.length - this.head < HEADER_LEN) return undefined;
    const at = this.head;
    if (this.buffered >= first.readUInt32BE(at)) return undefined; // whole: next() hands it out
    const hi = first.readUInt32BE(at + 30);
    const body = at + HEADER_LEN + first.readUInt16BE(at + 28);
    const payload: Buffer[] = [];
    let skip = Math.max(0, body - first.length); // cap bytes past the first chunk
    if (body < first.length) payload.push(first.subarray(body));
    for (let i = 1; i < this.chunks.length; i++) {
      const c = this.chunks[i]!;
      if (skip >= c.length) {
        skip -= c.length;
        continue;
      }
      payload.push(skip > 0 ? c.subarray(skip) : c);
      skip = 0;
    }
    return {
      corrId: hi >= 0x20_0000 ? -1 : hi * 0x1_0000_0000 + first.readUInt32BE(at + 34),
      flags: first.readUInt16BE(at + 6),
      code: first.readUInt16BE(at + 8),
      payload,
    };
  }

  /** Joins the front chunks until the first holds at least `n` unread bytes. */
  private coalesce(n: number): void {
    const parts: Buffer[] = [];
    let got = 0;
    while (got < n) {
      const c = this.chunks.shift()!;
      const part = parts.length === 0 ? c.subarray(this.head) : c;
      parts.push(part);
      got += part.length;
    }
    this.head = 0;
    this.chunks.unshift(Buffer.concat(parts, got));
  }
}
