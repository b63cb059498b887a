import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { RosterDataset } from '../../src/demo/dataset.ts';
import { directConnector } from '../../src/demo/direct-connector.ts';
import { openTestStore, storeKinds } from '../support/stores.ts';
import type { Store } from '../../src/store/types.ts';
import { syncSource } from '../../src/sync/runner.ts';
import type { Connector } from '../../connectors/types.ts';
import type { PersonData, SourceRecord } from '../../src/model/records.ts';

let stores: Store[] = [];
let kind: 'sqlite' | 'postgres' = 'sqlite';
afterEach(async () => {
  for (const s of stores) await s.close();
  stores = [];
});
const open = async () => {
  const s = await openTestStore(kind);
  stores.push(s);
  return s;
};

/** A second source delivering some of the same people, under its own keys and with a transform. */
function otherSource(id: string, people: { key: string; data: PersonData }[], edit: (p: PersonData, i: number) => PersonData | undefined): Connector {
  return {
    sourceId: id, type: 'google-classroom',
    async *read() {
      const records: SourceRecord[] = [];
      people.forEach((p, i) => {
        const d = edit({ ...p.data, orgKeys: [], primaryOrgKey: undefined }, i);
        if (d) records.push({ type: 'person', key: `g-${p.key}`, data: d });
      });
      yield { resource: 'userProfiles', records, state: { done: true }, completes: ['person'] };
    },
  };
}

describe.each(storeKinds())('identity resolution across sources on %s', (k) => {
  beforeEach(() => {
    kind = k;
  });
  const precedence = ['sis', 'google'];

  it('links the same person from two sources to one gateway id, by SIS id or by email', async () => {
    const ds = RosterDataset.generate({ students: 30, teachers: 3, classes: 3, schools: 1 });
    const store = await open();
    await syncSource(store, directConnector('sis', ds), { precedence });
    const people = ds.list('person').slice(0, 10);
    // Half arrive with SIS id, half only with an email in different case.
    const s = await syncSource(
      store,
      otherSource('google', people, (p, i) => (i % 2 ? { ...p, sisId: undefined, email: p.email?.toUpperCase() } : { ...p, email: undefined })),
      { precedence },
    );
    expect(s.counters.linked).toBe(10);
    expect(s.counters.conflicts).toBe(0);
    expect((await store.counts()).person).toBe(ds.list('person').length);
    const page = await store.list({ type: 'person', first: 1000 });
    const srcs = await store.sourcesOf(page.rows.map((r) => r.id));
    const multi = [...srcs.values()].filter((x) => x.length === 2);
    expect(multi).toHaveLength(10);
    expect(multi[0]!.map((x) => x.source).sort()).toEqual(['google', 'sis']);
  });

  it('reports conflicts and ambiguous matches instead of merging silently', async () => {
    const ds = RosterDataset.generate({ students: 30, teachers: 3, classes: 3, schools: 1 });
    const store = await open();
    await syncSource(store, directConnector('sis', ds), { precedence });
    const [a, b] = ds.list('person').filter((p) => p.data.roles.includes('student'));
    // SIS id of one person with the email of another: the rules disagree.
    const s = await syncSource(store, otherSource('google', [a!], (p) => ({ ...p, email: b!.data.email })), { precedence });
    expect(s.counters.linked).toBe(0);
    expect(s.counters.conflicts).toBe(1);
    const [c] = await store.conflicts();
    expect(c!.reason).toMatch(/sisId and email point at different people/);
    expect(c!.candidates).toHaveLength(2);
    expect(c!.source).toBe('google');
    expect((await store.counts()).person).toBe(ds.list('person').length + 1);
  });

  it('an email matching two people is ambiguous: reported, and the record kept apart', async () => {
    const ds = RosterDataset.generate({ students: 30, teachers: 3, classes: 3, schools: 1 });
    const [a, b] = ds.list('person').filter((p) => p.data.roles.includes('student'));
    // Siblings entered with the family's address.
    ds.upsert('person', b!.key, { email: a!.data.email });
    const store = await open();
    await syncSource(store, directConnector('sis', ds), { precedence });
    const s = await syncSource(store, otherSource('google', [a!], (p) => ({ ...p, sisId: undefined })), { precedence });
    expect(s.counters).toMatchObject({ linked: 0, conflicts: 1 });
    // Within the SIS the second sibling is already a conflict (same source); Classroom's record is ambiguous.
    const conflicts = await store.conflicts();
    expect(conflicts.map((c) => [c.source, c.reason])).toEqual([
      ['sis', 'email matches a different record of the same source'],
      ['google', 'ambiguous email: matches 2 people'],
    ]);
    expect(conflicts[1]).toMatchObject({ type: 'person', key: `g-${a!.key}` });
    expect(conflicts[1]!.candidates).toHaveLength(2);
    expect((await store.counts()).person).toBe(ds.list('person').length + 1);
  });

  it('a second record of one source matching the same person, or a student matching a teacher by SIS id, is a conflict', async () => {
    const ds = RosterDataset.generate({ students: 30, teachers: 3, classes: 3, schools: 1 });
    const student = ds.list('person').find((p) => p.data.roles.includes('student'))!;
    const teacher = ds.list('person').find((p) => p.data.roles.includes('teacher'))!;
    const source = (records: PersonData[]): Connector => ({
      sourceId: 'google', type: 'google-classroom',
      async *read() {
        yield { resource: 'userProfiles', state: { done: true }, records: records.map((data, i) => ({ type: 'person', key: `g-${i + 1}`, data })) };
      },
    });
    const asStudent = { ...student.data, email: undefined, orgKeys: [], primaryOrgKey: undefined };
    // An SIS that numbers staff and students separately: this teacher's id is the student's.
    const asTeacher = { ...teacher.data, email: undefined, orgKeys: [], primaryOrgKey: undefined, sisId: student.data.sisId };
    for (const [records, linked, reason] of [
      [[asStudent, asStudent], 1, 'g-2: sisId matches a different record of the same source'],
      [[asTeacher], 0, 'g-1: sisId matches a student but this record is not a student'],
    ] as const) {
      const store = await open();
      await syncSource(store, directConnector('sis', ds), { precedence });
      const s = await syncSource(store, source([...records]), { precedence });
      expect(s.counters).toMatchObject({ linked, conflicts: 1 });
      expect((await store.conflicts()).map((c) => `${c.key}: ${c.reason}`)).toEqual([reason]);
    }
  });

  it('match rules are configurable: with only sisId, an email alone links nobody; with only email, an SIS id alone links nobody', async () => {
    const ds = RosterDataset.generate({ students: 20, teachers: 2, classes: 2, schools: 1 });
    const people = ds.list('person').slice(0, 6);
    for (const [rules, edit] of [
      [['sisId'], (p: PersonData) => ({ ...p, sisId: undefined })],
      [['email'], (p: PersonData) => ({ ...p, email: undefined })],
    ] as const) {
      const store = await open();
      await syncSource(store, directConnector('sis', ds), { precedence, matchRules: [...rules] });
      const s = await syncSource(store, otherSource('google', people, edit), { precedence, matchRules: [...rules] });
      expect(s.counters, rules.join()).toMatchObject({ linked: 0, conflicts: 0, created: people.length });
      const both = await syncSource(store, otherSource('google2', people, (p) => p), { precedence, matchRules: [...rules] });
      expect(both.counters.linked, rules.join()).toBe(people.length);
    }
  });

  it('merges field by field in source precedence, and keeps the person while any source has it', async () => {
    const ds = RosterDataset.generate({ students: 10, teachers: 2, classes: 2, schools: 1 });
    const store = await open();
    await syncSource(store, directConnector('sis', ds), { precedence });
    const p = ds.list('person').find((x) => x.data.roles.includes('student'))!;
    await syncSource(store, otherSource('google', [p], (d) => ({ ...d, givenName: 'Other', photoUrl: 'https://photos.example/x.png' })), { precedence });
    const row = (await store.list({ type: 'person', first: 1000 })).rows.find((r) => (r.data as PersonData).sisId === p.data.sisId)!;
    expect((row.data as PersonData).givenName).toBe(p.data.givenName);
    expect((row.data as PersonData).photoUrl).toBe('https://photos.example/x.png');
    // The lower-precedence source drops the person: the entity stays, without its contribution.
    await syncSource(store, otherSource('google', [p], () => undefined), { precedence, allowMassDelete: true });
    const after = (await store.getEntities([row.id]))[0]!;
    expect((after.data as PersonData).photoUrl).toBeUndefined();
    expect((after.data as PersonData).givenName).toBe(p.data.givenName);
  });
});
