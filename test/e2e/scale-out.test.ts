/**
 * Scale-out on PostgreSQL (issue 15): real processes on ONE database — three tenants added with
 * `rostergate tenants add`, each syncing its own synthetic district from its own sandbox on an
 * hourly schedule; two `rostergate worker` processes take the syncs, two `rostergate serve`
 * processes answer a vendor client bound to every tenant ('*', tenant by x-rostergate-tenant).
 *
 * Shown: every due sync runs exactly once (one pg-boss job per tenant source, completed on its
 * first attempt; one sync run in each tenant's store); both gateways give the same answers for the
 * same tenant, and each tenant's answers are its own district's; each tenant's change feed is in
 * commit order — seqs strictly increasing, and a follower reading the feed while the syncs commit
 * (alternating gateways, cursors of one used at the other) ends up with exactly what a full read
 * afterwards returns, so no change appeared behind a cursor already passed. No timed asserts: the
 * waits only bound a hang.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import pg from 'pg';
import { request } from 'undici';
import { RosterDataset } from '../../src/demo/dataset.ts';
import { DEMO_PURPOSES } from '../../src/demo/demo-policy.ts';
import { startSandboxServer, type RunningSandbox } from '../../connectors/sandbox-kit.ts';
import { CLEVER_SANDBOX_TOKEN, cleverSandbox, sandboxSourceConfig as cleverSource } from '../../connectors/clever/index.ts';
import { hashApiKey, newApiKey } from '../../src/privacy/api-keys.ts';
import { KeyRing } from '../../src/privacy/pseudonym.ts';
import { PostgresStore } from '../../src/store/postgres.ts';
import { CatalogTenants } from '../../src/tenants/catalog-tenants.ts';
import { QUEUE_SCHEMA, SYNC_QUEUE } from '../../src/jobs/queue.ts';
import { newPostgresDatabase, storeKinds, tempDir } from '../support/stores.ts';
import { TEST_MASTER_KEY } from '../support/privacy.ts';
import { CLI_BIN } from '../support/cli-bin.ts';

const bin = CLI_BIN;
const TENANTS = ['north', 'south', 'east'] as const;
const HOME = 'vendor-home';

async function until(what: string, cond: () => Promise<boolean> | boolean, ms = 80_000): Promise<void> {
  const end = Date.now() + ms;
  while (!(await cond())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

const FEED = `query($after: Cursor) { changes(after: $after, first: 200) {
  edges { cursor node { op type tenant at record { ... on Node { id } } } }
  pageInfo { endCursor hasNextPage } } }`;
const PEOPLE = `query($after: Cursor) { people(first: 1000, after: $after) { totalCount edges { node { id givenName familyName } } pageInfo { endCursor hasNextPage } } }`;

interface FeedEdge { cursor: string; node: { op: string; type: string; tenant: string; at: string; record: { id: string } | null } }

describe.skipIf(!storeKinds().includes('postgres'))('scale-out: two workers and two gateways on one PostgreSQL database', () => {
  const sandboxes = new Map<string, { sandbox: RunningSandbox; ds: RosterDataset }>();
  const children: ChildProcess[] = [];
  let db: { url: string; drop(): Promise<void> };
  let pool: pg.Pool;
  const dir = tempDir();
  const cfgFile = join(dir, 'rostergate.json');
  const env: NodeJS.ProcessEnv = { ...process.env, ROSTERGATE_LOG_LEVEL: 'silent', ROSTERGATE_MASTER_KEY: TEST_MASTER_KEY.toString('hex'), SCALE_CLEVER_TOKEN: CLEVER_SANDBOX_TOKEN };
  delete env.NODE_ENV;

  beforeAll(async () => {
    db = await newPostgresDatabase();
    pool = new pg.Pool({ connectionString: db.url, max: 2 });
    for (const [i, id] of TENANTS.entries()) {
      // A district of its own per tenant: different sizes, different seeds.
      const ds = RosterDataset.generate({ seed: 100 + i, students: 20 + 15 * i, teachers: 3, classes: 4, schools: 1 });
      sandboxes.set(id, { ds, sandbox: await startSandboxServer({ dataset: ds, apps: [cleverSandbox()] }) });
    }
  }, 60_000);

  afterAll(async () => {
    for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
    await Promise.all(children.map((c) => (c.exitCode === null && c.signalCode === null ? new Promise((r) => c.once('exit', r)) : undefined)));
    for (const { sandbox } of sandboxes.values()) await sandbox.close();
    await pool?.end();
    await db?.drop();
  });

  function start(args: string[]): { child: ChildProcess; out: () => string; err: () => string } {
    const child = spawn(process.execPath, [bin, ...args, '--config', cfgFile], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    children.push(child);
    let out = '';
    let err = '';
    child.stdout!.on('data', (d) => (out += d));
    child.stderr!.on('data', (d) => (err += d));
    return { child, out: () => out, err: () => err };
  }

  async function gateway(): Promise<string> {
    const p = start(['serve', '--port', '0']);
    let url: string | undefined;
    await until('a gateway listening', () => {
      if (p.child.exitCode !== null) throw new Error(`serve exited: ${p.err()}`);
      url = /GraphQL: (\S+)/.exec(p.out())?.[1];
      return !!url;
    });
    return url!;
  }

  it('syncs every due source once, serves the same answers from both gateways and each feed in commit order', async () => {
    writeFileSync(cfgFile, JSON.stringify({
      store: db.url, privacy: { tenant: HOME }, purposes: DEMO_PURPOSES,
      clients: [{ id: 'vendor', purpose: 'roster-sync', tenants: ['*'] }],
      worker: { tickSeconds: 1, pollSeconds: 0.5, maintenanceSeconds: 5, jobTimeoutSeconds: 30 },
    }));
    // Tenants as an operator adds them: a sources file each, the token by reference (the workers' environment has it).
    for (const id of TENANTS) {
      const file = join(dir, `${id}.json`);
      // pageSize 10: each sync commits many pages, so the feed grows while it is read.
      writeFileSync(file, JSON.stringify([{ id: 'sis', ...cleverSource(sandboxes.get(id)!.sandbox.urlOf('/clever')), token: 'env:SCALE_CLEVER_TOKEN', pageSize: 10, schedule: { every: '1h' } }]));
      const r = spawnSync(process.execPath, [bin, 'tenants', 'add', id, '--name', `District ${id}`, '--sources', file, '--config', cfgFile], { encoding: 'utf8', env, timeout: 60_000 });
      expect({ status: r.status, stderr: r.stderr }).toEqual({ status: 0, stderr: '' });
    }
    // The vendor's key, kept (hashed) in the home store like `rostergate keys create` does.
    const key = newApiKey();
    {
      const home = await PostgresStore.open(db.url);
      await home.addApiKey(hashApiKey(key), 'vendor', new Date().toISOString());
      await home.close();
    }
    const gateways = [await gateway(), await gateway()];
    const gql = async <T>(gw: number, tenant: string, query: string, variables: Record<string, unknown> = {}): Promise<T> => {
      const r = await request(gateways[gw % 2]!, { method: 'POST', headers: { 'content-type': 'application/json', 'x-api-key': key, 'x-rostergate-tenant': tenant }, body: JSON.stringify({ query, variables }) });
      const body = (await r.body.json()) as { data?: T; errors?: unknown };
      if (r.statusCode !== 200 || !body.data) throw new Error(`gateway ${gw % 2}, tenant ${tenant}: ${r.statusCode} ${JSON.stringify(body.errors)}`);
      return body.data;
    };

    // Followers of each tenant's feed, started before any sync: they read while pages commit,
    // alternating gateways page by page, each cursor taken by the other gateway.
    let syncing = true;
    const followed = new Map<string, FeedEdge[]>();
    const follow = async (tenant: string) => {
      const seen: FeedEdge[] = [];
      followed.set(tenant, seen);
      let after: string | null = null;
      let n = 0;
      for (;;) {
        const wasSyncing = syncing;
        const page: { changes: { edges: FeedEdge[]; pageInfo: { endCursor: string | null; hasNextPage: boolean } } } = await gql(n++, tenant, FEED, { after });
        seen.push(...page.changes.edges);
        after = page.changes.pageInfo.endCursor ?? after;
        // Stop once a page read after the last sync finished is in step.
        if (!wasSyncing && !page.changes.pageInfo.hasNextPage) return;
        if (!page.changes.pageInfo.hasNextPage) await new Promise((r) => setTimeout(r, 50));
      }
    };
    const followers = TENANTS.map(follow);
    // Awaited below; a failure before then is reported by the test, not as an unhandled rejection.
    for (const f of followers) f.catch(() => undefined);

    const workers = [start(['worker', '--concurrency', '2']), start(['worker', '--concurrency', '2'])];
    type Job = { state: string; retry_count: number; data: { tenant: string; source: string } };
    const jobs = async () => {
      try {
        return (await pool.query<Job>(`SELECT state::text, retry_count, data FROM ${QUEUE_SCHEMA}.job WHERE name = $1`, [SYNC_QUEUE])).rows;
      } catch (e) {
        // The first worker creates the queue's schema.
        if ((e as { code?: string }).code === '42P01' || (e as { code?: string }).code === '3F000') return [];
        throw e;
      }
    };
    await until('every tenant synced', async () => {
      for (const w of workers) if (w.child.exitCode !== null) throw new Error(`worker exited: ${w.err()}`);
      const js = await jobs();
      return js.length === TENANTS.length && js.every((j) => j.state === 'completed');
    });
    syncing = false;
    await Promise.all(followers);
    // The workers go on ticking: the hourly slots are taken, so nothing more is enqueued.
    await new Promise((r) => setTimeout(r, 2500));
    for (const w of workers) w.child.kill('SIGTERM');
    const exits = await Promise.all(workers.map((w) => (w.child.exitCode !== null ? w.child.exitCode : new Promise((r) => w.child.once('exit', (code) => r(code))))));
    expect(exits).toEqual([0, 0]);
    expect(workers.map((w) => w.err())).toEqual(['', '']);

    // Every due sync done exactly once: one job per tenant source, first attempt, and one run in each store.
    const done = await jobs();
    expect(done.map((j) => `${j.data.tenant}/${j.data.source} ${j.state} ${j.retry_count}`).sort()).toEqual(TENANTS.map((t) => `${t}/sis completed 0`).sort());
    const tenants = new CatalogTenants({ storeLocation: db.url, homeStore: await PostgresStore.open(db.url), home: { id: HOME, sources: [] }, keyring: new KeyRing(TEST_MASTER_KEY, HOME) });
    const seqs = new Map<string, number[]>();
    try {
      for (const id of TENANTS) {
        const store = (await tenants.open(id))!.store;
        const state = (await store.getSyncState('sis'))!;
        expect({ id, run: state.runId, status: state.runStatus }).toEqual({ id, run: 1, status: 'complete' });
        seqs.set(id, (await store.changes({ afterSeq: 0, limit: 100_000 })).map((c) => c.seq));
      }
    } finally {
      const home = (await tenants.open(HOME))!.store;
      await tenants.close();
      await home.close();
    }

    for (const id of TENANTS) {
      const ds = sandboxes.get(id)!.ds;
      // Reads consistent: the same people, in the same order, from either gateway; and this tenant's district's.
      const people = async (gw: number) => {
        const all: { id: string; givenName: string; familyName: string }[] = [];
        let after: string | null = null;
        let total = -1;
        for (;;) {
          const r: { people: { totalCount: number; edges: { node: { id: string; givenName: string; familyName: string } }[]; pageInfo: { endCursor: string; hasNextPage: boolean } } } = await gql(gw, id, PEOPLE, { after });
          total = r.people.totalCount;
          all.push(...r.people.edges.map((e) => e.node));
          if (!r.people.pageInfo.hasNextPage) return { total, all };
          after = r.people.pageInfo.endCursor;
        }
      };
      const [a, b] = [await people(0), await people(1)];
      expect(a).toEqual(b);
      expect(a.total).toBe(ds.list('person').length);
      expect(new Set(a.all.map((p) => `${p.givenName} ${p.familyName}`))).toEqual(new Set(ds.list('person').map((p) => `${(p.data as { givenName: string }).givenName} ${(p.data as { familyName: string }).familyName}`)));

      // The change feed in commit order: seqs strictly increasing in the store...
      const s = seqs.get(id)!;
      expect(s.length).toBeGreaterThan(ds.list('person').length);
      expect(s.every((x, i) => i === 0 || x > s[i - 1]!)).toBe(true);
      // ...and the follower, reading during the syncs, saw exactly what a full read now returns,
      // in the same order, from either gateway: nothing was committed behind a cursor it had passed.
      const full = async (gw: number) => {
        const all: FeedEdge['node'][] = [];
        let after: string | null = null;
        for (;;) {
          const r: { changes: { edges: FeedEdge[]; pageInfo: { endCursor: string | null; hasNextPage: boolean } } } = await gql(gw, id, FEED, { after });
          all.push(...r.changes.edges.map((e) => e.node));
          if (!r.changes.pageInfo.hasNextPage) return all;
          after = r.changes.pageInfo.endCursor;
        }
      };
      const [fa, fb] = [await full(0), await full(1)];
      expect(fa).toEqual(fb);
      expect(fa.length).toBe(s.length);
      expect(followed.get(id)!.map((e) => e.node)).toEqual(fa);
      expect(new Set(fa.map((c) => c.tenant))).toEqual(new Set([id]));
    }
  }, 150_000);
});
