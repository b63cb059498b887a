/**
 * Operating a gateway of many tenants (docs/tenants-serving.md, "Operations"), on SQLite and
 * PostgreSQL:
 * - metrics count requests, errors, sync runs, records and vendor requests under their tenant, and
 *   a tenant header naming no tenant of the client makes no series of its own;
 * - a tenant whose webhook endpoint hangs does not hold back another tenant's deliveries;
 * - active tenants are prepared in the background after start, and those the catalog adds later,
 *   without a request; a request that comes first still works;
 * - /readyz: one tenant's store down leaves the gateway ready (counted as degraded), the home store
 *   down or the catalog unreadable makes it not ready.
 */
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { request } from 'undici';
import Database from 'better-sqlite3';
import pg from 'pg';
import { RosterDataset } from '../../src/demo/dataset.ts';
import { directConnector } from '../../src/demo/direct-connector.ts';
import { DEMO_PURPOSES } from '../../src/demo/demo-policy.ts';
import { parseConfig, type Config } from '../../src/config/config.ts';
import { buildUnifiedSchema } from '../../src/graphql/schema.ts';
import { setupPrivacy, type Privacy } from '../../src/graphql/privacy.ts';
import { createLogger } from '../../src/log.ts';
import { hashApiKey, newApiKey } from '../../src/privacy/api-keys.ts';
import { KeyRing } from '../../src/privacy/pseudonym.ts';
import { newWebhookSecret } from '../../src/privacy/webhook-endpoints.ts';
import type { Store } from '../../src/store/types.ts';
import { SqliteStore } from '../../src/store/sqlite.ts';
import { PostgresStore } from '../../src/store/postgres.ts';
import { syncSource } from '../../src/sync/runner.ts';
import { syncAll } from '../../src/runtime.ts';
import { registry } from '../../src/kernel/metrics.ts';
import { CatalogTenants } from '../../src/tenants/catalog-tenants.ts';
import { FixedTenants } from '../../src/tenants/fixed-tenants.ts';
import { serveTenants, type RunningTenantsGateway, type ServeTenantsOptions } from '../../src/tenants/serving.ts';
import type { Tenant, Tenants } from '../../src/tenants/tenants.ts';
import { startSandboxServer, type RunningSandbox } from '../../connectors/sandbox-kit.ts';
import { cleverSandbox, sandboxSourceConfig } from '../../connectors/clever/index.ts';
import { newPostgresDatabase, openTestStore, storeKinds, tempDir, type StoreKind } from '../support/stores.ts';
import { labelValues, metricValue } from '../support/metrics.ts';
import { until } from '../support/until.ts';

const MASTER = Buffer.alloc(32, 13);
const ring = (tenant: string) => new KeyRing(MASTER, tenant);
const log = createLogger({ level: 'silent' });

const CLIENTS = [
  { id: 'lms-a', purpose: 'roster-sync' },
  { id: 'lms-b', purpose: 'roster-sync', tenants: ['b'] },
  { id: 'vendor', purpose: 'roster-sync', tenants: ['*'] },
];

function config(extra: Record<string, unknown> = {}): Config {
  return parseConfig({
    store: 'unused.db', privacy: { tenant: 'a' }, purposes: DEMO_PURPOSES, clients: CLIENTS,
    // A hanging endpoint hangs for the whole test: only the other tenants' progress can pass it.
    webhooks: { allowHttp: true, allowPrivateNetworks: true, pollMs: 50, retrySeconds: [0], timeoutMs: 60_000 },
    ...extra,
  });
}

const tenant = (id: string, store: Store): Tenant => ({
  id, name: `district ${id}`, status: 'active', sources: [], createdAt: '2026-01-01T00:00:00.000Z', updatedAt: '2026-01-01T00:00:00.000Z', store, keyring: ring(id),
});

/** The deployment's privacy layer (home tenant a); API keys are not cached, so keys added later work at once. */
const privacyOf = (cfg: Config) => setupPrivacy(cfg, buildUnifiedSchema(), { keyring: ring('a'), apiKeyCacheMs: 0, versionCacheMs: 0 });

async function syncInto(t: Tenant, privacy: Privacy, seed: number): Promise<void> {
  const ingest = await privacy.forTenant(t.id, t.keyring).ingest(t.store);
  await syncSource(t.store, directConnector('demo', RosterDataset.generate({ seed, students: 6, teachers: 2, classes: 2, schools: 1 })), { ...ingest, matchRules: ['sisId', 'email'] });
}

/** API keys of every client, kept in the home store. */
async function addKeys(home: Store): Promise<Record<string, string>> {
  const keys: Record<string, string> = {};
  for (const c of CLIENTS) {
    keys[c.id] = newApiKey();
    await home.addApiKey(hashApiKey(keys[c.id]!), c.id, new Date().toISOString());
  }
  return keys;
}

async function gql(url: string, key: string, tenantHeader: string | undefined, query: string) {
  const r = await request(`${url}/graphql`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'x-api-key': key, ...(tenantHeader ? { 'x-rostergate-tenant': tenantHeader } : {}) },
    body: JSON.stringify({ query }),
  });
  return { status: r.statusCode, body: (await r.body.json()) as { data?: any; errors?: any[] } };
}

async function readyz(url: string): Promise<{ status: number; text: string; body: any }> {
  const r = await request(`${url}/readyz`);
  const text = await r.body.text();
  return { status: r.statusCode, text, body: JSON.parse(text) };
}

async function listen(server: Server): Promise<string> {
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}/hooks`;
}

async function subscribe(t: Tenant, client: string, url: string): Promise<string> {
  const id = `wh_${randomBytes(6).toString('hex')}`;
  await t.store.webhooks.create({ id, client, url, events: [], secret: t.keyring.sealCursor('webhook-secrets', newWebhookSecret()), cursorSeq: 0, createdAt: new Date().toISOString() });
  return id;
}

const SCHOOLS = '{ schools { totalCount } }';

describe.each(storeKinds())('a gateway of many tenants, operated, on %s', (kind) => {
  let a: Tenant;
  let b: Tenant;
  let cfg: Config;
  let keys: Record<string, string>;
  let sandbox: RunningSandbox;

  beforeAll(async () => {
    cfg = config();
    a = tenant('a', await openTestStore(kind));
    b = tenant('b', await openTestStore(kind));
    const privacy = privacyOf(cfg);
    await syncInto(a, privacy, 1);
    await syncInto(b, privacy, 2);
    keys = await addKeys(a.store);
    sandbox = await startSandboxServer({ dataset: RosterDataset.generate({ seed: 3, students: 10, teachers: 2, classes: 2, schools: 1 }), apps: [cleverSandbox()] });
  }, 120_000);
  afterAll(async () => {
    await sandbox?.close();
    for (const t of [a, b]) await t?.store.close();
  });

  async function serving<T>(tenants: Tenants, opts: ServeTenantsOptions, run: (gw: RunningTenantsGateway) => Promise<T>): Promise<T> {
    const gw = await serveTenants(tenants, cfg, log, { port: 0, privacy: privacyOf(cfg), ...opts });
    try {
      return await run(gw);
    } finally {
      await gw.close();
    }
  }

  it('metrics: requests and their errors count under the tenant they resolved to; an unknown tenant header makes no series', async () => {
    await serving(new FixedTenants('a', [a, b]), { webhooks: false }, async (gw) => {
      const before = await registry.metrics();
      expect((await gql(gw.url, keys['lms-a']!, undefined, SCHOOLS)).status).toBe(200);
      expect((await gql(gw.url, keys['lms-a']!, undefined, SCHOOLS)).status).toBe(200);
      expect((await gql(gw.url, keys.vendor!, 'b', SCHOOLS)).status).toBe(200);
      expect((await gql(gw.url, keys.vendor!, 'b', '{ noSuchField }')).status).toBe(400);
      // Refused before a tenant was resolved: counted under "none", never under the name sent.
      expect((await gql(gw.url, keys.vendor!, 'district-nobody-serves', SCHOOLS)).status).toBe(403);
      expect((await gql(gw.url, keys['lms-b']!, 'a', SCHOOLS)).status).toBe(403);
      const after = await registry.metrics();
      const moved = (name: string, labels: Record<string, string>) => metricValue(after, name, labels) - metricValue(before, name, labels);

      expect(moved('rostergate_requests_total', { tenant: 'a', client: 'lms-a', outcome: 'ok' })).toBe(2);
      expect(moved('rostergate_requests_total', { tenant: 'b', client: 'vendor', outcome: 'ok' })).toBe(1);
      expect(moved('rostergate_requests_total', { tenant: 'b', client: 'vendor', outcome: 'rejected' })).toBe(1);
      expect(moved('rostergate_requests_total', { tenant: 'none', outcome: 'rejected' })).toBe(2);
      expect(moved('rostergate_requests_total', { tenant: 'a', client: 'lms-b' })).toBe(0);
      expect(moved('rostergate_request_errors_total', { tenant: 'b', code: 'GRAPHQL_VALIDATION_FAILED' })).toBe(1);
      expect(moved('rostergate_request_errors_total', { tenant: 'none', code: 'TENANT_REFUSED' })).toBe(2);
      const seen = labelValues(after, 'rostergate_requests_total', 'tenant');
      for (const t of ['a', 'b', 'none']) expect(seen).toContain(t);
      // No series, no label value, nowhere in the figures.
      expect(after).not.toContain('district-nobody-serves');
    });
  });

  it('metrics: sync runs, records and vendor requests count under the tenant synced (one source id in two tenants, two series)', async () => {
    // As the worker and `sync --tenant` run it: syncAll with the tenant's config (src/tenants/sync-tenant.ts).
    const withSource = config({ sources: [{ id: 'sis', ...sandboxSourceConfig(sandbox.urlOf('/clever')), pageSize: 5 }] });
    const privacy = privacyOf(withSource);
    const before = await registry.metrics();
    const [ofA] = await syncAll(a.store, withSource, log, { privacy });
    const [ofB] = await syncAll(b.store, { ...withSource, privacy: { ...withSource.privacy, tenant: 'b' } }, log, { privacy: privacy.forTenant('b', b.keyring) });
    expect(ofA!.status).toBe('complete');
    expect(ofB!.status).toBe('complete');
    const after = await registry.metrics();
    const moved = (name: string, labels: Record<string, string>) => metricValue(after, name, labels) - metricValue(before, name, labels);
    for (const [t, summary] of [['a', ofA!], ['b', ofB!]] as const) {
      expect(moved('rostergate_sync_runs_total', { tenant: t, source: 'sis', status: 'complete' })).toBe(1);
      expect(moved('rostergate_sync_records_total', { tenant: t, source: 'sis' })).toBe(summary.records);
      expect(moved('rostergate_upstream_requests_total', { tenant: t, source: 'sis', status: '200' })).toBeGreaterThan(0);
    }
    // Both runs read the same listing, in the same pages.
    expect(moved('rostergate_upstream_requests_total', { tenant: 'a', source: 'sis' })).toBe(moved('rostergate_upstream_requests_total', { tenant: 'b', source: 'sis' }));
    expect(moved('rostergate_upstream_requests_total', { tenant: 'none' })).toBe(0);
    expect(moved('rostergate_sync_runs_total', { tenant: 'none' })).toBe(0);
  });

  it('webhooks: a tenant whose endpoint hangs does not hold back another tenant\'s deliveries, round after round', async () => {
    // A's consumer takes each request and never answers (until the end of the test).
    const hung: IncomingMessage[] = [];
    const hanging = createServer((req) => void hung.push(req));
    const received: string[] = [];
    const fine = createServer((req, res) => {
      req.resume();
      req.on('end', () => (received.push(String(req.headers['webhook-id'])), res.writeHead(204).end()));
    });
    const subA = await subscribe(a, 'lms-a', await listen(hanging));
    const subB = await subscribe(b, 'lms-b', await listen(fine));
    const before = await registry.metrics();
    try {
      // A is visited first each round (the home tenant): a dispatch in turn would wait 60 s on it.
      await serving(new FixedTenants('a', [a, b]), {}, async () => {
        try {
          // Caught up: every change of B's log rendered for the subscription (its cursor at the log's
          // head) and delivered. Without the cursor, a round could still be rendering the last changes
          // of a sync while the counts below are read, and one more delivery would land between them.
          // The cursor is read before the counts: a round moves the cursor and queues its deliveries
          // in one transaction, so once the cursor is at the head every delivery is queued, and no
          // pending one after that means all were delivered. Read after the counts, the cursor could
          // move (and queue one more delivery) between the two reads.
          const caughtUp = async (atLeast: number) => {
            const cursor = (await b.store.webhooks.list()).find((x) => x.id === subB)!.cursorSeq;
            if (cursor < (await b.store.headSeq())) return false;
            const c = await b.store.webhooks.counts(subB);
            return c.pending === 0 && c.delivered > atLeast;
          };
          await until('B\'s deliveries', () => caughtUp(0), 10_000, 50);
          expect(hung.length).toBe(1);
          const first = (await b.store.webhooks.counts(subB)).delivered;
          // New changes in B, while A's first delivery still hangs: a later round delivers them too.
          await syncInto(b, privacyOf(cfg), 4);
          await until('B\'s next deliveries', () => caughtUp(first), 10_000, 50);
          const delivered = (await b.store.webhooks.counts(subB)).delivered;
          expect(received.length).toBe(delivered);
          // A's dispatch is one, still waiting: never a second one beside it.
          expect(hung.length).toBe(1);
          expect((await a.store.webhooks.counts(subA)).delivered).toBe(0);
          const during = await registry.metrics();
          expect(metricValue(during, 'rostergate_webhook_deliveries_total', { tenant: 'b', outcome: 'delivered' }) - metricValue(before, 'rostergate_webhook_deliveries_total', { tenant: 'b', outcome: 'delivered' })).toBe(delivered);
          // A's consumer goes away (so its next attempts are refused, not hung): its attempt fails
          // and is counted under A, as a retry.
          hanging.close();
          hanging.closeAllConnections();
          await until('A\'s failed attempt counted', async () => metricValue(await registry.metrics(), 'rostergate_webhook_deliveries_total', { tenant: 'a', outcome: 'retry' }) > metricValue(before, 'rostergate_webhook_deliveries_total', { tenant: 'a', outcome: 'retry' }), 10_000, 50);
        } finally {
          // Before the gateway closes, which waits for A's delivery in flight: should anything above
          // fail while it hangs, the failure is reported, not a wait of the delivery's 60 s timeout.
          hanging.close();
          hanging.closeAllConnections();
        }
      });
    } finally {
      hanging.closeAllConnections();
      hanging.close();
      fine.closeAllConnections();
      fine.close();
      await a.store.webhooks.delete(subA);
      await b.store.webhooks.delete(subB);
    }
  }, 60_000);

  it('warm-up: active tenants are prepared after start without a request, and tenants the catalog adds later; a request first still works', async () => {
    const home = await catalogHome(kind);
    const tenants = new CatalogTenants({ storeLocation: home.location, homeStore: home.store, home: { id: 'a', sources: [] }, keyring: ring('a'), refreshMs: 0 });
    try {
      const homeKeys = await addKeys(home.store);
      await tenants.add({ id: 'north', name: 'North' });
      await tenants.add({ id: 'resting', name: 'Resting' });
      await tenants.catalog.update('resting', { status: 'paused' });
      await serving(tenants, { webhooks: false, warmUpEveryMs: 100 }, async (gw) => {
        await until('north prepared', () => gw.isPrepared('north'), 10_000, 50);
        await tenants.add({ id: 'south', name: 'South' });
        await until('south prepared', () => gw.isPrepared('south'), 10_000, 50);
        // A paused tenant is not served, so not prepared either.
        expect(gw.isPrepared('resting')).toBe(false);
      });
      // A warm-up that will not come round again for an hour: the first request prepares its tenant itself.
      await serving(tenants, { webhooks: false, warmUpEveryMs: 3_600_000 }, async (gw) => {
        await until('the first warm-up round', () => gw.isPrepared('south'), 10_000, 50);
        await tenants.add({ id: 'west', name: 'West' });
        expect(gw.isPrepared('west')).toBe(false);
        const r = await gql(gw.url, homeKeys.vendor!, 'west', SCHOOLS);
        expect(r.body.errors).toBeUndefined();
        expect(r.body.data.schools.totalCount).toBe(0);
        expect(gw.isPrepared('west')).toBe(true);
      });
    } finally {
      await tenants.close();
      await home.close();
    }
  }, 60_000);

  it('/readyz: a tenant\'s store down leaves the gateway ready and counts it degraded (never naming it); the home store down is not ready', async () => {
    const [home, other, failing] = [tenant('a', await openTestStore(kind)), tenant('district-b', await openTestStore(kind)), tenant('district-c', await openTestStore(kind))];
    const open = new Set([home, other, failing]);
    const close = async (t: Tenant) => (open.delete(t), await t.store.close());
    try {
      const vendor = (await addKeys(home.store)).vendor!;
      await serving(new FixedTenants('a', [home, other, failing]), { webhooks: false, tenantCheckEveryMs: 0 }, async (gw) => {
        await until('tenants prepared', () => gw.isPrepared('district-b') && gw.isPrepared('district-c'), 10_000, 50);
        expect(await readyz(gw.url)).toMatchObject({ status: 200, body: { status: 'ready', tenants: { checked: 2, degraded: 0 } } });
        await close(failing);
        const degraded = await readyz(gw.url);
        expect(degraded).toMatchObject({ status: 200, body: { status: 'ready', tenants: { checked: 2, degraded: 1 } } });
        expect(degraded.text).not.toContain('district-c');
        // Requests of the other tenants go on.
        expect((await gql(gw.url, vendor, 'district-b', SCHOOLS)).status).toBe(200);
        await close(home);
        expect(await readyz(gw.url)).toMatchObject({ status: 503, body: { status: 'not ready' } });
      });
    } finally {
      for (const t of open) await t.store.close();
    }
  }, 60_000);

  it('/readyz: an unreadable tenant catalog is not ready, though the home store answers', async () => {
    const home = await catalogHome(kind);
    const tenants = new CatalogTenants({ storeLocation: home.location, homeStore: home.store, home: { id: 'a', sources: [] }, keyring: ring('a'), refreshMs: 0 });
    try {
      await tenants.add({ id: 'north', name: 'North' });
      await serving(tenants, { webhooks: false, tenantCheckEveryMs: 0 }, async (gw) => {
        await until('north prepared', () => gw.isPrepared('north'), 10_000, 50);
        expect(await readyz(gw.url)).toMatchObject({ status: 200, body: { status: 'ready', tenants: { checked: 1, degraded: 0 } } });
        // The catalog's table gone from the home store (an operator's mistake, a bad restore), the store itself fine.
        await home.sql('DROP TABLE tenants');
        expect(await home.store.headSeq()).toBeGreaterThan(-1);
        expect(await readyz(gw.url)).toMatchObject({ status: 503, body: { status: 'not ready' } });
      });
    } finally {
      await tenants.close();
      await home.close();
    }
  }, 60_000);
});

/** A home store for a tenant catalog, at a location CatalogTenants can put tenant stores beside. */
async function catalogHome(kind: StoreKind): Promise<{ location: string; store: Store; sql(statement: string): Promise<void>; close(): Promise<void> }> {
  if (kind === 'sqlite') {
    const location = join(tempDir(), 'rg.db');
    const store = SqliteStore.open(location);
    const sql = async (statement: string) => {
      // Another connection to the file, as an operator's sqlite3 shell would be.
      const db = new Database(location);
      try {
        db.exec(statement);
      } finally {
        db.close();
      }
    };
    return { location, store, sql, close: () => store.close() };
  }
  const db = await newPostgresDatabase();
  const store = await PostgresStore.open(db.url);
  const sql = async (statement: string) => {
    const c = new pg.Client({ connectionString: db.url });
    await c.connect();
    try {
      await c.query(statement);
    } finally {
      await c.end();
    }
  };
  return { location: db.url, store, sql, async close() { await store.close(); await db.drop(); } };
}
