/**
 * A store is bound to its master key: it records the key's fingerprint (never the key), and a
 * different key is refused by every command that opens the store with one, before anything is
 * written — instead of a sync that silently duplicates every person. The demo, which makes a new
 * key on every start, keeps working because it starts from a fresh store each time.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { request } from 'undici';
import { DEMO_CLIENTS, DEMO_PURPOSES } from '../../src/demo/demo-policy.ts';
import { RosterDataset } from '../../src/demo/dataset.ts';
import { directConnector } from '../../src/demo/direct-connector.ts';
import { startDemo } from '../../src/demo/demo.ts';
import { buildUnifiedSchema } from '../../src/graphql/schema.ts';
import { createLogger } from '../../src/log.ts';
import { KeyRing } from '../../src/privacy/pseudonym.ts';
import { auditLogFor, setupPrivacy } from '../../src/graphql/privacy.ts';
import { assertStoreKey, KEY_FINGERPRINT_META } from '../../src/privacy/store-key.ts';
import { parseConfig } from '../../src/config/config.ts';
import { serveStore, syncAll } from '../../src/runtime.ts';
import { SqliteStore } from '../../src/store/sqlite.ts';
import type { Store } from '../../src/store/types.ts';
import { syncSource } from '../../src/sync/runner.ts';
import { openTestStore, storeKinds, tempDir } from '../support/stores.ts';
import { demoPrivacyConfig } from '../support/privacy.ts';
import { CLI_BIN } from '../support/cli-bin.ts';

const log = createLogger({ level: 'silent' });
const KEY_A = Buffer.alloc(32, 0xa1);
const KEY_B = Buffer.alloc(32, 0xb2);
const ringA = new KeyRing(KEY_A, 'test');
const ringB = new KeyRing(KEY_B, 'test');
const MISMATCH = /the master key does not match the one this store was created with \(store: key fingerprint kf1_[A-Za-z0-9_-]{22}; the key given: kf1_[A-Za-z0-9_-]{22}\): pass the original key/;

describe('key fingerprint', () => {
  it('is stable per key, differs between keys, ignores the tenant, and contains no form of the key', () => {
    const fp = ringA.fingerprint();
    expect(fp).toMatch(/^kf1_[A-Za-z0-9_-]{22}$/);
    expect(new KeyRing(KEY_A, 'other-tenant').fingerprint()).toBe(fp);
    expect(ringB.fingerprint()).not.toBe(fp);
    for (const form of [KEY_A.toString('hex'), KEY_A.toString('base64url'), KEY_A.toString('base64')]) expect(fp).not.toContain(form.slice(0, 8));
  });
});

describe.each(storeKinds())('a store bound to its master key, on %s', (kind) => {
  const open: Store[] = [];
  afterAll(async () => {
    for (const s of open) await s.close();
  });
  const fresh = async () => {
    const s = await openTestStore(kind);
    open.push(s);
    return s;
  };

  it('records the fingerprint on first use, accepts the same key again and refuses another', async () => {
    const store = await fresh();
    expect(await store.meta(KEY_FINGERPRINT_META)).toBeUndefined();
    await assertStoreKey(store, ringA);
    expect(await store.meta(KEY_FINGERPRINT_META)).toBe(ringA.fingerprint());
    await assertStoreKey(store, ringA);
    await expect(assertStoreKey(store, ringB)).rejects.toMatchObject({ code: 'CONFIG_INVALID', message: expect.stringMatching(MISMATCH) });
    // The refusal changes nothing: the original key still opens the store.
    expect(await store.meta(KEY_FINGERPRINT_META)).toBe(ringA.fingerprint());
    expect(await store.initMeta(KEY_FINGERPRINT_META, 'other')).toBe(ringA.fingerprint());
  });

  it('sync and serve refuse a store synced under another key, before changing anything', async () => {
    const store = await fresh();
    const cfg = demoPrivacyConfig(':memory:');
    const a = setupPrivacy(cfg, buildUnifiedSchema(), { keyring: ringA });
    const dataset = RosterDataset.generate({ students: 20, teachers: 2, classes: 2, schools: 1 });
    await syncAll(store, cfg, log, { privacy: a });
    await syncSource(store, directConnector('demo', dataset), { ...(await a.ingest(store)), matchRules: cfg.identity.match });
    const before = await store.counts();
    const b = setupPrivacy(cfg, buildUnifiedSchema(), { keyring: ringB });
    await expect(syncAll(store, cfg, log, { privacy: b })).rejects.toThrow(MISMATCH);
    await expect(serveStore(store, cfg, log, { port: 0, privacy: b, webhooks: false })).rejects.toThrow(MISMATCH);
    expect(await store.counts()).toEqual(before);
    const gw = await serveStore(store, cfg, log, { port: 0, privacy: a, webhooks: false });
    await gw.close();
  });

  it('an older store without a fingerprint takes the first key whose audit log matches, and refuses one that does not', async () => {
    const store = await fresh();
    await auditLogFor(store, ringA).record({ at: '2026-12-01T10:00:00Z', client: 'c', purpose: 'p', kind: 'query', operation: 'Op', operationHash: null, categories: {}, fields: [], people: 0 });
    // Read-only use (audit verify) checks but never records.
    await assertStoreKey(store, ringB, { record: false });
    expect(await store.meta(KEY_FINGERPRINT_META)).toBeUndefined();
    await expect(assertStoreKey(store, ringB)).rejects.toThrow(/does not match the one this store's audit log was written with \(the store records no key fingerprint yet/);
    expect(await store.meta(KEY_FINGERPRINT_META)).toBeUndefined();
    await assertStoreKey(store, ringA);
    expect(await store.meta(KEY_FINGERPRINT_META)).toBe(ringA.fingerprint());
  });
});

describe('the demo makes a new key on every start', () => {
  it('starts again in the same data folder (a fresh store each time) and serves', async () => {
    const dataDir = tempDir();
    for (let i = 0; i < 2; i++) {
      const demo = await startDemo({ dataDir, district: { students: 30, teachers: 3, classes: 3 }, log });
      try {
        expect(await demo.store.meta(KEY_FINGERPRINT_META)).toBe(demo.privacy.keyring.fingerprint());
        const gw = await serveStore(demo.store, demo.config, log, { port: 0, privacy: demo.privacy, webhooks: false });
        const r = await request(`${gw.url}/graphql`, {
          method: 'POST', headers: { 'content-type': 'application/json', 'x-api-key': demo.keys[0]!.key }, body: JSON.stringify({ query: '{ schools { totalCount } }' }),
        });
        expect(r.statusCode).toBe(200);
        await r.body.dump();
        await gw.close();
      } finally {
        await demo.close();
      }
    }
  }, 120_000);
});

describe('every command that opens the store with a key refuses another key (CLI)', () => {
  const bin = CLI_BIN;
  const run = (args: string[], key: Buffer) => {
    const env = { ...process.env, ROSTERGATE_LOG_LEVEL: 'silent', ROSTERGATE_MASTER_KEY: key.toString('hex') } as Record<string, string>;
    delete env.ROSTERGATE_CONFIG;
    return spawnSync(process.execPath, [bin, ...args], { encoding: 'utf8', env, timeout: 60_000 });
  };

  /** A config file and an older store (synced without a fingerprint) under KEY_A. */
  async function olderStore() {
    const dir = tempDir();
    // A source that cannot be reached: sync gets as far as the key check, then fails on the source.
    const raw = {
      store: './rg.db', privacy: { tenant: 'cli-test' }, purposes: DEMO_PURPOSES, clients: DEMO_CLIENTS,
      sources: [{ id: 'district-clever', type: 'clever', baseUrl: 'http://127.0.0.1:9', token: 't', http: { maxRetries: 0, timeoutMs: 2000 } }],
    };
    const cfgFile = join(dir, 'rostergate.json');
    writeFileSync(cfgFile, JSON.stringify(raw));
    const cfg = parseConfig({ ...raw, store: join(dir, 'rg.db') });
    const store = SqliteStore.open(cfg.store);
    const privacy = setupPrivacy(cfg, buildUnifiedSchema(), { keyring: new KeyRing(KEY_A, 'cli-test') });
    await syncSource(store, directConnector('demo', RosterDataset.generate({ students: 20, teachers: 2, classes: 2, schools: 1 })), await privacy.ingest(store));
    return { dir, cfgFile, path: cfg.store, store };
  }
  const refused = (args: string[], cfgFile: string) => {
    const r = run([...args, '--config', cfgFile], KEY_B);
    expect(r.status, args.join(' ')).toBe(2);
    expect(r.stderr, args.join(' ')).toMatch(MISMATCH);
    expect(r.stderr.trim().split('\n'), args.join(' ')).toHaveLength(1);
    expect(r.stderr).toContain(ringA.fingerprint());
    expect(r.stderr).toContain(ringB.fingerprint());
  };

  it('sync records the key of an older store; sync and serve then refuse another key with exit 2 and one line naming both fingerprints', async () => {
    const { cfgFile, path, store } = await olderStore();
    await store.close();
    const first = run(['sync', '--config', cfgFile], KEY_A);
    expect(first.status).toBe(1);
    expect(first.stderr).not.toMatch(/master key/);
    const db = new Database(path, { readonly: true });
    expect(db.prepare(`SELECT value FROM meta WHERE key = ?`).get(KEY_FINGERPRINT_META)).toEqual({ value: ringA.fingerprint() });
    db.close();
    for (const args of [['sync'], ['serve', '--port', '0']]) refused(args, cfgFile);
    expect(readFileSync(path).includes(KEY_A.toString('hex'))).toBe(false);
  }, 120_000);

  it('extract, keys rotate, identity link and audit verify refuse another key the same way, changing nothing', async () => {
    const { dir, cfgFile, path, store } = await olderStore();
    await assertStoreKey(store, ringA);
    await store.close();
    const out = join(dir, 'people.csv');
    for (const args of [
      ['extract', '--client', 'analytics-demo', '--dataset', 'people', '--out', out], ['keys', 'rotate', '--domain', 'analytics'],
      ['identity', 'link', '--source', 'demo', '--key', 'x', '--into', 'per_x'], ['audit', 'verify'],
    ]) refused(args, cfgFile);
    expect(existsSync(out)).toBe(false);
    const db = new Database(path, { readonly: true });
    expect(db.prepare(`SELECT version FROM pseudonym_domains WHERE domain = 'analytics'`).get()).toEqual({ version: 1 });
    db.close();
    // Four CLI processes, each loading the gateway: slow on a loaded machine.
  }, 180_000);
});
