/**
 * An LMS keeping a replica by the change feed alone ends with exactly the roster the gateway
 * serves it, after a full and an incremental sync; analytics sees only changes to what it
 * receives; stale cursors get a clear error.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { privateGateway, type PrivateGateway } from '../support/privacy.ts';

import { storeKinds } from '../support/stores.ts';
import { directConnector } from '../../src/demo/direct-connector.ts';
import { syncSource } from '../../src/sync/runner.ts';
import type { Connector } from '../../connectors/types.ts';

let g: PrivateGateway;

const LMS_FIELDS = {
  Person: 'key: id givenName familyName email roles demographics { birthDate postalCode }',
  Class: 'key: id title',
  Enrollment: 'key: id role class { id } person { id }',
  Organization: 'key: id name',
  Course: 'key: id title',
  AcademicSession: 'key: id title',
  Guardianship: 'key: id relation',
};
/** The analytics purpose: pseudonyms, generalised quasi-identifiers, no ids on links. */
const AN_FIELDS = {
  Person: 'pkey: id gradeBand roles demographics { birthYear ageBand }',
  // Titles are free text (DIRECT or QUASI): analytics has subjects and session types instead.
  Class: 'key: id subjects',
  Enrollment: 'role beginDate class { id } person { id }',
  Organization: 'key: id name',
  Course: 'key: id subjects',
  AcademicSession: 'key: id type startDate',
  Guardianship: 'relation guardian { id } student { id }',
};
const ROOTS = { Person: 'people', Class: 'classes', Enrollment: 'enrollments', Organization: 'organizations', Course: 'courses', AcademicSession: 'academicSessions', Guardianship: 'guardianships' };
const recordOf = (f: Record<string, string>) => `record { __typename ${Object.entries(f).map(([t, x]) => `... on ${t} { ${x} }`).join(' ')} }`;
const listsOf = (f: Record<string, string>) => Object.entries(f).map(([t, x]) => [ROOTS[t as keyof typeof ROOTS], x] as [string, string]);
const RECORD = recordOf(LMS_FIELDS);
const LMS_LISTS = listsOf(LMS_FIELDS);
const AN_RECORD = recordOf(AN_FIELDS);
const AN_LISTS = listsOf(AN_FIELDS);

type Replica = Map<string, any>;

/**
 * How each view keys its records: by id where the purpose has one (aliased per member: a Person
 * id is a Pseudonym in analytics); enrollments and guardianships have no id in the analytics view,
 * so they are keyed by what they link.
 */
const keyOf = (r: any) =>
  r.__typename === 'Enrollment' && r.key === undefined ? `Enrollment:${r.class?.id}|${r.person?.id}|${r.role}`
    : r.__typename === 'Guardianship' && r.key === undefined ? `Guardianship:${r.guardian?.id}|${r.student?.id}`
      : `${r.__typename}:${r.key ?? r.pkey}`;

async function follow(client: string, replica: Replica, after: string | null, record = RECORD) {
  let cursor = after;
  let events = 0;
  for (;;) {
    const r = await g.gql(client, `query($after: Cursor) { changes(after: $after, first: 200) { pageInfo { hasNextPage endCursor } edges { node { op type fields ${record} } } } }`, { after: cursor });
    expect(r.body.errors, JSON.stringify(r.body.errors)).toBeUndefined();
    const c = r.body.data.changes;
    for (const { node } of c.edges) {
      events++;
      // Null: a later change in the feed deleted the record; its DELETED event follows.
      if (node.record === null) {
        expect(node.op).not.toBe('DELETED');
        continue;
      }
      if (node.op === 'DELETED') replica.delete(keyOf(node.record));
      else replica.set(keyOf(node.record), node.record);
    }
    cursor = c.pageInfo.endCursor;
    if (!c.pageInfo.hasNextPage) return { cursor, events };
  }
}

async function fullRead(client: string, lists = LMS_LISTS) {
  const out: Replica = new Map();
  for (const [root, fields] of lists) {
    let after: string | null = null;
    for (;;) {
      const r: any = await g.gql(client, `query($after: Cursor) { ${root}(first: 500, after: $after) { pageInfo { hasNextPage endCursor } edges { node { __typename ${fields} } } } }`, { after });
      expect(r.body.errors, JSON.stringify(r.body.errors)).toBeUndefined();
      for (const e of r.body.data[root].edges) out.set(keyOf(e.node), e.node);
      if (!r.body.data[root].pageInfo.hasNextPage) break;
      after = r.body.data[root].pageInfo.endCursor;
    }
  }
  return out;
}

describe.each(storeKinds())('on %s', (kind) => {
beforeAll(async () => {
  g = await privateGateway({ students: 60, teachers: 5, classes: 6, schools: 2 }, undefined, { store: kind });
});
afterAll(() => g?.close());

describe('change feed', () => {
  let lmsCursor: string | null = null;
  const lms: Replica = new Map();
  let anCursor: string | null = null;
  const an: Replica = new Map();

  it('applying the feed after a full sync gives exactly the served roster, for each purpose', async () => {
    ({ cursor: lmsCursor } = await follow('lms-demo', lms, null));
    expect(lms).toEqual(await fullRead('lms-demo'));
    ({ cursor: anCursor } = await follow('analytics-demo', an, null, AN_RECORD));
    expect(an.size).toBeGreaterThan(100);
    expect(an).toEqual(await fullRead('analytics-demo', AN_LISTS));
  });

  it('after an incremental sync (rename, new and deleted people, demographics, deleted class) each replica still matches', async () => {
    const ds = g.dataset;
    const students = ds.list('person').filter((p) => p.data.roles.includes('student'));
    ds.upsert('person', students[0]!.key, { givenName: 'Renée' });
    const cls = ds.list('class')[1]!;
    ds.remove('class', cls.key);
    for (const e of ds.list('enrollment').filter((x) => x.data.classKey === cls.key)) ds.remove('enrollment', e.key);
    ds.upsert('person', 'stu-new-1', { givenName: 'Ayşe', familyName: 'Yılmaz', roles: ['student'], sisId: 'S999001', orgKeys: ['sch-01'], grades: ['03'] });
    ds.upsert('enrollment', 'new-enr', { classKey: ds.list('class')[0]!.key, personKey: 'stu-new-1', role: 'student' });
    // A student leaves: the source deletes the person, their demographics and enrollments.
    const leaver = students[2]!;
    for (const e of ds.list('enrollment').filter((x) => x.data.personKey === leaver.key)) ds.remove('enrollment', e.key);
    for (const gd of ds.list('guardianship').filter((x) => x.data.studentKey === leaver.key)) ds.remove('guardianship', gd.key);
    if (ds.get('demographics', leaver.key)) ds.remove('demographics', leaver.key);
    ds.remove('person', leaver.key);
    // Birth date feeds analytics' birthYear and ageBand; postal code feeds nothing it receives.
    const d = ds.list('demographics').find((x) => x.key === students[3]!.key)!;
    ds.upsert('demographics', d.key, { birthDate: '2011-02-03', postalCode: '99999' });
    await g.resync();
    const r = await follow('lms-demo', lms, lmsCursor);
    expect(r.events).toBeGreaterThan(5);
    expect(lms).toEqual(await fullRead('lms-demo'));
    lmsCursor = r.cursor;
    const a = await follow('analytics-demo', an, anCursor, AN_RECORD);
    expect(an).toEqual(await fullRead('analytics-demo', AN_LISTS));
    anCursor = a.cursor;
  });

  it('a change to a field a purpose does not receive is not an event for it', async () => {
    const ds = g.dataset;
    const p = ds.list('person').find((x) => x.data.roles.includes('student') && x.key !== 'stu-new-1')!;
    ds.upsert('person', p.key, { email: 'changed.address@students.rostergate-demo.example' });
    const d = ds.list('demographics').find((x) => x.key !== p.key)!;
    ds.upsert('demographics', d.key, { postalCode: '12345' });
    await g.resync();
    const l = await g.gql('lms-demo', `query($after: Cursor) { changes(after: $after) { edges { node { op type fields } } } }`, { after: lmsCursor });
    expect(l.body.data.changes.edges.map((e: any) => e.node)).toEqual([
      { op: 'UPDATED', type: 'PERSON', fields: ['email'] },
      // The generated codes are 999xx: 12345 is another area, so postalArea changes with it.
      { op: 'UPDATED', type: 'PERSON', fields: ['demographics.postalArea', 'demographics.postalCode'] },
    ]);
    // Neither the email nor the postal code is anything analytics receives: no event at all.
    const a = await g.gql('analytics-demo', `query($after: Cursor) { changes(after: $after, first: 1000) { edges { node { op type fields } } } }`, { after: anCursor });
    expect(a.body.errors).toBeUndefined();
    expect(a.body.data.changes.edges).toEqual([]);
  });

  it('tombstones carry only what the purpose sees; deleted people keep their pseudonym', async () => {
    const ds = g.dataset;
    const head = (await g.gql('analytics-demo', `{ changesHead }`)).body.data.changesHead;
    const lmsHead = (await g.gql('lms-demo', `{ changesHead }`)).body.data.changesHead;
    const victim = ds.list('person').find((x) => x.key === 'stu-new-1')!;
    const q = `{ people(first: 1000) { edges { node { id gradeBand } } } }`;
    const ids = new Set((await g.gql('analytics-demo', q)).body.data.people.edges.map((e: any) => e.node.id));
    ds.remove('person', victim.key);
    await g.resync();
    const after = new Set((await g.gql('analytics-demo', q)).body.data.people.edges.map((e: any) => e.node.id));
    const gone = [...ids].filter((x) => !after.has(x));
    expect(gone).toHaveLength(1);
    const r = await g.gql('analytics-demo', `query($after: Cursor) { changes(after: $after, types: [PERSON]) { edges { node { op record { ... on Person { id gradeBand } } } } } }`, { after: head });
    const del = r.body.data.changes.edges.map((e: any) => e.node).find((n: any) => n.op === 'DELETED');
    expect(del.record).toEqual({ id: gone[0], gradeBand: '3-5' });
    const lms = await g.gql('lms-demo', `query($after: Cursor) { changes(after: $after, types: [PERSON]) { edges { node { op record { ... on Person { givenName } } } } } }`, { after: lmsHead });
    expect(lms.body.data.changes.edges.some((e: any) => e.node.op === 'DELETED' && e.node.record.givenName === 'Ayşe')).toBe(true);
  });

  it('cursors are opaque and bound to the feed and the purpose: anything else is refused, not read from the start', async () => {
    const feed = `query($after: Cursor) { changes(after: $after) { edges { node { op } } } }`;
    const people = (await g.gql('lms-demo', `{ people(first: 1) { pageInfo { endCursor } } }`)).body.data.people.pageInfo.endCursor;
    const asList = await g.gql('lms-demo', feed, { after: people });
    expect(asList.body.errors![0]).toMatchObject({ message: 'invalid change cursor: pass an endCursor from changes or changesHead', extensions: { code: 'BAD_USER_INPUT' } });
    // The cursor names no sequence number a client could edit.
    expect(Buffer.from(lmsCursor!, 'base64url').toString('latin1')).not.toContain('c1:#');
    // Another purpose's cursor, a tampered one, a made-up one.
    const tampered = `${lmsCursor!.slice(0, -2)}${lmsCursor!.endsWith('AA') ? 'BB' : 'AA'}`;
    for (const [client, after] of [['lms-demo', anCursor], ['lms-demo', tampered], ['lms-demo', Buffer.from('c1:#0').toString('base64url')]] as const) {
      const r = await g.gql(client, feed, { after });
      expect(r.body.errors![0].extensions.code, String(after)).toBe('BAD_USER_INPUT');
      expect(r.body.data?.changes ?? null).toBeNull();
    }
  });

  it('a cursor older than the retained window is a clear error telling the client to re-read', async () => {
    const early = (await g.gql('lms-demo', `{ changes(first: 1) { pageInfo { endCursor } } }`)).body.data.changes.pageInfo.endCursor;
    await g.store.purgeChanges('2999-01-01T00:00:00Z');
    const r = await g.gql('lms-demo', `query($after: Cursor) { changes(after: $after) { edges { node { op } } } }`, { after: early });
    expect(r.body.errors![0].extensions.code).toBe('CHANGES_CURSOR_EXPIRED');
    expect(r.body.errors![0].message).toMatch(/older than the retained change window.*read everything again, starting from changesHead/);
    // The re-read starts at changesHead, which holds even with every change purged (it was #0 then,
    // itself older than the window).
    const head = (await g.gql('lms-demo', `{ changesHead }`)).body.data.changesHead;
    expect((await g.gql('lms-demo', `query($after: Cursor) { changes(after: $after) { edges { node { op } } } }`, { after: head })).body).toEqual({ data: { changes: { edges: [] } } });
  });

  it('a cursor ahead of the log (a store restored from an older backup) is the same clear error, not a silent wait', async () => {
    // A smaller store under the same keys stands for the restored one: its log ends before the cursor.
    const restored = await privateGateway({ students: 10, teachers: 2, classes: 2, schools: 1 });
    try {
      const head = (await g.gql('lms-demo', `{ changesHead }`)).body.data.changesHead;
      expect(await restored.store.headSeq()).toBeLessThan(await g.store.headSeq());
      const r = await restored.gql('lms-demo', `query($after: Cursor) { changes(after: $after) { edges { node { op } } } }`, { after: head });
      expect(r.body.errors![0].extensions.code).toBe('CHANGES_CURSOR_EXPIRED');
      expect(r.body.errors![0].message).toMatch(/ahead of the change log .* read everything again, starting from changesHead/);
      // Its own head still reads (nothing new yet).
      const own = (await restored.gql('lms-demo', `{ changesHead }`)).body.data.changesHead;
      expect((await restored.gql('lms-demo', `query($after: Cursor) { changes(after: $after) { edges { node { op } } } }`, { after: own })).body).toEqual({ data: { changes: { edges: [] } } });
    } finally {
      await restored.close();
    }
  });
});

describe('relay pagination during a sync', () => {
  it('a client paging through people while records are added and removed sees no row twice and misses none that stayed', async () => {
    const q = `query($after: Cursor) { people(first: 25, after: $after) { pageInfo { hasNextPage endCursor } edges { node { id sisId } } } }`;
    const first = await g.gql('lms-demo', q, { after: null });
    const seen: string[] = first.body.data.people.edges.map((e: any) => e.node.id);
    const before = new Set((await g.store.list({ type: 'person', first: 10_000 })).rows.map((r) => r.id));
    // A sync lands between pages: new people, removed people.
    for (let i = 0; i < 15; i++) g.dataset.upsert('person', `stu-mid-${i}`, { givenName: 'Mid', familyName: `Sync${i}`, roles: ['student'], sisId: `S88800${i}` });
    for (const p of g.dataset.list('person').filter((x) => x.data.roles.includes('guardian')).slice(0, 5)) g.dataset.remove('person', p.key);
    await g.resync();
    const after = new Set((await g.store.list({ type: 'person', first: 10_000 })).rows.map((r) => r.id));
    let cursor = first.body.data.people.pageInfo.endCursor;
    for (;;) {
      const r = await g.gql('lms-demo', q, { after: cursor });
      seen.push(...r.body.data.people.edges.map((e: any) => e.node.id));
      if (!r.body.data.people.pageInfo.hasNextPage) break;
      cursor = r.body.data.people.pageInfo.endCursor;
    }
    expect(new Set(seen).size).toBe(seen.length);
    const stayed = [...before].filter((id) => after.has(id));
    const seenSet = new Set(seen);
    expect(stayed.filter((id) => !seenSet.has(id))).toEqual([]);
  });

  it('the same holds while the sync is running, page after page', async () => {
    const q = `query($after: Cursor) { people(first: 10, after: $after) { pageInfo { hasNextPage endCursor } edges { node { id } } } }`;
    const before = new Set((await g.store.list({ type: 'person', first: 10_000 })).rows.map((r) => r.id));
    for (let i = 0; i < 40; i++) g.dataset.upsert('person', `stu-run-${i}`, { givenName: 'Run', familyName: `During${i}`, roles: ['student'], sisId: `S77700${i}` });
    for (const p of g.dataset.list('person').filter((x) => x.data.roles.includes('student')).slice(0, 10)) g.dataset.remove('person', p.key);
    const seen: string[] = [];
    let pages = 0;
    // Pages of 20 with a pause between them, as a vendor connector waits on the network: the
    // gateway serves the reader's pages in between.
    const inner = directConnector('demo', g.dataset, { pageSize: 20 });
    const overNetwork: Connector = {
      ...inner,
      async *read(state) {
        for await (const page of inner.read(state)) {
          await new Promise((r) => setTimeout(r, 2));
          yield page;
        }
      },
    };
    let running = true;
    let pagesWhileRunning = 0;
    const ingest = await g.privacy.ingest(g.store);
    const sync = syncSource(g.store, overNetwork, { ...ingest, matchRules: g.config.identity.match }).finally(() => (running = false));
    let cursor: string | null = null;
    for (;;) {
      const r = await g.gql('lms-demo', q, { after: cursor });
      pages++;
      if (running) pagesWhileRunning++;
      seen.push(...r.body.data.people.edges.map((e: any) => e.node.id));
      if (!r.body.data.people.pageInfo.hasNextPage) break;
      cursor = r.body.data.people.pageInfo.endCursor;
    }
    expect((await sync).status).toBe('complete');
    const after = new Set((await g.store.list({ type: 'person', first: 10_000 })).rows.map((r) => r.id));
    expect(pages).toBeGreaterThan(5);
    expect(pagesWhileRunning).toBeGreaterThan(1);
    expect(new Set(seen).size).toBe(seen.length);
    const seenSet = new Set(seen);
    expect([...before].filter((id) => after.has(id) && !seenSet.has(id))).toEqual([]);
  });
});

});
