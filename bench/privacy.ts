/**
 * Benchmark (prints figures; not a test): the cost of a per-purpose view over the same query on the
 * unrestricted schema, both over HTTP with audit on, pseudonymisation throughput at sync time, and
 * the start-up recomputation of per-purpose view times (updatedAt / updatedSince).
 * Target: ratio ≤ 1.10.
 *
 * Options: `--students N` (the district's size, 1,500 by default) and `--queries N` (queries timed
 * on each side, alternating, 300 by default).
 */
import { join } from 'node:path';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { request } from 'undici';
import { RosterDataset } from '../src/demo/dataset.ts';
import { directConnector } from '../src/demo/direct-connector.ts';
import { DEMO_CLIENTS, DEMO_PURPOSES } from '../src/demo/demo-policy.ts';
import { parseConfig } from '../src/config/config.ts';
import { buildUnifiedSchema } from '../src/graphql/schema.ts';
import { createLogger } from '../src/log.ts';
import { hashApiKey, newApiKey } from '../src/privacy/api-keys.ts';
import { KeyRing } from '../src/privacy/pseudonym.ts';
import { setupPrivacy } from '../src/graphql/privacy.ts';
import { serveStore } from '../src/runtime.ts';
import { SqliteStore } from '../src/store/sqlite.ts';
import { syncSource } from '../src/sync/runner.ts';
import { arg } from './args.ts';

// Fields the analytics purpose receives: a class's title is free text classified as direct (it can
// carry a teacher's name), so the query asks for subjects, as an analytics client would.
const QUERY = `{ classes(first: 20) { edges { node { subjects enrollments(role: STUDENT, first: 30) { edges { node { role person { id gradeBand } } } } } } } }`;

async function timeQueries(url: string, key: string | undefined, n: number): Promise<number[]> {
  const headers: Record<string, string> = { 'content-type': 'application/json', ...(key ? { 'x-api-key': key } : {}) };
  const times: number[] = [];
  for (let i = 0; i < n; i++) {
    const t = process.hrtime.bigint();
    const r = await request(`${url}/graphql`, { method: 'POST', headers, body: JSON.stringify({ query: QUERY }) });
    const body = (await r.body.json()) as { errors?: unknown };
    if (r.statusCode !== 200 || body.errors) throw new Error(`query failed: ${JSON.stringify(body).slice(0, 200)}`);
    times.push(Number(process.hrtime.bigint() - t) / 1e6);
  }
  return times;
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

export async function benchPrivacy(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'rostergate-bench-'));
  const log = createLogger({ level: 'silent' });
  const dataset = RosterDataset.generate({ students: arg('students', 1500) });
  const cfg = parseConfig({ store: join(dir, 'b.db'), privacy: { tenant: 'bench' }, purposes: DEMO_PURPOSES, clients: DEMO_CLIENTS });
  const store = SqliteStore.open(cfg.store);
  const keyring = new KeyRing(Buffer.alloc(32, 9), 'bench');
  const privacy = setupPrivacy(cfg, buildUnifiedSchema(), { keyring });
  const ingest = await privacy.ingest(store);
  // Time spent making pseudonyms inside the sync (the policy computes a page's at its flush, which writes them).
  let hookNs = 0n;
  let made = 0;
  const personCreated: typeof ingest.personCreated = (ids) => {
    const h = process.hrtime.bigint();
    const rows = ingest.personCreated(ids);
    hookNs += process.hrtime.bigint() - h;
    made += rows.length;
    return rows;
  };
  // Time spent computing each purpose's view times (updatedAt / updatedSince) inside the sync.
  let viewNs = 0n;
  let changes = 0;
  const changeLogged: typeof ingest.changeLogged = (cs) => {
    const h = process.hrtime.bigint();
    const rows = ingest.changeLogged(cs);
    viewNs += process.hrtime.bigint() - h;
    changes += cs.length;
    return rows;
  };
  let t = process.hrtime.bigint();
  await syncSource(store, directConnector('demo', dataset), { ...ingest, personCreated, changeLogged });
  const syncMs = Number(process.hrtime.bigint() - t) / 1e6;
  const people = (await store.counts()).person;
  // The start-up backfill of per-purpose view times, recomputing every purpose from the change log
  // (what a store synced before view times existed, or a changed policy, costs once).
  t = process.hrtime.bigint();
  const views = await privacy.viewTimes.backfill(store);
  const viewsMs = Number(process.hrtime.bigint() - t) / 1e6;
  const viewRecords = views.reduce((n, v) => n + v.records, 0);

  // Pseudonymisation at sync time: raw HMAC throughput, and materialising a whole domain (rotation).
  const ids = (await store.list({ type: 'person', first: 100_000 })).rows.map((r) => r.id);
  t = process.hrtime.bigint();
  const rounds = 20;
  for (let r = 0; r < rounds; r++) for (const id of ids) keyring.pseudonym('analytics', 1, id);
  const hmacPerSec = (rounds * ids.length) / (Number(process.hrtime.bigint() - t) / 1e9);
  t = process.hrtime.bigint();
  await privacy.pseudonymiser.rotate(store, 'analytics');
  const rotateSec = Number(process.hrtime.bigint() - t) / 1e9;

  const key = newApiKey();
  await store.addApiKey(hashApiKey(key), 'analytics-demo', new Date().toISOString());
  const open = await serveStore(store, { ...cfg, server: { ...cfg.server, openAccess: true } }, log, { port: 0 });
  const scoped = await serveStore(store, cfg, log, { port: 0, privacy });
  await timeQueries(open.url, undefined, 30);
  await timeQueries(scoped.url, key, 30);
  const n = Math.max(1, arg('queries', 300));
  // Alternate query by query, so load from other processes hits both sides alike.
  const a: number[] = [];
  const b: number[] = [];
  for (let i = 0; i < n; i++) {
    a.push(...(await timeQueries(open.url, undefined, 1)));
    b.push(...(await timeQueries(scoped.url, key, 1)));
  }
  await open.close();
  await scoped.close();
  await store.close();
  const ma = median(a);
  const mb = median(b);
  console.log(`privacy — district of ${people} people, synced with minimisation and pseudonyms in ${syncMs.toFixed(0)} ms`);
  console.log(`  pseudonyms made during the sync:     ${Math.round(made / (Number(hookNs) / 1e9)).toLocaleString('en')} /s (${made} in ${(Number(hookNs) / 1e6).toFixed(0)} ms of the sync's ${syncMs.toFixed(0)} ms)`);
  console.log(`  view times kept during the sync:     ${changes} changes in ${(Number(viewNs) / 1e6).toFixed(0)} ms of the sync's ${syncMs.toFixed(0)} ms`);
  console.log(`  view times recomputed at start-up:   ${viewRecords} records over ${views.length} purposes in ${viewsMs.toFixed(0)} ms`);
  console.log(`  pseudonyms (HMAC, in memory):        ${Math.round(hmacPerSec).toLocaleString('en')} /s`);
  console.log(`  pseudonyms materialised (rotation):  ${Math.round(people / rotateSec).toLocaleString('en')} /s (${people} people in ${rotateSec.toFixed(2)} s)`);
  console.log(`  nested query, unrestricted schema:   median ${ma.toFixed(2)} ms over ${n}`);
  console.log(`  same query, analytics purpose view:  median ${mb.toFixed(2)} ms over ${n} (audit log on)`);
  console.log(`  ratio purpose/unrestricted:          ${(mb / ma).toFixed(3)} (target ≤ 1.10)`);
}
