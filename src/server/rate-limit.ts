/**
 * Per-client rate limits: one token bucket per client, in this process's memory. With several
 * replicas each keeps its own buckets, so a client may make up to replicas × its limit.
 *
 * Hand-written rather than a library: the buckets are keyed by configured client ids (a bounded
 * set, so no eviction), need no store, and the whole rule is the refill arithmetic below; the
 * maintained libraries (rate-limiter-flexible and the like) bring store adapters and policies this
 * does not use.
 */
import { RateLimitedError } from '../errors.ts';
import type { RateLimit } from '../privacy/policy.ts';

interface Bucket {
  tokens: number;
  at: number;
}

export class RateLimiter {
  private readonly buckets = new Map<string, Bucket>();

  /**
   * `limitOf` gives a client's limit (undefined: unlimited). `now` is injectable for tests.
   */
  constructor(
    private readonly limitOf: (client: string) => RateLimit | undefined,
    private readonly now: () => number = Date.now,
  ) {}

  /** Counts one request of `client`; throws RateLimitedError (429) when its bucket is empty. */
  take(client: string): void {
    const limit = this.limitOf(client);
    if (!limit) return;
    const now = this.now();
    const perMs = limit.requestsPerMinute / 60_000;
    const b = this.buckets.get(client) ?? { tokens: limit.burst, at: now };
    b.tokens = Math.min(limit.burst, b.tokens + (now - b.at) * perMs);
    b.at = now;
    this.buckets.set(client, b);
    if (b.tokens >= 1) {
      b.tokens -= 1;
      return;
    }
    // Whole seconds, rounded up (Retry-After is an integer): waiting that long always finds a token.
    throw new RateLimitedError(client, Math.max(1, Math.ceil((1 - b.tokens) / perMs / 1000)), limit);
  }
}

/** Each client's limit: its own `rateLimit`, else the server default; `false` means none. */
export function clientRateLimits(clients: readonly { id: string; rateLimit?: RateLimit | false }[], fallback?: RateLimit): (client: string) => RateLimit | undefined {
  const byClient = new Map(clients.map((c) => [c.id, c.rateLimit]));
  return (client) => {
    const own = byClient.get(client);
    if (own === false) return undefined;
    return own ?? fallback;
  };
}
