/**
 * The disclosure ledger's write, on SQLite and PostgreSQL: one statement for any number of people
 * (the ids bound as one list), duplicates counted once, a first disclosure kept and the last one
 * moved on, other clients' rows untouched — also for more people than a multi-row VALUES statement
 * could bind (SQLite's limit is 32,766 parameters, 4 a row).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Store } from '../../src/store/types.ts';
import { openTestStore, storeKinds } from '../support/stores.ts';

const T1 = '2026-11-01T10:00:00.000Z';
const T2 = '2026-11-02T10:00:00.000Z';

describe.each(storeKinds())('recordDisclosures on %s', (kind) => {
  let store: Store;
  beforeAll(async () => {
    store = await openTestStore(kind);
  });
  afterAll(async () => {
    await store?.close();
  });

  it('keeps the first disclosure, moves the last, counts duplicates once, and leaves other clients alone', async () => {
    await store.transaction(async (tx) => {
      await tx.recordDisclosures('lms', ['per_a', 'per_b', 'per_a'], T1);
      await tx.recordDisclosures('analytics', ['per_a'], T1);
    });
    await store.transaction((tx) => tx.recordDisclosures('lms', ['per_a', 'per_c'], T2));
    expect(await store.disclosuresOf('per_a')).toEqual([
      { client: 'analytics', firstAt: T1, lastAt: T1 },
      { client: 'lms', firstAt: T1, lastAt: T2 },
    ]);
    expect(await store.disclosuresOf('per_b')).toEqual([{ client: 'lms', firstAt: T1, lastAt: T1 }]);
    expect(await store.disclosuresOf('per_c')).toEqual([{ client: 'lms', firstAt: T2, lastAt: T2 }]);
    await store.transaction((tx) => tx.recordDisclosures('lms', [], T2));
    expect(await store.disclosuresOf('per_b')).toEqual([{ client: 'lms', firstAt: T1, lastAt: T1 }]);
  });

  it('writes thousands of people in one call', async () => {
    const ids = Array.from({ length: 9000 }, (_, i) => `per_many${String(i).padStart(5, '0')}`);
    await store.transaction((tx) => tx.recordDisclosures('bulk', ids, T1));
    for (const id of [ids[0]!, ids[4500]!, ids[8999]!]) expect(await store.disclosuresOf(id)).toEqual([{ client: 'bulk', firstAt: T1, lastAt: T1 }]);
  });

  // PostgreSQL only: SQLite rewrites a row in place and leaves indexes of unchanged columns alone.
  if (kind === 'postgres') {
    it('moves the last disclosure of thousands of people without moving their rows (no index written)', async () => {
      const ids = Array.from({ length: 3000 }, (_, i) => `per_hot${String(i).padStart(5, '0')}`);
      await store.transaction((tx) => tx.recordDisclosures('hot', ids, T1));
      // Each row's page: the block of its ctid (the store's pool connects in the store's schema).
      type Client = { query(q: string, p: unknown[]): Promise<{ rows: { entity_id: string; ctid: string }[] }>; release(): void };
      const pool = (store as unknown as { pool: { connect(): Promise<Client> } }).pool;
      const where = async () => {
        const c = await pool.connect();
        try {
          const { rows } = await c.query(`SELECT entity_id, ctid::text FROM disclosures WHERE client = $1`, ['hot']);
          return new Map(rows.map((r) => [r.entity_id, r.ctid.replace(/^\((\d+),\d+\)$/, '$1')]));
        } finally {
          c.release();
        }
      };
      const before = await where();
      // One round: a second needs the first's old versions pruned, which a snapshot held by any other
      // session of the database (another test's) may put off.
      await store.transaction((tx) => tx.recordDisclosures('hot', ids, T2));
      // Each row's new version is on the page of its old one: a heap-only update, which PostgreSQL
      // makes only when no indexed column changed and the page has room (the table's fillfactor).
      expect(await where()).toEqual(before);
      expect(await store.disclosuresOf(ids[2999]!)).toEqual([{ client: 'hot', firstAt: T1, lastAt: T2 }]);
    });
  }
});
