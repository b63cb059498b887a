/**
 * `Store.counts`, on SQLite and PostgreSQL: every type, or only the types asked (the others read 0),
 * with the same numbers either way.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { privateGateway, type PrivateGateway } from '../support/privacy.ts';
import { storeKinds } from '../support/stores.ts';
import { ENTITY_TYPES } from '../../src/model/records.ts';

describe.each(storeKinds())('counts on %s', (kind) => {
  let g: PrivateGateway;
  beforeAll(async () => {
    g = await privateGateway({ seed: 5, students: 40, teachers: 4, classes: 5, schools: 2 }, undefined, { store: kind });
  }, 120_000);
  afterAll(() => g?.close());

  it('counts the types asked, and only those', async () => {
    const all = await g.store.counts();
    expect(all.person).toBe(g.dataset.list('person').length);
    expect(all.enrollment).toBe(g.dataset.list('enrollment').length);
    for (const types of [['person'], ['enrollment', 'person'], ['class', 'class']] as const) {
      const some = await g.store.counts(types);
      for (const t of ENTITY_TYPES) expect(some[t], `${types.join(',')}: ${t}`).toBe((types as readonly string[]).includes(t) ? all[t] : 0);
    }
    expect(Object.values(await g.store.counts([])).every((n) => n === 0)).toBe(true);
  });
});
