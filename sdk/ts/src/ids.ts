// Object addresses and NodeIds (docs/PROTOCOL.md section 11): BLAKE3-256, written as `b3:` + 64
// lowercase hex for addresses and 64 lowercase hex for NodeIds, parsed strictly.

import { createHasher, createKeyed, hash, warmupSimd } from "blake3-jit";

// Picks the WASM SIMD kernel once, up front, so the first hash on a hot path does not pay it.
warmupSimd();

const HEX64 = /^[0-9a-f]{64}$/;

/** BLAKE3-256 of `bytes`. */
export function blake3(bytes: Uint8Array): Uint8Array {
  return hash(bytes);
}

/** BLAKE3-256 keyed hash (BLAKE3's keyed mode, 32-byte key), as the capability chain uses. */
export function blake3Keyed(key: Uint8Array, bytes: Uint8Array): Uint8Array {
  return createKeyed(key).update(bytes).finalize();
}

/** An incremental BLAKE3-256, for bytes that arrive in pieces. */
export interface Blake3Hasher {
  update(bytes: Uint8Array): unknown;
  finalize(): Uint8Array;
}

export function blake3Hasher(): Blake3Hasher {
  return createHasher();
}

export function toHex(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.length).toString("hex");
}

/** `b3:<hex>` text to its 32 bytes; throws TypeError on anything but the strict form. */
export function parseAddr(text: string): Uint8Array {
  if (!text.startsWith("b3:") || !HEX64.test(text.slice(3))) {
    throw new TypeError(`not an object address (b3: + 64 lowercase hex): ${JSON.stringify(text.slice(0, 80))}`);
  }
  return new Uint8Array(Buffer.from(text.slice(3), "hex"));
}

/** 32 bytes to `b3:<hex>`. */
export function formatAddr(addr: Uint8Array): string {
  if (addr.length !== 32) throw new TypeError(`an address is 32 bytes, not ${addr.length}`);
  return `b3:${toHex(addr)}`;
}

/** The address of `bytes`: `b3:` + hex of BLAKE3-256. */
export function addrOf(bytes: Uint8Array): string {
  return formatAddr(blake3(bytes));
}

/** An address given as text or as its 32 bytes, as bytes (checked). */
export function addrBytes(addr: string | Uint8Array): Uint8Array {
  if (typeof addr === "string") return parseAddr(addr);
  if (addr.length !== 32) throw new TypeError(`an address is 32 bytes, not ${addr.length}`);
  return addr;
}

/** Checks a NodeId's text form (64 lowercase hex) and returns it. */
export function parseNodeId(text: string): string {
  if (!HEX64.test(text)) throw new TypeError(`not a NodeId (64 lowercase hex): ${JSON.stringify(text.slice(0, 80))}`);
  return text;
}

/** NodeId = BLAKE3-256(ed25519_pk || BLAKE3-256(ml_dsa_87_pk)), from the two 32-byte parts. */
export function nodeIdOf(ed25519Pk: Uint8Array, mlDsaPkHash: Uint8Array): string {
  const both = new Uint8Array(64);
  both.set(ed25519Pk, 0);
  both.set(mlDsaPkHash, 32);
  return toHex(blake3(both));
}

/** Equality in time independent of where the first difference is (for digests). */
export function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  let diff = 0;
  for (let i = 0; i < a.length; i++) diff |= a[i]! ^ b[i]!;
  return diff === 0;
}
