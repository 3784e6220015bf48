/**
 * Per-API-key rate limiting: a token bucket per key, refilled continuously at `rate` per second and
 * holding at most twice that (so a client may burst after idling). Buckets are keyed by the id
 * `ApiKeys.match` gives the matched key, so no key sits in memory outside ApiKeys and the key is
 * hashed once per request, and their number is bounded: an evicted bucket starts full again, which
 * only ever errs on the side of letting a request through.
 */
import { performance } from 'node:perf_hooks';
import { LRUCache } from 'lru-cache';
import { ErrorCode, HubError } from '../errors';

interface Bucket {
  tokens: number;
  /** performance.now() of the last refill. */
  at: number;
}

export type Take = { ok: true } | { ok: false; retryAfterSeconds: number };

export class TokenBuckets<Id extends string | number = string> {
  private readonly buckets: LRUCache<Id, Bucket>;
  private readonly capacity: number;

  constructor(
    private readonly rate: number,
    maxBuckets = 10_000,
    private readonly now: () => number = () => performance.now(),
  ) {
    if (!(rate > 0)) throw new RangeError('rate must be positive');
    this.capacity = rate * 2;
    this.buckets = new LRUCache({ max: maxBuckets });
  }

  /** Takes one token from the bucket of `id`, or says how long until one is there. */
  take(id: Id): Take {
    const t = this.now();
    let bucket = this.buckets.get(id);
    if (!bucket) {
      bucket = { tokens: this.capacity, at: t };
      this.buckets.set(id, bucket);
    } else {
      bucket.tokens = Math.min(this.capacity, bucket.tokens + ((t - bucket.at) * this.rate) / 1000);
      bucket.at = t;
    }
    if (bucket.tokens >= 1) {
      bucket.tokens -= 1;
      return { ok: true };
    }
    return { ok: false, retryAfterSeconds: Math.max(1, Math.ceil((1 - bucket.tokens) / this.rate)) };
  }
}

/**
 * The per-API-key limit of `REST_RATE_LIMIT` requests per second (0: none), taking the id of a key
 * that passed the API key check. Throws RATE_LIMITED with the seconds to wait.
 */
export function apiKeyRateLimit(rate: number): (keyId: number) => void {
  if (rate === 0) return () => undefined;
  const buckets = new TokenBuckets<number>(rate);
  return (keyId) => {
    const taken = buckets.take(keyId);
    if (taken.ok) return;
    throw new HubError(ErrorCode.RATE_LIMITED, `rate limit of ${rate} requests per second exceeded for this API key`, undefined, {
      'Retry-After': String(taken.retryAfterSeconds),
    });
  };
}
