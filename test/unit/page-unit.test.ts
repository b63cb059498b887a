/**
 * The sync's page unit of work (src/store/page-unit.ts): a page costs a bounded number of store
 * calls whatever its size, and applying records a page at a time leaves exactly what applying
 * them one per page leaves — entities, change log, view times, pseudonyms — on both stores.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { RosterDataset } from '../../src/demo/dataset.ts';
import { directConnector } from '../../src/demo/direct-connector.ts';
import { buildUnifiedSchema } from '../../src/graphql/schema.ts';
import { ENTITY_TYPES, type SourceRecord } from '../../src/model/records.ts';
import type { Connector } from '../../connectors/types.ts';
import { KeyRing } from '../../src/privacy/pseudonym.ts';
import { setupPrivacy, type Privacy } from '../../src/graphql/privacy.ts';
import type { Store, StoreTx } from '../../src/store/types.ts';
import { syncSource } from '../../src/sync/runner.ts';
import { demoPrivacyConfig, TEST_MASTER_KEY } from '../support/privacy.ts';
import { openTestStore, storedViewRows, storeKinds, type StoreKind } from '../support/stores.ts';

const schema = buildUnifiedSchema();
const privacyFor = (): Privacy => setupPrivacy(demoPrivacyConfig(':memory:'), schema, { keyring: new KeyRing(TEST_MASTER_KEY, 'test') });

let stores: Store[] = [];
afterEach(async () => {
  for (const s of stores) await s.close();
  stores = [];
});
async function open(kind: StoreKind) {
  const s = await openTestStore(kind);
  stores.push(s);
  return s;
}

/**
 * The store with every call made on a transaction counted, per transaction: a singular operation
 * is one round trip, a set-at-a-time BatchTx call is one call (the store may chunk it, by a
 * bound that does not depend on the page). `yieldTurn` is not counted: it hands the event loop
 * back and asks nothing of the store.
 */
function counting(store: Store): { store: Store; perTx: number[] } {
  const perTx: number[] = [];
  const wrapped = new Proxy(store, {
    get(target, prop) {
      if (prop === 'transaction') {
        return <T>(fn: (tx: StoreTx) => Promise<T>) =>
          target.transaction((tx) => {
            const i = perTx.push(0) - 1;
            const counted = new Proxy(tx, {
              get(t, p) {
                const v = Reflect.get(t, p) as unknown;
                // Handing the event loop back (yieldTurn) asks nothing of the store.
                if (typeof v !== 'function' || p === 'yieldTurn') return typeof v === 'function' ? v.bind(t) : v;
                return (...args: unknown[]) => {
                  perTx[i]!++;
                  return (v as (...a: unknown[]) => unknown).apply(t, args);
                };
              },
            });
            return fn(counted);
          });
      }
      const v = Reflect.get(target, prop) as unknown;
      return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(target) : v;
    },
  });
  return { store: wrapped, perTx };
}

/** The store with the source records each transaction writes whole, those it only marks seen, and those it reads whole. */
function sourceRecordWrites(store: Store): { store: Store; written: () => number; marked: () => number; read: () => number; settles: () => number; settled: () => number; reset(): void } {
  let written = 0;
  let marked = 0;
  let read = 0;
  let settles = 0;
  let settledRows = 0;
  const wrapped = new Proxy(store, {
    get(target, prop) {
      if (prop === 'transaction') {
        return <T>(fn: (tx: StoreTx) => Promise<T>) => target.transaction((tx) => fn(new Proxy(tx, {
          get(t, p) {
            const v = Reflect.get(t, p) as unknown;
            if (p === 'putSourceRecords') return (rows: unknown[]) => ((written += rows.length), tx.putSourceRecords(rows as Parameters<StoreTx['putSourceRecords']>[0]));
            if (p === 'markSourceRecordsSeen') return (run: number, refs: unknown[]) => ((marked += refs.length), tx.markSourceRecordsSeen(run, refs as Parameters<StoreTx['markSourceRecordsSeen']>[1]));
            if (p === 'markUnchangedSeen') {
              return async (run: number, delivered: Parameters<StoreTx['markUnchangedSeen']>[1]) => {
                const settled = await tx.markUnchangedSeen(run, delivered);
                settles++;
                settledRows += settled.length;
                marked += settled.length;
                return settled;
              };
            }
            if (p === 'getSourceRecords' || p === 'sourceRecordsOfEntities') {
              return async (arg: never) => {
                const rows = await (tx[p] as (a: never) => Promise<unknown[]>)(arg);
                read += rows.length;
                return rows;
              };
            }
            return typeof v === 'function' ? v.bind(t) : v;
          },
        })));
      }
      const v = Reflect.get(target, prop) as unknown;
      return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(target) : v;
    },
  });
  return {
    store: wrapped, written: () => written, marked: () => marked, read: () => read, settles: () => settles, settled: () => settledRows,
    reset: () => void (written = marked = read = settles = settledRows = 0),
  };
}

describe.each(storeKinds())('page unit of work on %s', (kind) => {
  it('a full sync of unchanged records marks them seen without reading or writing them again, and still sweeps what it did not see', async () => {
    const ds = RosterDataset.generate({ students: 60 });
    const spy = sourceRecordWrites(await open(kind));
    const ingest = await privacyFor().ingest(spy.store);
    // Groups of about 100 records: several per run.
    const first = await syncSource(spy.store, directConnector('demo', ds, { pageSize: 50 }), { ...ingest, groupRecords: 100 });
    expect(spy.written()).toBe(first.records);
    // A first sync never asks the store for unchanged records, nor reads its own: the source held
    // none when the run began, so the run knows the records it did not write are absent (RunMemo).
    expect(spy.settles()).toBe(0);
    spy.reset();
    const again = await syncSource(spy.store, directConnector('demo', ds, { pageSize: 50 }), { ...ingest, full: true, groupRecords: 100 });
    expect(again.counters.unchanged).toBe(again.records);
    expect(spy.written()).toBe(0);
    expect(spy.marked()).toBe(again.records);
    expect(spy.settles()).toBeGreaterThan(5);
    // Settled by their content hash in the store (markUnchangedSeen): not one of them read whole.
    expect(spy.read()).toBe(0);
    // The marks are what the sweep goes by: a record the next full sync does not see is deleted,
    // and only that one (an unmarked record would be swept too, or stop the run at the guard).
    const gone = ds.list('enrollment')[0]!;
    ds.remove('enrollment', gone.key);
    const third = await syncSource(spy.store, directConnector('demo', ds), { ...ingest, full: true });
    expect(third.status).toBe('complete');
    expect(third.counters.deleted).toBe(1);
    expect(third.counters.unchanged).toBe(third.records);
  }, 60_000);

  it('an owner settled unchanged still drops the dependents it no longer lists', async () => {
    const ds = RosterDataset.generate({ students: 20, teachers: 2, classes: 2, schools: 1 });
    const withTwo = ds.list('person').find((p) => ds.list('guardianship').filter((g) => g.data.studentKey === p.key).length >= 2)!;
    const theirs = ds.list('guardianship').filter((g) => g.data.studentKey === withTwo.key);
    const [ended, ...kept] = theirs;
    const spy = sourceRecordWrites(await open(kind));
    const ingest = await privacyFor().ingest(spy.store);
    await syncSource(spy.store, directConnector('demo', ds), { ...ingest });
    // The student again as stored, its list of guardianships (not part of its content) one shorter.
    const student = { type: 'person', key: withTwo.key, data: withTwo.data, lastModified: withTwo.lastModified, owns: [{ rel: 'guardianship.student', keys: kept.map((g) => g.key) }] } as SourceRecord;
    const connector: Connector = { sourceId: 'demo', type: 'oneroster-csv', async *read() { yield { resource: 'person', records: [student], state: { page: 0 } }; } };
    spy.reset();
    const s = await syncSource(spy.store, connector, { ...ingest });
    expect(s.status).toBe('complete');
    expect(spy.settled()).toBe(1);
    expect(s.counters.unchanged).toBe(1);
    expect(s.counters.deleted).toBe(1);
    expect(await spy.store.entityOfRecord({ source: 'demo', type: 'guardianship', key: ended!.key })).toBeFalsy();
    for (const g of kept) expect(await spy.store.entityOfRecord({ source: 'demo', type: 'guardianship', key: g.key })).toBeTruthy();
  }, 60_000);

  it('a record settled unchanged before its group was planned is applied again when a record before it in the group deleted it', async () => {
    const ds = RosterDataset.generate({ students: 20, teachers: 2, classes: 2, schools: 1 });
    const privacy = privacyFor();
    const enrollment = ds.list('enrollment')[0]!;
    // The class goes (a delta's deletion), taking its enrollments along; one of them is then delivered
    // again as stored. Settled by its hash at the start of the group, it must not stay deleted.
    const gone = { type: 'class', key: enrollment.data.classKey, deleted: true } as SourceRecord;
    const again = { type: 'enrollment', key: enrollment.key, data: enrollment.data, lastModified: enrollment.lastModified } as SourceRecord;
    const connector = (pages: SourceRecord[][]): Connector => ({
      sourceId: 'demo',
      type: 'oneroster-csv',
      async *read() {
        for (const [i, records] of pages.entries()) yield { resource: records[0]!.type, records, state: { page: i } };
      },
    });
    const pending = async (store: Store) => (await store.transaction((tx) => tx.pendingSourceRecords('demo'))).map((r) => `${r.type}:${r.key}`);
    const results = [];
    // In one group, and the same two records in two groups of a page each (each settled in its own).
    for (const [pages, groupRecords] of [[[[gone, again]], undefined], [[[gone], [again]], 1]] as const) {
      const store = await open(kind);
      const ingest = await privacy.ingest(store);
      await syncSource(store, directConnector('demo', ds), { ...ingest, now: () => new Date('2030-01-01T00:00:00.000Z') });
      const s = await syncSource(store, connector(pages.map((p) => [...p])), { ...ingest, now: () => new Date('2030-01-02T00:00:00.000Z'), ...(groupRecords ? { groupRecords } : {}) });
      expect(s.status).toBe('complete');
      expect(await pending(store)).toEqual([`enrollment:${enrollment.key}`]);
      const d = await dump(store, privacy);
      // A class's enrollments go in the order of their random ids: the same changes, in another order.
      results.push({ counters: s.counters, dump: { ...d, changes: d.changes.map((c) => c.replace(/"seq":\d+,/, '')).sort() } });
    }
    expect(results[0]!.counters).toEqual(results[1]!.counters);
    expect(results[0]!.dump).toEqual(results[1]!.dump);
  }, 60_000);

  it('a record already stored has its links replaced when it moves; a new one gets its links without anything deleted first', async () => {
    const ds = RosterDataset.generate({ students: 30, teachers: 3, classes: 4, schools: 1 });
    const store = await open(kind);
    const ingest = await privacyFor().ingest(store);
    await syncSource(store, directConnector('demo', ds), { ...ingest });
    const idOf = async (type: 'class' | 'enrollment', key: string) => (await store.entityOfRecord({ source: 'demo', type, key }))!;
    const moved = ds.list('enrollment')[0]!;
    const [from, to] = [moved.data.classKey, ds.list('class').find((c) => c.key !== moved.data.classKey)!.key];
    const [fromId, toId, enrollmentId] = [await idOf('class', from), await idOf('class', to), await idOf('enrollment', moved.key)];
    expect((await store.linkedFrom('enrollment.class', [fromId])).get(fromId)).toContain(enrollmentId);
    // The same enrollment record now names another class: its stored link to the first one must go.
    ds.upsert('enrollment', moved.key, { classKey: to });
    ds.upsert('enrollment', 'new-enrollment', { ...moved.data, classKey: to, personKey: ds.list('person').find((p) => p.data.roles?.includes('student'))!.key });
    const s = await syncSource(store, directConnector('demo', ds), { ...ingest, full: true });
    expect(s.counters.updated).toBeGreaterThanOrEqual(1);
    const links = await store.linkedFrom('enrollment.class', [fromId, toId]);
    expect(links.get(fromId)).not.toContain(enrollmentId);
    expect(links.get(toId)).toContain(enrollmentId);
    expect(links.get(toId)).toContain(await idOf('enrollment', 'new-enrollment'));
  }, 60_000);

  it('a page takes a bounded number of store calls, not a number that grows with its records', async () => {
    const ds = RosterDataset.generate({ students: 900, teachers: 30, classes: 40, schools: 2 });
    const privacy = privacyFor();
    const calls = async (pageSize: number) => {
      const { store, perTx } = counting(await open(kind));
      const ingest = await privacy.ingest(store);
      const s = await syncSource(store, directConnector('demo', ds, { pageSize }), { ...ingest, now: () => new Date('2030-01-01T00:00:00Z') });
      expect(s.status).toBe('complete');
      // Transactions that applied a page of `pageSize` records (not the run's first and last, nor short pages).
      return { worst: Math.max(...perTx.slice(1, -1)), pages: s.pages };
    };
    const big = await calls(500);
    const small = await calls(50);
    expect(big.pages).toBeGreaterThan(3);
    expect(big.worst).toBeLessThan(40);
    // Ten times the records per page: about the same calls per page.
    expect(big.worst).toBeLessThan(small.worst * 2);
  }, 120_000);

  it('a page applied at once, or written in slices while the next is planned, leaves what its records applied one per page leave', async () => {
    const ds = RosterDataset.generate({ students: 40, teachers: 4, classes: 5, schools: 2 });
    const privacy = privacyFor();
    const one = await open(kind);
    const many = await open(kind);
    // Written a few records at a time (PageUnit.flushAhead), each slice's writes still running
    // (PostgreSQL) while the next is planned: what a write left must read as stored afterwards.
    const sliced = await open(kind);
    for (const s of [one, many, sliced]) await privacy.viewTimes.backfill(s);
    const sync = async (store: Store, pageSize: number, at: string, sliceRecords?: number) => {
      const ingest = await privacy.ingest(store);
      const s = await syncSource(store, directConnector('demo', ds, { pageSize }), { ...ingest, full: true, allowMassDelete: true, now: () => new Date(at), sliceRecords });
      expect(s.status).toBe('complete');
      return s.counters;
    };
    const all = async (at: string) => {
      const a = await sync(one, 1, at);
      expect(await sync(many, 500, at)).toEqual(a);
      expect(await sync(sliced, 500, at, 7)).toEqual(a);
    };
    await all('2030-01-01T00:00:00.000Z');
    // Updates, a person leaving with everything that depends on them, a newcomer.
    const students = ds.list('person').filter((p) => p.data.roles.includes('student') && ds.get('demographics', p.key));
    const [a, leaver] = students;
    ds.upsert('person', a!.key, { email: 'a.changed@students.rostergate-demo.example', grades: ['11'] });
    ds.upsert('class', ds.list('class')[0]!.key, { title: 'Renamed class' });
    ds.upsert('person', 'stu-new', { givenName: 'Nova', familyName: 'Nieuw', roles: ['student'], sisId: 'S990001', orgKeys: ['sch-01'], grades: ['03'] });
    ds.remove('person', leaver!.key);
    await all('2030-01-02T00:00:00.000Z');

    const [dumpOne, dumpMany, dumpSliced] = [await dump(one, privacy), await dump(many, privacy), await dump(sliced, privacy)];
    expect(dumpOne.changes.length).toBeGreaterThan(100);
    expect(dumpOne.changes.some((c) => c.includes('"op":"deleted"'))).toBe(true);
    expect(dumpOne.viewTimes.length).toBeGreaterThan(100);
    expect(dumpOne.pseudonyms.length).toBeGreaterThan(40);
    expect(dumpMany).toEqual(dumpOne);
    expect(dumpSliced).toEqual(dumpOne);
  }, 120_000);
});

/**
 * Everything the two runs must agree on, with entity ids (random per store) and the pseudonyms
 * derived from them replaced by names that depend only on the order changes were logged in.
 */
async function dump(store: Store, privacy: Privacy) {
  const changes = await store.changes({ afterSeq: 0, limit: 1_000_000 });
  const versions = await privacy.pseudonymiser.versions(store);
  const names = new Map<string, string>();
  for (const c of changes) {
    if (names.has(c.entityId)) continue;
    const name = `${c.type}#${names.size}`;
    names.set(c.entityId, name);
    for (const [domain, version] of versions) names.set(privacy.keyring.pseudonym(domain, version, c.entityId), `${name}@${domain}`);
  }
  const rename = (v: unknown) => {
    let s = JSON.stringify(v);
    // Longest first: a pseudonym never contains an id, but be safe about prefixes.
    for (const [from, to] of [...names].sort((x, y) => y[0].length - x[0].length)) s = s.split(from).join(to);
    return s;
  };
  const ids: string[] = [];
  const entities: string[] = [];
  for (const t of ENTITY_TYPES) {
    for (const r of (await store.list({ type: t, first: 1_000_000 })).rows) {
      ids.push(r.id);
      entities.push(rename(r));
    }
  }
  const viewTimes: string[] = [];
  for (const view of privacy.purposes.keys()) for (const [id, t] of await store.viewTimes(view, ids)) viewTimes.push(rename({ view, id, ...t }));
  const pseudonyms: string[] = [];
  for (const [domain, version] of versions) for (const [id, p] of await store.pseudonymsOf(domain, version, ids)) pseudonyms.push(rename({ domain, id, p }));
  return {
    changes: changes.map(rename),
    entities: entities.sort(),
    viewTimes: viewTimes.sort(),
    // Beneath them, the rows stored: only where a time is not the entity's own.
    viewRows: (await storedViewRows(store)).map((r) => rename(r.row)).sort(),
    pseudonyms: pseudonyms.sort(),
    counts: await store.counts(),
    conflicts: (await store.conflicts()).map((c) => rename({ ...c, id: 0 })),
  };
}
