// The CBOR of docs/PROTOCOL.md section 5, and only it: definite lengths, shortest heads, text
// map keys written in insertion order; decoding refuses indefinite lengths, tags, floats, simple
// values other than false/true/null, nesting deeper than 8, duplicate keys and trailing bytes.
// A general CBOR library would have to be configured into exactly this; 150 lines are simpler.

import { ProtocolError } from "./errors.js";

/** A CBOR value as this package writes and reads it. Maps are plain objects with text keys. */
export type CborValue =
  | number
  | bigint
  | string
  | boolean
  | null
  | Uint8Array
  | CborValue[]
  | { [key: string]: CborValue | undefined };

const MAX_DEPTH = 8;
const utf8 = new TextEncoder();
const utf8Strict = new TextDecoder("utf-8", { fatal: true });

/** Encodes `v`; object keys whose value is `undefined` are left out (absent optional fields). */
export function encodeCbor(v: CborValue): Buffer {
  const parts: Uint8Array[] = [];
  let total = 0;
  const push = (b: Uint8Array): void => {
    parts.push(b);
    total += b.length;
  };
  const head = (major: number, n: number | bigint): void => {
    const big = BigInt(n);
    if (big < 0n || big > 0xffff_ffff_ffff_ffffn) throw new RangeError(`CBOR length or uint out of range: ${n}`);
    const m = major << 5;
    if (big < 24n) push(Uint8Array.of(m | Number(big)));
    else if (big < 0x100n) push(Uint8Array.of(m | 24, Number(big)));
    else if (big < 0x1_0000n) {
      const b = Buffer.allocUnsafe(3);
      b[0] = m | 25;
      b.writeUInt16BE(Number(big), 1);
      push(b);
    } else if (big < 0x1_0000_0000n) {
      const b = Buffer.allocUnsafe(5);
      b[0] = m | 26;
      b.writeUInt32BE(Number(big), 1);
      push(b);
    } else {
      const b = Buffer.allocUnsafe(9);
      b[0] = m | 27;
      b.writeBigUInt64BE(big, 1);
      push(b);
    }
  };
  const walk = (x: CborValue): void => {
    if (typeof x === "number") {
      if (!Number.isSafeInteger(x) || x < 0) throw new RangeError(`CBOR here holds unsigned integers only: ${x}`);
      head(0, x);
    } else if (typeof x === "bigint") head(0, x);
    else if (typeof x === "string") {
      const b = utf8.encode(x);
      head(3, b.length);
      push(b);
    } else if (typeof x === "boolean") push(Uint8Array.of(x ? 0xf5 : 0xf4));
    else if (x === null) push(Uint8Array.of(0xf6));
    else if (x instanceof Uint8Array) {
      head(2, x.length);
      push(x);
    } else if (Array.isArray(x)) {
      head(4, x.length);
      x.forEach(walk);
    } else {
      const entries = Object.entries(x).filter(([, val]) => val !== undefined) as [string, CborValue][];
      head(5, entries.length);
      for (const [k, val] of entries) {
        walk(k);
        walk(val);
      }
    }
  };
  walk(v);
  return Buffer.concat(parts, total);
}

/** Decodes exactly one item filling `bytes`; anything else is a `malformed` ProtocolError. */
export function decodeCbor(bytes: Uint8Array): CborValue {
  const buf = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.length);
  let at = 0;
  const fail = (why: string): never => {
    throw new ProtocolError("malformed", `CBOR: ${why} at byte ${at}`);
  };
  const need = (n: number): void => {
    if (at + n > buf.length) fail("item cut short");
  };
  const arg = (info: number): number | bigint => {
    if (info < 24) return info;
    if (info === 24) {
      need(1);
      return buf[at++]!;
    }
    if (info === 25) {
      need(2);
      at += 2;
      return buf.readUInt16BE(at - 2);
    }
    if (info === 26) {
      need(4);
      at += 4;
      return buf.readUInt32BE(at - 4);
    }
    if (info === 27) {
      need(8);
      at += 8;
      const v = buf.readBigUInt64BE(at - 8);
      return v <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : v;
    }
    return fail(info === 31 ? "indefinite length" : `reserved additional info ${info}`);
  };
  const length = (info: number): number => {
    const n = arg(info);
    if (typeof n === "bigint" || n > buf.length - at) fail(`length ${n} past the end`);
    return n as number;
  };
  const item = (depth: number): CborValue => {
    need(1);
    const ib = buf[at++]!;
    const major = ib >> 5;
    const info = ib & 0x1f;
    switch (major) {
      case 0:
        return arg(info);
      case 1:
        return fail("negative integer");
      case 2: {
        const n = length(info);
        at += n;
        return new Uint8Array(buf.subarray(at - n, at));
      }
      case 3: {
        const n = length(info);
        at += n;
        try {
          return utf8Strict.decode(buf.subarray(at - n, at));
        } catch {
          return fail("text is not UTF-8");
        }
      }
      case 4: {
        if (depth >= MAX_DEPTH) fail("nested deeper than 8");
        const n = length(info); // each item is at least one byte: bounded by what is left
        const out: CborValue[] = [];
        for (let i = 0; i < n; i++) out.push(item(depth + 1));
        return out;
      }
      case 5: {
        if (depth >= MAX_DEPTH) fail("nested deeper than 8");
        const n = length(info);
        const out: { [key: string]: CborValue } = Object.create(null);
        for (let i = 0; i < n; i++) {
          const k = item(depth + 1);
          if (typeof k !== "string") fail("map key is not a text string");
          if (Object.prototype.hasOwnProperty.call(out, k as string)) fail(`duplicate key ${JSON.stringify(k)}`);
          out[k as string] = item(depth + 1);
        }
        return out;
      }
      case 6:
        return fail("tag");
      default:
        if (info === 20) return false;
        if (info === 21) return true;
        if (info === 22) return null;
        return fail(`simple value or float (0x${ib.toString(16)})`);
    }
  };
  const v = item(0);
  if (at !== buf.length) fail(`${buf.length - at} bytes after the item`);
  return v;
}
