/**
 * Order leaks nothing: in a pseudonymising purpose, lists of people, enrollments and guardianships
 * (root and nested) and the extracts built on them come in pseudonym order, so two domains — or one
 * domain before and after `keys rotate` — list the same people in unrelated orders and pairing
 * rows by position links nobody. The tests map pseudonyms back to gateway ids with the gateway's
 * own key to measure that, page with small `first` to check every row comes exactly once, and check
 * cursors across a rotation are refused, never misread.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Writable } from 'node:stream';
import { DEMO_CLIENTS, DEMO_PURPOSES } from '../../src/demo/demo-policy.ts';
import { runExtract } from '../../src/extract/extract.ts';
import type { Dataset } from '../../src/extract/columns.ts';
import type { StoredData } from '../../src/store/types.ts';
import { privateGateway, type PrivateGateway } from '../support/privacy.ts';
import { storeKinds } from '../support/stores.ts';

const config = {
  purposes: {
    ...DEMO_PURPOSES,
    research: { ...DEMO_PURPOSES.analytics, pseudonymDomain: 'research' },
    // Granted people's schools, so it may list a school's people (analytics may not, from any side).
    schools: { ...DEMO_PURPOSES.analytics, pseudonymDomain: 'schools', fields: { ...DEMO_PURPOSES.analytics.fields, 'Person.organizations': 'allow' } },
  },
  clients: [...DEMO_CLIENTS, { id: 'research-demo', purpose: 'research' }, { id: 'schools-demo', purpose: 'schools' }],
};
/** A district of a few hundred students, their teachers and guardians: about a thousand people. */
const DISTRICT = { seed: 4242, students: 400, teachers: 20, classes: 30, schools: 2 };

/** Share of positions at which two orderings of the same items hold the same item. */
function samePositionShare(a: string[], b: string[]): number {
  expect([...a].sort()).toEqual([...b].sort());
  return a.filter((x, i) => b[i] === x).length / a.length;
}

/** Spearman's rank correlation of two orderings of the same distinct items. */
function rankCorrelation(a: string[], b: string[]): number {
  const rank = new Map(b.map((x, i) => [x, i]));
  const n = a.length;
  const d2 = a.reduce((s, x, i) => s + (i - rank.get(x)!) ** 2, 0);
  return 1 - (6 * d2) / (n * (n * n - 1));
}

const isSorted = (xs: string[]) => xs.every((x, i) => i === 0 || xs[i - 1]! < x);
const byKey = (a: string[], b: string[]) => {
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return a[i]! < b[i]! ? -1 : 1;
  return 0;
};

describe.each(storeKinds())('on %s', (kind) => {
  let g: PrivateGateway;
  /** Pseudonym (any domain, any version in use) → gateway id. */
  const gatewayId = new Map<string, string>();
  let people: string[];
  let enrollments: { id: string; data: StoredData['enrollment'] }[];

  const learn = async (domain: string) => {
    const version = (await g.store.domainVersion(domain))!;
    for (const id of people) gatewayId.set(g.privacy.keyring.pseudonym(domain, version, id), id);
  };

  /** Every page of a root list, `first` rows at a time, following endCursor. */
  async function pages(client: string, field: string, args: string, selection: string, first: number): Promise<any[]> {
    const out: any[] = [];
    let after: string | null = null;
    for (let n = 0; ; n++) {
      expect(n).toBeLessThan(5000);
      const r = await g.gql(client, `query($after: Cursor) { ${field}(first: ${first}, after: $after${args}) { pageInfo { hasNextPage endCursor } edges { node { ${selection} } } } }`, { after });
      expect(r.body.errors, JSON.stringify(r.body.errors)).toBeUndefined();
      const conn = r.body.data[field];
      out.push(...conn.edges.map((e: any) => e.node));
      if (!conn.pageInfo.hasNextPage) return out;
      after = conn.pageInfo.endCursor;
    }
  }

  beforeAll(async () => {
    g = await privateGateway(DISTRICT, undefined, { config, store: kind });
    people = [];
    for (let after: string | undefined; ; ) {
      const ids = await g.store.personIds(after, 1000);
      if (!ids.length) break;
      people.push(...ids);
      after = ids.at(-1);
    }
    await learn('analytics');
    await learn('research');
    const rows = [];
    for (let after: string | undefined; ; ) {
      const r = await g.store.list({ type: 'enrollment', first: 1000, afterId: after });
      rows.push(...r.rows);
      if (!r.hasNext) break;
      after = r.rows.at(-1)!.id;
    }
    enrollments = rows as typeof enrollments;
  }, 240_000);
  afterAll(() => g?.close());

  it('two domains list the same people in unrelated orders, each by its own pseudonyms, every person exactly once with small pages', async () => {
    const a = (await pages('analytics-demo', 'people', '', 'id', 37)).map((n) => n.id as string);
    const r = (await pages('research-demo', 'people', '', 'id', 41)).map((n) => n.id as string);
    expect(people.length).toBeGreaterThan(800);
    for (const list of [a, r]) {
      expect(list).toHaveLength(people.length);
      expect(new Set(list).size).toBe(list.length);
      expect(isSorted(list)).toBe(true);
    }
    const ga = a.map((p) => gatewayId.get(p)!);
    const gr = r.map((p) => gatewayId.get(p)!);
    expect([...ga].sort()).toEqual([...people].sort());
    // Independent orders: about one position in n pairs up by chance, the ranks do not correlate.
    expect(samePositionShare(ga, gr)).toBeLessThan(0.02);
    expect(Math.abs(rankCorrelation(ga, gr))).toBeLessThan(0.15);
    // A purpose without pseudonyms keeps the gateway-id order.
    const lms = (await pages('lms-demo', 'people', '', 'id', 500)).map((n) => n.id as string);
    expect(lms).toEqual([...people].sort());
  });

  it('role and updatedSince filters keep working in pseudonym order', async () => {
    const teachers = (await pages('analytics-demo', 'people', ', role: TEACHER', 'id roles', 7)).map((n) => n.id as string);
    expect(isSorted(teachers)).toBe(true);
    const expected = g.dataset.list('person').filter((p) => p.data.roles.includes('teacher')).length;
    expect(teachers).toHaveLength(expected);
    expect(new Set(teachers).size).toBe(expected);

    const since = new Date(Date.now() + 5).toISOString();
    await new Promise((res) => setTimeout(res, 20));
    for (let i = 0; i < 9; i++) g.dataset.upsert('person', `order-late-${i}`, { givenName: 'Late', familyName: `Arrival${i}`, roles: ['student'] });
    await g.resync();
    const added = (await g.store.personIds(undefined, 100_000)).filter((id) => !people.includes(id));
    expect(added).toHaveLength(9);
    people.push(...added);
    await learn('analytics');
    await learn('research');
    for (const client of ['analytics-demo', 'research-demo']) {
      const late = (await pages(client, 'people', `, updatedSince: "${since}"`, 'id', 2)).map((n) => n.id as string);
      expect(isSorted(late)).toBe(true);
      expect(late.map((p) => gatewayId.get(p)).sort()).toEqual([...added].sort());
    }
  });

  it('enrollments, root and nested, are ordered by their person\'s pseudonym, then class', async () => {
    const sel = 'person { id } class { id } role';
    const lists: Record<string, { person: string; class: string }[]> = {};
    for (const client of ['analytics-demo', 'research-demo']) {
      const rows = (await pages(client, 'enrollments', '', sel, 53)).map((n) => ({ person: n.person.id as string, class: n.class.id as string, role: n.role as string }));
      const keys = rows.map((x) => [x.person, x.class]);
      expect(keys.every((k, i) => i === 0 || byKey(keys[i - 1]!, k) <= 0)).toBe(true);
      // Every enrollment exactly once: the (person, class, role) multiset of the store.
      const got = rows.map((x) => `${gatewayId.get(x.person)} ${x.class} ${x.role.toLowerCase()}`).sort();
      expect(got).toEqual(enrollments.map((e) => `${e.data.personId} ${e.data.classId} ${e.data.role}`).sort());
      lists[client] = rows;
    }
    const ga = lists['analytics-demo']!.map((x) => `${gatewayId.get(x.person)} ${x.class}`);
    const gr = lists['research-demo']!.map((x) => `${gatewayId.get(x.person)} ${x.class}`);
    expect(samePositionShare(ga, gr)).toBeLessThan(0.03);

    // Class.enrollments: each class's roster in pseudonym order, paged 4 at a time, in both domains.
    const classes = [...new Set(enrollments.map((e) => e.data.classId))].slice(0, 12);
    let same = 0;
    let total = 0;
    for (const classId of classes) {
      const byDomain: string[][] = [];
      for (const client of ['analytics-demo', 'research-demo']) {
        const got: string[] = [];
        for (let after: string | null = null; ; ) {
          const r = await g.gql(client, `query($id: ID!, $after: Cursor) { node(id: $id) { ... on Class { enrollments(first: 4, after: $after) {
            pageInfo { hasNextPage endCursor } edges { node { person { id } } } } } } }`, { id: classId, after });
          expect(r.body.errors, JSON.stringify(r.body.errors)).toBeUndefined();
          const conn = r.body.data.node.enrollments;
          got.push(...conn.edges.map((e: any) => e.node.person.id as string));
          if (!conn.pageInfo.hasNextPage) break;
          after = conn.pageInfo.endCursor;
        }
        expect(isSorted(got)).toBe(true);
        const mapped = got.map((p) => gatewayId.get(p)!);
        expect(mapped.sort()).toEqual(enrollments.filter((e) => e.data.classId === classId).map((e) => e.data.personId).sort());
        byDomain.push(got.map((p) => gatewayId.get(p)!));
      }
      same += byDomain[0]!.filter((x, i) => byDomain[1]![i] === x).length;
      total += byDomain[0]!.length;
    }
    // Random orders of a class of k pair up about one person per class by chance: far below all.
    expect(same / total).toBeLessThan(0.2);

    // Person.enrollments: one person's rows, so in order of class (the tiebreak), paged 2 at a time.
    const version = (await g.store.domainVersion('analytics'))!;
    const busy = [...new Set(enrollments.map((e) => e.data.personId))].filter((id) => enrollments.filter((e) => e.data.personId === id).length > 3).slice(0, 5);
    expect(busy.length).toBeGreaterThan(0);
    for (const personId of busy) {
      const got: string[] = [];
      for (let after: string | null = null; ; ) {
        const r = await g.gql('analytics-demo', `query($id: Pseudonym!, $after: Cursor) { person(id: $id) { enrollments(first: 2, after: $after) {
          pageInfo { hasNextPage endCursor } edges { node { class { id } } } } } }`, { id: g.privacy.keyring.pseudonym('analytics', version, personId), after });
        expect(r.body.errors, JSON.stringify(r.body.errors)).toBeUndefined();
        const conn = r.body.data.person.enrollments;
        got.push(...conn.edges.map((e: any) => e.node.class.id as string));
        if (!conn.pageInfo.hasNextPage) break;
        after = conn.pageInfo.endCursor;
      }
      expect(got).toEqual(enrollments.filter((e) => e.data.personId === personId).map((e) => e.data.classId).sort());
    }
  });

  it('nested lists in pseudonym order still take a small, bounded number of store reads', async () => {
    const q = (n: number) => `{ classes(first: ${n}) { edges { node { enrollments(first: 5) { edges { node { role person { id gradeBand
      guardianships { student { id } guardian { id } } } } } } } } } }`;
    const reads = async (n: number) => {
      const before = g.store.readCount;
      const r = await g.gql('analytics-demo', q(n));
      expect(r.body.errors, JSON.stringify(r.body.errors)).toBeUndefined();
      return g.store.readCount - before;
    };
    // Batched per level through the loaders: about as many reads for 25 classes as for 3 (a few
    // fewer once the process's pseudonym cache holds the people), never one per class or person.
    const few = await reads(3);
    const many = await reads(25);
    expect(few).toBeLessThanOrEqual(15);
    expect(many).toBeLessThanOrEqual(few + 3);
  });

  it('people of an organisation and guardianships follow the pseudonym order too', async () => {
    const school = (await g.gql('schools-demo', `{ schools(first: 1) { edges { node { id } } } }`)).body.data.schools.edges[0].node.id as string;
    const orgPeople: string[] = [];
    for (let after: string | null = null; ; ) {
      const r = await g.gql('schools-demo', `query($id: ID!, $after: Cursor) { node(id: $id) { ... on Organization { people(first: 25, after: $after) {
        totalCount pageInfo { hasNextPage endCursor } edges { node { id } } } } } }`, { id: school, after });
      expect(r.body.errors, JSON.stringify(r.body.errors)).toBeUndefined();
      const conn = r.body.data.node.people;
      orgPeople.push(...conn.edges.map((e: any) => e.node.id as string));
      if (!conn.pageInfo.hasNextPage) {
        expect(conn.totalCount).toBe(orgPeople.length);
        break;
      }
      after = conn.pageInfo.endCursor;
    }
    expect(orgPeople.length).toBeGreaterThan(50);
    expect(isSorted(orgPeople)).toBe(true);
    expect(new Set(orgPeople).size).toBe(orgPeople.length);

    const sel = 'student { id } guardian { id }';
    const keysOf = (rows: any[]) => rows.map((n) => [n.student.id as string, n.guardian.id as string]);
    const root = keysOf(await pages('analytics-demo', 'guardianships', '', sel, 29));
    expect(root.length).toBe(g.dataset.list('guardianship').length);
    expect(root.every((k, i) => i === 0 || byKey(root[i - 1]!, k) <= 0)).toBe(true);
    const research = keysOf(await pages('research-demo', 'guardianships', '', sel, 500));
    const pair = (k: string[]) => `${gatewayId.get(k[0]!)} ${gatewayId.get(k[1]!)}`;
    expect(samePositionShare(root.map(pair), research.map(pair))).toBeLessThan(0.03);

    // Person.guardianships (a plain list): a guardian of several children lists them by the children's pseudonyms.
    const guardians = (await g.store.list({ type: 'guardianship', first: 1000 })).rows.map((r) => (r.data as { guardianId: string }).guardianId);
    const busy = guardians.filter((id, i) => guardians.indexOf(id) !== i);
    expect(busy.length).toBeGreaterThan(0);
    for (const id of busy.slice(0, 10)) {
      const p = g.privacy.keyring.pseudonym('analytics', (await g.store.domainVersion('analytics'))!, id);
      const r = await g.gql('analytics-demo', `query($id: Pseudonym!) { person(id: $id) { guardianships { student { id } guardian { id } } } }`, { id: p });
      expect(r.body.errors, JSON.stringify(r.body.errors)).toBeUndefined();
      const keys = keysOf(r.body.data.person.guardianships);
      expect(keys.length).toBeGreaterThan(1);
      expect(keys.every((k, i) => i === 0 || byKey(keys[i - 1]!, k) <= 0)).toBe(true);
    }
  });

  it('extracts follow the pseudonym order of their purpose', async () => {
    const extract = async (client: string, dataset: Dataset) => {
      const chunks: string[] = [];
      const out = new Writable({ write(c, _e, cb) { chunks.push(String(c)); cb(); } });
      await runExtract({ store: g.store, privacy: g.privacy, sourceTypes: new Map(), client, dataset, format: 'ndjson', out, pageSize: 100 });
      return chunks.join('').trim().split('\n').map((l) => JSON.parse(l) as Record<string, string>);
    };
    const a = (await extract('analytics-demo', 'people')).map((r) => r.id!);
    const r = (await extract('research-demo', 'people')).map((x) => x.id!);
    expect(a.length).toBeGreaterThan(100);
    expect(isSorted(a)).toBe(true);
    expect(isSorted(r)).toBe(true);
    // Rows suppressed for k-anonymity may differ by domain only in order, not in who: compare the common ones.
    const ga = a.map((p) => gatewayId.get(p)!);
    const gr = r.map((p) => gatewayId.get(p)!);
    const common = new Set(ga.filter((x) => gr.includes(x)));
    expect(samePositionShare(ga.filter((x) => common.has(x)), gr.filter((x) => common.has(x)))).toBeLessThan(0.03);
    const enr = (await extract('analytics-demo', 'enrollments')).map((x) => [x['person.id']!, x['class.id']!]);
    expect(enr.length).toBe(enrollments.length);
    expect(enr.every((k, i) => i === 0 || byKey(enr[i - 1]!, k) <= 0)).toBe(true);
  });

  it('keyset pages stay stable while a sync adds and removes people between them: no one twice, no one missed who stayed', async () => {
    const q = `query($after: Cursor) { people(first: 60, after: $after) { pageInfo { hasNextPage endCursor } edges { node { id } } } }`;
    const seen: string[] = [];
    const pseudonyms: string[] = [];
    let after: string | null = null;
    for (let i = 0; i < 4; i++) {
      const conn: any = (await g.gql('analytics-demo', q, { after })).body.data.people;
      pseudonyms.push(...conn.edges.map((e: any) => e.node.id));
      seen.push(...conn.edges.map((e: any) => gatewayId.get(e.node.id)!));
      after = conn.pageInfo.endCursor;
    }
    // Between pages a sync removes some students (some already listed, some not yet) and adds others.
    const students = g.dataset.list('person').filter((p) => p.data.roles.includes('student'));
    for (const p of [...students.slice(0, 3), ...students.slice(-3)]) g.dataset.remove('person', p.key);
    for (let i = 0; i < 6; i++) g.dataset.upsert('person', `order-mid-${i}`, { givenName: 'Mid', familyName: `Sync${i}`, roles: ['student'] });
    await g.resync();
    const now = await g.store.personIds(undefined, 100_000);
    const before = [...people];
    people.splice(0, people.length, ...now);
    await learn('analytics');
    for (let more = true; more; ) {
      const conn: any = (await g.gql('analytics-demo', q, { after })).body.data.people;
      pseudonyms.push(...conn.edges.map((e: any) => e.node.id));
      seen.push(...conn.edges.map((e: any) => gatewayId.get(e.node.id) ?? e.node.id));
      more = conn.pageInfo.hasNextPage;
      after = conn.pageInfo.endCursor;
    }
    // The pages after the sync go on from the cursor's place in the same pseudonym order.
    expect(isSorted(pseudonyms)).toBe(true);
    expect(new Set(seen).size).toBe(seen.length);
    const stayed = before.filter((id) => now.includes(id));
    expect(stayed.length).toBe(before.length - 6);
    for (const id of stayed) expect(seen).toContain(id);
  });

  it('a rotation reorders the domain\'s lists, and a cursor from before it is refused, not misread', async () => {
    const before = (await pages('analytics-demo', 'people', '', 'id', 500)).map((n) => gatewayId.get(n.id)!);
    const first = await g.gql('analytics-demo', `{ people(first: 10) { pageInfo { endCursor } } enrollments(first: 10) { pageInfo { endCursor } } }`);
    const old = first.body.data.people.pageInfo.endCursor as string;
    const table = new Map<string, string>();
    await g.privacy.pseudonymiser.rotate(g.store, 'analytics', (o, n) => table.set(o, n));
    await learn('analytics');
    const after = (await pages('analytics-demo', 'people', '', 'id', 500)).map((n) => n.id as string);
    expect(after.every((p) => p.startsWith('p2_'))).toBe(true);
    expect(isSorted(after)).toBe(true);
    const ga = after.map((p) => gatewayId.get(p)!);
    expect(samePositionShare(before, ga)).toBeLessThan(0.02);
    expect(Math.abs(rankCorrelation(before, ga))).toBeLessThan(0.15);
    // Only the re-keying table links the versions: through it, every old pseudonym finds its new one.
    expect(new Set([...table.values()].filter((p) => gatewayId.has(p)).map((p) => gatewayId.get(p)))).toEqual(new Set(before));

    const stale = await g.gql('analytics-demo', `query($after: Cursor) { people(first: 5, after: $after) { edges { node { id } } } }`, { after: old });
    expect(stale.body.errors?.[0]?.extensions?.code).toBe('CURSOR_EXPIRED');
    expect(stale.body.errors?.[0]?.message).toMatch(/issued under pseudonym key version 1.*now at version 2.*page again from the start/);
    const staleEnr = await g.gql('analytics-demo', `query($after: Cursor) { enrollments(first: 5, after: $after) { edges { node { role } } } }`, { after: first.body.data.enrollments.pageInfo.endCursor });
    expect(staleEnr.body.errors?.[0]?.extensions?.code).toBe('CURSOR_EXPIRED');

    // An extract whose pages straddle a rotation stops with that error rather than mixing two orders.
    const context = g.privacy.context;
    let calls = 0;
    g.privacy.context = async (...a) => {
      if (++calls === 2) await g.privacy.pseudonymiser.rotate(g.store, 'analytics');
      return context(...a);
    };
    try {
      const out = new Writable({ write(_c, _e, cb) { cb(); } });
      await expect(runExtract({ store: g.store, privacy: g.privacy, sourceTypes: new Map(), client: 'analytics-demo', dataset: 'enrollments', format: 'ndjson', out, pageSize: 100 }))
        .rejects.toThrow(/extract enrollments: this cursor was issued under pseudonym key version 2.*now at version 3/);
    } finally {
      g.privacy.context = context;
    }
  });

  it('refuses a cursor of another list or another order instead of paging from a wrong place', async () => {
    const q = (field: string) => `{ ${field}(first: 2) { pageInfo { endCursor } } }`;
    const classes = (await g.gql('analytics-demo', q('classes'))).body.data.classes.pageInfo.endCursor;
    const persons = (await g.gql('analytics-demo', q('people'))).body.data.people.pageInfo.endCursor;
    const tries: [string, string][] = [['people', classes], ['enrollments', persons], ['classes', persons]];
    for (const [field, after] of tries) {
      const r = await g.gql('analytics-demo', `query($after: Cursor) { ${field}(first: 2, after: $after) { edges { cursor } } }`, { after });
      expect(r.body.errors?.[0]?.extensions?.code, field).toBe('BAD_USER_INPUT');
      expect(r.body.errors?.[0]?.message).toMatch(/invalid cursor/);
    }
    // Another domain's cursor does not open here either (cursors are sealed per domain).
    const research = (await g.gql('research-demo', q('people'))).body.data.people.pageInfo.endCursor;
    const r = await g.gql('analytics-demo', `query($after: Cursor) { people(first: 2, after: $after) { edges { cursor } } }`, { after: research });
    expect(r.body.errors?.[0]?.extensions?.code).toBe('BAD_USER_INPUT');
  });
});
