/**
 * Listed records' data as an extract reads it (ListQuery.fields / memberReads,
 * src/store/partial-data.ts), on both stores:
 * - recorded: the whole record, every way of reading it the same as a plain one, each member read
 *   told (and `null` for a read of every member);
 * - partial: the record without the members left out in SQL, absent and JSON null members as
 *   stored; the asked-for members read as in the whole record (present, absent, JSON null, falsy),
 *   and any other read told and refused with MemberNotRead, never answered from what is missing.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openTestStore, storeKinds } from '../support/stores.ts';
import type { EntityRow, ListQuery, Store } from '../../src/store/types.ts';
import { MemberNotRead, partialRecords, recordedRecords, type MemberReads } from '../../src/store/partial-data.ts';

const AT = '2026-12-07T00:00:00.000Z';
/** Synthetic classes: members present, absent and JSON null, nested values, falsy values, a member named like Object.prototype's. */
const DATA: Record<string, unknown>[] = [
  { title: 'Synthetic 1', classType: 'scheduled', periods: ['1', '2'], subjects: null, grades: ['05'], location: 'R 1' },
  { title: 'Synthetic 2', periods: [], meta: { a: [1, { b: null }] }, primary: false, n: 0 },
  { title: 'Synthetic 3', classType: null, constructor: 'not the prototype’s', location: '' },
];
const ASKED = ['classType', 'periods', 'subjects', 'constructor', 'primary', 'n', 'then'];

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

/** The asked-for members as a reader finds them. */
const asked = (data: Record<string, unknown>) => ASKED.map((f) => [f, data[f], f in data]);

/** A MemberReads that keeps what it is told. */
function told() {
  const reads: (string | null)[] = [];
  const sizes: number[] = [];
  return { reads, sizes, memberReads: { read: (m) => void reads.push(m), members: (names) => void sizes.push(names.length) } satisfies MemberReads };
}

/** Every way a reader can go beyond the asked-for members. */
const BEYOND: [string, (d: Record<string, unknown>) => unknown][] = [
  ['get', (d) => d.title],
  ['in', (d) => 'title' in d],
  ['keys', (d) => Object.keys(d)],
  ['spread', (d) => ({ ...d })],
  ['JSON', (d) => JSON.stringify(d)],
  ['own', (d) => Object.prototype.hasOwnProperty.call(d, 'classType')],
  ['write', (d) => (d.classType = 'homeroom')],
  ['delete', (d) => delete d.classType],
  ['freeze', (d) => Object.freeze(d)],
];

describe('partial and recorded records', () => {
  const whole = DATA.map((d) => JSON.parse(JSON.stringify(d)) as Record<string, unknown>);
  /** A partial record as the store makes it: the record without the members not asked for (some are left in: they still may not be read). */
  const partial = (d: Record<string, unknown>, reads: MemberReads) =>
    partialRecords(ASKED, reads)(Object.fromEntries(Object.entries(d).filter(([k]) => ASKED.includes(k) || k === 'location'))) as Record<string, unknown>;

  it('a partial record answers the asked-for members as the whole one does, and is told nothing', () => {
    for (const d of whole) {
      const t = told();
      expect(asked(partial(d, t.memberReads))).toEqual(asked(d));
      expect(t.reads).toEqual([]);
    }
  });

  it('a partial record refuses every other read, and tells which', () => {
    for (const [how, read] of BEYOND) {
      const t = told();
      const p = partial(whole[0]!, t.memberReads);
      let thrown: unknown;
      try {
        read(p);
      } catch (e) {
        thrown = e;
      }
      expect(thrown, how).toBeInstanceOf(MemberNotRead);
      // JSON.stringify looks for a toJSON member first.
      expect(t.reads, how).toEqual(how === 'get' || how === 'in' ? ['title'] : how === 'JSON' ? ['toJSON'] : [null]);
    }
  });

  it('a recorded record reads as the whole one in every way, and tells each member read and its size', () => {
    for (const d of whole) {
      const t = told();
      const r = recordedRecords(t.memberReads)(JSON.parse(JSON.stringify(d))) as Record<string, unknown>;
      expect(t.sizes).toEqual([Object.keys(d).length]);
      expect(r.title).toEqual(d.title);
      expect(t.reads).toEqual(['title']);
      expect(observe(r)).toEqual(observe(d));
      expect(t.reads).toContain(null);
    }
  });
});

describe.each(storeKinds())('a list read for an extract on %s', (kind) => {
  let store: Store;
  beforeAll(async () => {
    store = await openTestStore(kind);
    await store.transaction(async (tx) => {
      for (const [i, data] of DATA.entries()) await tx.putEntity({ id: `cls_${i}`, type: 'class', data, updatedAt: AT, updatedSeq: i + 1 });
    });
  }, 60_000);
  afterAll(() => store?.close());

  const listed = async (q: Partial<ListQuery>) => (await store.list({ type: 'class', first: 10, ...q })).rows;
  const rest = (rows: EntityRow[]) => rows.map(({ data, ...r }) => r);
  const data = (r: EntityRow) => r.data as Record<string, unknown>;

  it('with some members: the same rows, the asked-for members as stored, every other read refused', async () => {
    const whole = await listed({});
    const t = told();
    const partial = await listed({ fields: ASKED, leaveOut: ['title', 'grades', 'meta'], memberReads: t.memberReads });
    expect(rest(partial)).toEqual(rest(whole));
    expect(partial.map((r) => asked(data(r)))).toEqual(whole.map((r) => asked(data(r))));
    expect(t.reads).toEqual([]);
    // Not asked for: refused, whether the store left it out (title) or not (location).
    expect(() => data(partial[0]!).title).toThrow(MemberNotRead);
    expect(() => data(partial[0]!).location).toThrow(MemberNotRead);
    expect(() => Object.keys(data(partial[1]!))).toThrow(MemberNotRead);
    expect(t.reads).toEqual(['title', 'location', null]);
  });

  it('leaves out in SQL exactly the members named: absent and JSON null members of the rest as stored', async () => {
    const whole = await listed({});
    // Asked for everything, so the test can look at what the store sent.
    const all = ['title', 'classType', 'periods', 'subjects', 'grades', 'location', 'meta', 'primary', 'n', 'constructor'];
    const rows = await listed({ fields: all, leaveOut: ['title', 'meta', 'absentEverywhere'] });
    const seen = (o: Record<string, unknown>) => Object.fromEntries(all.filter((m) => m in o).map((m) => [m, o[m]]));
    expect(rows.map((r) => seen(data(r)))).toEqual(whole.map((r) => {
      const { title, meta, ...rest } = data(r);
      return seen(rest);
    }));
  });

  it('recorded: the whole rows, each read told, each record’s size told', async () => {
    const whole = await listed({});
    const t = told();
    const recorded = await listed({ memberReads: t.memberReads });
    expect(t.sizes).toEqual(DATA.map((d) => Object.keys(d).length));
    expect(recorded.map((r) => observe(data(r)))).toEqual(whole.map((r) => observe(data(r))));
    expect(rest(recorded)).toEqual(rest(whole));
    expect(new Set(t.reads)).toEqual(new Set(['title', 'classType', 'periods', 'subjects', 'grades', 'location', 'meta', 'primary', 'n', 'constructor', 'then', 'toString', 'hasOwnProperty', 'toJSON', null]));
  });

  it('refuses to leave out a member name it cannot put in a JSON path', async () => {
    await expect(listed({ fields: ['classType'], leaveOut: ['a.b'] })).rejects.toThrow(/plain name/);
  });
});
