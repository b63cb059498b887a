/**
 * After a sync changed much of the store, PostgreSQL's planner statistics are brought up to date at
 * once (Store.refreshStatistics): a freshly loaded district otherwise planned the pseudonym
 * backfill's anti-join as nested loops over a table it believed empty (0.5 s at 2,000 students,
 * growing with the square of the district) until autovacuum came round. A small sync leaves them.
 */
import { describe, expect, it } from 'vitest';
import { RosterDataset } from '../../src/demo/dataset.ts';
import { directConnector } from '../../src/demo/direct-connector.ts';
import { PostgresStore } from '../../src/store/postgres.ts';
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
});
