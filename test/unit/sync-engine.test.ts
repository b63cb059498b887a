import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { RosterDataset } from '../../src/demo/dataset.ts';
import { directConnector } from '../../src/demo/direct-connector.ts';
import { openTestStore, storeKinds } from '../support/stores.ts';
import type { Store } from '../../src/store/types.ts';
import { syncSource } from '../../src/sync/runner.ts';
import type { Connector, Page } from '../../connectors/types.ts';
import { isRostergateError } from '../../src/errors.ts';

const small = () => RosterDataset.generate({ students: 60, teachers: 6, classes: 8, schools: 2 });
let stores: Store[] = [];
let kind: 'sqlite' | 'postgres' = 'sqlite';
const open = async () => {
  const s = await openTestStore(kind);
  stores.push(s);
  return s;
};
afterEach(async () => {
  for (const s of stores) await s.close();
  stores = [];
});

/** Wraps a connector so it dies after N pages, like a killed process. */
function killedAfter(c: Connector, n: number): Connector {
  return {
    ...c,
    async *read(state, opts) {
      let i = 0;
      for await (const p of c.read(state, opts)) {
        if (i++ === n) throw new Error('killed');
        yield p;
      }
    },
  };
}

describe.each(storeKinds())('sync engine on %s', (k) => {
  beforeEach(() => {
    kind = k;
  });
  it('lands the dataset in the store with resolved references and a change log', async () => {
    const ds = small();
    const store = await open();
    const s = await syncSource(store, directConnector('demo', ds, { pageSize: 50 }));
    expect(s.status).toBe('complete');
    const counts = await store.counts();
    expect(counts.person).toBe(ds.list('person').length);
    expect(counts.enrollment).toBe(ds.list('enrollment').length);
    expect(counts.demographics).toBe(ds.list('demographics').length);
    expect(s.unresolved).toBe(0);
    const changes = await store.changes({ afterSeq: 0, limit: 100_000 });
    expect(changes.filter((c) => c.op === 'created').length).toBe(Object.values(counts).reduce((a, b) => a + b, 0));
    // A created record's change names no fields (the feed shows none); demographics name theirs,
    // since their creation reaches the feed as an update of their person's fields.
    for (const c of changes) {
      if (c.type === 'demographics') expect(c.fields, c.entityId).toEqual(Object.keys((await store.getEntities([c.entityId]))[0]!.data).sort());
      else expect(c.fields, c.entityId).toEqual([]);
    }
  });

  it('a second identical run changes nothing', async () => {
    const ds = small();
    const store = await open();
    await syncSource(store, directConnector('demo', ds));
    const head = (await store.changes({ afterSeq: 0, limit: 1e6 })).length;
    const s2 = await syncSource(store, directConnector('demo', ds));
    expect(s2.counters.created + s2.counters.updated + s2.counters.deleted).toBe(0);
    expect((await store.changes({ afterSeq: 0, limit: 1e6 })).length).toBe(head);
  });

  it('a run killed mid-way resumes with the same run and ends with exactly the full result', async () => {
    const ds = small();
    const ref = await open();
    await syncSource(ref, directConnector('demo', ds, { pageSize: 20 }));
    const store = await open();
    await expect(syncSource(store, killedAfter(directConnector('demo', ds, { pageSize: 20 }), 7))).rejects.toThrow('killed');
    const st = await store.getSyncState('demo');
    expect(st?.runStatus).toBe('failed');
    const s = await syncSource(store, directConnector('demo', ds, { pageSize: 20 }));
    expect(s.mode).toBe('resumed');
    expect(s.runId).toBe(st!.runId);
    expect(await store.counts()).toEqual(await ref.counts());
  });

  it('records that disappear from a full listing become tombstones, with dependents', async () => {
    const ds = small();
    const store = await open();
    await syncSource(store, directConnector('demo', ds));
    const cls = ds.list('class')[0]!;
    const enrolled = ds.list('enrollment').filter((e) => e.data.classKey === cls.key).length;
    ds.remove('class', cls.key);
    const head = (await store.changes({ afterSeq: 0, limit: 1e6 })).at(-1)!.seq;
    const s = await syncSource(store, directConnector('demo', ds), { allowMassDelete: false });
    expect(s.status).toBe('complete');
    const tomb = await store.changes({ afterSeq: head, limit: 1e6 });
    expect(tomb.filter((c) => c.op === 'deleted' && c.type === 'class')).toHaveLength(1);
    expect(tomb.filter((c) => c.op === 'deleted' && c.type === 'enrollment')).toHaveLength(enrolled);
    expect((tomb.find((c) => c.type === 'class')!.before as { title: string }).title).toBe(cls.data.title);
  });

  it('the mass-deletion guard stops a full sync that would delete too much, and deletes nothing', async () => {
    const ds = small();
    const store = await open();
    await syncSource(store, directConnector('demo', ds));
    const before = await store.counts();
    for (const c of ds.list('class').slice(0, 4)) ds.remove('class', c.key);
    const s = await syncSource(store, directConnector('demo', ds));
    expect(s.status).toBe('guarded');
    expect(s.error).toMatch(/mass-deletion guard.*4 of 8 class/);
    expect((await store.counts()).class).toBe(before.class);
    const s2 = await syncSource(store, directConnector('demo', ds), { allowMassDelete: true });
    expect(s2.mode).toBe('full');
    expect((await store.counts()).class).toBe(before.class - 4);
  });

  it('records arriving before what they reference wait, then resolve in the same run', async () => {
    const ds = small();
    const base = directConnector('demo', ds);
    // Deliver enrollments first, then everything else.
    const reordered: Connector = {
      ...base,
      async *read() {
        const pages: Page[] = [];
        for await (const p of base.read(null)) pages.push({ ...p, completes: undefined });
        const enr = pages.filter((p) => p.resource === 'enrollment');
        const rest = pages.filter((p) => p.resource !== 'enrollment');
        for (const p of [...enr, ...rest]) yield { ...p, state: { done: true } };
      },
    };
    const store = await open();
    const s = await syncSource(store, reordered);
    expect(s.counters.pending).toBeGreaterThan(0);
    expect(s.unresolved).toBe(0);
    expect((await store.counts()).enrollment).toBe(ds.list('enrollment').length);
  });

  it('a record that owns its dependents drops those of its source it no longer lists, and only those', async () => {
    const ds = small();
    const store = await open();
    await syncSource(store, directConnector('demo', ds));
    const g = ds.list('guardianship')[0]!;
    const student = g.data.studentKey;
    const others = ds.list('guardianship').filter((x) => x.data.studentKey === student && x.key !== g.key).map((x) => x.key);
    const person = ds.get('person', student)!;
    // The same guardianship from a second source.
    const second: Connector = {
      sourceId: 'second', type: 'clever',
      async *read() {
        yield { resource: 'users', state: {}, records: [
          { type: 'person', key: student, data: person.data },
          { type: 'person', key: g.data.guardianKey, data: ds.get('person', g.data.guardianKey)!.data },
          { type: 'guardianship', key: g.key, data: g.data },
        ] };
      },
    };
    await syncSource(store, second);
    const before = (await store.counts()).guardianship;
    const owner: Connector = {
      sourceId: 'demo', type: 'oneroster',
      async *read() {
        yield { resource: 'users', state: {}, records: [{ type: 'person', key: student, data: person.data, owns: [{ rel: 'guardianship.student', keys: others }] }] };
      },
    };
    const s = await syncSource(store, owner);
    expect(s.mode).toBe('incremental');
    expect(s.counters.deleted).toBe(1);
    expect((await store.counts()).guardianship).toBe(before - 1);
    const keys = await store.transaction(async (tx) => ({
      dropped: await tx.resolveKey('demo', 'guardianship', g.key),
      kept: await Promise.all(others.map((k) => tx.resolveKey('demo', 'guardianship', k))),
      otherSource: await tx.resolveKey('second', 'guardianship', g.key),
    }));
    expect(keys.dropped).toBeUndefined();
    expect(keys.kept.every(Boolean)).toBe(true);
    // The second source still says the guardianship exists: its record is not this source's to end.
    expect(keys.otherSource).toBeDefined();
  });

  it('a stored record re-pointed at a record that arrives later keeps one entity: no orphan, no duplicate', async () => {
    const ds = small();
    const store = await open();
    await syncSource(store, directConnector('demo', ds));
    const before = await store.counts();
    const e = ds.list('enrollment')[0]!;
    const cls = ds.list('class')[0]!;
    const moved: Connector = {
      sourceId: 'demo', type: 'oneroster',
      async *read() {
        yield { resource: 'enrollments', state: { n: 1 }, records: [{ type: 'enrollment', key: e.key, data: { ...e.data, classKey: 'cls-new' } }] };
        yield { resource: 'classes', state: { n: 2 }, records: [{ type: 'class', key: 'cls-new', data: { ...cls.data, title: 'New class' } }] };
      },
    };
    const s = await syncSource(store, moved);
    expect(s.unresolved).toBe(0);
    const after = await store.counts();
    expect(after.enrollment).toBe(before.enrollment);
    expect(after.class).toBe(before.class! + 1);
    // Every enrollment entity still has its source record.
    const rows = (await store.list({ type: 'enrollment', first: 10_000 })).rows;
    const sources = await store.sourcesOf(rows.map((r) => r.id));
    expect(rows.filter((r) => !sources.get(r.id)?.length)).toEqual([]);
  });

  it('an optional reference left out because its target never came is filled in when the target arrives in a later run', async () => {
    const ds = small();
    const store = await open();
    const school = ds.list('org').find((o) => o.data.type === 'school')!;
    const cls = ds.list('class').find((c) => c.data.schoolKey === school.key)!;
    const page = (records: Page['records']): Connector => ({
      sourceId: 'demo', type: 'oneroster',
      async *read() {
        yield { resource: 'x', state: {}, records };
      },
    });
    const classRecord = { type: 'class' as const, key: cls.key, data: { ...cls.data, courseKey: undefined, termKeys: undefined } };
    expect((await syncSource(store, page([classRecord]))).unresolved).toBe(0);
    const [stored] = (await store.list({ type: 'class', first: 10 })).rows;
    expect((stored!.data as { schoolId?: string }).schoolId).toBeUndefined();
    // The next run brings the school and the very same class.
    await syncSource(store, page([{ type: 'org', key: school.key, data: { ...school.data, parentKey: undefined } }, classRecord]));
    const [again] = (await store.list({ type: 'class', first: 10 })).rows;
    const [org] = (await store.list({ type: 'org', first: 10 })).rows;
    expect((again!.data as { schoolId?: string }).schoolId).toBe(org!.id);
  });

  it('a store error names source, resource and record position but no values', async () => {
    const store = await open();
    // Valid values (the mapping boundary lets it through), but data that cannot be stored.
    const circular: Record<string, unknown> = { givenName: 'A', familyName: 'B', roles: [] };
    circular.self = circular;
    const bad: Connector = {
      sourceId: 'bad-src', type: 'clever',
      async *read() {
        yield { resource: 'users', records: [{ type: 'person', key: 'k1', data: circular as never }], state: {} };
      },
    };
    const e = await syncSource(store, bad).catch((x: unknown) => x);
    expect(isRostergateError(e)).toBe(true);
    expect((e as Error).message).toMatch(/source bad-src, resource users, record person #0/);
  });

  it('a stored record held back by a later delivery stands, and a complete listing does not delete it for the defect', async () => {
    const store = await open();
    const person = (data: Record<string, unknown>): Connector => ({
      sourceId: 'demo', type: 'oneroster',
      async *read() {
        yield { resource: 'users', state: {}, records: [{ type: 'person', key: 'u1', data: data as never }], completes: ['person'] };
      },
    });
    await syncSource(store, person({ givenName: 'A', familyName: 'B', roles: ['student'] }), { full: true });
    const s = await syncSource(store, person({ familyName: 'B', roles: ['student'] }), { full: true });
    expect([s.status, s.counters.deleted]).toEqual(['complete', 0]);
    expect(s.report.entries).toEqual([{ kind: 'held-back', resource: 'users', record: 'person u1', field: 'givenName', message: 'missing: record held back' }]);
    const [row] = (await store.list({ type: 'person', first: 10 })).rows;
    expect((row!.data as { givenName: string }).givenName).toBe('A');
  });

  it('a record without its data is held back at the mapping boundary and reported, not stored', async () => {
    const store = await open();
    const bad: Connector = {
      sourceId: 'bad-src', type: 'clever',
      async *read() {
        yield { resource: 'users', records: [{ type: 'person', key: 'k1', data: null as never }, { type: 'nonsense' as never, key: 'k2', data: {} as never }], state: {} };
      },
    };
    const s = await syncSource(store, bad);
    expect(s.status).toBe('complete');
    expect(s.report.counts['held-back']).toBe(3);
    expect(s.report.entries.map((e) => `${e.record} ${e.field}`)).toEqual(['person k1 givenName', 'person k1 familyName', 'nonsense k2 type']);
    expect((await store.counts()).person).toBe(0);
  });
});
