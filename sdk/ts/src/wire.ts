// The wire layer re-exported as one namespace (`wire`): what a tool needs to build or read
// frames by hand, and what the tests check against the protocol page byte for byte.

export { App, DEFAULT_MAX_FRAME, Flags, FrameReader, HEADER_LEN, STATUSES, checkHeader, decodeFrame, encodeFrame } from "./frame.js";
export type { Frame, FrameInit } from "./frame.js";
export { decodeCbor, encodeCbor } from "./cbor.js";
export type { CborValue } from "./cbor.js";
export * from "./messages.js";
export { backoffMs, retryPolicy, seededRandom } from "./retry.js";
