/**
 * After a sync changed much of the store, PostgreSQL's planner statistics are brought up to date at
 * once (Store.refreshStatistics): a freshly loaded district otherwise planned the pseudonym
 * backfill's anti-join as nested loops over a table it believed empty (0.5 s at 2,000 students,
 * growing with the square of the district) until autovacuum came round. A small sync leaves them.
 * A key rotation (and a new domain's backfill) writes a pseudonym version the planner has never
 * seen, which lists in pseudonym order filter on: it renews them too.
 */
import { describe, expect, it } from 'vitest';
import { RosterDataset } from '../../src/demo/dataset.ts';
import { directConnector } from '../../src/demo/direct-connector.ts';
import { PostgresStore } from '../../src/store/postgres.ts';
import { KeyRing } from '../../src/privacy/pseudonym.ts';
import { Pseudonymiser } from '../../src/privacy/pseudonymiser.ts';
import { syncSource } from '../../src/sync/runner.ts';
import { openTestStore, storeKinds } from '../support/stores.ts';

const onPostgres = storeKinds().includes('postgres');

describe.runIf(onPostgres)('planner statistics after a sync (PostgreSQL)', { timeout: 120_000 }, () => {
  it('a sync that loads the store analyses its tables; a sync changing a few records does not', async () => {
    const store = (await openTestStore('postgres')) as PostgresStore & { readCount: number };
    try {
      const analysed = async () =>
        (await store.rows<{ relname: string; n: number; at: Date | null }>(
          `SELECT relname, n_live_tup::int AS n, last_analyze AS at FROM pg_stat_user_tables WHERE relname IN ('entities', 'links', 'pseudonyms', 'source_records')`,
        )).sort((a, b) => a.relname.localeCompare(b.relname));
      const tuples = async () => Number((await store.rows<{ n: number }>(`SELECT reltuples::float8 AS n FROM pg_class WHERE relname = 'entities'`))[0]!.n);
      expect(await tuples()).toBeLessThanOrEqual(0);

      const dataset = RosterDataset.generate({ students: 60 });
      await syncSource(store, directConnector('sis', dataset));
      const first = await analysed();
      expect(first.map((t) => t.relname)).toEqual(['entities', 'links', 'pseudonyms', 'source_records']);
      for (const t of first) expect(t.at, t.relname).not.toBeNull();
      expect(await tuples()).toBeGreaterThan(100);

      // One student renamed: a change far under a tenth of the store leaves the statistics as they are.
      const student = dataset.list('person').find((p) => p.data.roles.includes('student'))!;
      dataset.upsert('person', student.key, { familyName: 'Renamed' });
      await syncSource(store, directConnector('sis', dataset));
      expect((await analysed()).map((t) => t.at?.getTime())).toEqual(first.map((t) => t.at?.getTime()));
    } finally {
      await store.close();
    }
  });
  it('a key rotation and a new domain\'s backfill analyse the tables', async () => {
    const store = (await openTestStore('postgres')) as PostgresStore & { readCount: number };
    try {
      const analysedAt = async () =>
        (await store.rows<{ at: Date | null }>(`SELECT last_analyze AS at FROM pg_stat_user_tables WHERE relname = 'pseudonyms'`))[0]?.at?.getTime() ?? 0;
      await syncSource(store, directConnector('sis', RosterDataset.generate({ students: 60 })));
      const synced = await analysedAt();
      expect(synced).toBeGreaterThan(0);
      const pseudonymiser = new Pseudonymiser(new KeyRing(Buffer.alloc(32, 5), 'planner-test'), ['analytics']);
      await new Promise((r) => setTimeout(r, 20));
      expect(await pseudonymiser.backfillAll(store)).toBeGreaterThan(0);
      const backfilled = await analysedAt();
      expect(backfilled).toBeGreaterThan(synced);
      await new Promise((r) => setTimeout(r, 20));
      const r = await pseudonymiser.rotate(store, 'analytics');
      expect(r.to).toBe(2);
      expect(await analysedAt()).toBeGreaterThan(backfilled);
    } finally {
      await store.close();
    }
  });
});
