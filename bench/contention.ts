/**
 * `npm run bench contention`: keyed answers while a sync writes into the same store.
 *
 *   npm run bench contention -- [--students 1000] [--sync-students 10000] [--page 500]
 *
 * A gateway serves a district of `--students` (keyed LMS client, and open access beside it) while a
 * second source syncs `--sync-students` into the same store, in pages of `--page` records, in the
 * same process. One client sends a keyed request and then an open one, over and over, for the length
 * of the sync, and the bench prints each one's latency (p50, p90, p99, max). A keyed answer is held
 * until its audit entry is committed (docs/serving.md), so it can wait for the sync's transaction;
 * open access writes nothing. Its figures, from the same run and the same event loop, are the floor.
 * PostgreSQL too when ROSTERGATE_BENCH_POSTGRES (or ROSTERGATE_TEST_POSTGRES) names a server (a
 * fresh database is made and dropped).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
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
import { directConnector } from '../src/demo/direct-connector.ts';
import { syncSource } from '../src/sync/runner.ts';
import { arg } from './args.ts';
import { freshDatabase } from './databases.ts';
import { benchDistrict, syncDistrict } from './district.ts';

const QUERY = JSON.stringify({ query: '{ classes(first: 5) { edges { node { id enrollments(first: 5) { edges { node { role } } } } } } }' });

export async function benchContention(): Promise<void> {
  const o = { students: arg('students', 1000), syncStudents: arg('sync-students', 10_000), page: Math.max(1, arg('page', 500)) };
  await contentionOn('sqlite', o);
  const server = process.env.ROSTERGATE_BENCH_POSTGRES ?? process.env.ROSTERGATE_TEST_POSTGRES;
  if (server) await contentionOn('postgres', o, server);
  else console.log('contention — PostgreSQL skipped (set ROSTERGATE_BENCH_POSTGRES to a server URL to include it)');
}

/** A fresh store of a kind, and how to be rid of it. */
async function freshStore(kind: 'sqlite' | 'postgres', server?: string): Promise<{ ref: string; store: Store; remove(): Promise<void> }> {
  if (kind === 'sqlite') {
    const dir = mkdtempSync(join(tmpdir(), 'rostergate-bench-contention-'));
    const ref = join(dir, 'store.db');
    const store = SqliteStore.open(ref);
    return { ref, store, remove: async () => rmSync(dir, { recursive: true, force: true }) };
  }
  const db = await freshDatabase(server!, 'rg_contention');
  return { ref: db.url, store: await PostgresStore.open(db.url), remove: db.drop };
}

async function contentionOn(kind: 'sqlite' | 'postgres', o: { students: number; syncStudents: number; page: number }, server?: string): Promise<void> {
  const { ref, store, remove } = await freshStore(kind, server);
  const log = createLogger({ level: 'silent' });
  let closeServers = async () => {};
  try {
    const cfg = parseConfig({ store: ref, privacy: { tenant: 'bench' }, purposes: DEMO_PURPOSES, clients: DEMO_CLIENTS });
    const privacy = setupPrivacy(cfg, buildUnifiedSchema(), { keyring: new KeyRing(Buffer.alloc(32, 5), 'bench') });
    await syncDistrict(store, privacy, o.students);
    const key = newApiKey();
    await store.addApiKey(hashApiKey(key), 'lms-demo', new Date().toISOString());
    const keyed = await serveStore(store, cfg, log, { port: 0, privacy, webhooks: false });
    const open = await serveStore(store, parseConfig({ store: ref, server: { openAccess: true } }), log, { port: 0 });
    closeServers = async () => {
      await keyed.close();
      await open.close();
    };
    const latency = { keyed: [] as number[], open: [] as number[] };
    const ask = async (mode: keyof typeof latency, url: string, headers: Record<string, string>) => {
      const t = performance.now();
      const r = await fetch(`${url}/graphql`, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: QUERY });
      const text = await r.text();
      if (!r.ok || text.includes('"errors"')) throw new Error(`contention bench: a ${mode} request failed (${r.status}): ${text.slice(0, 200)}`);
      latency[mode].push(performance.now() - t);
    };
    let syncing = true;
    const client = (async () => {
      while (syncing) {
        await ask('keyed', keyed.url, { 'x-api-key': key });
        await ask('open', open.url, {});
      }
    })();
    const t = performance.now();
    const ingest = await privacy.ingest(store);
    const summary = await syncSource(store, directConnector('second', benchDistrict(o.syncStudents), { pageSize: o.page }), { ...ingest }).finally(() => (syncing = false));
    const secs = (performance.now() - t) / 1000;
    await client;
    if (summary.status !== 'complete') throw new Error(`contention bench: the sync ended ${summary.status}: ${summary.error ?? ''}`);
    console.log(`contention on ${kind} — a gateway over ${o.students.toLocaleString('en')} students while a second source syncs ${summary.records.toLocaleString('en')} records in pages of ${o.page} (${secs.toFixed(1)} s), one client alternating:`);
    const q = (xs: number[], p: number) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor(p * xs.length))]!;
    const ms = (n: number) => `${Math.round(n).toLocaleString('en')} ms`.padStart(9);
    for (const mode of ['keyed', 'open'] as const) {
      const xs = latency[mode];
      if (!xs.length) continue;
      console.log(`  ${mode === 'keyed' ? 'keyed (audited)' : 'open (floor)   '}  ${String(xs.length).padStart(5)} requests  p50 ${ms(q(xs, 0.5))}  p90 ${ms(q(xs, 0.9))}  p99 ${ms(q(xs, 0.99))}  max ${ms(q(xs, 1))}`);
    }
    if (latency.keyed.length && latency.open.length) console.log(`  keyed p50 / open p50: ${(q(latency.keyed, 0.5) / q(latency.open, 0.5)).toFixed(2)}×`);
  } finally {
    await closeServers();
    await store.close();
    await remove();
  }
}
