/**
 * End to end over real HTTP: a district synced into a SQLite file, the gateway on a loopback port,
 * queries sent with undici as a client would.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { request } from 'undici';
import { join } from 'node:path';
import { syncedStore, tempDir } from '../support/stores.ts';
import { serveStore } from '../../src/runtime.ts';
import { parseConfig } from '../../src/config/config.ts';
import { createLogger } from '../../src/log.ts';
import { startGateway, type RunningGateway } from '../../src/server/gateway.ts';
import { makeExecutableSchema } from '@graphql-tools/schema';
import type { Store } from '../../src/store/types.ts';
import type { RosterDataset } from '../../src/demo/dataset.ts';

let gw: RunningGateway;
let store: Store;
let dataset: RosterDataset;

beforeAll(async () => {
  const dir = tempDir();
  ({ store, dataset } = await syncedStore({ students: 200, teachers: 12, classes: 24, schools: 3 }, join(dir, 'rg.db')));
  gw = await serveStore(store, parseConfig({ store: join(dir, 'rg.db'), server: { openAccess: true } }), createLogger({ level: 'silent' }), { port: 0 });
});
afterAll(async () => {
  await gw?.close();
  await store?.close();
});

async function gql(query: string, variables?: unknown) {
  const r = await request(`${gw.url}/graphql`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ query, variables }),
  });
  return { status: r.statusCode, body: (await r.body.json()) as { data?: any; errors?: { message: string; extensions?: { code?: string } }[] } };
}

describe('gateway over HTTP', () => {
  it('answers a nested school → classes → students query from SQLite', async () => {
    const { status, body } = await gql(`{ schools(first: 10) { totalCount edges { node { name
      classes(first: 50) { totalCount edges { node { title enrollments(role: STUDENT) { totalCount edges { node { role person { givenName familyName } } } } } } } } } } }`);
    expect(status).toBe(200);
    expect(body.errors).toBeUndefined();
    expect(body.data.schools.totalCount).toBe(3);
    const totalClasses = body.data.schools.edges.reduce((n: number, e: any) => n + e.node.classes.totalCount, 0);
    expect(totalClasses).toBe(24);
    const students = body.data.schools.edges.flatMap((s: any) => s.node.classes.edges.flatMap((c: any) => c.node.enrollments.edges));
    expect(students.length).toBe(dataset.list('enrollment').filter((e) => e.data.role === 'student').length);
    const names = new Set(dataset.list('person').map((p) => `${p.data.givenName} ${p.data.familyName}`));
    for (const s of students.slice(0, 20)) expect(names).toContain(`${s.node.person.givenName} ${s.node.person.familyName}`);
  });

  it('an invalid query is a 400 with a validation error naming the field', async () => {
    const { status, body } = await gql(`{ people { edges { node { shoeSize } } } }`);
    expect(status).toBe(400);
    expect(body.errors![0]!.message).toMatch(/shoeSize/);
    expect(body.errors![0]!.extensions?.code).toBe('GRAPHQL_VALIDATION_FAILED');
  });

  it('refuses queries deeper than the limit or with too many aliases, before running them', async () => {
    let q = 'id';
    for (let i = 0; i < 20; i++) q = `parent { ${q} }`;
    const deep = await gql(`{ schools { edges { node { ${q} } } } }`);
    expect(deep.status).toBe(400);
    expect(deep.body.errors![0]!.message).toMatch(/levels deep; the limit \(maxDepth\) is 20/);
    const aliases = Array.from({ length: 51 }, (_, i) => `a${i}: schools { totalCount }`).join(' ');
    const many = await gql(`{ ${aliases} }`);
    expect(many.body.errors![0]!.message).toMatch(/query has 51 aliases; the limit \(maxAliases\) is 50/);
  });

  it('refuses pages over 1000 or below 0, naming the bound, and request bodies over 1 MB (as the README says)', async () => {
    for (const first of [1001, -1]) {
      const { body } = await gql(`query($first: Int) { people(first: $first) { edges { node { id } } } }`, { first });
      expect(body.data?.people ?? null).toBeNull();
      expect(body.errors).toEqual([expect.objectContaining({ message: 'first must be between 0 and 1000', extensions: expect.objectContaining({ code: 'BAD_USER_INPUT' }) })]);
    }
    expect((await gql(`{ people(first: 1000) { edges { node { id } } } }`)).body.errors).toBeUndefined();
    const big = await request(`${gw.url}/graphql`, {
      method: 'POST', headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ query: '{ schools { totalCount } }', variables: { pad: 'x'.repeat(1_000_001) } }),
    });
    expect(big.statusCode).toBe(413);
    expect(await big.body.json()).toEqual({ errors: [{ message: 'request body over 1000000 bytes' }] });
  });

  it('answers GET with a preflighted header, and refuses a plain GET as a possible cross-site request (as the README says)', async () => {
    const url = `${gw.url}/graphql?query=${encodeURIComponent('{ schools { totalCount } }')}`;
    for (const headers of [{ 'content-type': 'application/json' }, { 'apollo-require-preflight': 'true' }]) {
      const r = await request(url, { headers });
      expect(r.statusCode).toBe(200);
      expect(await r.body.json()).toEqual({ data: { schools: { totalCount: 3 } } });
    }
    const plain = await request(url);
    expect(plain.statusCode).toBe(400);
    expect(JSON.stringify(await plain.body.json())).toMatch(/Cross-Site Request Forgery/);
  });

  it('malformed JSON bodies and unknown paths get clear errors', async () => {
    const r = await request(`${gw.url}/graphql`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{nope' });
    expect(r.statusCode).toBe(400);
    expect(JSON.stringify(await r.body.json())).toMatch(/not valid JSON/);
    const n = await request(`${gw.url}/nowhere`);
    expect(n.statusCode).toBe(404);
    await n.body.dump();
  });

  it('serves probes and an offline landing page', async () => {
    for (const path of ['/healthz', '/readyz']) {
      const r = await request(gw.url + path);
      expect(r.statusCode).toBe(200);
      await r.body.dump();
    }
    const page = await request(gw.url + '/');
    const html = await page.body.text();
    expect(page.statusCode).toBe(200);
    expect(html).toContain('"endpoint":"/graphql"');
    // Nothing fetched from anywhere else, the internet least: every script and style sheet is a
    // file of this gateway's (the console's, see landing.test.ts), and no absolute URL at all.
    const refs = [...html.matchAll(/\s(?:src|href)="([^"]*)"/g)].map((m) => m[1]!);
    expect(refs.length).toBeGreaterThan(0);
    for (const ref of refs) expect(ref).toMatch(/^\/console\/[\w.@-]+\/[\w.-]+$|^data:,$/);
    expect(html).not.toMatch(/https?:\/\/|@import/i);
    for (const ref of refs.filter((r) => r.startsWith('/console/'))) {
      const file = await request(gw.url + ref);
      expect(file.statusCode).toBe(200);
      await file.body.dump();
    }
  });
});

describe('gateway shutdown', () => {
  it('lets a request in flight finish, then refuses new connections', async () => {
    let started!: () => void;
    const running = new Promise<void>((r) => (started = r));
    const schema = makeExecutableSchema({
      typeDefs: 'type Query { slow: String }',
      resolvers: { Query: { slow: () => (started(), new Promise((r) => setTimeout(() => r('finished'), 300))) } },
    });
    const g = await startGateway({ schemas: { default: { schema } }, context: async () => ({}), port: 0, log: createLogger({ level: 'silent' }) });
    const inFlight = request(`${g.url}/graphql`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ query: '{ slow }' }) });
    await running;
    const closing = g.close();
    const r = await inFlight;
    expect(r.statusCode).toBe(200);
    expect(await r.body.json()).toEqual({ data: { slow: 'finished' } });
    await closing;
    await expect(request(`${g.url}/healthz`)).rejects.toThrow(/ECONNREFUSED/);
  });

  it('holds an answer until what it waits for settles (holdAnswer), and withholds its data if that fails', async () => {
    // The hold of each request: released or failed by the test, as the audit commit would be.
    const holds: { release(): void; fail(e: Error): void }[] = [];
    const schema = makeExecutableSchema({ typeDefs: 'type Query { secret: String }', resolvers: { Query: { secret: () => 'the data' } } });
    const g = await startGateway<{ hold: Promise<void> }>({
      schemas: { default: { schema } },
      context: async () => {
        const h = { release: () => undefined as void, fail: (_: Error) => undefined as void };
        const hold = new Promise<void>((resolve, reject) => Object.assign(h, { release: resolve, fail: reject }));
        holds.push(h);
        return { hold };
      },
      holdAnswer: (ctx) => ctx.hold,
      port: 0,
      log: createLogger({ level: 'silent' }),
    });
    try {
      const ask = () => request(`${g.url}/graphql`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ query: '{ secret }' }) });
      let answered = false;
      const first = ask().then((r) => ((answered = true), r));
      await new Promise((r) => setTimeout(r, 200));
      // The query has run, yet not even the status line has been sent.
      expect(holds).toHaveLength(1);
      expect(answered).toBe(false);
      holds[0]!.release();
      const ok = await first;
      expect(ok.statusCode).toBe(200);
      expect(await ok.body.json()).toEqual({ data: { secret: 'the data' } });

      const second = ask();
      while (holds.length < 2) await new Promise((r) => setTimeout(r, 10));
      holds[1]!.fail(new Error('the commit failed'));
      const refused = await second;
      expect(refused.statusCode).toBe(500);
      expect(refused.headers['cache-control']).toBe('no-store');
      const text = await refused.body.text();
      expect(JSON.parse(text)).toEqual({ errors: [{ message: 'internal error', extensions: { code: 'INTERNAL_SERVER_ERROR' } }] });
      expect(text).not.toContain('the data');
      expect(text).not.toContain('commit failed');
    } finally {
      await g.close();
    }
  });

  it('is ready while its store answers, not ready when it does not or hangs, and draining while it shuts down', async () => {
    const schema = makeExecutableSchema({ typeDefs: 'type Query { ok: String }', resolvers: { Query: { ok: () => 'ok' } } });
    let state: 'up' | 'down' | 'hung' = 'up';
    const ready = () => state === 'up' ? true : state === 'down' ? Promise.reject(new Error('connection refused')) : new Promise<boolean>(() => {});
    const g = await startGateway({ schemas: { default: { schema } }, context: async () => ({}), port: 0, log: createLogger({ level: 'silent' }), ready, drainMs: 400 });
    const probe = async (path = '/readyz') => {
      const r = await request(g.url + path);
      return { status: r.statusCode, body: await r.body.json() };
    };
    expect(await probe()).toEqual({ status: 200, body: { status: 'ready' } });
    state = 'down';
    expect(await probe()).toEqual({ status: 503, body: { status: 'not ready' } });
    // Liveness is not readiness: a database outage must not get the process restarted.
    expect((await probe('/healthz')).status).toBe(200);
    state = 'hung';
    expect(await probe()).toEqual({ status: 503, body: { status: 'not ready' } });
    state = 'up';
    const closing = g.close();
    // During the drain the listener still accepts: /readyz turns the load balancer away, queries are still answered.
    await new Promise((r) => setTimeout(r, 50));
    expect(await probe()).toEqual({ status: 503, body: { status: 'draining' } });
    const q = await request(`${g.url}/graphql`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ query: '{ ok }' }) });
    expect(await q.body.json()).toEqual({ data: { ok: 'ok' } });
    await closing;
  });

  it('serve reports not ready once its store is gone', async () => {
    const dir = tempDir();
    const own = await syncedStore({ students: 20, teachers: 3, classes: 4, schools: 1 }, join(dir, 'rg.db'));
    const g = await serveStore(own.store, parseConfig({ store: join(dir, 'rg.db'), server: { openAccess: true } }), createLogger({ level: 'silent' }), { port: 0 });
    try {
      expect((await request(g.url + '/readyz')).statusCode).toBe(200);
      await own.store.close();
      expect((await request(g.url + '/readyz')).statusCode).toBe(503);
    } finally {
      await g.close();
    }
  });
});
