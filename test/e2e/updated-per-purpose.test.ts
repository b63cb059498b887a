/**
 * `updatedAt` and `updatedSince` through each purpose: a change to a field a purpose does not
 * receive moves neither (an analytics client must not learn when a child's email or exact grade
 * changed; an LMS must not learn when a special-category flag changed), a change it receives
 * moves both, at the time its change feed shows; paging with `updatedSince` stays stable; open
 * access keeps each record's own time.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execute, parse } from 'graphql';
import { privateGateway, type PrivateGateway } from '../support/privacy.ts';
import { storeKinds } from '../support/stores.ts';
import { DEMO_CLIENTS, DEMO_PURPOSES } from '../../src/demo/demo-policy.ts';
import { gradeBand } from '../../src/privacy/generalise.ts';
import { buildUnifiedSchema, fieldResolver } from '../../src/graphql/schema.ts';
import { createContext } from '../../src/graphql/context.ts';

/** The demo purposes, plus a support service that receives names and the IEP flag (a special category roster-sync does not receive). */
const PURPOSES = {
  ...DEMO_PURPOSES,
  'sen-support': {
    legalBasis: 'Special educational needs support under the school’s statutory duty (test)',
    categories: { NONE: 'allow', DIRECT: 'allow', IDENTIFIER: 'allow' },
    fields: { 'Demographics.iep': 'allow' },
  },
};
const CLIENTS = [...DEMO_CLIENTS, { id: 'sen-demo', purpose: 'sen-support' }];
const LMS = 'lms-demo';
const AN = 'analytics-demo';
const SEN = 'sen-demo';

const pause = () => new Promise((r) => setTimeout(r, 5));

describe.each(storeKinds())('updatedAt and updatedSince per purpose on %s', (kind) => {
  let g: PrivateGateway;

  beforeAll(async () => {
    g = await privateGateway({ students: 40, teachers: 3, classes: 4, schools: 1 }, undefined, { config: { purposes: PURPOSES, clients: CLIENTS }, store: kind });
  });
  afterAll(() => g?.close());

  async function gql(client: string, query: string, variables?: unknown) {
    const r = await g.gql(client, query, variables);
    expect(r.body.errors, JSON.stringify(r.body.errors)).toBeUndefined();
    return r.body.data;
  }

  /** The gateway id of a dataset person, and the id each client knows them by. */
  async function idsOf(key: string): Promise<{ id: string; as: (client: string) => string }> {
    const sisId = g.dataset.get('person', key)!.data.sisId;
    const rows = (await g.store.list({ type: 'person', first: 100_000 })).rows;
    const id = rows.find((r) => (r.data as { sisId?: string }).sisId === sisId)!.id;
    const p = (await g.store.pseudonymsOf('analytics', 1, [id])).get(id)!;
    return { id, as: (client) => (client === AN ? p : id) };
  }

  const updatedAt = async (client: string, id: string) =>
    (await gql(client, `query($id: ${client === AN ? 'Pseudonym' : 'ID'}!) { person(id: $id) { updatedAt } }`, { id })).person.updatedAt as string;

  /** Everyone `people(updatedSince:)` returns to a client, paged, with the totalCount of each page. */
  async function changedSince(client: string, since: string, first = 500) {
    const ids: string[] = [];
    const totals = new Set<number>();
    for (let after: string | null = null; ;) {
      const d: any = await gql(client, `query($s: DateTime, $after: Cursor, $first: Int) { people(updatedSince: $s, first: $first, after: $after) {
        totalCount pageInfo { hasNextPage endCursor } edges { node { id updatedAt } } } }`, { s: since, after, first });
      for (const e of d.people.edges) {
        expect(e.node.updatedAt >= since).toBe(true);
        ids.push(e.node.id);
      }
      totals.add(d.people.totalCount);
      if (!d.people.pageInfo.hasNextPage) return { ids, totals: [...totals] };
      after = d.people.pageInfo.endCursor;
    }
  }

  const students = () => g.dataset.list('person').filter((p) => p.data.roles.includes('student') && g.dataset.get('demographics', p.key));

  /** Applies `change` to one student in a sync of its own; says, per client, whether updatedAt and updatedSince moved. */
  async function moves(key: string, change: () => void, clients = [LMS, AN, SEN]) {
    const who = await idsOf(key);
    const before = Object.fromEntries(await Promise.all(clients.map(async (c) => [c, await updatedAt(c, who.as(c))] as const)));
    await pause();
    const since = new Date().toISOString();
    await pause();
    change();
    await g.resync();
    const out: Record<string, { updatedAt: boolean; updatedSince: boolean }> = {};
    for (const c of clients) {
      const now = await updatedAt(c, who.as(c));
      const listed = (await changedSince(c, since)).ids;
      out[c] = { updatedAt: now !== before[c], updatedSince: listed.includes(who.as(c)) };
      // Nothing else changed in this sync, whoever looks.
      expect(listed.filter((x) => x !== who.as(c))).toEqual([]);
      // Both or neither: the time a list is filtered by is the time it shows.
      expect(out[c]!.updatedAt).toBe(out[c]!.updatedSince);
    }
    return out;
  }

  const yes = { updatedAt: true, updatedSince: true };
  const no = { updatedAt: false, updatedSince: false };

  it('an email change moves them for the purposes that receive email, not for analytics', async () => {
    const s = students()[0]!;
    expect(await moves(s.key, () => g.dataset.upsert('person', s.key, { email: 'renamed.address@students.rostergate-demo.example' }))).toEqual({
      [LMS]: yes, [AN]: no, [SEN]: yes,
    });
  });

  it('a grade within its band moves them for roster-sync only; a grade into another band for analytics too', async () => {
    const s = students()[1]!;
    const within = gradeBand(s.data.grades) === '3-5' ? ['04'] : ['07'];
    const other = within[0] === '04' ? ['11'] : ['03'];
    g.dataset.upsert('person', s.key, { grades: within[0] === '04' ? ['03'] : ['06'] });
    await g.resync();
    expect(await moves(s.key, () => g.dataset.upsert('person', s.key, { grades: within }), [LMS, AN])).toEqual({ [LMS]: yes, [AN]: no });
    expect(await moves(s.key, () => g.dataset.upsert('person', s.key, { grades: other }), [LMS, AN])).toEqual({ [LMS]: yes, [AN]: yes });
  });

  it('a special-category flag moves them only for the purpose that receives it', async () => {
    const s = students()[2]!;
    const iep = !g.dataset.get('demographics', s.key)!.data.iep;
    expect(await moves(s.key, () => g.dataset.upsert('demographics', s.key, { iep }))).toEqual({ [LMS]: no, [AN]: no, [SEN]: yes });
  });

  it('a demographics change a purpose sees moves its person, at the time its change feed shows', async () => {
    const s = students()[3]!;
    const who = await idsOf(s.key);
    const heads: Record<string, string> = { [LMS]: (await gql(LMS, `{ changesHead }`)).changesHead, [AN]: (await gql(AN, `{ changesHead }`)).changesHead };
    g.dataset.upsert('demographics', s.key, { birthDate: '2001-05-05' });
    await g.resync();
    for (const c of [LMS, AN]) {
      const feed = await gql(c, `query($after: Cursor) { changes(after: $after) { edges { node { op type at record { ... on Person { id updatedAt } } } } } }`, { after: heads[c] });
      const events = feed.changes.edges.map((e: any) => e.node);
      expect(events).toHaveLength(1);
      expect(events[0]).toMatchObject({ op: 'UPDATED', type: 'PERSON', record: { id: who.as(c) } });
      expect(events[0].record.updatedAt).toBe(events[0].at);
      expect(await updatedAt(c, who.as(c))).toBe(events[0].at);
    }
  });

  it('created and deleted records count for every purpose that sees their type', async () => {
    await pause();
    const since = new Date().toISOString();
    await pause();
    g.dataset.upsert('person', 'stu-arrives', { givenName: 'Amara', familyName: 'Nwosu', roles: ['student'], sisId: 'S990101', orgKeys: ['sch-01'], grades: ['04'] });
    g.dataset.upsert('class', 'cls-arrives', { title: 'New elective', schoolKey: 'sch-01' });
    const leaver = students()[5]!;
    const leaverIds = await idsOf(leaver.key);
    for (const e of g.dataset.list('enrollment').filter((x) => x.data.personKey === leaver.key)) g.dataset.remove('enrollment', e.key);
    for (const gd of g.dataset.list('guardianship').filter((x) => x.data.studentKey === leaver.key)) g.dataset.remove('guardianship', gd.key);
    g.dataset.remove('demographics', leaver.key);
    g.dataset.remove('person', leaver.key);
    await g.resync();
    const arrived = await idsOf('stu-arrives');
    for (const c of [LMS, AN, SEN]) {
      expect((await changedSince(c, since)).ids, c).toEqual([arrived.as(c)]);
      // Analytics has no class titles (free text): it sees the one new class by its id.
      const classes = await gql(c, `query($s: DateTime) { classes(updatedSince: $s) { totalCount edges { node { ${c === AN ? 'id' : 'title'} updatedAt } } } }`, { s: since });
      if (c === AN) expect(classes.classes.totalCount).toBe(1);
      else expect(classes.classes.edges.map((e: any) => e.node.title)).toEqual(['New elective']);
      // The deletion is in the feed; the record is in no list any more.
      expect((await gql(c, `{ people(first: 1000) { edges { node { id } } } }`)).people.edges.map((e: any) => e.node.id)).not.toContain(leaverIds.as(c));
    }
  });

  it('nested lists filter by the purpose’s time too', async () => {
    const s = students()[6]!;
    await pause();
    const since = new Date().toISOString();
    await pause();
    g.dataset.upsert('person', s.key, { email: 'nested.case@students.rostergate-demo.example' });
    await g.resync();
    const who = await idsOf(s.key);
    const q = `query($s: DateTime) { schools { edges { node { people(updatedSince: $s) { totalCount edges { node { id updatedAt } } } } } } }`;
    const people = async (c: string) => (await gql(c, q, { s: since })).schools.edges.flatMap((e: any) => e.node.people.edges.map((x: any) => x.node.id));
    expect(await people(LMS)).toEqual([who.id]);
    // Analytics may not join a person to a school from either side, so it has no school's people to filter.
    const refused = await g.gql(AN, q, { s: since });
    expect(refused.body.errors?.[0]?.message).toMatch(/the purpose "analytics" withholds Organization\.people, since it would tell a person's Person\.organizations/);
  });

  it('paging people(updatedSince:) sees each visibly changed person once, and only those, while syncs land between pages', async () => {
    const pool = students().slice(10, 24);
    const visible = pool.slice(0, 8);
    const invisible = pool.slice(8);
    await pause();
    const since = new Date().toISOString();
    await pause();
    for (const s of visible) g.dataset.upsert('person', s.key, { grades: gradeBand(s.data.grades) === '9-12' ? ['01'] : ['11'] });
    for (const s of invisible) g.dataset.upsert('person', s.key, { email: `${s.key}.paged@students.rostergate-demo.example` });
    await g.resync();
    const expectAn = new Set(await Promise.all(visible.map(async (s) => (await idsOf(s.key)).as(AN))));
    const expectLms = new Set(await Promise.all(pool.map(async (s) => (await idsOf(s.key)).id)));

    // Analytics pages three at a time; between its pages, syncs change emails (which it does not see) of people on both sides of its cursor.
    const seen: string[] = [];
    const totals = new Set<number>();
    let turn = 0;
    for (let after: string | null = null; ;) {
      const d: any = await gql(AN, `query($s: DateTime, $after: Cursor) { people(updatedSince: $s, first: 3, after: $after) {
        totalCount pageInfo { hasNextPage endCursor } edges { node { id } } } }`, { s: since, after });
      seen.push(...d.people.edges.map((e: any) => e.node.id));
      totals.add(d.people.totalCount);
      if (!d.people.pageInfo.hasNextPage) break;
      after = d.people.pageInfo.endCursor;
      const s = visible[turn++ % visible.length]!;
      g.dataset.upsert('person', s.key, { email: `${s.key}.turn${turn}@students.rostergate-demo.example` });
      await g.resync();
    }
    expect(new Set(seen).size).toBe(seen.length);
    expect(new Set(seen)).toEqual(expectAn);
    expect([...totals]).toEqual([expectAn.size]);

    const lms = await changedSince(LMS, since, 4);
    expect(new Set(lms.ids).size).toBe(lms.ids.length);
    expect(new Set(lms.ids)).toEqual(expectLms);
    expect(lms.totals).toEqual([expectLms.size]);
  });

  it('updatedAt costs one batched store read per level of the query, however many records carry it', async () => {
    const q = (n: number, more: string) => `{ enrollments(first: ${n}) { edges { node { role ${more} class { subjects ${more} } person { gradeBand ${more} } } } } }`;
    const reads = async (query: string) => {
      const before = g.store.readCount;
      const d = await gql(AN, query);
      return { reads: g.store.readCount - before, records: d.enrollments.edges.length };
    };
    for (const n of [1, 40]) {
      const plain = await reads(q(n, ''));
      const timed = await reads(q(n, 'updatedAt'));
      expect(timed.records).toBe(n);
      // Enrollments, then their classes and people together: two levels, two reads.
      expect(timed.reads - plain.reads).toBe(2);
    }
  });

  it('a record without a time for the purpose fails closed rather than show its own, until the backfill', async () => {
    const who = await idsOf(students()[8]!.key);
    const q = `query($id: Pseudonym!) { person(id: $id) { gradeBand updatedAt } }`;
    const before = await updatedAt(AN, who.as(AN));
    await g.store.transaction((tx) => tx.dropView('analytics'));
    const r = await g.gql(AN, q, { id: who.as(AN) });
    expect(r.body.errors?.[0]?.extensions?.code).toBe('NOT_MATERIALISED');
    // No time at all, not the record's own: the non-null field takes its person with it.
    expect(r.body.data?.person ?? null).toBeNull();
    expect((await g.privacy.viewTimes.backfill(g.store)).find((v) => v.view === 'analytics')?.rebuilt).toBe(true);
    expect(await updatedAt(AN, who.as(AN))).toBe(before);
  });

  it('open access keeps each record’s own time', async () => {
    const s = students()[7]!;
    const who = await idsOf(s.key);
    const schema = buildUnifiedSchema();
    const own = async () => {
      const r = await execute({ schema, document: parse(`query($id: ID!) { node(id: $id) { ... on Person { updatedAt } } }`), variableValues: { id: who.id }, contextValue: createContext(g.store, new Map()), fieldResolver });
      expect(r.errors).toBeUndefined();
      // Executed in process, the DateTime scalar gives a Date.
      return ((r.data as any).node.updatedAt as Date).toISOString();
    };
    const before = await own();
    const an = await updatedAt(AN, who.as(AN));
    await pause();
    g.dataset.upsert('person', s.key, { email: 'open.access@students.rostergate-demo.example' });
    await g.resync();
    const after = await own();
    expect(after > before).toBe(true);
    expect((await g.store.getEntities([who.id]))[0]!.updatedAt).toBe(after);
    expect(await updatedAt(AN, who.as(AN))).toBe(an);
  });
});
