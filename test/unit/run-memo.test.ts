/**
 * The run's memo (src/store/run-memo.ts): a group's references to records the run's earlier groups
 * read or wrote are answered without a read, and not once another writer changed the roster between
 * two groups (an operator's link, here): then the group reads them again and links to where they are now.
 */
import { afterEach, describe, expect, it } from 'vitest';
import type { Connector } from '../../connectors/types.ts';
import type { SourceRecord } from '../../src/model/records.ts';
import type { SourceRecordRef, Store } from '../../src/store/types.ts';
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

/** The store, with the references every transaction asked it for (their entity ids). */
async function watched(kind: Parameters<typeof openTestStore>[0]): Promise<{ store: Store; asked: SourceRecordRef[] }> {
  const store = await openTestStore(kind);
  stores.push(store);
  const asked: SourceRecordRef[] = [];
  const transaction = store.transaction.bind(store);
  store.transaction = ((fn, opts) => transaction((tx) => {
    const read = tx.entityIdsOfRecords.bind(tx);
    tx.entityIdsOfRecords = async (refs) => {
      asked.push(...refs);
      return read(refs);
    };
    return fn(tx);
  }, opts)) as Store['transaction'];
  return { store, asked };
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
    const { store, asked } = await watched(kind);
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
    expect(await personOf(store, 'p1-a')).toBe(into);
    expect(await personOf(store, 'p1-b')).toBe(into);
    expect(await personOf(store, 'p3-a')).toBe(await entityOf(store, 'person', 'p3'));
  });
});

describe('the run memo itself', () => {
  const k = (type: string, key: string) => `lms\0${type}\0${key}`;

  it('learns only the types a reference can name, only once committed, and stops learning at its bound', () => {
    const memo = new RunMemo(2);
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

  it('forgets everything when a transaction commits without staging', () => {
    const memo = new RunMemo();
    memo.stage([[k('person', 'p1'), 'person_1']], 10);
    memo.kept();
    memo.kept();
    expect(memo.entityIdOf(k('person', 'p1'))).toBeUndefined();
  });
});
