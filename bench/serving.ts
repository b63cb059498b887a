/**
 * Benchmark (prints figures; not a test): GraphQL serving under concurrent clients. The same nested
 * query (classes → student enrolments → person) is sent by 16 concurrent clients to
 *   - open access (no key, no audit): the gateway's own ceiling,
 *   - keyed LMS (roster-sync), keyed analytics (pseudonyms), keyed admin (unrestricted),
 *   - a plain Apollo Server + DataLoader over the same store (no privacy layer at all): the floor,
 * each printed as requests/s and as a ratio to open access. Targets (issue 13): keyed ≥ 0.9× open;
 * analytics time per request ≤ 1.10× unrestricted (admin).
 *
 * Modes are measured in interleaved rounds (a shared machine's load drifts) and the median round
 * of each is printed, and the median of each round's ratio (a mode over open access in the same
 * round), which the drift between rounds does not move. The load is generated in a worker thread (bench/http-load.mjs) so that it
 * does not share the measured event loop. Runs on SQLite, and on PostgreSQL too when
 * ROSTERGATE_BENCH_POSTGRES (or ROSTERGATE_TEST_POSTGRES) names a server (a fresh database is made).
 *
 * `npm run bench serving -- --students 5000 [--pg-students N] --seconds 3 --rounds 3 --clients 16 [--only lms,open] [--store file.db] [--pg-store URL] [--postgres-only]`
 *
 * `--store`: a SQLite file to keep the synced district in, reused when it holds one (a 50,000-student
 * sync takes minutes; serving only reads it, apart from the API keys and audit entries it adds).
 * PostgreSQL serves a district of `--pg-students` (default: the same as SQLite) in a fresh database,
 * or in the database a URL `--pg-store` names: synced when empty, used as it is after, never dropped.
 */
import { join } from 'node:path';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { Worker } from 'node:worker_threads';
import { performance } from 'node:perf_hooks';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import pg from 'pg';
import Database from 'better-sqlite3';
import DataLoader from 'dataloader';
import { ApolloServer, HeaderMap } from '@apollo/server';
import { DEMO_CLIENTS, DEMO_PURPOSES } from '../src/demo/demo-policy.ts';
import { parseConfig } from '../src/config/config.ts';
import { buildUnifiedSchema } from '../src/graphql/schema.ts';
import { KeyRing } from '../src/privacy/pseudonym.ts';
import { setupPrivacy } from '../src/graphql/privacy.ts';
import { hashApiKey, newApiKey } from '../src/privacy/api-keys.ts';
import { SqliteStore } from '../src/store/sqlite.ts';
import { PostgresStore } from '../src/store/postgres.ts';
import type { Store } from '../src/store/types.ts';
import { serveStore } from '../src/runtime.ts';
import { createLogger } from '../src/log.ts';
import type { RunningGateway } from '../src/server/gateway.ts';
import { auditLogFor } from '../src/graphql/privacy.ts';
import { arg, flag, textArg } from './args.ts';
import { freshDatabase } from './databases.ts';
import { holdsDistrict, syncDistrict } from './district.ts';

/** The query every mode sends: one page of classes, their students, each student's id. */
const QUERY = `{ classes(first: 10) { edges { node { id subjects enrollments(role: STUDENT, first: 10) { edges { node { role person { id } } } } } } } }`;
/** The same selection in the floor's plain schema (lists instead of connections). */
const FLOOR_QUERY = `{ classes(first: 10) { id subjects enrollments(role: "student", first: 10) { role person { id } } } }`;

interface LoadResult { requests: number; failures: number; seconds: number; sample?: string }

function load(url: string, headers: Record<string, string>, body: string, clients: number, seconds: number): Promise<LoadResult> {
  return new Promise((resolve, reject) => {
    const w = new Worker(new URL('./http-load.mjs', import.meta.url), { workerData: { url, headers, body, clients, seconds } });
    w.once('message', resolve);
    w.once('error', reject);
  });
}

const gc = (globalThis as { gc?: () => void }).gc;

/** Called around the measured rounds (a profiler started there sees serving only, not the sync before). */
export interface RoundHooks { before?(): Promise<void>; after?(): Promise<void> }

export async function benchServing(hooks: RoundHooks = {}): Promise<void> {
  const opts = { students: arg('students', 5000), seconds: arg('seconds', 3), rounds: arg('rounds', 3), clients: arg('clients', 16), hooks };
  if (!flag('postgres-only')) await benchOn('sqlite', opts);
  const pgAdmin = process.env.ROSTERGATE_BENCH_POSTGRES ?? process.env.ROSTERGATE_TEST_POSTGRES;
  // A kept database (`--pg-store`) is enough on its own: no server is needed to make one.
  if (pgAdmin || textArg('pg-store')) await benchOn('postgres', { ...opts, students: arg('pg-students', opts.students) }, pgAdmin);
  else console.log('serving — PostgreSQL skipped (set ROSTERGATE_BENCH_POSTGRES to a server URL to include it)');
}

async function benchOn(kind: 'sqlite' | 'postgres', o: { students: number; seconds: number; rounds: number; clients: number; hooks: RoundHooks }, pgAdmin?: string) {
  const dir = mkdtempSync(join(tmpdir(), 'rostergate-bench-serving-'));
  const kept = kind === 'sqlite' ? textArg('store') : textArg('pg-store');
  let storeRef = kept ?? join(dir, 'serving.db');
  let dropDb: (() => Promise<void>) | undefined;
  if (kind === 'postgres' && !kept) {
    const db = await freshDatabase(pgAdmin!, 'rg_serving_bench');
    storeRef = db.url;
    dropDb = db.drop;
  }
  const store: Store = kind === 'sqlite' ? SqliteStore.open(storeRef) : await PostgresStore.open(storeRef);
  let keyed: RunningGateway | undefined;
  let open: RunningGateway | undefined;
  let floor: { url: string; close(): Promise<void> } | undefined;
  try {
    const keyring = new KeyRing(Buffer.alloc(32, 5), 'bench');
    const cfg = parseConfig({ store: storeRef, privacy: { tenant: 'bench' }, purposes: DEMO_PURPOSES, clients: DEMO_CLIENTS });
    const privacy = setupPrivacy(cfg, buildUnifiedSchema(), { keyring });
    // A kept store is read as it is once it holds a district; an empty one is synced first.
    const reuse = await holdsDistrict(store);
    if (!reuse) await syncDistrict(store, privacy, o.students);
    const keys: Record<string, string> = {};
    for (const c of ['lms-demo', 'analytics-demo', 'admin-demo']) {
      keys[c] = newApiKey();
      await store.addApiKey(hashApiKey(keys[c]), c, new Date().toISOString());
    }
    const log = createLogger({ level: 'silent' });
    keyed = await serveStore(store, cfg, log, { port: 0, privacy, webhooks: false });
    open = await serveStore(store, parseConfig({ store: storeRef, server: { openAccess: true } }), log, { port: 0 });
    floor = await floorServer(kind, storeRef);

    const body = JSON.stringify({ query: QUERY });
    const modes: Record<string, { url: string; headers: Record<string, string>; body: string }> = {
      open: { url: `${open.url}/graphql`, headers: {}, body },
      lms: { url: `${keyed.url}/graphql`, headers: { 'x-api-key': keys['lms-demo']! }, body },
      analytics: { url: `${keyed.url}/graphql`, headers: { 'x-api-key': keys['analytics-demo']! }, body },
      admin: { url: `${keyed.url}/graphql`, headers: { 'x-api-key': keys['admin-demo']! }, body },
      floor: { url: `${floor.url}/graphql`, headers: {}, body: JSON.stringify({ query: FLOOR_QUERY }) },
    };
    // `--only lms,open` measures some modes (profiling); the ratios then print only where both are there.
    const only = process.argv.includes('--only') ? process.argv[process.argv.indexOf('--only') + 1]!.split(',') : undefined;
    if (only) for (const k of Object.keys(modes)) if (!only.includes(k)) delete modes[k];
    // Warm-up: statement caches, JIT, the page cache.
    for (const m of Object.values(modes)) await load(m.url, m.headers, m.body, o.clients, 0.5);
    const auditBefore = (await auditLogFor(store, keyring).verify()).entries;
    const rps: Record<string, number[]> = Object.fromEntries(Object.keys(modes).map((k) => [k, []]));
    const perBusy: Record<string, number[]> = Object.fromEntries(Object.keys(modes).map((k) => [k, []]));
    await o.hooks.before?.();
    const names = Object.keys(modes);
    for (let round = 0; round < o.rounds; round++) {
      // Each round starts one mode further on, so no mode always follows the same one; and each mode
      // starts on a collected heap, so none pays for garbage the mode before it left behind (every
      // server runs in this process).
      for (const name of names.map((_, i) => names[(i + round) % names.length]!)) {
        const m = modes[name]!;
        gc?.();
        const elu0 = performance.eventLoopUtilization();
        const r = await load(m.url, m.headers, m.body, o.clients, o.seconds);
        const busySec = performance.eventLoopUtilization(elu0).active / 1000;
        if (r.failures) throw new Error(`serving bench: ${name} had ${r.failures} failed requests, e.g. ${r.sample}`);
        rps[name]!.push(r.requests / r.seconds);
        perBusy[name]!.push(r.requests / busySec);
      }
    }
    await o.hooks.after?.();
    const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
    const m = Object.fromEntries(Object.entries(rps).map(([k, v]) => [k, median(v)]));
    const b = Object.fromEntries(Object.entries(perBusy).map(([k, v]) => [k, median(v)]));
    const audit = await auditLogFor(store, keyring).verify();
    const fmt = (n: number | undefined) => (n === undefined ? '-' : Math.round(n).toLocaleString('en')).padStart(7);
    const ratio = (x: number | undefined, y: number | undefined) => (x === undefined || y === undefined ? '  -  ' : `${(x / y).toFixed(2)}×`);
    console.log(`serving on ${kind} — ${reuse ? `the district kept in ${kind === 'sqlite' ? kept : `database ${new URL(kept!).pathname.slice(1)}`}` : `${o.students} students`}, ${o.clients} concurrent clients, ${o.rounds} interleaved rounds of ${o.seconds} s (median round);`);
    console.log(`  req/s, and requests per busy second of the gateway's event loop (steadier on a shared machine):`);
    const line = (label: string, k: string, target = '') =>
      console.log(`  ${label.padEnd(34)}${fmt(m[k])} req/s ${ratio(m[k], m.open)} open   ${fmt(b[k])} /busy s ${ratio(b[k], b.open)} open${target}`);
    line('floor: plain Apollo + DataLoader', 'floor');
    line('open access (no key, no audit)', 'open');
    line('keyed lms (roster-sync)', 'lms', '   (target ≥ 0.9×)');
    line('keyed analytics', 'analytics', '   (target ≥ 0.9×)');
    line('keyed admin (unrestricted)', 'admin');
    console.log(`  analytics time per request: ${ratio(m.admin, m.analytics)} unrestricted (admin), ${ratio(b.admin, b.analytics)} per busy second (target ≤ 1.10×)`);
    // Each round's ratio, then their median: a mode and open access ran in the same round, minutes
    // apart at most, so the machine's drift between rounds (open access moved from 112 to 232 req/s
    // between runs on this machine) cancels out of the pair, as in the extract bench.
    const paired = (x: string, y: string) => {
      const xs = rps[x];
      const ys = rps[y];
      if (!xs?.length || !ys?.length) return '-';
      const r = xs.map((v, i) => v / ys[i]!);
      return `${median(r).toFixed(2)}× (${Math.min(...r).toFixed(2)}–${Math.max(...r).toFixed(2)})`;
    };
    console.log(`  each round's ratio, median of ${o.rounds} rounds: lms ${paired('lms', 'open')}, analytics ${paired('analytics', 'open')}, admin ${paired('admin', 'open')} open (target ≥ 0.9×); analytics time per request ${paired('admin', 'analytics')} unrestricted (target ≤ 1.10×)`);
    console.log(`  audit chain: ${audit.ok ? 'verifies' : 'BROKEN'}, ${audit.entries - auditBefore} entries written in the measured rounds`);
  } finally {
    await keyed?.close();
    await open?.close();
    await floor?.close();
    await store.close();
    await dropDb?.();
    rmSync(dir, { recursive: true, force: true });
  }
}

/**
 * The floor: Apollo Server with a four-type schema and per-request DataLoaders reading the same
 * store's tables directly (no privacy layer, no audit, no connections). What any GraphQL server
 * over this data would cost, so the gateway's figures have a reference measured in the same run.
 */
async function floorServer(kind: 'sqlite' | 'postgres', storeRef: string): Promise<{ url: string; close(): Promise<void> }> {
  type Row = { id: string; data: unknown; k?: string };
  let query: (sql: string, params: unknown[]) => Promise<Row[]>;
  let end: () => Promise<void>;
  if (kind === 'sqlite') {
    const db = new Database(storeRef, { readonly: true });
    const cache = new Map<string, Database.Statement>();
    query = async (sql, params) => {
      let st = cache.get(sql);
      if (!st) cache.set(sql, (st = db.prepare(sql)));
      return st.all(...params) as Row[];
    };
    end = async () => void db.close();
  } else {
    const pool = new pg.Pool({ connectionString: storeRef, max: 8 });
    query = async (sql, params) => {
      let i = 0;
      return (await pool.query(sql.replace(/\?/g, () => `$${++i}`), params)).rows as Row[];
    };
    end = () => pool.end();
  }
  const parse = (d: unknown) => (typeof d === 'string' ? JSON.parse(d) : d) as Record<string, unknown>;
  const ids = (keys: readonly string[]) => JSON.stringify(keys);
  const inList = kind === 'sqlite' ? `(SELECT value FROM json_each(?))` : `(SELECT jsonb_array_elements_text(?::jsonb))`;
  const typeDefs = `type Query { classes(first: Int!): [Class!]! }
    type Class { id: ID! subjects: [String!] enrollments(role: String, first: Int!): [Enrollment!]! }
    type Enrollment { role: String! person: Person }
    type Person { id: ID! }`;
  interface Ctx { enrollmentsOf: DataLoader<string, Row[]>; personOf: DataLoader<string, string | undefined> }
  const apollo = new ApolloServer<Ctx>({
    typeDefs,
    resolvers: {
      Query: { classes: async (_: unknown, a: { first: number }) => (await query(`SELECT id, data FROM entities WHERE type = 'class' ORDER BY id LIMIT ?`, [a.first])).map((r) => ({ id: r.id, ...parse(r.data) })) },
      Class: {
        enrollments: async (c: { id: string }, a: { role?: string; first: number }, ctx: Ctx) =>
          (await ctx.enrollmentsOf.load(c.id)).map((r): Record<string, unknown> => ({ id: r.id, ...parse(r.data) })).filter((e) => !a.role || e.role === a.role).slice(0, a.first),
      },
      Enrollment: {
        person: async (e: { id: string }, _: unknown, ctx: Ctx) => {
          const id = await ctx.personOf.load(e.id);
          return id ? { id } : null;
        },
      },
    },
  });
  await apollo.start();
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', async () => {
      const headers = new HeaderMap();
      for (const [k, v] of Object.entries(req.headers)) if (typeof v === 'string') headers.set(k, v);
      const ctx: Ctx = {
        enrollmentsOf: new DataLoader(async (classIds) => {
          const rows = await query(`SELECT l.to_id AS k, e.id, e.data FROM links l JOIN entities e ON e.k = l.from_k WHERE l.rel = 'enrollment.class' AND l.to_id IN ${inList} ORDER BY e.id`, [ids(classIds)]);
          const by = new Map<string, Row[]>();
          for (const r of rows) (by.get(r.k!) ?? by.set(r.k!, []).get(r.k!)!).push(r);
          return classIds.map((k) => by.get(k) ?? []);
        }),
        personOf: new DataLoader(async (enrollmentIds) => {
          // From the enrollments to their links (CROSS JOIN keeps that order in SQLite): joined the other
          // way, SQLite read every person link of the store for each batch (318,000 at 50,000 students).
          const rows = await query(`SELECT e.id AS k, l.to_id AS id FROM entities e CROSS JOIN links l WHERE e.id IN ${inList} AND l.from_k = e.k AND l.rel = 'enrollment.person'`, [ids(enrollmentIds)]);
          const by = new Map(rows.map((r) => [r.k!, r.id]));
          return enrollmentIds.map((k) => by.get(k));
        }),
      };
      const r = await apollo.executeHTTPGraphQLRequest({ httpGraphQLRequest: { method: req.method!, headers, search: '', body: JSON.parse(Buffer.concat(chunks).toString('utf8')) }, context: async () => ctx });
      res.statusCode = r.status ?? 200;
      for (const [k, v] of r.headers) res.setHeader(k, v);
      res.end(r.body.kind === 'complete' ? r.body.string : '');
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    async close() {
      server.closeAllConnections();
      await new Promise((r) => server.close(r));
      await apollo.stop();
      await end();
    },
  };
}
