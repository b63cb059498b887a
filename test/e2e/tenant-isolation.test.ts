/**
 * Tenant isolation through every surface (issue 15): two tenants, each synced from its own
 * synthetic district into its own real store (SQLite, and PostgreSQL when ROSTERGATE_TEST_POSTGRES
 * is set), served by one gateway. For the keys of tenant A — a client of A alone, and clients of
 * several tenants naming A in x-rostergate-tenant — GraphQL (lists, totalCount, node ids,
 * pseudonyms, cursors), the change feed, webhooks, extracts and the audit log show nothing of B.
 *
 * And the non-interference form: two deployments whose tenant B differs (empty, or full) give A's
 * keys byte-identical answers on every surface. Cursors are sealed with a random IV, so each is
 * replaced by what it opens to under A's key before comparing; timestamps of extract reports and
 * audit entries are left out. Nothing else is masked.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { request } from 'undici';
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
import { syncSource } from '../../src/sync/runner.ts';
import { FixedTenants } from '../../src/tenants/fixed-tenants.ts';
import { serveTenants } from '../../src/tenants/serving.ts';
import { homeTenant } from '../../src/tenants/home-tenant.ts';
import type { Tenant } from '../../src/tenants/tenants.ts';
import { openTestStore, storeKinds } from '../support/stores.ts';

const MASTER = Buffer.alloc(32, 11);
const ringA = new KeyRing(MASTER, 'a');
const ringB = new KeyRing(MASTER, 'b');
const log = createLogger({ level: 'silent' });

/** Clients: one of A alone (by default, the home tenant), vendors of every tenant and of A and B. */
const CLIENTS = [
  { id: 'lms-a', purpose: 'roster-sync' },
  { id: 'analytics-a', purpose: 'analytics' },
  { id: 'vendor', purpose: 'roster-sync', tenants: ['*'] },
  { id: 'vendor-analytics', purpose: 'analytics', tenants: ['a', 'b'] },
  { id: 'lms-b', purpose: 'roster-sync', tenants: ['b'] },
];

function config(store: string): Config {
  return parseConfig({
    store, privacy: { tenant: 'a' }, purposes: DEMO_PURPOSES, clients: CLIENTS,
    webhooks: { allowHttp: true, allowPrivateNetworks: true, pollMs: 50, retrySeconds: [0] },
  });
}

async function syncInto(store: Store, privacy: Privacy, seed: number, students: number): Promise<void> {
  const ingest = await privacy.ingest(store);
  await syncSource(store, directConnector('demo', RosterDataset.generate({ seed, students, teachers: 3, classes: 4, schools: 1 })), { ...ingest, matchRules: ['sisId', 'email'] });
}

/** Every gateway id a store ever held, and every pseudonym its people have in the demo's domains. */
async function tokensOf(store: Store, ring: KeyRing): Promise<Set<string>> {
  const out = new Set<string>();
  for (const c of await store.changes({ afterSeq: 0, limit: 100_000 })) {
    out.add(c.entityId);
    if (c.type === 'person') for (const d of ['analytics', 'roster-sync', 'sso', 'admin']) out.add(ring.pseudonym(d, 1, c.entityId));
  }
  return out;
}

/** Every string in a JSON value (keys and values). */
function strings(v: unknown, out: string[] = []): string[] {
  if (typeof v === 'string') out.push(v);
  else if (Array.isArray(v)) for (const x of v) strings(x, out);
  else if (v && typeof v === 'object') for (const [k, x] of Object.entries(v)) (out.push(k), strings(x, out));
  return out;
}

/** A webhook receiver: the payloads it got, in order. */
async function receiver(): Promise<{ url: string; got: Record<string, unknown>[]; server: Server }> {
  const got: Record<string, unknown>[] = [];
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => {
      got.push(JSON.parse(Buffer.concat(chunks).toString('utf8')) as Record<string, unknown>);
      res.writeHead(204).end();
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/hooks`, got, server };
}

async function subscribe(store: Store, ring: KeyRing, client: string, url: string): Promise<string> {
  const id = `wh_${randomBytes(6).toString('hex')}`;
  await store.webhooks.create({ id, client, url, events: [], secret: ring.sealCursor('webhook-secrets', newWebhookSecret()), cursorSeq: 0, createdAt: new Date().toISOString() });
  return id;
}

const tenant = (id: string, store: Store, keyring: KeyRing, status: Tenant['status'] = 'active'): Tenant => ({
  id, name: `district ${id}`, status, sources: [{ id: 'demo', type: 'oneroster-csv' as never }], createdAt: '2026-01-01T00:00:00.000Z', updatedAt: '2026-01-01T00:00:00.000Z', store, keyring,
});

describe.each(storeKinds())('tenant isolation on %s', (kind) => {
  let storeA: Store;
  let fullB: Store;
  let emptyB: Store;
  let cfg: Config;
  const keys: Record<string, string> = {};
  let idsB: Set<string>;
  let idsA: Set<string>;
  let personA: string;
  let personB: string;
  const hooksA: { url: string; got: Record<string, unknown>[]; server: Server }[] = [];
  let hookB: { url: string; got: Record<string, unknown>[]; server: Server };
  let hookOfBClientInA: { url: string; got: Record<string, unknown>[]; server: Server };
  const subsA: string[] = [];

  beforeAll(async () => {
    [storeA, fullB, emptyB] = [await openTestStore(kind), await openTestStore(kind), await openTestStore(kind)];
    cfg = config('unused.db');
    const privacy = setupPrivacy(cfg, buildUnifiedSchema(), { keyring: ringA });
    await syncInto(storeA, privacy, 1, 20);
    await syncInto(fullB, privacy.forTenant('b', ringB), 2, 35);
    // Keys are the deployment's: in the home tenant's store. One of the vendor's is narrowed to A.
    for (const c of [...CLIENTS.map((x) => x.id), 'vendor@a']) {
      keys[c] = newApiKey();
      await storeA.addApiKey(hashApiKey(keys[c]), c.replace('@a', ''), new Date().toISOString(), c.endsWith('@a') ? 'a' : undefined);
    }
    idsA = await tokensOf(storeA, ringA);
    idsB = await tokensOf(fullB, ringB);
    personA = (await storeA.changes({ afterSeq: 0, limit: 100_000 })).find((c) => c.type === 'person')!.entityId;
    personB = (await fullB.changes({ afterSeq: 0, limit: 100_000 })).find((c) => c.type === 'person')!.entityId;
    // Webhooks of A for a one-tenant client and for the vendor; one of B for the vendor.
    for (const client of ['lms-a', 'vendor']) {
      const h = await receiver();
      hooksA.push(h);
      subsA.push(await subscribe(storeA, ringA, client, h.url));
    }
    hookB = await receiver();
    await subscribe(fullB, ringB, 'vendor', hookB.url);
    // A subscription in A's store for a client of B alone (an admin's mistake, or a forged row) delivers nothing.
    hookOfBClientInA = await receiver();
    await subscribe(storeA, ringA, 'lms-b', hookOfBClientInA.url);
  }, 120_000);

  afterAll(async () => {
    for (const h of [...hooksA, hookB, hookOfBClientInA]) h?.server.closeAllConnections(), h?.server.close();
    for (const s of [storeA, fullB, emptyB]) await s?.close();
  });

  /** A deployment serving A and the given B, with webhooks running; `run` gets a request function. */
  async function deployment<T>(b: Tenant, run: (call: Caller) => Promise<T>): Promise<T> {
    const tenants = new FixedTenants('a', [homeTenant(cfg, storeA, ringA), b]);
    const gw = await serveTenants(tenants, cfg, log, { port: 0, privacy: setupPrivacy(cfg, buildUnifiedSchema(), { keyring: ringA, apiKeyCacheMs: 0, versionCacheMs: 0 }) });
    try {
      return await run(caller(gw.url));
    } finally {
      await gw.close();
    }
  }

  type Caller = ReturnType<typeof caller>;
  function caller(url: string) {
    const headers = (client: string, t?: string) => ({ 'content-type': 'application/json', 'x-api-key': keys[client]!, ...(t ? { 'x-rostergate-tenant': t } : {}) });
    return {
      async gql(client: string, t: string | undefined, query: string, variables?: unknown) {
        const r = await request(`${url}/graphql`, { method: 'POST', headers: headers(client, t), body: JSON.stringify({ query, variables }) });
        return { status: r.statusCode, body: (await r.body.json()) as { data?: any; errors?: any[] } };
      },
      async extract(client: string, t: string | undefined, path: string) {
        const r = await request(`${url}/extracts/${path}`, { headers: headers(client, t) });
        const body = await r.body.text();
        return { status: r.statusCode, body, report: r.trailers['x-rostergate-extract-report'] };
      },
    };
  }

  const ROSTER = `query($after: Cursor) {
    people(first: 1000, after: $after) { totalCount edges { cursor node { id tenant givenName familyName enrollments { totalCount edges { node { id } } } } } pageInfo { endCursor hasNextPage } }
    classes(first: 1000) { totalCount edges { node { id tenant title enrollments { totalCount } } } }
    schools { totalCount edges { node { id tenant name } } }
  }`;
  const FEED = `query($after: Cursor) { changesHead changes(first: 1000, after: $after) { edges { cursor node { op type tenant fields record { __typename ... on Person { id tenant } ... on Class { id tenant } ... on Enrollment { id } } } } pageInfo { endCursor hasNextPage } } }`;
  const ANALYTICS = `query($after: Cursor) { people(first: 1000, after: $after) { totalCount edges { cursor node { id tenant gradeBand } } pageInfo { endCursor } } changes(first: 1000) { edges { node { op tenant record { __typename ... on Person { id } } } } } }`;

  /** Every request of A's keys, in order, with answers made comparable (cursors opened under A's key). */
  async function surfacesOfA(call: Caller): Promise<unknown[]> {
    const out: unknown[] = [];
    const opened = (domain: string, v: unknown): unknown => {
      if (Array.isArray(v)) return v.map((x) => opened(domain, x));
      if (!v || typeof v !== 'object') return v;
      return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, ['cursor', 'endCursor', 'changesHead'].includes(k) && typeof x === 'string' ? `opened:${ringA.openCursor(domain, x)}` : opened(domain, x)]));
    };
    const cursorOfB = ringB.sealCursor('roster-sync', 'c1:#3');
    const personCursorOfB = ringB.sealCursor('roster-sync', `c1:${personB}`);
    for (const [client, t] of [['lms-a', undefined], ['lms-a', 'a'], ['vendor', 'a'], ['vendor@a', undefined]] as const) {
      for (const [query, variables] of [
        [ROSTER, {}], [ROSTER, { after: personCursorOfB }], [FEED, {}], [FEED, { after: cursorOfB }],
        [`query($a: ID!, $b: ID!) { a: node(id: $a) { id ... on Person { tenant } } b: node(id: $b) { id } p: person(id: $b) { id } }`, { a: personA, b: personB }],
      ] as const) {
        const r = await call.gql(client, t, query, variables);
        out.push({ client, t, status: r.status, body: opened('roster-sync', r.body) });
      }
    }
    for (const [client, t] of [['analytics-a', undefined], ['vendor-analytics', 'a']] as const) {
      for (const variables of [{}, { after: ringB.sealCursor('analytics', `c1:${personB}`) }]) {
        const r = await call.gql(client, t, ANALYTICS, variables);
        out.push({ client, t, status: r.status, body: opened('analytics', r.body) });
      }
      const pseudonymB = ringB.pseudonym('analytics', 1, personB);
      const pseudonymA = ringA.pseudonym('analytics', 1, personA);
      const r = await call.gql(client, t, `query($a: ID!, $b: ID!) { a: person(id: $a) { id tenant } b: person(id: $b) { id } }`, { a: pseudonymA, b: pseudonymB });
      out.push({ client, t, status: r.status, body: r.body });
      for (const dataset of ['people.csv', 'people.ndjson', 'enrollments.csv']) {
        const e = await call.extract(client, t, dataset);
        const report = e.report ? (({ startedAt: _s, endedAt: _e, ...rest }) => rest)(JSON.parse(e.report) as Record<string, unknown>) : undefined;
        out.push({ client, t, dataset, status: e.status, body: e.body, report });
      }
    }
    return out;
  }

  /** Waits until every subscription of A has delivered everything up to the head of A's change log. */
  async function webhooksSettled(): Promise<void> {
    const head = await storeA.headSeq();
    for (let i = 0; i < 400; i++) {
      let done = true;
      for (const id of subsA) {
        const w = await storeA.webhooks.get(id);
        if (w!.cursorSeq < head || (await storeA.webhooks.counts(id)).pending > 0) done = false;
      }
      if (done) return;
      await new Promise((r) => setTimeout(r, 50));
    }
    throw new Error('webhooks of A did not settle');
  }

  /** One deployment's whole view from A's keys: answers, webhook payloads and A's new audit entries. */
  async function transcript(b: Tenant) {
    for (const h of hooksA) h.got.length = 0;
    for (const id of subsA) await storeA.webhooks.setCursor(id, 0);
    const auditFrom = (await storeA.auditEntries({ afterSeq: 0, limit: 100_000 })).at(-1)?.seq ?? 0;
    const auditOfBFrom = (await b.store.auditEntries({ afterSeq: 0, limit: 100_000 })).at(-1)?.seq ?? 0;
    const answers = await deployment(b, async (call) => {
      const answers = await surfacesOfA(call);
      await webhooksSettled();
      return answers;
    });
    const audit = (await storeA.auditEntries({ afterSeq: auditFrom, limit: 100_000 }))
      .map(({ client, purpose, kind, operation, operationHash, categories, fields, people }) => JSON.stringify({ client, purpose, kind, operation, operationHash, categories, fields, people }))
      .sort();
    // B's own entries meanwhile: its webhook's deliveries to the vendor (B's activity, not A's keys').
    const auditOfB = (await b.store.auditEntries({ afterSeq: auditOfBFrom, limit: 100_000 })).map((e) => `${e.kind} ${e.client}`);
    return { answers, webhooks: hooksA.map((h) => [...h.got]), audit, auditOfB };
  }

  let withEmptyB: Awaited<ReturnType<typeof transcript>>;
  let withFullB: Awaited<ReturnType<typeof transcript>>;

  it('A’s keys read nothing of B on any surface: ids, pseudonyms, counts, cursors, feed, webhooks, extracts, audit', async () => {
    withFullB = await transcript(tenant('b', fullB, ringB));
    const seen = strings([withFullB.answers, withFullB.webhooks]);
    // Something of A is there (the check below would pass on empty answers too)…
    expect(seen.filter((s) => idsA.has(s)).length).toBeGreaterThan(100);
    // …and nothing of B: no gateway id, no pseudonym.
    expect(seen.filter((s) => idsB.has(s))).toEqual([]);
    // Every record and change says it is A's.
    const tenantsSeen = new Set<string>();
    const walk = (v: unknown): void => {
      if (Array.isArray(v)) v.forEach(walk);
      else if (v && typeof v === 'object') for (const [k, x] of Object.entries(v)) (k === 'tenant' && typeof x === 'string' ? tenantsSeen.add(x) : walk(x));
    };
    walk(withFullB.answers);
    walk(withFullB.webhooks);
    expect([...tenantsSeen]).toEqual(['a']);
    // Counts are A's: its people, not A's and B's together.
    const lms = withFullB.answers[0] as { status: number; body: { data: { people: { totalCount: number; edges: unknown[] } } } };
    expect(lms.status).toBe(200);
    expect(lms.body.data.people.totalCount).toBe(lms.body.data.people.edges.length);
    expect(lms.body.data.people.totalCount).toBe((await storeA.counts()).person);
    // A cursor of B is refused, not read as a position in A.
    const refusedCursor = withFullB.answers[1] as { body: { errors: { message: string; extensions: { code: string } }[] } };
    expect(refusedCursor.body.errors[0]).toMatchObject({ extensions: { code: 'BAD_USER_INPUT' } });
    expect(refusedCursor.body.errors[0]!.message).toMatch(/invalid cursor/);
    const refusedFeed = withFullB.answers[3] as { body: { errors: { extensions: { code: string } }[] } };
    expect(refusedFeed.body.errors[0]).toMatchObject({ extensions: { code: 'BAD_USER_INPUT' } });
    // The extracts of a client of several tenants say their tenant in a column; a one-tenant client's do not.
    const extracts = withFullB.answers.filter((a) => (a as { dataset?: string }).dataset === 'people.csv') as { client: string; status: number; body: string }[];
    expect(extracts.map((e) => [e.client, e.status, e.body.split('\n')[0]!.split(',').includes('tenant')])).toEqual([['analytics-a', 200, false], ['vendor-analytics', 200, true]]);
    // The vendor's webhook payloads say their tenant; the one-tenant client's do not. B's went to B's receiver only.
    expect(withFullB.webhooks[0]!.length).toBeGreaterThan(10);
    expect(withFullB.webhooks[0]!.every((p) => !('tenant' in (p.data as object)))).toBe(true);
    expect(withFullB.webhooks[1]!.every((p) => (p.data as { tenant: string }).tenant === 'a')).toBe(true);
    expect(strings(hookB.got).filter((s) => idsA.has(s))).toEqual([]);
    expect(hookOfBClientInA.got).toEqual([]);
    // Every request of A's keys was audited in A; none in B.
    expect(withFullB.audit.length).toBeGreaterThanOrEqual(withFullB.answers.length);
    expect(new Set(withFullB.auditOfB)).toEqual(new Set(['webhook vendor']));
    expect(hookB.got.length).toBeGreaterThan(10);
  }, 120_000);

  it('two deployments whose B differs (empty, full) give A’s keys byte-identical answers on every surface', async () => {
    withEmptyB = await transcript(tenant('b', emptyB, ringB));
    expect(JSON.stringify(withEmptyB.answers)).toBe(JSON.stringify(withFullB.answers));
    expect(JSON.stringify(withEmptyB.webhooks)).toBe(JSON.stringify(withFullB.webhooks));
    expect(withEmptyB.audit).toEqual(withFullB.audit);
  }, 120_000);

  it('a tenant the client may not use and one that does not exist get the same answer; a paused one says so', async () => {
    await deployment(tenant('b', fullB, ringB, 'paused'), async (call) => {
      const q = '{ schools { totalCount } }';
      const forbidden = await call.gql('lms-a', 'b', q);
      const missing = await call.gql('lms-a', 'x', q);
      const missingToVendor = await call.gql('vendor', 'x', q);
      const narrowedKey = await call.gql('vendor@a', 'b', q);
      const otherTenantsClient = await call.gql('lms-b', undefined, q);
      const mask = (r: { status: number; body: unknown }, name: string) => JSON.stringify(r).replaceAll(`"${name}"`, '"?"').replaceAll(`\\"${name}\\"`, '\\"?\\"');
      expect(forbidden.status).toBe(403);
      expect(forbidden.body.errors![0].extensions.code).toBe('TENANT_REFUSED');
      expect(mask(missing, 'x')).toBe(mask(forbidden, 'b'));
      expect(mask(missingToVendor, 'x')).toBe(mask(forbidden, 'b'));
      expect(mask(narrowedKey, 'b')).toBe(mask(forbidden, 'b'));
      // A client of B alone reading B, paused: told so (it may read B); its key is in A's store all the same.
      expect(otherTenantsClient.status).toBe(503);
      // Only a client that may use the tenant learns that it is paused.
      const paused = await call.gql('vendor', 'b', q);
      expect(paused.status).toBe(503);
      expect(paused.body.errors![0].extensions.code).toBe('TENANT_PAUSED');
      // A client of several tenants names one; the extract route answers alike.
      const unnamed = await call.gql('vendor', undefined, q);
      expect(unnamed.status).toBe(400);
      expect(unnamed.body.errors![0].extensions.code).toBe('TENANT_REQUIRED');
      const extract = await call.extract('vendor-analytics', 'x', 'people.csv');
      expect(extract.status).toBe(403);
      expect(JSON.parse(extract.body).errors[0].extensions.code).toBe('TENANT_REFUSED');
      // The home tenant is still served.
      const ok = await call.gql('vendor', 'a', q);
      expect(ok.body.data.schools.totalCount).toBe(1);
    });
  }, 60_000);
});
