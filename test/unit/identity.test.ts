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
