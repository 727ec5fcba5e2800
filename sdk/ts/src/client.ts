// The public client: one session at a time to one node, opened again when it is lost or sent
// GOAWAY, with typed errors and retries of retryable answers. Every operation is idempotent on
// the wire (objects are named by their hash; a publish keeps its ts and msg_id across tries), so
// retrying one never does it twice.

import { ReadableStream } from "node:stream/web";
import { ConnectionError, NodeError, ProtocolError, RonodeError, digestMismatch } from "./errors.js";
import { App, Flags } from "./frame.js";
import { addrBytes, blake3, blake3Hasher, formatAddr, parseNodeId, sameBytes, toHex } from "./ids.js";
import {
  GossipMessage,
  HelloReply,
  PutResult,
  Range,
  getRequest,
  gossipEvent,
  gossipMsgId,
  headRequest,
  parseGossipOk,
  parseHeadResponse,
  parsePong,
  parsePutResponse,
  pingRequest,
  putRequest,
  subscribeRequest,
  unsubscribeRequest,
} from "./messages.js";
import { RetryOptions, RetryPolicy, retryPolicy, withRetry } from "./retry.js";
import { Answer, RequestInit, Session } from "./session.js";

export const DEFAULT_UA = "ronode-client-ts/0.1.0";

export interface ConnectOptions {
  /** The node's NodeId (64 lowercase hex): the session fails unless the node proves it. */
  nodeId?: string;
  /** The tenant of every request (u128; 0 = unspecified). Capabilities may be bound to one. */
  tenant?: bigint | number;
  /** Deadline of the handshake and of each request (for a streamed GET: between frames). Default 5,000. */
  timeoutMs?: number;
  /** HELLO's user agent (at most 256 bytes), null for none. */
  ua?: string | null;
  /** Ask the node for a lower frame limit (4,096 .. 1,048,576). */
  maxFrame?: number;
  /** Retries of retryable failures; false for none. */
  retry?: RetryOptions | false;
  /** Requests that may wait for an in-flight slot of the session; one more fails at once. Default 1,024. */
  maxQueued?: number;
  /** Largest object `get` reassembles in memory (use `getStream` beyond). Default 256 MiB. */
  maxObjectBytes?: number;
  /** Source of jitter in [0, 1); default Math.random. */
  random?: () => number;
}

export interface CapOptions {
  /** The capability token: its CBOR bytes, or their hex as `ronode cap mint` prints it. */
  cap?: Uint8Array | string | undefined;
}

/** What the client did besides answering: for tests and dashboards. */
export interface ClientStats {
  retries: number;
  sessionsOpened: number;
}

/** A subscription: an async iterator of the topic's messages, bounded. */
export interface Subscription extends AsyncIterableIterator<GossipMessage> {
  readonly topic: string;
  /** Messages dropped because the iterator's queue was full (its consumer fell behind). */
  readonly dropped: number;
  /** Sends UNSUBSCRIBE and ends the iteration. */
  close(): Promise<void>;
}

/** `host:port`, `[v6]:port`, optionally followed by `#NodeId`. */
export function parseNodeAddr(addr: string): { host: string; port: number; nodeId?: string } {
  const [hostPort, id, extra] = addr.split("#");
  if (extra !== undefined || hostPort === undefined) throw new TypeError(`not HOST:PORT[#NodeId]: ${addr}`);
  const m = /^(?:\[([^\]]+)\]|([^:[\]]+)):(\d{1,5})$/.exec(hostPort);
  const port = m === null ? NaN : Number(m[3]);
  if (m === null || !(port > 0 && port < 65536)) throw new TypeError(`not HOST:PORT[#NodeId]: ${addr}`);
  const out: { host: string; port: number; nodeId?: string } = { host: (m[1] ?? m[2])!, port };
  if (id !== undefined) out.nodeId = parseNodeId(id);
  return out;
}

function capBytes(cap: Uint8Array | string | undefined): Uint8Array | undefined {
  if (cap === undefined) return undefined;
  if (typeof cap !== "string") return cap;
  if (!/^([0-9a-f]{2})+$/i.test(cap.trim())) throw new TypeError("a capability as text is the hex of its CBOR bytes");
  return new Uint8Array(Buffer.from(cap.trim(), "hex"));
}

/** Connects (TLS 1.3, identity checked, HELLO) to the node at `addr` (`host:port[#NodeId]`). */
export async function connect(addr: string, opts: ConnectOptions = {}): Promise<Client> {
  const c = new Client(addr, opts);
  await c.ready();
  return c;
}

export class Client {
  readonly host: string;
  readonly port: number;
  readonly stats: ClientStats = { retries: 0, sessionsOpened: 0 };
  private pinned: string | undefined;
  private readonly opts: Required<Omit<ConnectOptions, "nodeId" | "retry" | "maxFrame">> & { maxFrame?: number | undefined };
  private readonly retry: RetryPolicy;
  private current: Session | undefined;
  private opening: Promise<Session> | undefined;
  private closed = false;

  constructor(addr: string, opts: ConnectOptions = {}) {
    const a = parseNodeAddr(addr);
    if (a.nodeId !== undefined && opts.nodeId !== undefined && a.nodeId !== opts.nodeId) {
      throw new TypeError(`two NodeIds given: ${a.nodeId} in the address, ${opts.nodeId} in the options`);
    }
    this.host = a.host;
    this.port = a.port;
    this.pinned = a.nodeId ?? (opts.nodeId === undefined ? undefined : parseNodeId(opts.nodeId));
    const tenant = BigInt(opts.tenant ?? 0);
    if (tenant < 0n || tenant >= 1n << 128n) throw new RangeError("tenant is a u128");
    this.opts = {
      tenant,
      timeoutMs: opts.timeoutMs ?? 5000,
      ua: opts.ua === undefined ? DEFAULT_UA : opts.ua,
      maxFrame: opts.maxFrame,
      maxQueued: opts.maxQueued ?? 1024,
      maxObjectBytes: opts.maxObjectBytes ?? 256 * 1024 * 1024,
      random: opts.random ?? Math.random,
    };
    this.retry = retryPolicy(opts.retry, this.opts.random);
  }

  /** The node's NodeId: pinned, or learnt from the first session (later sessions must match it). */
  get nodeId(): string | undefined {
    return this.pinned;
  }

  /** The limits the node's HELLO reply gave the current session. */
  get hello(): HelloReply | undefined {
    return this.current?.hello;
  }

  /** The current session (tests watch its GOAWAY and close events). */
  get session(): Session | undefined {
    return this.current;
  }

  /** Opens the first session (with retries); `connect` awaits it. */
  async ready(): Promise<void> {
    await this.call(async (s) => s);
  }

  /** A usable session: the current one (without a promise), or a new one (one open at a time). */
  private sessionNow(): Session | Promise<Session> {
    if (this.closed) return Promise.reject(new ConnectionError("the client is closed", "closed"));
    if (this.current?.usable) return this.current;
    return this.openSession();
  }

  private async openSession(): Promise<Session> {
    if (this.opening === undefined) {
      this.opening = Session.open({
        host: this.host,
        port: this.port,
        nodeId: this.pinned,
        tenant: this.opts.tenant as bigint,
        timeoutMs: this.opts.timeoutMs,
        ua: this.opts.ua,
        maxFrame: this.opts.maxFrame,
        maxQueued: this.opts.maxQueued,
        maxAnswerBytes: this.opts.maxObjectBytes,
      }).finally(() => {
        this.opening = undefined;
      });
      const s = await this.opening;
      this.stats.sessionsOpened++;
      // Trust on first use within this client: a reconnect must reach the same node.
      this.pinned ??= s.nodeId;
      this.current = s;
      return s;
    }
    return this.opening;
  }

  private call<T>(op: (s: Session) => Promise<T>): Promise<T> {
    const attempt = (): Promise<T> => {
      const s = this.sessionNow();
      return s instanceof Session ? op(s) : s.then(op);
    };
    return withRetry(this.retry, attempt, () => {
      this.stats.retries++;
    });
  }

  private request(init: RequestInit): Promise<Answer> {
    return this.call((s) => s.request(init));
  }

  /** PING: the round trip in milliseconds. */
  async ping(): Promise<number> {
    const nonce = Math.floor(this.opts.random() * 0xffff_ffff);
    const t0 = process.hrtime.bigint();
    const a = await this.request({ app: App.CONTROL, payload: pingRequest(nonce) });
    const rtt = Number(process.hrtime.bigint() - t0) / 1e6;
    if (parsePong(a.payload) !== nonce) throw new ProtocolError("malformed", "PONG of another nonce");
    return rtt;
  }

  /**
   * The object's bytes, checked against its address (BadDigest when they do not hash to it).
   * With `range` (start..end, end exclusive) the node's 206 bytes are returned as they come: a
   * part of an object cannot be checked against the whole object's address by the client (the
   * node checks every byte it serves against it).
   */
  async get(addr: string | Uint8Array, opts: { range?: Range } = {}): Promise<Uint8Array> {
    const a = addrBytes(addr);
    const payload = getRequest(a, opts.range);
    const whole = opts.range === undefined;
    const answer = await this.call((s) =>
      s.request({ app: App.OBJECTS, payload, hash: whole }).then((ans) => {
        if (whole) {
          const got = ans.digest ?? blake3(ans.payload);
          if (!sameBytes(got, a)) throw digestMismatch(formatAddr(a), formatAddr(got));
        }
        return ans;
      }),
    );
    if (opts.range === undefined ? answer.code !== 200 : answer.code !== 206) {
      throw new ProtocolError("bad_code", `GET answered ${answer.code}`);
    }
    return answer.payload;
  }

  /**
   * The object's bytes as a Web ReadableStream, for objects too large to hold: hashed as they
   * pass, and the stream errors with BadDigest instead of closing when the whole does not hash
   * to the address. Treat the bytes as unverified until the stream has closed without error.
   * A consumer that falls behind pauses the session's reads (every request of the session waits)
   * rather than letting bytes pile up. Retries happen only before the first byte.
   */
  getStream(addr: string | Uint8Array, opts: { highWaterMark?: number } = {}): ReadableStream<Uint8Array> {
    const a = addrBytes(addr);
    const payload = getRequest(a);
    let session: Session | undefined;
    let paused = false;
    return new ReadableStream<Uint8Array>(
      {
        start: (controller) => {
          const hasher = blake3Hasher();
          let sent = false;
          const onData = (chunk: Buffer): void => {
            sent = true;
            hasher.update(chunk);
            controller.enqueue(chunk);
            if ((controller.desiredSize ?? 1) <= 0 && !paused) {
              paused = true;
              session?.pause();
            }
          };
          withRetry(
            this.retry,
            async () => {
              session = await this.sessionNow();
              try {
                return await session.request({ app: App.OBJECTS, payload, onData });
              } catch (e) {
                // Bytes already handed out cannot be taken back: no retry after the first one.
                if (sent && e instanceof RonodeError && e.retryable) throw new ConnectionError(e.message, e.reason + "_mid_stream");
                throw e;
              }
            },
            () => {
              this.stats.retries++;
            },
          ).then(
            (ans) => {
              if (paused) session?.resume();
              const got = hasher.finalize();
              if (ans.code !== 200) controller.error(new ProtocolError("bad_code", `GET answered ${ans.code}`));
              else if (!sameBytes(got, a)) controller.error(digestMismatch(formatAddr(a), formatAddr(got)));
              else controller.close();
            },
            (e: Error) => {
              if (paused) session?.resume();
              controller.error(e);
            },
          );
        },
        pull: () => {
          if (paused) {
            paused = false;
            session?.resume();
          }
        },
      },
      { highWaterMark: opts.highWaterMark ?? 16, size: () => 1 },
    );
  }

  /** The object's size in bytes, as the node holds it (NotFound otherwise; HEAD never fetches). */
  async head(addr: string | Uint8Array): Promise<number> {
    const a = await this.request({ app: App.OBJECTS, payload: headRequest(addrBytes(addr)) });
    return parseHeadResponse(a.payload);
  }

  /** Stores `bytes` (a PUT needs a capability with `scope=put`); resolves with their address. */
  async put(bytes: Uint8Array, opts: CapOptions = {}): Promise<PutResult> {
    const addr = blake3(bytes);
    const a = await this.request({
      app: App.OBJECTS,
      payload: putRequest(addr, bytes.length),
      cap: capBytes(opts.cap),
      body: bytes,
    });
    const r = parsePutResponse(a.payload);
    if (!sameBytes(r.addr, addr) || r.size !== bytes.length) {
      throw new ProtocolError("malformed", `PUT answered ${formatAddr(r.addr)} (${r.size} bytes) for ${formatAddr(addr)} (${bytes.length})`);
    }
    return { addr: formatAddr(addr), size: r.size, stored: r.stored };
  }

  /**
   * Publishes `data` on `topic` (a capability with `scope=gossip` unless the node's policy is
   * open), acknowledged by the node (ACK_REQ). Resolves with the message id, hex.
   */
  async publish(topic: string, data: Uint8Array | string, opts: CapOptions & { ts?: number } = {}): Promise<string> {
    const bytes = typeof data === "string" ? new TextEncoder().encode(data) : data;
    const ts = opts.ts ?? Date.now();
    const msgId = gossipMsgId(topic, ts, bytes);
    const payload = gossipEvent({ topic, msgId, ts, hops: 0, data: bytes });
    await this.request({ app: App.GOSSIP, payload, cap: capBytes(opts.cap), kind: Flags.EVENT | Flags.ACK_REQ });
    return toHex(msgId);
  }

  /**
   * Subscribes this client's session to `topic`. Messages queue (at most `maxQueued`, default
   * 1,024; more are dropped and counted) until the iterator takes them. When the session ends,
   * the iterator throws its ConnectionError: subscribe again to go on.
   */
  async subscribe(topic: string, opts: { maxQueued?: number } = {}): Promise<Subscription> {
    const bound = opts.maxQueued ?? 1024;
    const queue: GossipMessage[] = [];
    let waiter: { go: (r: IteratorResult<GossipMessage>) => void; fail: (e: Error) => void } | undefined;
    let ended: Error | null | undefined; // null: ended cleanly
    let dropped = 0;
    let session: Session | undefined;
    let unlisten = (): void => {};
    const finish = (e: Error | null): void => {
      if (ended !== undefined) return;
      ended = e;
      unlisten();
      if (waiter !== undefined) {
        const w = waiter;
        waiter = undefined;
        if (e === null) w.go({ value: undefined, done: true });
        else w.fail(e);
      }
    };
    await this.call(async (s) => {
      session = s;
      // Listen before asking, so that nothing sent right after the answer is missed.
      unlisten = s.listen(topic, (m) => {
        if (waiter !== undefined) {
          const w = waiter;
          waiter = undefined;
          w.go({ value: m, done: false });
        } else if (queue.length < bound) queue.push(m);
        else dropped++;
      });
      try {
        parseGossipOk((await s.request({ app: App.GOSSIP, payload: subscribeRequest(topic) })).payload);
      } catch (e) {
        unlisten();
        throw e;
      }
    });
    session!.once("closed", (e: Error) => finish(e));
    const sub: Subscription = {
      topic,
      get dropped() {
        return dropped;
      },
      next: () => {
        if (queue.length > 0) return Promise.resolve({ value: queue.shift()!, done: false });
        if (ended === null) return Promise.resolve({ value: undefined, done: true });
        if (ended !== undefined) return Promise.reject(ended);
        return new Promise((go, fail) => {
          waiter = { go, fail };
        });
      },
      return: async () => {
        await sub.close();
        return { value: undefined, done: true };
      },
      close: async () => {
        if (ended !== undefined) return;
        finish(null);
        if (session?.usable) {
          try {
            parseGossipOk((await session.request({ app: App.GOSSIP, payload: unsubscribeRequest(topic) })).payload);
          } catch (e) {
            if (!(e instanceof ConnectionError)) throw e;
          }
        }
      },
      [Symbol.asyncIterator]() {
        return sub;
      },
    };
    return sub;
  }

  /** Closes the session (TLS close_notify). Requests still unanswered fail with ConnectionError. */
  close(): void {
    this.closed = true;
    this.current?.close();
  }
}

export { NodeError };
