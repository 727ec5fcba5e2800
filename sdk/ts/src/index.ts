// @ronode/client: a Node.js client for ronode nodes (docs/PROTOCOL.md is the contract).

export { Client, connect, parseNodeAddr, DEFAULT_UA } from "./client.js";
export type { CapOptions, ClientStats, ConnectOptions, Subscription } from "./client.js";
export * from "./errors.js";
export type { ErrorBody } from "./errors.js";
export { addrOf, blake3, blake3Keyed, formatAddr, nodeIdOf, parseAddr, parseNodeId, toHex } from "./ids.js";
export type { GossipMessage, HelloReply, PutResult, Range } from "./messages.js";
export { gossipMsgId } from "./messages.js";
export type { RetryOptions } from "./retry.js";
export { nodeIdFromCert } from "./tls.js";
export { Session } from "./session.js";
/** The wire layer, for tools and tests: frames, CBOR, message payloads. */
export * as wire from "./wire.js";
