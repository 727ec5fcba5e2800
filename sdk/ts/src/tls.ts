// The TLS side of a session (docs/PROTOCOL.md sections 1 and 11.2): TLS 1.3 only, ALPN
// `ron/oap1`, and the node's NodeId read from its self-signed certificate. There is no CA: what
// binds the session to the key is TLS 1.3's CertificateVerify, which OpenSSL always checks with
// the certificate's key; this module then checks that the certificate is of the node form and,
// when one is pinned, that it is the NodeId the caller dialled.

import { X509Certificate } from "node:crypto";
import * as tls from "node:tls";
import { ConnectionError, IdentityError, RonodeError } from "./errors.js";
import { nodeIdOf } from "./ids.js";

export const ALPN = "ron/oap1";
const CN_RE = /^ron1:([0-9a-f]{64})$/;

/**
 * The NodeId a node certificate claims: BLAKE3-256(Ed25519 key || the 32 bytes its one
 * `ron1:` CommonName spells). Throws IdentityError for any other certificate.
 */
export function nodeIdFromCert(der: Uint8Array): string {
  let cert: X509Certificate;
  try {
    cert = new X509Certificate(der);
  } catch (e) {
    throw new IdentityError(`the node's certificate does not parse: ${(e as Error).message}`);
  }
  const key = cert.publicKey;
  if (key.asymmetricKeyType !== "ed25519") {
    throw new IdentityError(`the node's certificate key is ${key.asymmetricKeyType}, not Ed25519`);
  }
  const x = key.export({ format: "jwk" }).x;
  const pk = x === undefined ? Buffer.alloc(0) : Buffer.from(x, "base64url");
  if (pk.length !== 32) throw new IdentityError(`the node's Ed25519 key is ${pk.length} bytes, not 32`);
  // One attribute a line; a multi-valued or repeated CN shows as several CN lines.
  const cns = (cert.subject ?? "").split("\n").filter((line) => /^CN=/i.test(line) || /\+CN=/i.test(line));
  if (cns.length !== 1) throw new IdentityError(`the node's certificate subject has ${cns.length} CommonNames, not 1`);
  const m = CN_RE.exec(cns[0]!.slice(3));
  if (m === null) throw new IdentityError(`the node's CommonName is not ron1: + 64 lowercase hex: ${JSON.stringify(cns[0]!.slice(3, 90))}`);
  return nodeIdOf(pk, Buffer.from(m[1]!, "hex"));
}

export interface TlsOptions {
  host: string;
  port: number;
  /** The NodeId the caller expects; a different one fails the connect with IdentityError. */
  nodeId?: string | undefined;
  timeoutMs: number;
}

/** A TLS 1.3 connection to a node whose identity has been checked, and that NodeId. */
export async function connectTls(o: TlsOptions): Promise<{ socket: tls.TLSSocket; nodeId: string }> {
  return new Promise((resolve, reject) => {
    const socket = tls.connect({
      host: o.host,
      port: o.port,
      ALPNProtocols: [ALPN],
      minVersion: "TLSv1.3",
      maxVersion: "TLSv1.3",
      // No CA chain to build: the certificate is self-signed and checked below by its NodeId.
      rejectUnauthorized: false,
    });
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new ConnectionError(`TLS handshake with ${o.host}:${o.port} not done within ${o.timeoutMs} ms`, "client_timeout"));
    }, o.timeoutMs);
    const fail = (e: Error): void => {
      clearTimeout(timer);
      socket.destroy();
      if (e instanceof RonodeError) return reject(e);
      // A TLS alert (no common key exchange group, no ALPN ...) is the same on every try.
      const tlsRefusal = /^ERR_SSL/.test((e as NodeJS.ErrnoException).code ?? "");
      reject(new ConnectionError(`connect to ${o.host}:${o.port}: ${e.message}`, tlsRefusal ? "tls" : "connection", !tlsRefusal));
    };
    socket.once("error", fail);
    socket.once("secureConnect", () => {
      try {
        if (socket.alpnProtocol !== ALPN) throw new ConnectionError(`the node did not agree to ALPN ${ALPN}`, "tls", false);
        if (socket.getProtocol() !== "TLSv1.3") throw new ConnectionError(`negotiated ${socket.getProtocol()}, not TLS 1.3`, "tls", false);
        const cert = socket.getPeerCertificate(true);
        if (cert === null || cert.raw === undefined) throw new IdentityError("the node presented no certificate");
        // A node presents its one self-signed certificate and no chain.
        if (cert.issuerCertificate !== undefined && cert.issuerCertificate.raw !== undefined && !cert.issuerCertificate.raw.equals(cert.raw)) {
          throw new IdentityError("the node presented a certificate chain, not one self-signed certificate");
        }
        const nodeId = nodeIdFromCert(cert.raw);
        if (o.nodeId !== undefined && o.nodeId !== nodeId) {
          throw new IdentityError(`dialled NodeId ${o.nodeId}, the node at ${o.host}:${o.port} is ${nodeId}`);
        }
        clearTimeout(timer);
        socket.off("error", fail);
        // Requests are small and latency-bound: never hold one back waiting for an ACK.
        socket.setNoDelay(true);
        resolve({ socket, nodeId });
      } catch (e) {
        fail(e as Error);
      }
    });
  });
}
