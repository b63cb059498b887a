/**
 * A list of people read with their demographics (`ListQuery.withDemographics`), on both stores:
 * each row's record is the one `demographicsIdFor` names (the store finds it by the same rule in
 * SQL), whichever way the page is read — pseudonym order (PostgreSQL reads those pages keys first),
 * pseudonym order with a filter, id order — and a person without one has none.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { privateGateway, type PrivateGateway } from '../support/privacy.ts';
import { storeKinds } from '../support/stores.ts';
import { demographicsIdFor } from '../../src/sync/ids.ts';
import type { EntityRow, ListQuery } from '../../src/store/types.ts';

describe.each(storeKinds())('on %s', (kind) => {
  let g: PrivateGateway;
  const order = { domain: 'analytics', version: 1 };
  beforeAll(async () => {
    g = await privateGateway({ seed: 91, students: 120, teachers: 8, classes: 10, schools: 2 }, undefined, { store: kind });
  }, 120_000);
  afterAll(() => g?.close());

  /** Every page of a list, 7 rows a page: the rows and what the list said of their demographics. */
  async function all(q: Omit<ListQuery, 'first' | 'type'>) {
    const rows: EntityRow[] = [];
    const demographics: (EntityRow | undefined)[] = [];
    for (let after: Pick<ListQuery, 'afterKey' | 'afterId'> = {}; ;) {
      const r = await g.store.list({ type: 'person', first: 7, ...q, ...after });
      rows.push(...r.rows);
      if (q.withDemographics) {
        expect(r.demographics).toHaveLength(r.rows.length);
        demographics.push(...r.demographics!);
      } else expect(r.demographics).toBeUndefined();
      if (!r.hasNext) return { rows, demographics };
      after = r.keys ? { afterKey: r.keys.at(-1) } : { afterId: r.rows.at(-1)!.id };
    }
  }

  it('gives each person the demographics record demographicsIdFor names, and none where there is none', async () => {
    const lists: [string, Omit<ListQuery, 'first' | 'type'>][] = [
      ['pseudonym order', { order }],
      ['pseudonym order, students only', { order, hasValue: { field: 'roles', value: 'student' } }],
      ['id order', {}],
    ];
    for (const [name, q] of lists) {
      const { rows, demographics } = await all({ ...q, withDemographics: true });
      // The same rows, in the same order, as without demographics.
      expect(rows.map((r) => r.id), name).toEqual((await all(q)).rows.map((r) => r.id));
      const stored = await g.store.getEntities(rows.map((r) => demographicsIdFor(r.id)));
      expect(demographics, name).toEqual(stored);
      // Both kinds of row are there: students with demographics, teachers without.
      expect(demographics.filter(Boolean).length, name).toBeGreaterThan(50);
      if (!q.hasValue) expect(demographics.some((x) => x === undefined), name).toBe(true);
    }
  });
});
