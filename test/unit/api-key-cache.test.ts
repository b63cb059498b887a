/**
 * The verified-key cache (src/privacy/api-key-cache.ts) over a real store, with a clock the test
 * moves: a verified key is read once per TTL; a revocation is seen at the first request past the
 * TTL counted from the read (never later); unknown and revoked keys are read every time (a new key
 * works at once); concurrent first requests share one read; TTL 0 reads every time.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { ApiKeyCache } from '../../src/privacy/api-key-cache.ts';
import { hashApiKey, newApiKey } from '../../src/privacy/api-keys.ts';
import type { Store } from '../../src/store/types.ts';
import { openTestStore, storeKinds } from '../support/stores.ts';

describe.each(storeKinds())('API key cache on %s', (kind) => {
  let store: Store;
  afterEach(async () => store?.close());

  async function setup(ttlMs: number) {
    store = await openTestStore(kind);
    let now = 1_000_000;
    const cache = new ApiKeyCache(ttlMs, () => now);
    let reads = 0;
    const load = async (h: string) => {
      reads++;
      const k = await store.findApiKey(h);
      return k && !k.revokedAt ? k.client : undefined;
    };
    return { cache, load, reads: () => reads, advance: (ms: number) => (now += ms), now: () => now };
  }

  it('reads a verified key once per TTL, and a revocation is honoured at the TTL after that read', async () => {
    const t = await setup(5000);
    const key = hashApiKey(newApiKey());
    await store.addApiKey(key, 'lms-demo', new Date().toISOString());
    expect(await t.cache.client(key, t.load)).toBe('lms-demo');
    for (let i = 0; i < 10; i++) expect(await t.cache.client(key, t.load)).toBe('lms-demo');
    expect(t.reads()).toBe(1);
    // Revoked (as by `rostergate keys revoke` in another process) 1 s after the read.
    t.advance(1000);
    await store.revokeApiKeys('lms-demo', new Date().toISOString());
    t.advance(3999);
    expect(await t.cache.client(key, t.load)).toBe('lms-demo');
    t.advance(1);
    expect(await t.cache.client(key, t.load)).toBeUndefined();
    expect(await t.cache.client(key, t.load)).toBeUndefined();
    expect(t.reads()).toBe(3);
  });

  it('does not remember unknown keys: one created later works at once', async () => {
    const t = await setup(5000);
    const key = hashApiKey(newApiKey());
    expect(await t.cache.client(key, t.load)).toBeUndefined();
    await store.addApiKey(key, 'analytics-demo', new Date().toISOString());
    expect(await t.cache.client(key, t.load)).toBe('analytics-demo');
    expect(t.reads()).toBe(2);
  });

  it('concurrent first requests with one key share a read; TTL 0 reads every time', async () => {
    const t = await setup(5000);
    const key = hashApiKey(newApiKey());
    await store.addApiKey(key, 'lms-demo', new Date().toISOString());
    expect(await Promise.all(Array.from({ length: 20 }, () => t.cache.client(key, t.load)))).toEqual(Array(20).fill('lms-demo'));
    expect(t.reads()).toBe(1);
    const uncached = new ApiKeyCache(0);
    let reads = 0;
    const load = async (h: string) => (reads++, (await store.findApiKey(h))?.client);
    for (let i = 0; i < 3; i++) expect(await uncached.client(key, load)).toBe('lms-demo');
    expect(reads).toBe(3);
  });
});
