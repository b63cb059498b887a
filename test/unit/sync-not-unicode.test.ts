/**
 * Text that is not Unicode from a source (a lone surrogate, which JSON's `\ud800` escape delivers):
 * the sync stores the page, with each lone half as U+FFFD and the repair in its report, and holds
 * back only a record whose key has one. Before the check at the mapping boundary did this,
 * PostgreSQL refused the record's JSON, failing its page at every retry, and SQLite stored three
 * replacement characters for one. On both stores.
 */
import { afterEach, describe, expect, it } from 'vitest';
import type { Connector, Page } from '../../connectors/types.ts';
import type { Store } from '../../src/store/types.ts';
import { syncSource } from '../../src/sync/runner.ts';
import { openTestStore, storeKinds } from '../support/stores.ts';

let stores: Store[] = [];
afterEach(async () => {
  for (const s of stores) await s.close();
  stores = [];
});

const source = (records: Page['records']): Connector => ({
  sourceId: 'sis', type: 'oneroster',
  async *read() {
    yield { resource: 'users', state: {}, records, completes: ['person'] };
  },
});

describe.each(storeKinds())('text that is not Unicode, synced into %s', (kind) => {
  it('is stored with U+FFFD for each lone half and reported; a key with one holds back its record alone', async () => {
    const store = await openTestStore(kind);
    stores.push(store);
    const summary = await syncSource(store, source([
      { type: 'person', key: 'u-1', data: { givenName: 'Ann\ud800', familyName: 'Lee\udc00 😀', roles: ['student'] } },
      { type: 'person', key: 'u-2\udbff', data: { givenName: 'Bo', familyName: 'Day', roles: ['teacher'] } },
      { type: 'person', key: 'u-3', data: { givenName: 'Cy 😀', familyName: 'Ng', roles: ['teacher'] } },
    ]));
    expect(summary.status).toBe('complete');
    const people = (await store.list({ type: 'person', first: 10 })).rows.map((r) => r.data as { givenName: string; familyName: string });
    expect(people.map((p) => `${p.givenName} ${p.familyName}`).sort()).toEqual(['Ann\ufffd Lee\ufffd 😀', 'Cy 😀 Ng']);
    expect(summary.report.counts).toEqual({ 'repaired-value': 2, 'held-back': 1 });
    expect(summary.report.entries).toContainEqual({
      kind: 'held-back', resource: 'users', record: 'person u-2\udbff', field: 'key', message: 'not Unicode text (a lone surrogate): record held back',
    });
    // The next sync of the same page finds it unchanged: the repaired form is what is stored.
    const again = await syncSource(store, source([
      { type: 'person', key: 'u-1', data: { givenName: 'Ann\ud800', familyName: 'Lee\udc00 😀', roles: ['student'] } },
      { type: 'person', key: 'u-3', data: { givenName: 'Cy 😀', familyName: 'Ng', roles: ['teacher'] } },
    ]));
    expect([again.counters.created, again.counters.updated, again.counters.unchanged]).toEqual([0, 0, 2]);
  });
});
