/**
 * compiledOnce (src/store/queries/compiled-once.ts): a query compiled once binds each call's own
 * values, in the right positions, beside the query's constants; a query that would freeze an
 * argument into its text (a transformed slot) is refused instead of answering with the first call's values.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { sql } from 'kysely';
import type { EntityType } from '../../src/model/records.ts';
import { compiledOnce } from '../../src/store/queries/compiled-once.ts';
import type { Store } from '../../src/store/types.ts';
import type { WriteTx } from '../../src/store/queries/write-tx.ts';
import { openTestStore, storeKinds } from '../support/stores.ts';

let stores: Store[] = [];
afterEach(async () => {
  for (const s of stores) await s.close();
  stores = [];
});

const BY_TYPE_AND_SEQ = compiledOnce(2, (db, d, type: EntityType, minSeq: number) =>
  db.selectFrom('entities').select('id').where('updated_seq', '>=', minSeq).where('type', '=', type).where('id', '<>', 'constant')
    .orderBy(d.byteOrder(sql.ref('id'))));

describe.each(storeKinds())('compiledOnce on %s', (kind) => {
  it('binds each call its own values, and refuses an argument it cannot bind', async () => {
    const s = await openTestStore(kind);
    stores.push(s);
    await s.transaction(async (t) => {
      const tx = t as WriteTx;
      for (const [id, type, seq] of [['a', 'person', 1], ['b', 'person', 5], ['c', 'org', 5], ['constant', 'org', 9]] as const) {
        await tx.putEntity({ id, type, data: {}, updatedAt: '2030-01-01T00:00:00.000Z', updatedSeq: seq });
      }
      const ids = async (type: EntityType, min: number) => (await BY_TYPE_AND_SEQ(tx.db, tx['d'], type, min)).rows.map((r) => r.id);
      expect(await ids('person', 0)).toEqual(['a', 'b']);
      expect(await ids('person', 2)).toEqual(['b']);
      expect(await ids('org', 0)).toEqual(['c']);

      const frozen = compiledOnce(1, (db, _d, v: unknown) => db.selectFrom('meta').select('key').where('value', '=', JSON.stringify(v)));
      await expect(frozen(tx.db, tx['d'], { a: 1 })).rejects.toThrow(/must be bound once as a value/);
    });
  });
});
