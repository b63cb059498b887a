/**
 * Rows listed with only some members of their data decoded (ListQuery.fields,
 * src/store/partial-data.ts), on both stores: every way of reading a row's data gives what the
 * whole record gives — asked-for members present, absent or JSON null, other members, `in`, key
 * listing, spreading, JSON text — and only reads beyond the asked-for members are reported.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openTestStore, storeKinds } from '../support/stores.ts';
import type { EntityRow, ListQuery, Store } from '../../src/store/types.ts';
import { partialRecords } from '../../src/store/partial-data.ts';

const AT = '2026-12-07T00:00:00.000Z';
/** Synthetic classes: members present, absent and JSON null, nested values, a member named like Object.prototype's. */
const DATA: Record<string, unknown>[] = [
  { title: 'Synthetic 1', classType: 'scheduled', periods: ['1', '2'], subjects: null, grades: ['05'], location: 'R 1' },
  { title: 'Synthetic 2', periods: [], meta: { a: [1, { b: null }] }, primary: false, n: 0 },
  { title: 'Synthetic 3', classType: null, constructor: 'not the prototype’s', location: '' },
];
const ASKED = ['classType', 'periods', 'subjects', 'constructor', 'then'];

/** Everything a reader can learn of a record's data, in a form toEqual compares. */
function observe(data: Record<string, unknown>) {
  const members = ['title', 'classType', 'periods', 'subjects', 'grades', 'location', 'meta', 'primary', 'n', 'constructor', 'then', 'toString', 'hasOwnProperty'];
  return {
    get: members.map((m) => [m, data[m]]),
    has: members.map((m) => [m, m in data]),
    own: members.map((m) => [m, Object.prototype.hasOwnProperty.call(data, m)]),
    keys: Object.keys(data),
    spread: { ...data },
    json: JSON.stringify(data),
    entries: Object.entries(data),
  };
}

describe('partialRecords', () => {
  const whole = DATA.map((d) => JSON.parse(JSON.stringify(d)) as Record<string, unknown>);
  /** A partial record as the store makes it: the text, and each asked member's JSON text or null where absent. */
  const partial = (d: Record<string, unknown>, missed: (m: string | null) => void) => {
    const text = JSON.stringify(d);
    const row = ['x', ...ASKED.map((f) => (Object.hasOwn(d, f) ? JSON.stringify(d[f]) : null))];
    return partialRecords(ASKED, missed)(text, row, 1) as Record<string, unknown>;
  };

  it('answers asked-for members from what was decoded, and reports nothing', () => {
    for (const d of whole) {
      const missed: (string | null)[] = [];
      const p = partial(d, (m) => missed.push(m));
      for (const f of ASKED) {
        expect(p[f], f).toEqual(d[f]);
        expect(f in p, f).toBe(f in d);
      }
      expect(missed).toEqual([]);
    }
  });

  it('answers every other read from the whole record, and reports it', () => {
    for (const d of whole) {
      const missed: (string | null)[] = [];
      expect(observe(partial(d, (m) => missed.push(m)))).toEqual(observe(d));
      expect(missed).toContain('title');
      expect(missed).toContain(null);
    }
  });

  it('keeps writes, and refuses to be frozen', () => {
    const p = partial(whole[0]!, () => {});
    p.classType = 'homeroom';
    p.title = 'Synthetic 9';
    expect([p.classType, p.title]).toEqual(['homeroom', 'Synthetic 9']);
    delete p.periods;
    expect('periods' in p).toBe(false);
    expect(() => Object.freeze(p)).toThrow(TypeError);
  });
});

describe.each(storeKinds())('a list with only some members decoded on %s', (kind) => {
  let store: Store;
  beforeAll(async () => {
    store = await openTestStore(kind);
    await store.transaction(async (tx) => {
      for (const [i, data] of DATA.entries()) await tx.putEntity({ id: `cls_${i}`, type: 'class', data, updatedAt: AT, updatedSeq: i + 1 });
    });
  }, 60_000);
  afterAll(() => store?.close());

  const listed = async (q: Partial<ListQuery>) => (await store.list({ type: 'class', first: 10, ...q })).rows;

  it('gives rows that read as the whole ones, and reports only reads beyond the members asked for', async () => {
    const whole = await listed({});
    const missed = new Set<string | null>();
    const partial = await listed({ fields: ASKED, missedFields: (m) => missed.add(m) });
    expect(partial.map(({ data, ...r }) => r)).toEqual(whole.map(({ data, ...r }) => r));
    // The asked-for members as stored (absent, JSON null, empty list), and nothing reported.
    const asked = (rows: EntityRow[]) => rows.map((r) => ASKED.map((f) => [f, (r.data as Record<string, unknown>)[f], f in (r.data as object)]));
    expect(asked(partial)).toEqual(asked(whole));
    expect(missed.size).toBe(0);
    // Then everything else.
    expect(partial.map((r) => observe(r.data as Record<string, unknown>))).toEqual(whole.map((r) => observe(r.data as Record<string, unknown>)));
    expect(missed.has('title') && missed.has(null)).toBe(true);
  });

  it('refuses a member name it cannot put in a JSON path', async () => {
    await expect(listed({ fields: ['classType', 'a.b'] })).rejects.toThrow(/plain name/);
  });
});
