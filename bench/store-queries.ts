/**
 * Benchmark (prints figures; not a test) of the query layer's cost on SQLite: each operation through
 * the store next to its floor measured in the same run — the same SQL on a raw better-sqlite3
 * prepared statement, with nothing in between (no query builder, no promises). The gap is the
 * layer's overhead: Kysely's build and compile (or compiledOnce's binding), its driver, the awaits.
 * Each figure is the best of three runs. Size: `npm run bench store-queries -- --rows 20000`.
 */
import Database from 'better-sqlite3';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SqliteStore } from '../src/store/sqlite.ts';
import { arg } from './args.ts';

const T = '2030-01-01T00:00:00.000Z';
const perSec = (n: number, ms: number) => `${Math.round((n / ms) * 1000).toLocaleString('en')}/s`;

/** Best of three runs (writes repeat as upserts): on a shared machine the slowest runs measure the neighbours. */
async function time(fn: () => Promise<unknown> | unknown): Promise<number> {
  let best = Infinity;
  for (let i = 0; i < 3; i++) {
    const t = performance.now();
    await fn();
    best = Math.min(best, performance.now() - t);
  }
  return best;
}

export async function benchStoreQueries(): Promise<void> {
  const rows = arg('rows', 20_000);
  const ids = Array.from({ length: rows }, (_, i) => `per_${String(i).padStart(8, '0')}`);
  const data = (i: number) => ({ givenName: `G${i}`, familyName: `F${i}`, roles: ['student'], grades: ['05'] });
  const dir = mkdtempSync(join(tmpdir(), 'rostergate-bench-'));

  // Writes: one transaction of `rows` entities, singular and batch, against raw inserts.
  const one = SqliteStore.open(join(dir, 'one.db'));
  const many = SqliteStore.open(join(dir, 'many.db'));
  const raw = new Database(join(dir, 'raw.db'));
  raw.pragma('journal_mode = WAL');
  raw.exec(`CREATE TABLE entities (id TEXT PRIMARY KEY, type TEXT NOT NULL, data TEXT NOT NULL, updated_at TEXT NOT NULL, updated_seq INTEGER NOT NULL)`);
  const ins = raw.prepare(`INSERT INTO entities (id, type, data, updated_at, updated_seq) VALUES (?, ?, ?, ?, ?)
    ON CONFLICT (id) DO UPDATE SET data = excluded.data, updated_at = excluded.updated_at, updated_seq = excluded.updated_seq`);
  const floorW = await time(() => raw.transaction(() => ids.forEach((id, i) => ins.run(id, 'person', JSON.stringify(data(i)), T, i)))());
  const singular = await time(() => one.transaction(async (tx) => {
    for (let i = 0; i < rows; i++) await tx.putEntity({ id: ids[i]!, type: 'person', data: data(i), updatedAt: T, updatedSeq: i });
  }));
  const batch = await time(() => many.transaction((tx) => tx.putEntities(ids.map((id, i) => ({ id, type: 'person', data: data(i), updatedAt: T, updatedSeq: i })))));
  console.log(`store-queries (SQLite, ${rows.toLocaleString('en')} entities)`);
  console.log(`  write  putEntity × n   ${perSec(rows, singular).padStart(12)}   floor (raw prepared, one tx) ${perSec(rows, floorW)}  (${(floorW / singular).toFixed(2)}× of floor)`);
  console.log(`  write  putEntities     ${perSec(rows, batch).padStart(12)}   floor ${perSec(rows, floorW)}  (${(floorW / batch).toFixed(2)}×)`);

  // Reads: pages of 100 by id (what a loader asks), and single rows in a transaction.
  const pages = Math.floor(rows / 100);
  const sel = raw.prepare(`SELECT * FROM entities WHERE id IN (SELECT value FROM json_each(?))`);
  const floorR = await time(() => {
    for (let p = 0; p < pages; p++) for (const r of sel.all(JSON.stringify(ids.slice(p * 100, p * 100 + 100))) as { data: string }[]) JSON.parse(r.data);
  });
  const layerR = await time(async () => {
    for (let p = 0; p < pages; p++) await many.getEntities(ids.slice(p * 100, p * 100 + 100));
  });
  console.log(`  read   getEntities(100) ${perSec(rows, layerR).padStart(11)} rows   floor ${perSec(rows, floorR)}  (${(floorR / layerR).toFixed(2)}×)`);
  const get = raw.prepare(`SELECT * FROM entities WHERE id = ?`);
  const n = Math.min(rows, 20_000);
  const floorG = await time(() => {
    for (let i = 0; i < n; i++) JSON.parse((get.get(ids[i]) as { data: string }).data);
  });
  const layerG = await time(() => many.transaction(async (tx) => {
    for (let i = 0; i < n; i++) await tx.getEntity(ids[i]!);
  }));
  console.log(`  read   tx.getEntity × n ${perSec(n, layerG).padStart(11)}        floor ${perSec(n, floorG)}  (${(floorG / layerG).toFixed(2)}×)`);
  const listMs = await time(async () => {
    for (let after: string | undefined, more = true; more; ) {
      const page = await many.list({ type: 'person', first: 100, ...(after ? { afterId: after } : {}) });
      more = page.hasNext;
      after = page.rows.at(-1)?.id;
    }
  });
  const pageSel = raw.prepare(`SELECT * FROM entities WHERE type = ? AND id > ? ORDER BY id LIMIT ?`);
  const floorL = await time(() => {
    for (let after = '', more = true; more; ) {
      const page = pageSel.all('person', after, 101) as { id: string; data: string }[];
      more = page.length > 100;
      const kept = page.slice(0, 100);
      for (const r of kept) JSON.parse(r.data);
      after = kept.at(-1)?.id ?? '';
    }
  });
  console.log(`  read   list pages of 100 ${perSec(rows, listMs).padStart(10)} rows   floor ${perSec(rows, floorL)}  (${(floorL / listMs).toFixed(2)}×)`);
  await one.close();
  await many.close();
  raw.close();
}
