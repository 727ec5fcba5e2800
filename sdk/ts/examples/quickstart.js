// Quickstart: store an object, read it back verified, HEAD it, miss one, and publish a message
// to a subscriber. Run against a node (README.md at the repository root starts one):
//
//   NODE=127.0.0.1:9500 CAP=$(target/release/ronode cap mint --scope put,gossip --ttl 1h | tail -1) \
//     node sdk/ts/examples/quickstart.js
//
// NODE may end with `#<NodeId>` to pin the node's identity.

import { NotFound, connect } from "@ronode/client";

const node = process.env.NODE ?? "127.0.0.1:9500";
const cap = process.env.CAP; // hex of a capability with scope=put,gossip

const client = await connect(node, { ua: "quickstart/1.0", timeoutMs: 5000 });
console.log(`connected to ${client.nodeId}, rtt ${(await client.ping()).toFixed(3)} ms`);

const stored = await client.put(new TextEncoder().encode("hello world"), { cap });
console.log(`put ${stored.addr} (${stored.size} bytes, newly stored: ${stored.stored})`);

const bytes = await client.get(stored.addr); // checked against the address
console.log(`get: ${new TextDecoder().decode(bytes)}; head: ${await client.head(stored.addr)} bytes`);
const part = await client.get(stored.addr, { range: { start: 6, end: 11 } });
console.log(`range 6..11: ${new TextDecoder().decode(part)}`);

try {
  await client.get("b3:" + "0".repeat(64));
} catch (e) {
  if (!(e instanceof NotFound)) throw e;
  console.log(`as expected, ${e.name}: ${e.detail}`);
}

// Gossip: a subscriber (its own session) receives what a publisher sends.
const listener = await connect(node);
const news = await listener.subscribe("news");
const first = news.next();
// The node answers SUBSCRIBE before the topic's shard has registered it, so a message published
// at once from another session may pass it by: publish until one is delivered.
const ids = new Set();
let got;
while (got === undefined) {
  ids.add(await client.publish("news", "ronode from TypeScript", { cap }));
  got = await Promise.race([first, new Promise((go) => setTimeout(go, 100))]);
}
const m = got.value;
console.log(`message ${ids.has(Buffer.from(m.msgId).toString("hex")) ? "received" : "?"} on ${m.topic}: ${new TextDecoder().decode(m.data)}`);
await news.close();
listener.close();
client.close();
