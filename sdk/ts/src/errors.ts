// Typed errors. A node's refusal arrives as an error body (docs/PROTOCOL.md section 4) and is
// mapped to a class by its reason label, falling back to its status; failures found by the
// client itself (identity, protocol, digest, timeout, connection) have their own classes.

/** The error body of section 4, as decoded from JSON (apps 0, 1) or CBOR (apps 2, 3). */
export interface ErrorBody {
  code: number;
  reason: string;
  message: string;
  retryable: boolean;
  corr_id?: number;
  retry_after_ms?: number;
}

/** Every error this package throws. `retryable` tells whether trying again may succeed. */
export class RonodeError extends Error {
  /** The wire label (`not_found`, `busy`, ...) or a client-side one (`identity`, `timeout`, ...). */
  readonly reason: string;
  readonly retryable: boolean;
  constructor(reason: string, message: string, retryable: boolean) {
    super(message);
    this.name = new.target.name;
    this.reason = reason;
    this.retryable = retryable;
  }
}

/** What a node answered with a status other than 200 or 206. */
export class NodeError extends RonodeError {
  readonly status: number;
  /** The node's explanation (the body's `message`). */
  readonly detail: string;
  /** Present on 429 and 503: when the node says to come back. */
  readonly retryAfterMs: number | undefined;
  readonly corrId: number | undefined;
  constructor(body: ErrorBody) {
    super(body.reason, `node answered ${body.code} ${body.reason}: ${body.message}`, body.retryable);
    this.status = body.code;
    this.detail = body.message;
    this.retryAfterMs = body.retry_after_ms;
    this.corrId = body.corr_id;
  }
}

/** 400 and the framing rejects of section 2.4 (`malformed`, `bad_sequence`, ...). */
export class BadRequest extends NodeError {}
/** 400 `bad_digest`: bytes that do not hash to their address (from a node, or found here). */
export class BadDigest extends NodeError {}
/** 401 `unauthorized`: the operation needs a capability and none was sent. */
export class Unauthorized extends NodeError {}
/** 403 `forbidden`: the capability is bad, expired or out of scope. */
export class Forbidden extends NodeError {}
/** 404 `not_found`. */
export class NotFound extends NodeError {}
/** 408 `slow_client`: the request did not complete within the node's read timeout. */
export class SlowClient extends NodeError {}
/** 413 `oversize`: an object over the node's `objects.max_bytes`, or a frame over max_frame. */
export class TooLarge extends NodeError {}
/** 429 `quota`: the session's rate or in-flight limit. Retryable after `retryAfterMs`. */
export class Quota extends NodeError {}
/** 500 `internal`: a fault of the node. Retryable. */
export class Internal extends NodeError {}
/** 503 `busy`: the node's work queue is full. Retryable after `retryAfterMs`. */
export class Busy extends NodeError {}
/** 503 `not_ready`: the plane is not ready, or the node is draining. Retryable elsewhere or later. */
export class NotReady extends NodeError {}
/** 504 `timeout`: a fetch or probe the node made timed out. Retryable. */
export class UpstreamTimeout extends NodeError {}
/** 507 `store_full`. */
export class StoreFull extends NodeError {}

type NodeErrorClass = new (body: ErrorBody) => NodeError;

const BY_REASON: Record<string, NodeErrorClass> = {
  bad_digest: BadDigest,
  unauthorized: Unauthorized,
  forbidden: Forbidden,
  not_found: NotFound,
  slow_client: SlowClient,
  oversize: TooLarge,
  quota: Quota,
  internal: Internal,
  busy: Busy,
  not_ready: NotReady,
  timeout: UpstreamTimeout,
  store_full: StoreFull,
};

const BY_STATUS: Record<number, NodeErrorClass> = {
  400: BadRequest,
  401: Unauthorized,
  403: Forbidden,
  404: NotFound,
  408: SlowClient,
  413: TooLarge,
  429: Quota,
  500: Internal,
  503: Busy,
  504: UpstreamTimeout,
  507: StoreFull,
};

/** The typed error for a node's error body: by reason label first, then by status. */
export function nodeError(body: ErrorBody): NodeError {
  const cls = BY_REASON[body.reason] ?? BY_STATUS[body.code] ?? NodeError;
  return new cls(body);
}

/** The node's certificate is not a node certificate, or it is not the pinned NodeId. */
export class IdentityError extends RonodeError {
  constructor(message: string) {
    super("identity", message, false);
  }
}

/** The node broke OAP/1 (a bad header, an answer to nothing, a malformed message). */
export class ProtocolError extends RonodeError {
  constructor(label: string, message: string) {
    super(label, `protocol error (${label}): ${message}`, false);
  }
}

/** The client's own deadline (`timeoutMs`) passed. Retryable. */
export class TimeoutError extends RonodeError {
  constructor(message: string) {
    super("client_timeout", message, true);
  }
}

/**
 * The session is gone: TCP/TLS failed or closed, or the node sent GOAWAY before accepting the
 * request. Retryable on a new session (the client opens one).
 */
export class ConnectionError extends RonodeError {
  constructor(message: string, reason = "connection", retryable = true) {
    super(reason, message, retryable);
  }
}

/** Bytes that do not hash to the address they were asked by: refused by this client. */
export function digestMismatch(expected: string, got: string): BadDigest {
  return new BadDigest({
    code: 400,
    reason: "bad_digest",
    message: `the node's bytes hash to ${got}, not to the address ${expected}`,
    retryable: false,
  });
}
