// One OAP/1 session over TLS: HELLO and its limits, pipelined requests numbered by corr_id,
// `max_inflight` respected, streamed answers, GOAWAY, PING from the node, gossip EVENTs.
// Everything that can pile up has a bound: requests waiting for a slot (`maxQueued`), bytes of
// one answer (`maxAnswerBytes`), answers abandoned by a timeout (they keep their slot, since the
// node counts them until it answers).

import { EventEmitter } from "node:events";
import type { TLSSocket } from "node:tls";
import {
  ConnectionError,
  ProtocolError,
  RonodeError,
  TimeoutError,
  nodeError,
} from "./errors.js";
import { App, DEFAULT_MAX_FRAME, Flags, Frame, FrameInit, FrameReader, HEADER_LEN, encodeFrame, writeHeader } from "./frame.js";
import {
  GossipMessage,
  HelloReply,
  helloRequest,
  parseErrorBody,
  parseGoaway,
  parseGossipEvent,
  parseHelloReply,
} from "./messages.js";
import { Blake3Hasher, blake3Hasher } from "./ids.js";
import { connectTls } from "./tls.js";

export interface SessionOptions {
  host: string;
  port: number;
  nodeId?: string | undefined;
  tenant: bigint;
  timeoutMs: number;
  ua: string | null;
  /** Ask the node for a lower frame limit (4,096 .. 1,048,576). */
  maxFrame?: number | undefined;
  /** Requests that may wait for an in-flight slot; one more fails at once. */
  maxQueued: number;
  /** Largest answer body this session reassembles in memory (streamed GETs are not bounded by it). */
  maxAnswerBytes: number;
}

/** A whole answer: its status and its payload (for a stream, the payloads joined). */
export interface Answer {
  code: number;
  payload: Buffer;
  /** BLAKE3-256 of the body, when the request asked for it (`hash`). */
  digest?: Uint8Array;
}

export interface RequestInit {
  app: number;
  payload: Uint8Array;
  cap?: Uint8Array | undefined;
  /** Extra flags on the first frame (ACK_REQ on an EVENT). */
  kind?: number;
  /** Body bytes that follow the request in the same REQ stream (a PUT). */
  body?: Uint8Array | undefined;
  /** Receives each piece of the answer's body as it arrives, instead of joining them. */
  onData?: ((chunk: Buffer) => void) | undefined;
  /**
   * Hash the answer's body (into `Answer.digest`) as its bytes arrive, even before a frame is
   * whole: a GET's verification then mostly overlaps the transfer instead of following it.
   */
  hash?: boolean;
  timeoutMs?: number | undefined;
}

interface Pending {
  app: number;
  open: boolean;
  code: number;
  chunks: Buffer[];
  bytes: number;
  onData: ((chunk: Buffer) => void) | undefined;
  hasher: Blake3Hasher | undefined;
  /** Payload bytes of the frame now arriving already fed to `hasher`. */
  hashed: number;
  timer: NodeJS.Timeout | undefined;
  /** Given up on by this client (timeout): the slot stays taken until the node answers. */
  abandoned: boolean;
  resolve: (a: Answer) => void;
  reject: (e: Error) => void;
}

const SUCCESS = (code: number): boolean => code === 200 || code === 206;

export class Session extends EventEmitter {
  readonly nodeId: string;
  readonly hello: HelloReply;
  private readonly socket: TLSSocket;
  private readonly reader: FrameReader;
  private readonly opts: SessionOptions;
  private readonly pending = new Map<number, Pending>();
  private readonly waiting: Array<{ go: () => void; fail: (e: Error) => void }> = [];
  private readonly topics = new Map<string, Set<(m: GossipMessage) => void>>();
  private nextCorrId = 1;
  private maxInflight = 1;
  /**
   * In-flight slots granted: requests unanswered plus those granted a slot and not yet sent
   * (a waiter released by an answer runs a microtask later, and must not lose its slot to a
   * newcomer meanwhile).
   */
  private slotsUsed = 0;
  private maxFrame: number;
  private goaway: { reason: string; lastCorrId: number } | undefined;
  private failure: Error | undefined;

  private constructor(socket: TLSSocket, nodeId: string, opts: SessionOptions) {
    super();
    this.socket = socket;
    this.nodeId = nodeId;
    this.opts = opts;
    this.maxFrame = DEFAULT_MAX_FRAME;
    this.reader = new FrameReader(DEFAULT_MAX_FRAME);
    this.hello = undefined as unknown as HelloReply;
    socket.on("data", (chunk: Buffer) => this.onBytes(chunk));
    socket.on("error", (e: Error) => this.fail(new ConnectionError(`session with ${opts.host}:${opts.port}: ${e.message}`)));
    socket.on("close", () => this.fail(new ConnectionError(`session with ${opts.host}:${opts.port} closed`)));
  }

  /** TLS (identity checked), then HELLO; resolves once the node's limits are known. */
  static async open(opts: SessionOptions): Promise<Session> {
    const { socket, nodeId } = await connectTls(opts);
    const s = new Session(socket, nodeId, opts);
    try {
      const a = await s.request({ app: App.CONTROL, payload: helloRequest(opts.ua, opts.maxFrame) });
      const reply = parseHelloReply(a.payload);
      (s as { hello: HelloReply }).hello = reply;
      s.maxInflight = reply.max_inflight;
      // Both sides apply the negotiated limit from the next frame on (section 3.1).
      s.maxFrame = Math.min(reply.max_frame, opts.maxFrame ?? DEFAULT_MAX_FRAME);
      s.reader.maxFrame = s.maxFrame;
      s.releaseSlots();
    } catch (e) {
      s.close();
      throw e;
    }
    return s;
  }

  /** False once the session failed, closed or was sent GOAWAY: open a new one. */
  get usable(): boolean {
    return this.failure === undefined && this.goaway === undefined;
  }

  /** The GOAWAY the node sent, if it did. */
  get goingAway(): { reason: string; lastCorrId: number } | undefined {
    return this.goaway;
  }

  get inflight(): number {
    return this.slotsUsed;
  }

  /** Sends one request (and its body, if any) and resolves with the whole answer. */
  request(r: RequestInit): Promise<Answer> {
    // No await when a slot is free: a request goes out in the caller's turn of the event loop.
    if (this.failure === undefined && this.goaway === undefined && this.slotsUsed < this.maxInflight && this.waiting.length === 0) {
      this.slotsUsed++;
      return this.start(r);
    }
    return this.slot().then(() => {
      try {
        this.check(); // the session may have ended while this request waited
      } catch (e) {
        this.slotsUsed--;
        throw e;
      }
      return this.start(r);
    });
  }

  private start(r: RequestInit): Promise<Answer> {
    const corrId = this.nextCorrId++;
    return new Promise<Answer>((resolve, reject) => {
      const p: Pending = {
        app: r.app,
        open: false,
        code: 0,
        chunks: [],
        bytes: 0,
        onData: r.onData,
        hasher: r.hash === true ? blake3Hasher() : undefined,
        hashed: 0,
        timer: undefined,
        abandoned: false,
        resolve,
        reject,
      };
      const ms = r.timeoutMs ?? this.opts.timeoutMs;
      p.timer = setTimeout(() => {
        p.abandoned = true;
        p.onData = undefined;
        reject(new TimeoutError(`no answer to request ${corrId} within ${ms} ms`));
      }, ms);
      this.pending.set(corrId, p);
      try {
        this.send(corrId, r, p);
      } catch (e) {
        this.settle(corrId, p);
        reject(e as Error);
      }
    });
  }

  /** Sends an EVENT that opens no exchange (no ACK_REQ). */
  event(app: number, payload: Uint8Array, cap?: Uint8Array): void {
    this.check();
    const flags = Flags.EVENT | (cap !== undefined && cap.length > 0 ? Flags.START | Flags.END : 0);
    this.socket.write(encodeFrame({ flags, app, tenant: this.opts.tenant, corrId: 0, cap, payload }));
  }

  /** Routes the topic's EVENTs to `listener` (the SUBSCRIBE itself is the caller's request). */
  listen(topic: string, listener: (m: GossipMessage) => void): () => void {
    let set = this.topics.get(topic);
    if (set === undefined) this.topics.set(topic, (set = new Set()));
    set.add(listener);
    return () => {
      set!.delete(listener);
      if (set!.size === 0) this.topics.delete(topic);
    };
  }

  /** Stops reading from the node (all requests of the session wait): a slow stream consumer. */
  pause(): void {
    this.socket.pause();
  }

  resume(): void {
    this.socket.resume();
  }

  /** Ends the session with TLS close_notify; requests still unanswered fail. */
  close(): void {
    this.fail(new ConnectionError("session closed by the client", "closed"));
    this.socket.end();
  }

  private check(): void {
    if (this.failure !== undefined) throw this.failure;
    if (this.goaway !== undefined) {
      throw new ConnectionError(`the node sent GOAWAY ${this.goaway.reason}: open a new session`, "goaway");
    }
  }

  /** Waits, bounded, until fewer than max_inflight requests are unanswered. */
  private slot(): Promise<void> {
    try {
      this.check();
    } catch (e) {
      return Promise.reject(e);
    }
    if (this.slotsUsed < this.maxInflight && this.waiting.length === 0) {
      this.slotsUsed++;
      return Promise.resolve();
    }
    if (this.waiting.length >= this.opts.maxQueued) {
      return Promise.reject(
        new RonodeError("client_queue_full", `${this.waiting.length} requests already wait for one of ${this.maxInflight} in-flight slots`, true),
      );
    }
    return new Promise((go, fail) => this.waiting.push({ go, fail }));
  }

  private releaseSlots(): void {
    while (this.waiting.length > 0 && this.slotsUsed < this.maxInflight && this.usable) {
      this.slotsUsed++;
      this.waiting.shift()!.go();
    }
  }

  private send(corrId: number, r: RequestInit, p: Pending): void {
    const tenant = this.opts.tenant;
    const hasCap = r.cap !== undefined && r.cap.length > 0;
    const base = r.kind ?? Flags.REQ;
    if (r.body === undefined) {
      const flags = base | (hasCap ? Flags.START | Flags.END : 0);
      this.socket.write(encodeFrame({ flags, app: r.app, tenant, corrId, cap: r.cap, payload: r.payload }));
      return;
    }
    // A REQ stream: START with the cap and the request, then the body, the last frame END.
    const body = r.body;
    if (body.length === 0) {
      this.socket.write(encodeFrame({ flags: base | Flags.START | Flags.END, app: r.app, tenant, corrId, cap: r.cap, payload: r.payload }));
      return;
    }
    this.socket.write(encodeFrame({ flags: base | Flags.START, app: r.app, tenant, corrId, cap: r.cap, payload: r.payload }));
    const chunk = Math.min(65_536, this.maxFrame - HEADER_LEN);
    void this.sendBody(corrId, r.app, body, chunk, p);
  }

  private async sendBody(corrId: number, app: number, body: Uint8Array, chunk: number, p: Pending): Promise<void> {
    for (let at = 0; at < body.length; at += chunk) {
      // The node may answer before the body ends (401, 413, 503 ...): then stop sending it.
      if (this.pending.get(corrId) !== p || p.abandoned || this.failure !== undefined) return;
      const piece = body.subarray(at, Math.min(at + chunk, body.length));
      const last = at + chunk >= body.length;
      const header = Buffer.allocUnsafe(HEADER_LEN);
      const f: FrameInit = { flags: Flags.REQ | (last ? Flags.END : 0), app, tenant: this.opts.tenant, corrId };
      writeHeader(header, 0, f, 0, piece.length);
      // Header and body piece leave together (one write), the body without a copy.
      this.socket.cork();
      this.socket.write(header);
      const more = this.socket.write(piece);
      this.socket.uncork();
      if (!more && !last) await new Promise<void>((go) => this.socket.once("drain", go));
    }
  }

  private onBytes(chunk: Buffer): void {
    if (this.failure !== undefined) return;
    this.reader.push(chunk);
    try {
      for (let f = this.reader.next(); f !== undefined; f = this.reader.next()) {
        this.onFrame(f);
        if (this.failure !== undefined) return;
      }
      this.hashPartial();
    } catch (e) {
      const err = e instanceof RonodeError ? e : new ProtocolError("malformed", (e as Error).message);
      this.fail(err);
      this.socket.destroy();
    }
  }

  /** Feeds the bytes of a body frame still arriving to its request's hasher. */
  private hashPartial(): void {
    const part = this.reader.partial();
    if (part === undefined || (part.flags & Flags.RESP) === 0 || !SUCCESS(part.code)) return;
    const p = this.pending.get(part.corrId);
    if (p === undefined || p.hasher === undefined || p.abandoned) return;
    let at = 0;
    for (const c of part.payload) {
      const end = at + c.length;
      if (end > p.hashed) {
        p.hasher.update(p.hashed > at ? c.subarray(p.hashed - at) : c);
        p.hashed = end;
      }
      at = end;
    }
  }

  private onFrame(f: Frame): void {
    if ((f.flags & Flags.RESP) !== 0) return this.onResp(f);
    if ((f.flags & Flags.EVENT) !== 0) return this.onEvent(f);
    return this.onReq(f);
  }

  private onResp(f: Frame): void {
    const p = this.pending.get(f.corrId);
    if (p === undefined) throw new ProtocolError("bad_sequence", `an answer to corr_id ${f.corrId}, which is not an open request`);
    const start = (f.flags & Flags.START) !== 0;
    const end = (f.flags & Flags.END) !== 0;
    if (start && p.open) throw new ProtocolError("bad_sequence", `START while the answer to ${f.corrId} is open`);
    if (end && !start && !p.open) throw new ProtocolError("bad_sequence", `END with no answer to ${f.corrId} open`);
    if (start) p.open = true;
    const last = end || !p.open;
    if (!SUCCESS(f.code)) {
      // An error is one whole RESP, or the END of a stream already open (section 4).
      if (!last) throw new ProtocolError("bad_sequence", `error status ${f.code} on a frame that does not end the answer`);
      this.settle(f.corrId, p);
      if (!p.abandoned) p.reject(nodeError(parseErrorBody(p.app, f.code, f.payload)));
      return;
    }
    if (p.open && p.code !== 0 && p.code !== f.code) {
      throw new ProtocolError("bad_sequence", `status ${f.code} inside an answer that opened with ${p.code}`);
    }
    p.code = f.code;
    if (p.hasher !== undefined && !p.abandoned) {
      // The rest of this frame's payload; what arrived before it was whole is hashed already.
      if (p.hashed < f.payload.length) p.hasher.update(p.hashed > 0 ? f.payload.subarray(p.hashed) : f.payload);
      p.hashed = 0;
    }
    if (!p.abandoned) {
      if (p.onData !== undefined) {
        // A streamed answer may be long: its deadline runs from the last frame, not the request.
        p.timer?.refresh();
        if (f.payload.length > 0) p.onData(f.payload as Buffer);
      } else if (f.payload.length > 0) {
        p.bytes += f.payload.length;
        if (p.bytes > this.opts.maxAnswerBytes) {
          p.abandoned = true;
          p.chunks = [];
          p.reject(new ProtocolError("oversize", `answer to ${f.corrId} is over ${this.opts.maxAnswerBytes} bytes`));
        } else p.chunks.push(f.payload as Buffer);
      }
    }
    if (last) {
      this.settle(f.corrId, p);
      if (!p.abandoned) {
        const payload = p.chunks.length === 1 ? p.chunks[0]! : Buffer.concat(p.chunks, p.bytes);
        p.resolve(p.hasher === undefined ? { code: f.code, payload } : { code: f.code, payload, digest: p.hasher.finalize() });
      }
    }
  }

  private settle(corrId: number, p: Pending): void {
    clearTimeout(p.timer);
    this.pending.delete(corrId);
    this.slotsUsed--;
    if (this.goaway !== undefined && this.pending.size === 0) this.socket.end();
    this.releaseSlots();
  }

  private onEvent(f: Frame): void {
    if (f.app === App.CONTROL) {
      const g = parseGoaway(f.payload);
      this.onGoaway(g.reason, g.last_corr_id);
    } else if (f.app === App.GOSSIP) {
      const m = parseGossipEvent(f.payload);
      for (const listener of this.topics.get(m.topic) ?? []) listener(m);
      this.emit("message", m);
    } else {
      throw new ProtocolError("malformed", `an EVENT on app ${f.app}`);
    }
    if ((f.flags & Flags.ACK_REQ) !== 0) {
      this.socket.write(encodeFrame({ flags: Flags.RESP, code: 200, app: f.app, tenant: f.tenant, corrId: f.corrId }));
    }
  }

  private onReq(f: Frame): void {
    // A node may PING a session; nothing else is asked of a client.
    if (f.app === App.CONTROL) {
      const text = Buffer.from(f.payload).toString("utf8");
      const m = /^\{"ping":(\d+)\}$/.exec(text);
      if (m !== null) {
        this.socket.write(encodeFrame({ flags: Flags.RESP, code: 200, app: 0, tenant: f.tenant, corrId: f.corrId, payload: Buffer.from(`{"pong":${m[1]}}`) }));
        return;
      }
    }
    throw new ProtocolError("bad_sequence", `a request (app ${f.app}) from the node that a client does not serve`);
  }

  /** GOAWAY: requests above `last` were not taken; the rest are answered, then the session ends. */
  private onGoaway(reason: string, last: number): void {
    this.goaway = { reason, lastCorrId: last };
    for (const [corrId, p] of [...this.pending]) {
      if (corrId > last) {
        this.settle(corrId, p);
        if (!p.abandoned) p.reject(new ConnectionError(`the node sent GOAWAY ${reason} before taking request ${corrId}`, "goaway"));
      }
    }
    for (const w of this.waiting.splice(0)) w.fail(new ConnectionError(`the node sent GOAWAY ${reason}`, "goaway"));
    this.emit("goaway", this.goaway);
    if (this.pending.size === 0) this.socket.end();
  }

  private fail(e: Error): void {
    if (this.failure !== undefined) return;
    this.failure = e;
    for (const [corrId, p] of [...this.pending]) {
      clearTimeout(p.timer);
      this.pending.delete(corrId);
      if (!p.abandoned) p.reject(e);
    }
    for (const w of this.waiting.splice(0)) w.fail(e);
    this.emit("closed", e);
  }
}
