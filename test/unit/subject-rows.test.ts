/**
 * The store's reads for a subject access export, on SQLite and PostgreSQL: everything keyed to the
 * given entities and nothing keyed to others — pseudonyms of every key version with the current
 * one marked, match keys, identity overrides, the change log without deleted records' last states,
 * the ledger — and a source record's entity read outside a write transaction.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Store } from '../../src/store/types.ts';
import { openTestStore, storeKinds } from '../support/stores.ts';

const AT = '2026-11-01T10:00:00.000Z';

describe.each(storeKinds())('subjectRows on %s', (kind) => {
  let store: Store;
  beforeAll(async () => {
    store = await openTestStore(kind);
    await store.transaction(async (tx) => {
      for (const [id, key] of [['per_a', 'k-a'], ['per_b', 'k-b']] as const) {
        await tx.putEntity({ id, type: 'person', data: { givenName: 'Synthetic', familyName: id, roles: ['student'] }, updatedAt: AT, updatedSeq: 1 });
        for (const source of ['src-2', 'src-1']) {
          await tx.putSourceRecord({ source, type: 'person', key, entityId: id, data: { raw: { givenName: 'Synthetic' }, resolved: null, match: [] }, hash: 'h', lastModified: AT, seenRun: 1 });
        }
        await tx.setMatchKeys(id, [{ kind: 'sisId', value: `hash-${id}` }]);
        await tx.appendChange({ at: AT, entityId: id, type: 'person', op: 'created', fields: ['givenName'], source: 'src-1' });
      }
      await tx.putSourceRecord({ source: 'src-1', type: 'enrollment', key: 'e-a', entityId: 'enr_a', data: { raw: { role: 'student' } }, hash: 'h', lastModified: null, seenRun: 1 });
      await tx.appendChange({ at: AT, entityId: 'enr_a', type: 'enrollment', op: 'deleted', fields: [], source: 'src-1', before: { role: 'student' } });
      await tx.setDomainVersion('analytics', 2, AT);
      await tx.putPseudonyms([
        { domain: 'analytics', version: 1, entityId: 'per_a', value: 'p1_old' },
        { domain: 'analytics', version: 2, entityId: 'per_a', value: 'p2_new' },
        { domain: 'analytics', version: 2, entityId: 'per_b', value: 'p2_other' },
      ]);
      await tx.setIdentityOverride({ source: 'src-2', type: 'person', key: 'k-a' }, 'per_a', AT);
      await tx.recordDisclosures('lms', ['per_a', 'per_b'], AT);
      await tx.recordDisclosures('analytics-team', ['per_a'], AT);
    });
  });
  afterAll(async () => {
    await store?.close();
  });

  it('returns every row keyed to the entities, in a stable order, and none of another person', async () => {
    const rows = await store.subjectRows(['per_a', 'enr_a']);
    expect(rows.sourceRecords.map((r) => [r.source, r.type, r.key, r.entityId])).toEqual([
      ['src-1', 'enrollment', 'e-a', 'enr_a'],
      ['src-1', 'person', 'k-a', 'per_a'],
      ['src-2', 'person', 'k-a', 'per_a'],
    ]);
    expect(rows.sourceRecords[1]!.data).toEqual({ raw: { givenName: 'Synthetic' }, resolved: null, match: [] });
    expect(rows.matchKeys).toEqual([{ entityId: 'per_a', kind: 'sisId', value: 'hash-per_a' }]);
    expect(rows.pseudonyms).toEqual([
      { entityId: 'per_a', domain: 'analytics', version: 1, value: 'p1_old', current: false },
      { entityId: 'per_a', domain: 'analytics', version: 2, value: 'p2_new', current: true },
    ]);
    expect(rows.overrides).toEqual([{ source: 'src-2', type: 'person', key: 'k-a', entityId: 'per_a', decidedAt: AT }]);
    expect(rows.changes.map((c) => [c.entityId, c.op])).toEqual([['per_a', 'created'], ['enr_a', 'deleted']]);
    // A deleted record's last state is data the export shows elsewhere, or no longer holds: not repeated here.
    for (const c of rows.changes) expect(c).not.toHaveProperty('before');
    expect(rows.disclosures.map((d) => [d.client, d.entityId])).toEqual([['analytics-team', 'per_a'], ['lms', 'per_a']]);
    expect(JSON.stringify(rows)).not.toContain('per_b');
  });

  it('finds the entity of a source record, and nothing for an unknown one', async () => {
    expect(await store.entityOfRecord({ source: 'src-2', type: 'person', key: 'k-b' })).toBe('per_b');
    expect(await store.entityOfRecord({ source: 'src-2', type: 'person', key: 'k-none' })).toBeUndefined();
    expect(await store.entityOfRecord({ source: 'src-1', type: 'org', key: 'k-a' })).toBeUndefined();
  });

  it('returns empty lists for no entities', async () => {
    expect(await store.subjectRows([])).toEqual({ sourceRecords: [], matchKeys: [], pseudonyms: [], overrides: [], changes: [], disclosures: [] });
  });
});
