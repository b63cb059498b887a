/**
 * Serving keyed requests without a commit per request (docs/serving.md), over HTTP on SQLite and
 * PostgreSQL: 200 parallel keyed requests leave 200 audit entries on one valid chain and every
 * person they returned in the ledger; a failed audit commit is an error answer carrying no data
 * (the disclosure is withheld, not made unaudited); a key revoked by `rostergate keys revoke` in
 * another process stops working once `server.apiKeyCacheSeconds` has passed, while until then the
 * key is read from the store once, not per request.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { request } from 'undici';
import { privateGateway, TEST_MASTER_KEY, type PrivateGateway } from '../support/privacy.ts';
import { newPostgresDatabase, storeKinds, tempDir } from '../support/stores.ts';
import { auditLogFor, setupPrivacy } from '../../src/graphql/privacy.ts';
import type { Store, StoreTx } from '../../src/store/types.ts';
import { RosterDataset } from '../../src/demo/dataset.ts';
import { directConnector } from '../../src/demo/direct-connector.ts';
import { DEMO_CLIENTS, DEMO_PURPOSES } from '../../src/demo/demo-policy.ts';
import { parseConfig } from '../../src/config/config.ts';
import { buildUnifiedSchema } from '../../src/graphql/schema.ts';
import { createLogger } from '../../src/log.ts';
import { hashApiKey, newApiKey } from '../../src/privacy/api-keys.ts';
import { KeyRing } from '../../src/privacy/pseudonym.ts';
import { serveStore } from '../../src/runtime.ts';
import { openStore } from '../../src/store/open.ts';
import { syncSource } from '../../src/sync/runner.ts';
import type { RunningGateway } from '../../src/server/gateway.ts';
import { CLI_BIN } from '../support/cli-bin.ts';

const bin = CLI_BIN;

describe.each(storeKinds())('serving on %s', { timeout: 180_000 }, (kind) => {
  let g: PrivateGateway;
  /** Set by a test: the served store's transactions then fail before their COMMIT. */
  let failCommits: Error | undefined;

  beforeAll(async () => {
    g = await privateGateway(undefined, undefined, {
      store: kind,
      served: (store) =>
        new Proxy(store, {
          get(target, prop) {
            if (prop === 'transaction') {
              return <T>(fn: (tx: StoreTx) => Promise<T>) =>
                target.transaction(async (tx) => {
                  const out = await fn(tx);
                  if (failCommits) throw failCommits;
                  return out;
                });
            }
            const v = Reflect.get(target, prop, target) as unknown;
            return typeof v === 'function' ? v.bind(target) : v;
          },
        }) as Store,
    });
  }, 120_000);
  afterAll(() => g?.close());

  it('200 parallel keyed requests: 200 entries on a chain that verifies, every person returned in the ledger', async () => {
    const list = await g.gql('lms-demo', `{ people(first: 1000) { edges { node { id } } } }`);
    const ids: string[] = list.body.data.people.edges.map((e: { node: { id: string } }) => e.node.id);
    expect(ids.length).toBeGreaterThan(100);
    const before = (await g.store.auditEntries({})).length;
    const asked = Array.from({ length: 200 }, (_, i) => ids[i % ids.length]!);
    const answers = await Promise.all(asked.map((id) => g.gql('lms-demo', `query Who($id: ID!) { person(id: $id) { id givenName } }`, { id })));
    for (const [i, a] of answers.entries()) {
      expect(a.status).toBe(200);
      expect(a.body.data.person.id).toBe(asked[i]);
    }
    const entries = (await g.store.auditEntries({})).slice(before);
    expect(entries).toHaveLength(200);
    expect(entries.every((e) => e.client === 'lms-demo' && e.operation === 'Who' && e.people === 1)).toBe(true);
    expect(await auditLogFor(g.store, g.privacy.keyring).verify()).toMatchObject({ ok: true });
    for (const id of new Set(asked)) expect((await g.store.disclosuresOf(id)).map((d) => d.client)).toContain('lms-demo');
  });

  it('a failed audit commit is an error answer without the data, and leaves the chain as it was', async () => {
    const before = await g.store.auditEntries({});
    failCommits = new Error('the store lost its connection');
    try {
      const r = await g.gql('lms-demo', `{ people(first: 5) { edges { node { id givenName } } } }`);
      expect(r.status).toBeGreaterThanOrEqual(500);
      expect(r.body.data).toBeUndefined();
      expect(r.body.errors?.[0]).toMatchObject({ message: 'internal error', extensions: { code: 'INTERNAL_SERVER_ERROR' } });
      // The error names nothing of the store's internals to the client.
      expect(JSON.stringify(r.body)).not.toContain('lost its connection');
    } finally {
      failCommits = undefined;
    }
    expect(await g.store.auditEntries({})).toEqual(before);
    expect((await g.gql('lms-demo', `{ schools { totalCount } }`)).status).toBe(200);
    expect(await auditLogFor(g.store, g.privacy.keyring).verify()).toMatchObject({ ok: true, entries: before.length + 1 });
  });
});

describe.each(storeKinds())('API key cache on %s', { timeout: 180_000 }, (kind) => {
  const TTL_SECONDS = 5;
  const dir = tempDir();
  let db: { url: string; drop(): Promise<void> };
  let store: Store;
  let gw: RunningGateway;
  let cfgFile: string;
  let key: string;
  let keyReads = 0;

  beforeAll(async () => {
    db = kind === 'sqlite' ? { url: join(dir, 'rg.db'), drop: async () => {} } : await newPostgresDatabase();
    const raw = { store: db.url, privacy: { tenant: 'test' }, purposes: DEMO_PURPOSES, clients: DEMO_CLIENTS, server: { apiKeyCacheSeconds: TTL_SECONDS } };
    cfgFile = join(dir, 'rostergate.json');
    writeFileSync(cfgFile, JSON.stringify(raw));
    const config = parseConfig(raw);
    store = await openStore(config);
    const privacy = setupPrivacy(config, buildUnifiedSchema(), { keyring: new KeyRing(TEST_MASTER_KEY, 'test') });
    await syncSource(store, directConnector('demo', RosterDataset.generate({ students: 20, teachers: 2, classes: 3, schools: 1 })), { ...(await privacy.ingest(store)) });
    key = newApiKey();
    await store.addApiKey(hashApiKey(key), 'lms-demo', new Date().toISOString());
    const counted = new Proxy(store, {
      get(target, prop) {
        const v = Reflect.get(target, prop, target) as unknown;
        if (prop === 'findApiKey') keyReads++;
        return typeof v === 'function' ? v.bind(target) : v;
      },
    });
    gw = await serveStore(counted, config, createLogger({ level: 'silent' }), { port: 0, privacy, webhooks: false });
  }, 120_000);
  afterAll(async () => {
    await gw?.close();
    await store?.close();
    await db?.drop();
  });

  const ask = async () => {
    const r = await request(`${gw.url}/graphql`, { method: 'POST', headers: { 'content-type': 'application/json', 'x-api-key': key }, body: JSON.stringify({ query: '{ schools { totalCount } }' }) });
    await r.body.dump();
    // GraphQL answers are marked not to be stored (by the gateway now, no longer by Apollo's cache-control plugin).
    if (r.statusCode === 200) expect(r.headers['cache-control']).toBe('no-store');
    return r.statusCode;
  };

  it('reads a key once per TTL; revoked in another process, it is refused once the TTL has passed', async () => {
    for (let i = 0; i < 5; i++) expect(await ask()).toBe(200);
    // Five requests well inside one TTL: one read of the key.
    expect(keyReads).toBe(1);
    const revoke = spawnSync(process.execPath, [bin, 'keys', 'revoke', '--client', 'lms-demo', '--config', cfgFile], {
      encoding: 'utf8', env: { ...process.env, ROSTERGATE_LOG_LEVEL: 'silent' }, timeout: 60_000,
    });
    expect(revoke.stderr).toBe('');
    expect(revoke.stdout).toContain('revoked 1 key(s) of client lms-demo');
    const revokedAt = Date.now();
    // The bound (docs/serving.md): any request sent a TTL after the revocation is refused.
    await new Promise((r) => setTimeout(r, Math.max(0, revokedAt + TTL_SECONDS * 1000 - Date.now())));
    expect(await ask()).toBe(401);
    expect(await ask()).toBe(401);
  });
});
