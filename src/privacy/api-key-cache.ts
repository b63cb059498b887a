/**
 * API keys verified once and then remembered for a short time (key hash → client), so a busy
 * client's requests do not each read the store. Revocation (`rostergate keys revoke`, in any
 * process or replica) is honoured within `ttlMs`: a remembered key is looked up again once it is
 * that old, and a revoked one is forgotten then. Only keys that verified are remembered; an unknown
 * or revoked key is looked up every time, so a key created in another process works at once and
 * guessing fills no memory. Concurrent first requests with one key share one look-up.
 *
 * A short TTL rather than a generation counter: a counter would still cost a store read per
 * request (the read this avoids), and a few seconds is the bound operators can be told.
 */

interface Known<T> {
  client: T;
  until: number;
}

/** `T`: what a key stands for (its client id; with a tenant binding, both). */
export class ApiKeyCache<T = string> {
  private known = new Map<string, Known<T>>();
  private loading = new Map<string, Promise<{ client: T | undefined; readAt: number }>>();

  /**
   * @param ttlMs how long a verified key is trusted before it is looked up again (0: never cached).
   * @param maxEntries bounds memory: past it the cache starts afresh (keys are few; this is a guard).
   */
  constructor(
    readonly ttlMs: number,
    private readonly now: () => number = Date.now,
    private readonly maxEntries = 10_000,
  ) {}

  /** The client of a key hash: remembered, or from `load` (which answers undefined for unknown or revoked keys). */
  async client(hash: string, load: (hash: string) => Promise<T | undefined>): Promise<T | undefined> {
    const k = this.known.get(hash);
    if (k && k.until > this.now()) return k.client;
    if (this.ttlMs <= 0) return load(hash);
    let p = this.loading.get(hash);
    if (!p) {
      // The TTL counts from before the read: a revocation committed after it is seen within ttlMs.
      const readAt = this.now();
      p = load(hash).then((client) => ({ client, readAt })).finally(() => this.loading.delete(hash));
      this.loading.set(hash, p);
    }
    const { client, readAt } = await p;
    if (client === undefined) this.known.delete(hash);
    else {
      if (this.known.size >= this.maxEntries) this.known = new Map();
      this.known.set(hash, { client, until: readAt + this.ttlMs });
    }
    return client;
  }
}
