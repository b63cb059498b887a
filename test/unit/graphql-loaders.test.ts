import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execute, parse } from 'graphql';
import { buildUnifiedSchema, fieldResolver } from '../../src/graphql/schema.ts';
import { createContext } from '../../src/graphql/context.ts';
import { resolvers } from '../../src/graphql/resolvers.ts';
import { storeKinds, syncedStore } from '../support/stores.ts';
import type { EntityRow, Store } from '../../src/store/types.ts';
import type { RosterDataset } from '../../src/demo/dataset.ts';

let store: Store & { readCount: number };
let dataset: RosterDataset;
const schema = buildUnifiedSchema();

async function run(query: string, variables: Record<string, unknown> = {}) {
  const ctx = createContext(store, new Map([['demo', 'oneroster-csv']]));
  const r = await execute({ schema, document: parse(query), contextValue: ctx, variableValues: variables, fieldResolver });
  if (r.errors) throw new Error(r.errors.map((e) => e.message).join('; '));
  return r.data as Record<string, any>;
}

describe.each(storeKinds())('nested queries through loaders on %s', (kind) => {
  beforeAll(async () => {
    ({ store, dataset } = (await syncedStore({ students: 900, teachers: 20, classes: 30, schools: 3 }, ':memory:', kind)) as never);
  });
  afterAll(() => store.close());

  it('30 classes × 30 students with enrollments take a small, bounded number of store queries', async () => {
    const nested = (classes: number) => `{
      classes(first: ${classes}) { edges { node { title school { name }
        enrollments(role: STUDENT, first: 30) { totalCount edges { node { role beginDate
          person { givenName familyName demographics { birthDate } sources { source sourcedId } } } } } } } } }`;
    const counted = async (classes: number) => {
      const before = store.readCount;
      const data = await run(nested(classes));
      return { data, queries: store.readCount - before };
    };
    const { data, queries } = await counted(30);
    const classes = data.classes.edges;
    expect(classes).toHaveLength(30);
    const people = classes.flatMap((c: any) => c.node.enrollments.edges);
    expect(people.length).toBeGreaterThan(600);
    expect(queries).toBeLessThanOrEqual(10);
    // Bounded by the query's depth, not its size: ten times fewer classes, the same number of queries.
    expect((await counted(3)).queries).toBe(queries);
  });

  it('counts a list only when totalCount is selected (a count per page would make paging quadratic)', async () => {
    const reads = async (q: string) => {
      const before = store.readCount;
      const data = await run(q);
      return { data, queries: store.readCount - before };
    };
    const without = await reads(`{ people(first: 5) { edges { node { id } } } }`);
    const withTotal = await reads(`{ people(first: 5) { totalCount edges { node { id } } } }`);
    expect(withTotal.data.people.totalCount).toBe(dataset.list('person').length);
    expect(withTotal.queries).toBe(without.queries + 1);
  });

  it('answers school → classes → students with the dataset’s values', async () => {
    const data = await run(`{ schools(first: 10) { totalCount edges { node { name
      classes(first: 100) { totalCount edges { node { title enrollments(role: STUDENT, first: 100) { edges { node { person { givenName familyName sisId } } } } } } } } } } }`);
    expect(data.schools.totalCount).toBe(3);
    const school = dataset.list('org').find((o) => o.key === 'sch-01')!;
    const node = data.schools.edges.map((e: any) => e.node).find((n: any) => n.name === school.data.name);
    const classes = dataset.list('class').filter((c) => c.data.schoolKey === 'sch-01');
    expect(node.classes.totalCount).toBe(classes.length);
    const cls = classes[0]!;
    const gqlClass = node.classes.edges.find((e: any) => e.node.title === cls.data.title).node;
    const expected = dataset.list('enrollment').filter((e) => e.data.classKey === cls.key && e.data.role === 'student')
      .map((e) => dataset.get('person', e.data.personKey)!.data.sisId).sort();
    expect(gqlClass.enrollments.edges.map((e: any) => e.node.person.sisId).sort()).toEqual(expected);
  });

  it('pages people with cursors without repeats or gaps, and filters by role and updatedSince', async () => {
    const seen: string[] = [];
    let after: string | null = null;
    for (;;) {
      const d: any = await run(`query($after: Cursor) { people(role: STUDENT, first: 200, after: $after) { totalCount pageInfo { hasNextPage endCursor } edges { node { id } } } }`, { after });
      seen.push(...d.people.edges.map((e: any) => e.node.id));
      if (!d.people.pageInfo.hasNextPage) break;
      after = d.people.pageInfo.endCursor;
    }
    expect(seen).toHaveLength(900);
    expect(new Set(seen).size).toBe(900);
    const future = await run(`{ people(updatedSince: "2999-01-01T00:00:00Z") { totalCount } }`);
    expect(future.people.totalCount).toBe(0);
  });

  it('node(id:) returns any record by gateway id; an invalid cursor is a clear error', async () => {
    const d = await run(`{ classes(first: 1) { edges { node { id title } } } }`);
    const id = d.classes.edges[0].node.id;
    const n = await run(`query($id: ID!) { node(id: $id) { __typename ... on Class { title } } }`, { id });
    expect(n.node).toEqual({ __typename: 'Class', title: d.classes.edges[0].node.title });
    await expect(run(`{ people(after: "bm9wZQ") { totalCount } }`)).rejects.toThrow(/invalid cursor/);
  });

  it('a teacher in two schools shows both organizations; guardians link to students', async () => {
    const d = await run(`{ people(role: TEACHER, first: 100) { edges { node { sisId organizations { name } } } } }`);
    const t = d.people.edges.map((e: any) => e.node).find((n: any) => n.sisId === 'T005000');
    expect(t.organizations).toHaveLength(2);
    const g = await run(`{ guardianships(first: 3) { edges { node { relation guardian { roles } student { roles } } } } }`);
    for (const e of g.guardianships.edges) {
      expect(e.node.guardian.roles).toContain('GUARDIAN');
      expect(e.node.student.roles).toContain('STUDENT');
    }
  });

  it('answers a list of related records at once when the request knows every one, else through the loader', async () => {
    const ctx = createContext(store, new Map([['demo', 'oneroster-csv']]));
    const cls = (await store.list({ type: 'class', first: 30 })).rows.find((r) => ((r.data as { termIds?: string[] }).termIds ?? []).length > 0)!;
    const termIds = (cls.data as { termIds: string[] }).termIds;
    const terms = resolvers.Class!.terms as unknown as (row: EntityRow, args: object, c: typeof ctx) => EntityRow[] | Promise<EntityRow[]>;
    // Without an `entityNow` (every GraphQL request): through the loader.
    const loaded = terms(cls, {}, ctx);
    expect(loaded).toBeInstanceOf(Promise);
    const rows = await loaded;
    expect(rows.map((r) => r.id)).toEqual(termIds);
    // An extract's memo knows them all: the same rows, with no promise.
    const known = new Map(rows.map((r) => [r.id, r]));
    const withNow = (has: (id: string) => boolean) => ({ ...ctx, loaders: { ...ctx.loaders, entityNow: (id: string) => (has(id) ? known.get(id) : undefined) } });
    const now = terms(cls, {}, withNow(() => true));
    expect(now).not.toBeInstanceOf(Promise);
    expect(now).toEqual(rows);
    // One it does not know (not yet found, or not stored at all): the loader answers for the list, in the same order.
    const partly = terms(cls, {}, withNow((id) => id !== termIds[termIds.length - 1]));
    expect(partly).toBeInstanceOf(Promise);
    expect(await partly).toEqual(rows);
    const dangling = terms({ ...cls, data: { ...cls.data, termIds: [termIds[0]!, 'ses_notStoredAnywhere'] } as EntityRow['data'] }, {}, withNow(() => true));
    expect((await dangling).map((r) => r.id)).toEqual([termIds[0]]);
  });
});
