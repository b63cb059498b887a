/**
 * Nested lists in pseudonym order are cut in SQL (`store.linkedPages`, `store.linkedCounts`); they
 * were sorted and sliced in memory (`sortKeys`, `sliceKeyed` in src/graphql/order.ts, still the path
 * of `updatedSince`). Order is a channel, so the two must agree exactly: the same rows in the same
 * order, the same sort keys (hence cursors), hasNext and totalCount, for every parent, with small
 * pages, cursors at and between rows, filters, and people missing a pseudonym. The in-memory path is
 * the oracle here; a generated district on each store.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEMO_CLIENTS, DEMO_PURPOSES } from '../../src/demo/demo-policy.ts';
import { createContext } from '../../src/graphql/context.ts';
import { sliceKeyed, sortKeys } from '../../src/graphql/order.ts';
import type { LinkedPageQuery } from '../../src/store/types.ts';
import type { EntityRow } from '../../src/store/types.ts';
import type { WriteTx } from '../../src/store/queries/write-tx.ts';
import { compareKeys } from '../../src/store/order.ts';
import { privateGateway, type PrivateGateway } from '../support/privacy.ts';
import { storeKinds } from '../support/stores.ts';

const config = {
  purposes: {
    ...DEMO_PURPOSES,
    // Granted people's schools, so it may list a school's people (analytics may not).
    schools: { ...DEMO_PURPOSES.analytics, pseudonymDomain: 'schools', fields: { ...DEMO_PURPOSES.analytics.fields, 'Person.organizations': 'allow' } },
  },
  clients: [...DEMO_CLIENTS, { id: 'schools-demo', purpose: 'schools' }],
};
const DISTRICT = { seed: 913, students: 300, teachers: 16, classes: 24, schools: 2 };

type Filter = Pick<LinkedPageQuery, 'hasValue' | 'fieldEquals'>;

/** The lists nestedList orders by pseudonym, and guardianships through their student (the store supports any). */
const LISTS: { rel: string; type: LinkedPageQuery['type']; filters: Filter[] }[] = [
  { rel: 'enrollment.class', type: 'enrollment', filters: [{}, { fieldEquals: { field: 'role', value: 'student' } }, { fieldEquals: { field: 'role', value: 'teacher' } }] },
  { rel: 'enrollment.person', type: 'enrollment', filters: [{}] },
  { rel: 'person.org', type: 'person', filters: [{}, { hasValue: { field: 'roles', value: 'teacher' } }] },
  { rel: 'guardianship.student', type: 'guardianship', filters: [{}] },
];

const matches = (row: EntityRow, f: Filter) => {
  const data = row.data as Record<string, unknown>;
  if (f.hasValue && !((data[f.hasValue.field] as unknown[] | undefined) ?? []).includes(f.hasValue.value)) return false;
  return !f.fieldEquals || data[f.fieldEquals.field] === f.fieldEquals.value;
};

describe.each(storeKinds())('on %s', (kind) => {
  let g: PrivateGateway;
  let version: number;

  beforeAll(async () => {
    g = await privateGateway(DISTRICT, undefined, { store: kind, config });
    version = (await g.store.domainVersion('analytics'))!;
  }, 240_000);
  afterAll(() => g?.close());

  /** The in-memory path as nestedList ran it: ids by link, rows filtered, every key read and sorted; `sliceKeyed` cuts a page. */
  async function inMemory(order: { domain: string; version: number }, l: (typeof LISTS)[number], f: Filter, parent: string) {
    const ctx = createContext(g.store, new Map(), { pseudonymDomain: order });
    let ids = (await g.store.linkedFrom(l.rel, [parent])).get(parent)!;
    let rows: EntityRow[] | undefined;
    if (f.hasValue || f.fieldEquals) {
      rows = (await g.store.getEntities(ids)).filter((r): r is EntityRow => !!r && matches(r, f));
      ids = rows.map((r) => r.id);
    }
    return sortKeys(ctx, l.type, ids, rows);
  }

  /** Compares every parent's pages, with cursors at rows, between rows and past the end. */
  async function compare(order: { domain: string; version: number }, parentsOf: Record<string, string[]>) {
    let compared = 0;
    let nonEmpty = 0;
    for (const l of LISTS) {
      const parents = parentsOf[l.rel]!;
      expect(parents.length).toBeGreaterThan(2);
      for (const f of l.filters) {
        const counts = await g.store.linkedCounts({ rel: l.rel, type: l.type, order, ...f }, parents);
        const keys = await Promise.all(parents.map((p) => inMemory(order, l, f, p)));
        // Cursors: none; keys of rows of the first parents (some every few rows), just after them, and past every key.
        const positions = new Set<string>(['']);
        for (const k of keys.slice(0, 3)) {
          const sorted = [...k.values()].sort(compareKeys);
          const step = Math.max(1, Math.floor(sorted.length / 15));
          sorted.forEach((key, i) => {
            if (i % step) return;
            positions.add(JSON.stringify(key));
            positions.add(JSON.stringify([...key.slice(0, -1), `${key.at(-1)}~`]));
          });
        }
        positions.add(JSON.stringify(l.type === 'person' ? ['~'] : ['~', '', '']));
        for (const first of [0, 1, 3, 10]) {
          for (const pos of positions) {
            const after = pos ? (JSON.parse(pos) as string[]) : undefined;
            const got = await g.store.linkedPages({ rel: l.rel, type: l.type, order, ...f, first, afterKey: after }, parents);
            for (const [i, parent] of parents.entries()) {
              const want = sliceKeyed(keys[i]!, first, after);
              const page = got.get(parent)!;
              expect({ ids: page.rows.map((r) => r.id), hasNext: page.hasNext }, `${l.rel} ${JSON.stringify(f)} first ${first} after ${pos}`)
                .toEqual({ ids: want.ids, hasNext: want.hasNext });
              expect(page.keys).toEqual(want.ids.map((id) => keys[i]!.get(id)));
              expect(counts.get(parent)).toBe(want.total);
              compared++;
              if (page.rows.length) nonEmpty++;
            }
          }
        }
      }
    }
    return { compared, nonEmpty };
  }

  async function parentsOf(): Promise<Record<string, string[]>> {
    const ids = async (type: 'class' | 'person' | 'org', n: number) => (await g.store.list({ type, first: n })).rows.map((r) => r.id);
    const students = g.dataset.list('person').filter((p) => p.data.roles.includes('student')).length;
    expect(students).toBeGreaterThan(100);
    const people = await ids('person', 400);
    // Parents with many children, with none, and one that does not exist.
    const withGuardians = [...(await g.store.linkedFrom('guardianship.student', people)).entries()].filter(([, v]) => v.length > 1).map(([k]) => k);
    return {
      'enrollment.class': [...(await ids('class', 8)), 'cls_missing'],
      'enrollment.person': [...people.slice(0, 6), 'per_missing'],
      'person.org': [...(await ids('org', 4)), 'org_missing'],
      'guardianship.student': [...withGuardians.slice(0, 5), people[0]!],
    };
  }

  it('orders, pages and counts every nested list exactly as the in-memory sort did', async () => {
    const { compared, nonEmpty } = await compare({ domain: 'analytics', version }, await parentsOf());
    expect(compared).toBeGreaterThan(1000);
    expect(nonEmpty).toBeGreaterThan(300);
  }, 240_000);

  it('leaves out, as the in-memory sort did, rows whose person has no pseudonym in the order\'s version', async () => {
    // A version where every other person has a pseudonym (synthetic values): rows of the others drop out.
    const parents = await parentsOf();
    const people = await g.store.personIds(undefined, 100_000);
    const half = people.filter((_, i) => i % 2 === 0);
    await g.store.transaction(async (tx) => {
      await tx.putPseudonyms(half.map((id, i) => ({ domain: 'analytics', version: 77, entityId: id, value: `p${String((i * 7919) % 100_003).padStart(6, '0')}-${i}` })));
    });
    try {
      await compare({ domain: 'analytics', version: 77 }, parents);
      const cls = parents['enrollment.class']![0]!;
      const all = (await g.store.linkedFrom('enrollment.class', [cls])).get(cls)!.length;
      const kept = (await g.store.linkedCounts({ rel: 'enrollment.class', type: 'enrollment', order: { domain: 'analytics', version: 77 } }, [cls])).get(cls)!;
      expect(kept).toBeGreaterThan(0);
      expect(kept).toBeLessThan(all);
    } finally {
      await g.store.transaction((tx) => (tx as WriteTx).db.deleteFrom('pseudonyms').where('version', '=', 77).execute());
    }
  }, 240_000);

  it('through GraphQL: the SQL page and the in-memory one (updatedSince) answer the same, and take each other\'s cursors', async () => {
    // Organization.people is the nested list with updatedSince; a purpose like analytics that may list a school's people.
    const q = (since: boolean) => `query($after: Cursor) { schools(first: 2) { edges { node { id people(role: STUDENT, first: 9, after: $after${since ? ', updatedSince: "2000-01-01T00:00:00Z"' : ''}) {
      totalCount pageInfo { hasNextPage endCursor } edges { cursor node { id roles } } } } } } }`;
    const open = (c: string) => g.privacy.keyring.openCursor('schools', c);
    const plain = (body: any) => body.data.schools.edges.map((e: any) => ({
      ...e.node.people,
      pageInfo: { ...e.node.people.pageInfo, endCursor: e.node.people.pageInfo.endCursor && open(e.node.people.pageInfo.endCursor) },
      edges: e.node.people.edges.map((x: any) => ({ ...x, cursor: open(x.cursor) })),
    }));
    // Pages from the first school's end cursor, the cursor of one path fed to both in turn.
    let after: string | null = null;
    let pages = 0;
    for (; pages < 40; pages++) {
      const sqlPage = await g.gql('schools-demo', q(false), { after });
      const memPage = await g.gql('schools-demo', q(true), { after });
      expect(sqlPage.body.errors, JSON.stringify(sqlPage.body.errors)).toBeUndefined();
      expect(memPage.body.errors, JSON.stringify(memPage.body.errors)).toBeUndefined();
      const a = plain(sqlPage.body);
      expect(a).toEqual(plain(memPage.body));
      expect(a[0].totalCount).toBeGreaterThan(30);
      const from: { hasNextPage: boolean; endCursor: string } = (pages % 2 ? sqlPage : memPage).body.data.schools.edges[0].node.people.pageInfo;
      if (!from.hasNextPage) break;
      after = from.endCursor;
    }
    expect(pages).toBeGreaterThan(3);
    // A cursor of a list of another type is refused alike.
    const foreign = (await g.gql('schools-demo', `{ enrollments(first: 1) { pageInfo { endCursor } } }`)).body.data.enrollments.pageInfo.endCursor;
    const [x, y] = await Promise.all([g.gql('schools-demo', q(false), { after: foreign }), g.gql('schools-demo', q(true), { after: foreign })]);
    expect(x.body.errors?.length).toBeGreaterThan(0);
    expect(x.body.errors!.map((e: any) => [e.message, e.extensions?.code, e.path])).toEqual(y.body.errors!.map((e: any) => [e.message, e.extensions?.code, e.path]));
  }, 120_000);

  it('reads each nested list once for all its parents: as many statements for 12 classes as for 2', async () => {
    const reads = async (classes: number) => {
      const before = g.store.readCount;
      const r = await g.gql('analytics-demo', `{ classes(first: ${classes}) { edges { node { enrollments(role: STUDENT, first: 3) { totalCount edges { node { person { id } } } } } } } }`);
      expect(r.body.errors, JSON.stringify(r.body.errors)).toBeUndefined();
      expect(r.body.data.classes.edges).toHaveLength(classes);
      return g.store.readCount - before;
    };
    await reads(2);
    expect(await reads(12)).toBe(await reads(2));
  });
});
