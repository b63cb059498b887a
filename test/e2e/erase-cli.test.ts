/**
 * `rostergate erase` as an operator runs it, on SQLite and PostgreSQL, for a student two sources
 * deliver (linked into one person) and two clients received: the output lists exactly those
 * clients and names the person only by the audit log's hash; re-syncing both sources stores none
 * of their records; `--lift` with either source's key lifts the whole erasure; wrong or missing
 * names exit 2 with the reason. A running sync's lease makes an erasure wait or refuse.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { request } from 'undici';
import { RosterDataset } from '../../src/demo/dataset.ts';
import { directConnector } from '../../src/demo/direct-connector.ts';
import { DEMO_CLIENTS, DEMO_PURPOSES } from '../../src/demo/demo-policy.ts';
import { parseConfig } from '../../src/config/config.ts';
import { buildUnifiedSchema } from '../../src/graphql/schema.ts';
import { createLogger } from '../../src/log.ts';
import { hashApiKey, newApiKey } from '../../src/privacy/api-keys.ts';
import { erasePerson, erasureRef } from '../../src/privacy/erasure.ts';
import { KeyRing } from '../../src/privacy/pseudonym.ts';
import { setupPrivacy, type Privacy } from '../../src/graphql/privacy.ts';
import { serveStore } from '../../src/runtime.ts';
import { openStore } from '../../src/store/open.ts';
import type { Store } from '../../src/store/types.ts';
import { acquireSourceLease } from '../../src/store/lease.ts';
import { syncSource } from '../../src/sync/runner.ts';
import { newPostgresDatabase, storeKinds, tempDir } from '../support/stores.ts';
import { CLI_BIN } from '../support/cli-bin.ts';

const bin = CLI_BIN;
const MASTER = Buffer.alloc(32, 11);
const TENANT = 'erase-test';
const SOURCES = ['district-sis', 'district-lms'];
const run = (args: string[]) => {
  const env = { ...process.env, ROSTERGATE_LOG_LEVEL: 'silent', ROSTERGATE_MASTER_KEY: MASTER.toString('hex') } as Record<string, string>;
  delete env.ROSTERGATE_CONFIG;
  return spawnSync(process.execPath, [bin, ...args], { encoding: 'utf8', env, timeout: 60_000 });
};

describe.each(storeKinds())('rostergate erase on %s', (kind) => {
  const dir = tempDir();
  const dataset = RosterDataset.generate({ students: 16, teachers: 2, classes: 3, schools: 1 });
  let db: { url: string; drop(): Promise<void> };
  let store: Store;
  let privacy: Privacy;
  let cfgFile: string;
  let studentKey: string;
  let personId: string;
  const sync = async () => {
    const out = [];
    for (const source of SOURCES) out.push(await syncSource(store, directConnector(source, dataset), { ...(await privacy.ingest(store)), matchRules: parseConfig({ store: 'x' }).identity.match, full: true }));
    return out;
  };

  beforeAll(async () => {
    db = kind === 'sqlite' ? { url: join(dir, 'rg.db'), drop: async () => {} } : await newPostgresDatabase();
    const raw = { store: db.url, privacy: { tenant: TENANT }, purposes: DEMO_PURPOSES, clients: DEMO_CLIENTS };
    cfgFile = join(dir, 'rostergate.json');
    writeFileSync(cfgFile, JSON.stringify(raw));
    const config = parseConfig(raw);
    store = await openStore(config);
    privacy = setupPrivacy(config, buildUnifiedSchema(), { keyring: new KeyRing(MASTER, TENANT), versionCacheMs: 0 });
    await sync();
    const keys: Record<string, string> = {};
    for (const c of config.clients) {
      keys[c.id] = newApiKey();
      await store.addApiKey(hashApiKey(keys[c.id]!), c.id, new Date().toISOString());
    }
    const gw = await serveStore(store, config, createLogger({ level: 'silent' }), { port: 0, privacy, webhooks: false });
    // The LMS and the data team receive everyone; the operator's client nothing.
    for (const client of ['lms-demo', 'analytics-demo']) {
      const r = await request(`${gw.url}/graphql`, { method: 'POST', headers: { 'content-type': 'application/json', 'x-api-key': keys[client]! }, body: JSON.stringify({ query: '{ people(first: 1000) { edges { node { id } } } }' }) });
      expect(r.statusCode).toBe(200);
      await r.body.dump();
    }
    await gw.close();
    studentKey = dataset.list('guardianship')[0]!.data.studentKey;
    personId = (await store.entityOfRecord({ source: 'district-sis', type: 'person', key: studentKey }))!;
    expect(await store.entityOfRecord({ source: 'district-lms', type: 'person', key: studentKey })).toBe(personId);
  }, 120_000);

  afterAll(async () => {
    await store?.close();
    await db?.drop();
  });

  it('refuses while a sync holds a source\'s lease, erasing nothing', async () => {
    const lease = await acquireSourceLease(store, 'district-lms');
    try {
      await expect(erasePerson({ store, privacy, personId, sources: SOURCES, requestedBy: { client: 'operator', name: 'tester' } })).rejects.toThrow(/another run .* is syncing it/);
      expect((await store.getEntities([personId]))[0]?.id).toBe(personId);
    } finally {
      await lease.release();
    }
  });

  it('erases by a source key, lists exactly the clients that received them, names them only by hash', async () => {
    const r = run(['erase', '--config', cfgFile, '--source', 'district-lms', '--key', studentKey]);
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    expect(r.stdout).toContain(`erased person ${erasureRef(privacy.keyring.auditKey(), personId)}`);
    expect(r.stdout).toMatch(/^ {2}analytics-demo: no webhook subscription for person.erased: tell this client another way$/m);
    expect(r.stdout).toMatch(/^ {2}lms-demo: no webhook subscription/m);
    expect(r.stdout).not.toContain('admin-demo');
    expect(r.stdout).not.toContain(personId);
    expect(r.stdout).not.toContain(studentKey);
    expect((await store.getEntities([personId]))[0]).toBeUndefined();
  });

  it('keeps them out of a full re-sync of both sources, until lifted by either source\'s key', async () => {
    const again = await sync();
    expect(again.every((s) => s.counters.suppressed > 0)).toBe(true);
    for (const source of SOURCES) expect(await store.entityOfRecord({ source, type: 'person', key: studentKey })).toBeUndefined();
    const lift = run(['erase', '--config', cfgFile, '--lift', '--source', 'district-sis', '--key', studentKey]);
    expect(lift.stderr).toBe('');
    expect(lift.status).toBe(0);
    expect(lift.stdout).toMatch(/^lifted \d+ suppression entries/);
    await sync();
    const back = await store.entityOfRecord({ source: 'district-lms', type: 'person', key: studentKey });
    expect(back).toMatch(/^per_/);
    expect(back).not.toBe(personId);
    expect(await store.entityOfRecord({ source: 'district-sis', type: 'person', key: studentKey })).toBe(back);
  }, 60_000);

  it('exits 2 naming the reason for an unknown person, a half-named one, or nothing to lift', () => {
    const unknown = run(['erase', '--config', cfgFile, '--person', 'per_nobody']);
    expect(unknown.status).toBe(2);
    expect(unknown.stderr).toContain('no person per_nobody in the store');
    const half = run(['erase', '--config', cfgFile, '--source', 'district-sis']);
    expect(half.status).toBe(2);
    expect(half.stderr).toContain('--source and --key go together');
    const both = run(['erase', '--config', cfgFile, '--person', 'per_x', '--source', 'district-sis', '--key', 'k']);
    expect(both.status).toBe(2);
    expect(both.stderr).toContain('name the person one way');
    const nothing = run(['erase', '--config', cfgFile, '--lift', '--source', 'district-sis', '--key', 'no-such-key']);
    expect(nothing.status).toBe(2);
    expect(nothing.stderr).toContain('no erasure suppresses a person with that key');
    // Four CLI processes, each loading the gateway: on a loaded machine they outlast the default 30 s.
  }, 120_000);
});
