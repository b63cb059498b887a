/**
 * Benchmarks (print figures; not tests) for the consumers: extract throughput and peak memory on a
 * large district (default 50,000 students, about 300,000 enrollments), and change-feed read
 * throughput. Size: `npm run bench consumers -- --students 50000`.
 */
import { join } from 'node:path';
import { mkdtempSync, createWriteStream, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { once } from 'node:events';
import { execute, parse } from 'graphql';
import { RosterDataset } from '../src/demo/dataset.ts';
import { directConnector } from '../src/demo/direct-connector.ts';
import { DEMO_CLIENTS, DEMO_PURPOSES } from '../src/demo/demo-policy.ts';
import { parseConfig } from '../src/config/config.ts';
import { buildUnifiedSchema } from '../src/graphql/schema.ts';
import { KeyRing } from '../src/privacy/pseudonym.ts';
import { setupPrivacy } from '../src/graphql/privacy.ts';
import { SqliteStore } from '../src/store/sqlite.ts';
import { syncSource } from '../src/sync/runner.ts';
import { runExtract } from '../src/extract/extract.ts';
import { benchDistrict } from './district.ts';
import { arg } from './args.ts';

const gc = (globalThis as { gc?: () => void }).gc;

/**
 * CPU seconds (user + system) of this process since `from`: on a shared machine wall-clock rates
 * swing with everyone else's load, rates per CPU second much less (SQLite runs in-process).
 */
const cpuSeconds = (from: NodeJS.CpuUsage) => {
  const d = process.cpuUsage(from);
  return (d.user + d.system) / 1e6;
};
const MiB = (n: number) => n / 2 ** 20;

/**
 * Samples memory while `fn` runs. RSS peaks say little (V8 collects lazily), so with --expose-gc
 * the live heap is also measured after a full collection every 250 ms: that is what "flat" means.
 */
async function peakRss<T>(fn: () => Promise<T>): Promise<{ result: T; peakMiB: number; baseMiB: number; liveHeap: string }> {
  gc?.();
  const base = process.memoryUsage().rss;
  const heapBase = process.memoryUsage().heapUsed;
  let peak = base;
  let liveMax = heapBase;
  const t = setInterval(() => (peak = Math.max(peak, process.memoryUsage().rss)), 20);
  const g = gc
    ? setInterval(() => {
        gc();
        liveMax = Math.max(liveMax, process.memoryUsage().heapUsed);
      }, 250)
    : undefined;
  try {
    const result = await fn();
    return {
      result, peakMiB: MiB(peak), baseMiB: MiB(base),
      liveHeap: gc ? `live heap ${MiB(heapBase).toFixed(0)} → max ${MiB(liveMax).toFixed(0)} MiB` : 'run with node --expose-gc for live heap',
    };
  } finally {
    clearInterval(t);
    clearInterval(g);
  }
}

export async function benchConsumers(): Promise<void> {
  const students = arg('students', 50_000);
  const dir = mkdtempSync(join(tmpdir(), 'rostergate-bench-'));
  const cfg = parseConfig({ store: join(dir, 'b.db'), privacy: { tenant: 'bench' }, purposes: DEMO_PURPOSES, clients: DEMO_CLIENTS });
  const store = SqliteStore.open(cfg.store);
  const privacy = setupPrivacy(cfg, buildUnifiedSchema(), { keyring: new KeyRing(Buffer.alloc(32, 5), 'bench') });
  let t = Date.now();
  let district: RosterDataset | undefined = benchDistrict(students);
  const genMs = Date.now() - t;
  const ingest = await privacy.ingest(store);
  t = Date.now();
  const s = await syncSource(store, directConnector('bench', district, { pageSize: 2000 }), { ...ingest });
  const syncSec = (Date.now() - t) / 1000;
  // The generated district is the vendor's data, not the gateway's: dropped before the extracts, so
  // their heap figures (and the collector's work) are the gateway's alone, as in `rostergate extract`.
  district = undefined;
  gc?.();
  const counts = await store.counts();
  console.log(`consumers — ${students} students: ${counts.person} people, ${counts.enrollment} enrollments (generated in ${genMs} ms)`);
  console.log(`  sync (direct, with minimisation + pseudonyms): ${s.records} records in ${syncSec.toFixed(1)} s = ${Math.round(s.records / syncSec).toLocaleString('en')} records/s`);

  for (const [dataset, format] of [['people', 'csv'], ['enrollments', 'csv'], ['enrollments', 'ndjson']] as const) {
    const file = join(dir, `${dataset}.${format}`);
    const out = createWriteStream(file);
    t = Date.now();
    const cpu0 = process.cpuUsage();
    const { result, peakMiB, baseMiB, liveHeap } = await peakRss(() => runExtract({ store, privacy, sourceTypes: new Map(), client: 'analytics-demo', dataset, format, out }));
    out.end();
    await once(out, 'finish');
    const sec = (Date.now() - t) / 1000;
    const cpuSec = cpuSeconds(cpu0);
    const k = result.kAnonymity;
    const check = k.quasiIdentifiers.length
      ? `k=${k.k}: ${k.kReached} reached, ${result.suppressed} suppressed${Object.keys(k.generalised).length ? `, generalised ${Object.keys(k.generalised).join(', ')}` : ''}`
      : `k=${k.k}: no quasi-identifiers`;
    console.log(
      `  extract ${dataset}.${format} (analytics, ${check}): ${result.written.toLocaleString('en')} rows in ${sec.toFixed(1)} s = ` +
        `${Math.round(result.rows / sec).toLocaleString('en')} rows/s (${Math.round(result.rows / cpuSec).toLocaleString('en')} per CPU second); ` +
        `${(statSync(file).size / 2 ** 20).toFixed(1)} MiB; RSS ${baseMiB.toFixed(0)} → peak ${peakMiB.toFixed(0)} MiB; ${liveHeap}`,
    );
  }

  // Change-feed read throughput: the whole log, as the LMS client would page through it.
  const purpose = privacy.clientPurpose('lms-demo')!;
  const schema = privacy.schemas.get(purpose.id)!.schema;
  const doc = parse(`query($after: Cursor) { changes(after: $after, first: 1000) { pageInfo { hasNextPage endCursor } edges { node { op type at record { __typename ... on Enrollment { id role } ... on Person { id givenName } } } } } }`);
  let after: string | null = null;
  let events = 0;
  t = Date.now();
  const feedCpu0 = process.cpuUsage();
  for (;;) {
    const ctx = await privacy.context(store, new Map(), { client: 'lms-demo', purpose });
    const r = await execute({ schema, document: doc, contextValue: ctx, variableValues: { after } });
    if (r.errors) throw new Error(r.errors[0]!.message);
    const c = (r.data as any).changes;
    events += c.edges.length;
    if (!c.pageInfo.hasNextPage) break;
    after = c.pageInfo.endCursor;
  }
  const feedSec = (Date.now() - t) / 1000;
  const feedCpu = cpuSeconds(feedCpu0);
  console.log(
    `  change feed (lms, pages of 1000 with records): ${events.toLocaleString('en')} events in ${feedSec.toFixed(1)} s = ${Math.round(events / feedSec).toLocaleString('en')} events/s ` +
      `(${Math.round(events / feedCpu).toLocaleString('en')} per CPU second)`,
  );
  await store.close();
}
