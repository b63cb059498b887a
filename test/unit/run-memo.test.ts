/**
 * The run's memo (src/store/run-memo.ts): a group's references to records the run's earlier groups
 * read or wrote are answered without a read, and not once another writer changed the roster between
 * two groups (an operator's link, here): then the group reads them again and links to where they are now.
 */
import { afterEach, describe, expect, it } from 'vitest';
import type { Connector } from '../../connectors/types.ts';
import type { SourceRecord } from '../../src/model/records.ts';
import type { SourceRecordRef, Store, StoreTx } from '../../src/store/types.ts';
import { RunMemo } from '../../src/store/run-memo.ts';
import { linkRecord } from '../../src/sync/overrides.ts';
import { syncSource } from '../../src/sync/runner.ts';
import { openTestStore, storeKinds } from '../support/stores.ts';

let stores: Store[] = [];
afterEach(async () => {
  for (const s of stores) await s.close();
  stores = [];
});

const PEOPLE = ['p1', 'p2', 'p3'];
const first: SourceRecord[] = [
  { type: 'org', key: 's1', data: { name: 'Synthetic School', type: 'school' } },
  { type: 'class', key: 'c1', data: { title: 'Synthetic class', schoolKey: 's1' } },
  ...PEOPLE.map((key, i): SourceRecord => ({ type: 'person', key, data: { givenName: `Given${i}`, familyName: 'Synthetic', roles: ['student'] } })),
];
const enrollments = (suffix: string): SourceRecord[] =>
  PEOPLE.map((p): SourceRecord => ({ type: 'enrollment', key: `${p}-${suffix}`, data: { classKey: 'c1', personKey: p, role: 'student' } }));

/** Three pages (people first, then their enrollments twice), the second waiting for `beforeSecond` once the first is stored. */
function lms(beforeSecond: () => Promise<void>, firstStored: Promise<void>): Connector {
  return {
    sourceId: 'lms',
    type: 'oneroster-csv',
    async *read() {
      yield { resource: 'people', records: first, state: { page: 1 } };
      await firstStored;
      await beforeSecond();
      yield { resource: 'enrollments', records: enrollments('a'), state: { page: 2 } };
      yield { resource: 'enrollments', records: enrollments('b'), state: { page: 3 }, completes: ['org', 'class', 'person', 'enrollment'] };
    },
  };
}

/**
 * The store, with the references every transaction asked it for (their entity ids), and the source
 * records it asked for by key (`read`: whole, `settle`: by content hash).
 */
async function watched(kind: Parameters<typeof openTestStore>[0]): Promise<{ store: Store; asked: SourceRecordRef[]; read: SourceRecordRef[]; settle: SourceRecordRef[] }> {
  const store = await openTestStore(kind);
  stores.push(store);
  const asked: SourceRecordRef[] = [];
  const read: SourceRecordRef[] = [];
  const settle: SourceRecordRef[] = [];
  const transaction = store.transaction.bind(store);
  store.transaction = ((fn, opts) => transaction((tx) => {
    const ids = tx.entityIdsOfRecords.bind(tx);
    tx.entityIdsOfRecords = async (refs) => {
      asked.push(...refs);
      return ids(refs);
    };
    const records = tx.getSourceRecords.bind(tx);
    tx.getSourceRecords = async (refs) => {
      read.push(...refs);
      return records(refs);
    };
    const mark = tx.markUnchangedSeen.bind(tx);
    tx.markUnchangedSeen = async (run, delivered) => {
      settle.push(...delivered);
      return mark(run, delivered);
    };
    return fn(tx);
  }, opts)) as Store['transaction'];
  return { store, asked, read, settle };
}

describe.each(storeKinds())('the run memo (%s)', (kind) => {
  const run = async (store: Store, beforeSecond: () => Promise<void>) => {
    let stored!: () => void;
    const firstStored = new Promise<void>((r) => (stored = r));
    const r = await syncSource(store, lms(beforeSecond, firstStored), {
      groupRecords: 1,
      hooks: { pageDidStore: (p) => p.resource === 'people' && stored() },
    });
    expect(r.status).toBe('complete');
    return r;
  };
  const entityOf = (store: Store, type: 'person' | 'class', key: string) => store.transaction((tx) => tx.resolveKey('lms', type, key));
  const personOf = async (store: Store, key: string) => {
    const id = await store.transaction((tx) => tx.resolveKey('lms', 'enrollment', key));
    return ((await store.getEntities([id!]))[0]!.data as { personId?: string }).personId;
  };

  it('answers a group\'s references to what earlier groups wrote without asking the store', async () => {
    const { store, asked } = await watched(kind);
    await run(store, async () => {});
    // Each page is a group of its own: the enrollments' people and class were written by the first.
    expect(asked.filter((r) => r.type === 'person' || r.type === 'class')).toEqual([]);
    for (const p of PEOPLE) {
      const person = await entityOf(store, 'person', p);
      expect(person).toBeTruthy();
      expect(await personOf(store, `${p}-a`)).toBe(person);
      expect(await personOf(store, `${p}-b`)).toBe(person);
    }
  });

  it('forgets it when another writer changed the roster between two groups, and links to where the records are now', async () => {
    const { store, asked, read } = await watched(kind);
    let merged: string | undefined;
    let into: string | undefined;
    await run(store, async () => {
      // An operator merges p1's person into p2's while the run waits for its next page.
      merged = await entityOf(store, 'person', 'p1');
      into = await entityOf(store, 'person', 'p2');
      await linkRecord(store, { source: 'lms', type: 'person', key: 'p1' }, into!, { precedence: ['lms'] });
    });
    expect(merged).toBeTruthy();
    expect(merged).not.toBe(into);
    expect(await entityOf(store, 'person', 'p1')).toBe(into);
    expect((await store.getEntities([merged!]))[0]).toBeUndefined();
    // The second group asked again (the change log had moved), and p1's enrollments follow the link.
    expect(asked.some((r) => r.type === 'person' && r.key === 'p1')).toBe(true);
    // Nor does the run know its records absent any more: the enrollments, new, were asked for.
    expect(read.map((r) => r.key)).toEqual(expect.arrayContaining(['p1-a', 'p1-b']));
    expect(await personOf(store, 'p1-a')).toBe(into);
    expect(await personOf(store, 'p1-b')).toBe(into);
    expect(await personOf(store, 'p3-a')).toBe(await entityOf(store, 'person', 'p3'));
  });

  it('on a source that held no records, asks for none of its own records but those an earlier group delivered', async () => {
    const { store, read, settle } = await watched(kind);
    // p2 comes again in the last page, renamed: the one record of the run a group must read.
    const again: SourceRecord = { type: 'person', key: 'p2', data: { givenName: 'Renamed', familyName: 'Synthetic', roles: ['student'] } };
    const connector: Connector = {
      sourceId: 'lms',
      type: 'oneroster-csv',
      async *read() {
        yield { resource: 'people', records: first, state: { page: 1 } };
        yield { resource: 'enrollments', records: enrollments('a'), state: { page: 2 } };
        yield { resource: 'people', records: [again, ...enrollments('b')], state: { page: 3 } };
      },
    };
    const r = await syncSource(store, connector, { groupRecords: 1 });
    expect(r.status).toBe('complete');
    expect(read.map((x) => `${x.type}:${x.key}`)).toEqual(['person:p2']);
    expect(settle).toEqual([]);
    // Read, p2 was updated in place: one person, renamed, its enrollments on it.
    const p2 = await entityOf(store, 'person', 'p2');
    expect(((await store.getEntities([p2!]))[0]!.data as { givenName?: string }).givenName).toBe('Renamed');
    expect(await personOf(store, 'p2-b')).toBe(p2);
    expect(r.counters.created).toBe(first.length + 6);
    expect(r.counters.updated).toBe(1);

    // A second run of a source that holds records asks for them again (here, settled by their hash).
    read.length = 0;
    const second = await syncSource(store, connector, { groupRecords: 1, full: true });
    expect(second.status).toBe('complete');
    expect([...settle, ...read].map((x) => x.key)).toEqual(expect.arrayContaining(['s1', 'c1', 'p1', 'p1-a', 'p3-b']));
  });
});

describe('the run memo itself', () => {
  const k = (type: string, key: string) => `lms\0${type}\0${key}`;

  it('learns only the types a reference can name, only once committed, and stops learning at its bound', () => {
    const memo = new RunMemo({ limit: 2 });
    memo.stage([[k('person', 'p1'), 'person_1'], [k('enrollment', 'e1'), 'enrollment_1']], 10);
    // Not committed yet: nothing known.
    expect(memo.entityIdOf(k('person', 'p1'))).toBeUndefined();
    memo.kept();
    expect(memo.entityIdOf(k('person', 'p1'))).toBe('person_1');
    // Nothing names an enrollment: it is not kept.
    expect(memo.entityIdOf(k('enrollment', 'e1'))).toBeUndefined();
    memo.stage([[k('class', 'c1'), null], [k('person', 'p2'), 'person_2'], [k('person', 'p1'), 'person_9']], 11);
    memo.kept();
    // Pending or absent is known too; past the bound a new record is not learnt, a known one is updated.
    expect(memo.entityIdOf(k('class', 'c1'))).toBeNull();
    expect(memo.entityIdOf(k('person', 'p2'))).toBeUndefined();
    expect(memo.entityIdOf(k('person', 'p1'))).toBe('person_9');
  });

  /** The two reads the memo makes of a transaction: whether the source holds records, the change log's next seq. */
  const txOf = (holds: boolean, nextSeq: number) => ({ hasSourceRecords: async () => holds, nextChangeSeq: async () => nextSeq }) as unknown as StoreTx;

  it('knows absent the records of an empty source no committed group knew, until it forgets', async () => {
    const memo = new RunMemo({ source: 'lms', limit: 3 });
    // Not asked yet: nothing is known absent.
    expect(memo.knownAbsent(k('person', 'p1'))).toBe(false);
    await memo.check(txOf(false, 10));
    expect(memo.knownAbsent(k('person', 'p1'))).toBe(true);
    expect(memo.knownAbsent(k('enrollment', 'e1'))).toBe(true);
    // Another source's records are not this run's to know.
    expect(memo.knownAbsent(`sis\0person\0p1`)).toBe(false);
    // What a group knew counts once its transaction commits, found or not, referenced type or not.
    memo.stage([[k('person', 'p1'), 'person_1'], [k('enrollment', 'e1'), null]], 12);
    expect(memo.knownAbsent(k('enrollment', 'e1'))).toBe(true);
    memo.kept();
    expect(memo.knownAbsent(k('person', 'p1'))).toBe(false);
    expect(memo.knownAbsent(k('enrollment', 'e1'))).toBe(false);
    expect(memo.knownAbsent(k('person', 'p2'))).toBe(true);
    // A group that does not commit teaches nothing, and the memo forgets: nothing is known absent again.
    await memo.check(txOf(true, 12));
    memo.stage([[k('person', 'p2'), 'person_2']], 13);
    memo.forget();
    expect(memo.knownAbsent(k('person', 'p3'))).toBe(false);
    // Not even after the next group's check, though the seq matches: the run wrote, so it is not asked again.
    await memo.check(txOf(false, 12));
    expect(memo.knownAbsent(k('person', 'p3'))).toBe(false);
  });

  it('knows nothing absent of a source that held records, after another writer moved the change log, or past its bound', async () => {
    const held = new RunMemo({ source: 'lms' });
    await held.check(txOf(true, 10));
    expect(held.knownAbsent(k('person', 'p1'))).toBe(false);

    const moved = new RunMemo({ source: 'lms' });
    await moved.check(txOf(false, 10));
    moved.stage([[k('person', 'p1'), 'person_1']], 11);
    moved.kept();
    await moved.check(txOf(false, 14));
    expect(moved.knownAbsent(k('person', 'p2'))).toBe(false);

    const bounded = new RunMemo({ source: 'lms', limit: 2 });
    await bounded.check(txOf(false, 10));
    bounded.stage([[k('person', 'p1'), 'person_1'], [k('person', 'p2'), 'person_2'], [k('person', 'p3'), 'person_3']], 11);
    bounded.kept();
    // p3 could not be learnt, so it cannot be told from a record never delivered: neither is known absent.
    expect(bounded.knownAbsent(k('person', 'p3'))).toBe(false);
    expect(bounded.knownAbsent(k('person', 'p4'))).toBe(false);

    // Keys are held by a 30-bit hash: p79823 and p303100 share one, so touching one makes the other
    // look touched too. It is then asked for, never taken for absent.
    const shared = new RunMemo({ source: 'lms' });
    await shared.check(txOf(false, 10));
    shared.stage([[k('person', 'p79823'), 'person_1']], 11);
    shared.kept();
    expect(shared.knownAbsent(k('person', 'p303100'))).toBe(false);
    expect(shared.knownAbsent(k('person', 'p303101'))).toBe(true);

    const untold = new RunMemo();
    await untold.check(txOf(false, 10));
    expect(untold.knownAbsent(k('person', 'p1'))).toBe(false);
  });

  it('forgets everything when a transaction commits without staging', () => {
    const memo = new RunMemo();
    memo.stage([[k('person', 'p1'), 'person_1']], 10);
    memo.kept();
    memo.kept();
    expect(memo.entityIdOf(k('person', 'p1'))).toBeUndefined();
  });
});
