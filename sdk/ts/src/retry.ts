// Retries of retryable answers (429 quota, 500 internal, 503 busy / not_ready, 504 timeout, a
// lost session, the client's own timeout) with jittered exponential backoff. Nothing else is
// retried: 4xx refusals are the same on every try.

import { NodeError, RonodeError } from "./errors.js";

export interface RetryOptions {
  /** Tries in all, the first included (1: no retry). Default 4. */
  attempts?: number;
  /** Backoff of the first retry, before jitter. Default 50 ms. */
  baseMs?: number;
  /** Largest backoff, before the node's `retry_after_ms` is added. Default 2,000 ms. */
  maxMs?: number;
}

export interface RetryPolicy {
  attempts: number;
  baseMs: number;
  maxMs: number;
  /** A number in [0, 1); tests pass a seeded one. */
  random: () => number;
}

export function retryPolicy(o: RetryOptions | false | undefined, random: () => number): RetryPolicy {
  if (o === false) return { attempts: 1, baseMs: 0, maxMs: 0, random };
  const p = { attempts: o?.attempts ?? 4, baseMs: o?.baseMs ?? 50, maxMs: o?.maxMs ?? 2000, random };
  if (!Number.isInteger(p.attempts) || p.attempts < 1 || p.attempts > 100) throw new RangeError(`retry.attempts ${p.attempts}: 1 ..= 100`);
  if (!(p.baseMs >= 0 && p.maxMs >= p.baseMs)) throw new RangeError("retry: 0 <= baseMs <= maxMs");
  return p;
}

/**
 * The wait before retry number `retry` (1 for the first): the node's `retry_after_ms` when it
 * gave one, plus "full jitter" over an exponentially growing window, so that clients refused
 * together do not come back together.
 */
export function backoffMs(p: RetryPolicy, retry: number, err: RonodeError): number {
  const window = Math.min(p.maxMs, p.baseMs * 2 ** (retry - 1));
  const floor = err instanceof NodeError ? (err.retryAfterMs ?? 0) : 0;
  return floor + p.random() * window;
}

/** Runs `op` until it succeeds, fails with a non-retryable error, or the tries are spent. */
export function withRetry<T>(p: RetryPolicy, op: () => Promise<T>, onRetry: (err: RonodeError, waitMs: number) => void): Promise<T> {
  // The first try adds no promise of its own: most calls succeed on it.
  let first: Promise<T>;
  try {
    first = op();
  } catch (e) {
    first = Promise.reject(e);
  }
  return first.catch((e: unknown) => {
    if (!(e instanceof RonodeError) || !e.retryable || p.attempts <= 1) throw e;
    return retrying(p, op, onRetry, e);
  });
}

async function retrying<T>(p: RetryPolicy, op: () => Promise<T>, onRetry: (err: RonodeError, waitMs: number) => void, first: RonodeError): Promise<T> {
  const wait = backoffMs(p, 1, first);
  onRetry(first, wait);
  await new Promise((go) => setTimeout(go, wait));
  for (let attempt = 2; ; attempt++) {
    try {
      return await op();
    } catch (e) {
      if (!(e instanceof RonodeError) || !e.retryable || attempt >= p.attempts) throw e;
      const wait = backoffMs(p, attempt, e);
      onRetry(e, wait);
      await new Promise((go) => setTimeout(go, wait));
    }
  }
}

/** A seeded generator (xorshift32) for reproducible jitter. */
export function seededRandom(seed: number): () => number {
  let x = seed >>> 0 || 1;
  return () => {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    return x / 0x1_0000_0000;
  };
}
