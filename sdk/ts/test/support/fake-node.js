// A fake node for hostile-server tests: a TLS 1.3 server with a node-form certificate (an
// Ed25519 key, CommonName `ron1:` + 64 hex, built here) that speaks
// OAP/1 through this package's own frame layer and answers as each test scripts it.

import { generateKeyPairSync, sign } from "node:crypto";
import * as tls from "node:tls";
import { nodeIdOf, wire } from "../../dist/index.js";

const { Flags, App, FrameReader, encodeFrame } = wire;
export const HELLO_REPLY = '{"max_frame":1048576,"max_inflight":64,"flags_supported":255,"versions":[1],"transports":["tcp+tls"]}';

/** DER: a tag, its length, its content. */
function der(tag, ...parts) {
  const body = Buffer.concat(parts);
  const n = body.length;
  const len = n < 0x80 ? Buffer.from([n]) : n < 0x100 ? Buffer.from([0x81, n]) : Buffer.from([0x82, n >> 8, n & 0xff]);
  return Buffer.concat([Buffer.from([tag]), len, body]);
}
const ED25519_ALG = der(0x30, Buffer.from("06032b6570", "hex"));
const name = (cns) => der(0x30, ...cns.map((cn) => der(0x31, der(0x30, Buffer.from("0603550403", "hex"), der(0x0c, Buffer.from(cn))))));

/**
 * A self-signed X.509 certificate over a fresh Ed25519 key whose subject holds `cns` (by default
 * the one `ron1:` CommonName a node writes), and the NodeId a client must read from it. Built
 * here, since the openssl command line refuses CommonNames over 64 characters.
 */
export function nodeCert(mlDsaHashHex = "cd".repeat(32), cns = [`ron1:${mlDsaHashHex}`]) {
  const { publicKey, privateKey } = generateKeyPairSync("ed25519");
  const pk = Buffer.from(publicKey.export({ format: "jwk" }).x, "base64url");
  const time = (s) => der(0x17, Buffer.from(s));
  const tbs = der(
    0x30,
    der(0xa0, der(0x02, Buffer.from([2]))), // v3
    der(0x02, Buffer.from([0x01, 0x23, 0x45])),
    ED25519_ALG,
    name(cns),
    der(0x30, time("250101000000Z"), time("491231235959Z")),
    name(cns),
    der(0x30, ED25519_ALG, der(0x03, Buffer.from([0]), pk)),
  );
  const sig = sign(null, tbs, privateKey);
  const certDer = der(0x30, tbs, ED25519_ALG, der(0x03, Buffer.from([0]), sig));
  const pem = `-----BEGIN CERTIFICATE-----\n${certDer.toString("base64").replace(/(.{64})/g, "$1\n")}\n-----END CERTIFICATE-----\n`;
  return {
    key: privateKey.export({ format: "pem", type: "pkcs8" }),
    cert: pem.replace("\n\n", "\n"),
    der: certDer,
    nodeId: nodeIdOf(pk, Buffer.from(mlDsaHashHex, "hex")),
  };
}

/**
 * Starts the fake node. `onFrame(frame, reply, socket)` runs for every frame after HELLO (HELLO
 * is answered with the defaults); `reply(fields)` writes a frame. Resolves with
 * `{ port, nodeId, received, close() }`, `received` holding every frame the client sent.
 */
export async function fakeNode(onFrame, cert = nodeCert()) {
  const received = [];
  const sockets = new Set();
  const server = tls.createServer({ key: cert.key, cert: cert.cert, ALPNProtocols: ["ron/oap1"], minVersion: "TLSv1.3" }, (socket) => {
    sockets.add(socket);
    socket.on("close", () => sockets.delete(socket));
    socket.on("error", () => {});
    const reader = new FrameReader();
    let helloDone = false;
    const reply = (f) => socket.write(encodeFrame(f));
    socket.on("data", (chunk) => {
      reader.push(chunk);
      for (let f = reader.next(); f !== undefined; f = reader.next()) {
        received.push({ ...f, cap: Buffer.from(f.cap), payload: Buffer.from(f.payload) });
        if (!helloDone) {
          helloDone = true;
          reply({ flags: Flags.RESP, code: 200, app: App.CONTROL, tenant: f.tenant, corrId: f.corrId, payload: Buffer.from(HELLO_REPLY) });
        } else onFrame(f, reply, socket);
      }
    });
  });
  await new Promise((res) => server.listen(0, "127.0.0.1", res));
  return {
    port: server.address().port,
    nodeId: cert.nodeId,
    received,
    close() {
      for (const s of sockets) s.destroy();
      return new Promise((res) => server.close(res));
    },
  };
}
