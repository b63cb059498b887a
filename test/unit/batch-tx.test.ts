/**
 * The set-at-a-time operations of a write transaction (BatchTx) mean exactly what the singular
 * operations mean, called once per element, in order: two stores seeded alike, one fed the singular
 * operations and the other the batch ones, end up holding the same rows; batch reads answer what
 * the singular reads answer; changes numbered from nextChangeSeq() continue the log, and the store's
 * own numbering continues after them (also after a purge: seqs are never reused); writes larger than
 * one statement can bind are chunked. On every store kind (SQLite, and PostgreSQL when configured).
 */
import { afterEach, describe, expect, it } from 'vitest';
import type { EntityType } from '../../src/model/records.ts';
import type { ChangeRow, SourceRecordRef, SourceRecordRow, Store, StoreTx } from '../../src/store/types.ts';
import { openTestStore, storeKinds, type StoreKind } from '../support/stores.ts';

const T0 = '2030-01-01T00:00:00.000Z';
const T1 = '2030-01-02T00:00:00.000Z';
const T2 = '2030-01-03T00:00:00.000Z';

let stores: Store[] = [];
afterEach(async () => {
  for (const s of stores) await s.close();
  stores = [];
});

async function open(kind: StoreKind): Promise<Store> {
  const s = await openTestStore(kind);
  stores.push(s);
  return s;
}

const src = (key: string, entityId: string | null, v: number, type: EntityType = 'person'): SourceRecordRow => ({
  source: 'sis', type, key, entityId, data: { key, v }, hash: `h${v}`, lastModified: null, seenRun: v,
});
const ref = (key: string, type: EntityType = 'person'): SourceRecordRef => ({ source: 'sis', type, key });
const ent = (id: string, type: EntityType, v: number) => ({ id, type, data: { v }, updatedAt: T0, updatedSeq: v });

/** Rows both stores start from: people with links, match keys, pseudonyms, view times, overrides, suppressions. */
async function seed(s: Store): Promise<void> {
  await s.transaction(async (tx) => {
    for (const id of ['per_2', 'per_4', 'per_5']) await tx.putEntity(ent(id, 'person', 1));
    await tx.putEntity(ent('cls_1', 'class', 1));
    await tx.putEntity(ent('enr_1', 'enrollment', 1));
    await tx.putSourceRecord(src('k2', 'per_2', 1));
    await tx.putSourceRecord(src('k4', 'per_4', 1));
    await tx.putSourceRecord(src('k4b', 'per_4', 2));
    await tx.putSourceRecord(src('k9', null, 1));
    await tx.setLinks('per_4', [{ rel: 'person.school', to: 'sch_1' }]);
    await tx.setLinks('enr_1', [{ rel: 'enrollment.class', to: 'cls_1' }, { rel: 'enrollment.person', to: 'per_2' }]);
    await tx.setMatchKeys('per_4', [{ kind: 'sis', value: 'm4' }]);
    await tx.setMatchKeys('per_2', [{ kind: 'sis', value: 'm2' }, { kind: 'email', value: 'e2' }]);
    await tx.setMatchKeys('per_5', [{ kind: 'email', value: 'e2' }]);
    await tx.setDomainVersion('lms', 2, T0);
    await tx.setDomainVersion('analytics', 1, T0);
    await tx.putPseudonyms([
      { domain: 'lms', version: 1, entityId: 'per_2', value: 'old2' },
      { domain: 'lms', version: 2, entityId: 'per_2', value: 'lms2' },
      { domain: 'analytics', version: 1, entityId: 'per_2', value: 'an2' },
      { domain: 'lms', version: 2, entityId: 'per_4', value: 'lms4' },
    ]);
    await tx.putViewTimes([{ view: 'roster', entityId: 'per_4', type: 'person', updatedAt: T0, updatedSeq: 1 }]);
    await tx.setViewFingerprint('roster', 'test', T0);
    await tx.setIdentityOverride(ref('k4'), 'per_4', T0);
    await tx.setIdentityOverride(ref('k7'), 'per_2', T0);
    await tx.addSuppressions([{ source: 'sis', type: 'person', keyHash: 'hx', erasure: 'er1', createdAt: T0 }]);
  });
}

const ENTITY_IDS = ['per_1', 'per_2', 'per_3', 'per_4', 'per_5', 'per_6', 'cls_1', 'enr_1', 'per_x'];
const REFS = ['k1', 'k2', 'k3', 'k4', 'k4b', 'k9', 'k10', 'kx'].map((k) => ref(k));
const RELS = ['person.school', 'enrollment.class', 'enrollment.person', 'person.org'];
const KEYS = [{ kind: 'sis', value: 'm1' }, { kind: 'sis', value: 'm2' }, { kind: 'sis', value: 'm4' }, { kind: 'email', value: 'e2' }, { kind: 'email', value: 'e3' }];

/** Everything the operations can touch, read back through the Store interface. */
async function snapshot(s: Store) {
  const inTx = await s.transaction(async (tx) => ({
    sources: await Promise.all(REFS.map((r) => tx.getSourceRecord(r.source, r.type, r.key))),
    matches: await Promise.all(KEYS.map((k) => tx.findByMatchKey(k.kind, k.value))),
  }));
  const links: Record<string, Map<string, string[]>> = {};
  for (const rel of RELS) links[rel] = await s.linkedFrom(rel, ['sch_1', 'sch_2', 'cls_1', 'per_2', 'org_1', 'org_2']);
  return {
    entities: await s.getEntities(ENTITY_IDS),
    subject: await s.subjectRows(ENTITY_IDS),
    links,
    changes: await s.changes({ afterSeq: 0, limit: 1000 }),
    head: await s.headSeq(),
    ...inTx,
  };
}

describe.each(storeKinds())('BatchTx on %s', (kind) => {
  it('writes what the singular operations write, once per element and in order', async () => {
    const [one, many] = [await open(kind), await open(kind)];
    await seed(one);
    await seed(many);

    const sources = [src('k1', 'per_1', 1), src('k2', 'per_2', 5), src('k3', null, 1), src('k1', 'per_3', 2), src('k10', 'per_6', 3, 'org')];
    const deletedSources = [ref('k9'), ref('kx'), ref('k3')];
    // per_1 twice: the second write updates the first, and keeps the type it was inserted with.
    const entities = [ent('per_1', 'person', 2), ent('per_2', 'person', 3), ent('per_3', 'person', 1), ent('per_1', 'org', 4), ent('per_6', 'org', 1)];
    const deletedEntities = ['per_4', 'per_x', 'per_3'];
    const links = [
      { fromId: 'per_1', links: [{ rel: 'person.school', to: 'sch_1' }, { rel: 'person.school', to: 'sch_2' }] },
      { fromId: 'enr_1', links: [{ rel: 'enrollment.class', to: 'cls_1' }, { rel: 'enrollment.class', to: 'cls_1' }] },
      { fromId: 'per_6', links: [{ rel: 'person.org', to: 'org_1' }] },
      { fromId: 'per_1', links: [{ rel: 'person.school', to: 'sch_2' }, { rel: 'person.org', to: 'org_2' }] },
      { fromId: 'per_2', links: [] },
    ];
    const matchKeys = [
      { entityId: 'per_1', keys: [{ kind: 'sis', value: 'm1' }, { kind: 'email', value: 'e3' }] },
      { entityId: 'per_2', keys: [{ kind: 'sis', value: 'm2' }, { kind: 'sis', value: 'm2' }] },
      { entityId: 'per_1', keys: [{ kind: 'sis', value: 'm1' }] },
      { entityId: 'per_5', keys: [] },
    ];

    await one.transaction(async (tx) => {
      for (const r of sources) await tx.putSourceRecord(r);
      for (const r of deletedSources) await tx.deleteSourceRecord(r.source, r.type, r.key);
      for (const e of entities) await tx.putEntity(e);
      for (const id of deletedEntities) await tx.deleteEntity(id);
      for (const l of links) await tx.setLinks(l.fromId, l.links);
      for (const m of matchKeys) await tx.setMatchKeys(m.entityId, m.keys);
    });
    await many.transaction(async (tx) => {
      await tx.putSourceRecords(sources);
      await tx.deleteSourceRecords(deletedSources);
      await tx.putEntities(entities);
      await tx.deleteEntities(deletedEntities);
      await tx.replaceLinks(links);
      await tx.replaceMatchKeys(matchKeys);
    });

    const expected = await snapshot(one);
    // The scenario does what it says, so the comparison below compares something.
    expect(expected.entities.map((e) => e && [e.id, e.type, (e.data as unknown as { v: number }).v])).toEqual([
      ['per_1', 'person', 4], ['per_2', 'person', 3], undefined, undefined, ['per_5', 'person', 1], ['per_6', 'org', 1], ['cls_1', 'class', 1], ['enr_1', 'enrollment', 1], undefined,
    ]);
    expect(expected.sources.map((r) => r && [r.key, r.entityId, r.seenRun])).toEqual([
      ['k1', 'per_3', 2], ['k2', 'per_2', 5], undefined, ['k4', 'per_4', 1], ['k4b', 'per_4', 2], undefined, undefined, undefined,
    ]);
    expect(expected.links['person.school']!.get('sch_2')).toEqual(['per_1']);
    expect(expected.links['person.school']!.get('sch_1')).toEqual([]);
    expect(expected.matches).toEqual([['per_1'], ['per_2'], [], [], []]);
    expect(await snapshot(many)).toEqual(expected);
  });

  it('reads what the singular reads return', async () => {
    const s = await open(kind);
    await seed(s);
    await s.transaction(async (tx) => {
      const sorted = <T>(xs: T[], key: (x: T) => string) => [...xs].sort((a, b) => (key(a) < key(b) ? -1 : key(a) > key(b) ? 1 : 0));
      const defined = <T>(xs: (T | undefined)[]) => xs.filter((x): x is T => x !== undefined);
      const refKey = (r: SourceRecordRef) => `${r.type}/${r.key}`;

      const bySingular = defined(await Promise.all(REFS.map((r) => tx.getSourceRecord(r.source, r.type, r.key))));
      expect(bySingular.length).toBe(4);
      expect(sorted(await tx.getSourceRecords(REFS), refKey)).toEqual(sorted(bySingular, refKey));
      expect(sorted(await tx.entityIdsOfRecords(REFS), refKey)).toEqual(sorted(bySingular.map((r) => ({ source: r.source, type: r.type, key: r.key, entityId: r.entityId })), refKey));

      const ofEntities = (await Promise.all(ENTITY_IDS.map((id) => tx.sourceRecordsOf(id)))).flat();
      expect(ofEntities.length).toBe(3);
      expect(sorted(await tx.sourceRecordsOfEntities(ENTITY_IDS), refKey)).toEqual(sorted(ofEntities, refKey));

      const entities = defined(await Promise.all(ENTITY_IDS.map((id) => tx.getEntity(id))));
      expect(sorted(await tx.entitiesById(ENTITY_IDS), (e) => e.id)).toEqual(sorted(entities, (e) => e.id));

      for (const rel of RELS) {
        const targets = ['sch_1', 'cls_1', 'per_2', 'org_1'];
        const one = (await Promise.all(targets.map(async (to) => (await tx.linksTo(rel, to)).map((from) => ({ from, to }))))).flat();
        expect(await tx.linksToMany(rel, targets)).toEqual(one);
      }

      const byKey = (await Promise.all(KEYS.map(async (k) => (await tx.findByMatchKey(k.kind, k.value)).map((entityId) => ({ ...k, entityId }))))).flat();
      expect(byKey.length).toBe(4);
      expect(await tx.matchKeyEntities(KEYS)).toEqual(byKey);

      const overridden = [...REFS, ref('k7')];
      const overrides = defined(await Promise.all(overridden.map(async (r) => {
        const entityId = await tx.identityOverride(r);
        return entityId === undefined ? undefined : { ...r, entityId };
      })));
      expect(overrides.length).toBe(2);
      expect(sorted(await tx.identityOverridesOf(overridden), refKey)).toEqual(sorted(overrides, refKey));

      const entries = [{ type: 'person' as const, keyHash: 'hx' }, { type: 'person' as const, keyHash: 'hy' }, { type: 'org' as const, keyHash: 'hx' }];
      const suppressed = [];
      for (const e of entries) if (await tx.isSuppressed('sis', e.type, e.keyHash)) suppressed.push(e);
      expect(suppressed).toEqual([entries[0]]);
      expect(await tx.suppressedOf('sis', entries)).toEqual(suppressed);
      expect(await tx.suppressedOf('other', entries)).toEqual([]);
      expect(await tx.hasSuppressions('sis')).toBe(true);
      expect(await tx.hasSuppressions('other')).toBe(false);

      const pseudonyms = new Map<string, Record<string, string>>();
      for (const id of ENTITY_IDS) {
        const p = await tx.pseudonymsOfEntity(id);
        if (Object.keys(p).length) pseudonyms.set(id, p);
      }
      expect(pseudonyms.get('per_2')).toEqual({ lms: 'lms2', analytics: 'an2' });
      expect(await tx.pseudonymsOfEntities(ENTITY_IDS)).toEqual(pseudonyms);

      // Empty lists read nothing and write nothing.
      expect(await tx.entitiesById([])).toEqual([]);
      expect(await tx.getSourceRecords([])).toEqual([]);
      await tx.putEntities([]);
      await tx.appendChanges([]);
    });
  });

  it('numbers changes from nextChangeSeq, and the store continues after them, after a purge too', async () => {
    const [one, many] = [await open(kind), await open(kind)];
    const change = (i: number, at: string): Omit<ChangeRow, 'seq'> => ({
      at, entityId: `per_${i}`, type: 'person', op: i % 2 ? 'created' : 'updated', fields: i % 2 ? [] : ['name'], source: 'sis',
      ...(i === 3 ? { generalised: ['birthYear'] } : {}), ...(i === 4 ? { op: 'deleted' as const, before: { v: i, _pseudonyms: { lms: 'x' } } } : {}),
    });
    const first = [1, 2, 3, 4].map((i) => change(i, T0));

    const singular = await one.transaction(async (tx) => {
      const seqs: number[] = [];
      for (const c of first) seqs.push(await tx.appendChange(c));
      return seqs;
    });
    const batched = await many.transaction(async (tx) => {
      const next = await tx.nextChangeSeq();
      const rows = first.map((c, i) => ({ ...c, seq: next + i }));
      await tx.appendChanges(rows);
      expect(await tx.nextChangeSeq()).toBe(next + rows.length);
      return rows.map((r) => r.seq);
    });
    expect(batched).toEqual(singular);
    expect(await many.changes({ afterSeq: 0, limit: 100 })).toEqual(await one.changes({ afterSeq: 0, limit: 100 }));

    // The store's own numbering continues after the batch's seqs.
    const after = async (s: Store) => s.transaction((tx) => tx.appendChange(change(5, T1)));
    const next = await after(one);
    expect(next).toBe(singular.at(-1)! + 1);
    expect(await after(many)).toBe(next);

    // A log purged to nothing: the next seq still follows the last one ever handed out.
    for (const s of [one, many]) {
      expect(await s.purgeChanges(T2)).toBe(5);
      expect(await s.headSeq()).toBe(next);
      await s.transaction(async (tx) => {
        expect(await tx.nextChangeSeq()).toBe(next + 1);
        // A seq handed out before (and purged since) is refused, and so is one out of order.
        await expect(tx.appendChanges([{ ...change(6, T2), seq: next }])).rejects.toThrow(/does not follow/);
        await expect(tx.appendChanges([{ ...change(6, T2), seq: next + 2 }, { ...change(7, T2), seq: next + 1 }])).rejects.toThrow(/does not follow/);
        await tx.appendChanges([{ ...change(6, T2), seq: next + 1 }]);
      });
      expect(await s.transaction((tx) => tx.appendChange(change(7, T2)))).toBe(next + 2);
      expect((await s.changes({ afterSeq: 0, limit: 10 })).map((c) => c.seq)).toEqual([next + 1, next + 2]);
    }
  });

  it('inserts rows claimed fresh without a conflict check, upserts the rest, and fails on a false claim', async () => {
    const s = await open(kind);
    await seed(s);
    const view = (entityId: string, seq: number) => ({ view: 'roster', entityId, type: 'person' as const, updatedAt: T1, updatedSeq: seq });
    await s.transaction(async (tx) => {
      // New rows (per_7, k7) beside stored ones (per_4, k4) in the same calls: only the new are claimed fresh.
      await tx.putSourceRecords([src('k7', 'per_7', 3), src('k4', 'per_4', 3)], { fresh: (r) => r.key === 'k7' });
      const keys = await tx.putEntities([ent('per_7', 'person', 3), ent('per_4', 'person', 3)], { fresh: (id) => id === 'per_7' });
      expect([...keys.keys()].sort()).toEqual(['per_4', 'per_7']);
      await tx.replaceLinks([
        { fromId: 'per_7', links: [{ rel: 'person.school', to: 'sch_2' }], noneStored: true },
        { fromId: 'per_4', links: [{ rel: 'person.school', to: 'sch_2' }] },
      ], keys);
      await tx.putViewTimes([view('per_7', 7), view('per_4', 8)], keys, { fresh: (id) => id === 'per_7' });
    });
    const sources = await s.transaction((tx) => tx.getSourceRecords([ref('k7'), ref('k4')]));
    expect(sources.map((r) => [r.key, r.seenRun]).sort()).toEqual([['k4', 3], ['k7', 3]]);
    expect((await s.getEntities(['per_7', 'per_4'])).map((e) => (e!.data as unknown as { v: number }).v)).toEqual([3, 3]);
    expect((await s.linkedFrom('person.school', ['sch_1', 'sch_2'])).get('sch_2')).toEqual(['per_4', 'per_7']);
    const times = await s.viewTimes('roster', ['per_7', 'per_4']);
    expect([times.get('per_7')?.updatedSeq, times.get('per_4')?.updatedSeq]).toEqual([7, 8]);

    // A row claimed fresh that is stored fails its statement, rather than being written twice or
    // silently kept (each in a transaction of its own: PostgreSQL ends one at its first error).
    const falseClaims: ((tx: StoreTx) => Promise<unknown>)[] = [
      (tx) => tx.putSourceRecords([src('k2', 'per_2', 9)], { fresh: () => true }),
      (tx) => tx.putEntities([ent('per_2', 'person', 9)], { fresh: () => true }),
      async (tx) => tx.putViewTimes([view('per_4', 9)], await tx.putEntities([ent('per_4', 'person', 9)]), { fresh: () => true }),
    ];
    for (const claim of falseClaims) await expect(s.transaction(claim)).rejects.toThrow();
    // A stored link claimed fresh (named by the key its entity's write gave back) is met again.
    await expect(s.transaction(async (tx) => {
      const keys = await tx.putEntities([ent('enr_1', 'enrollment', 2)]);
      await tx.replaceLinks([{ fromId: 'enr_1', links: [{ rel: 'enrollment.class', to: 'cls_1' }], noneStored: true }], keys);
    })).rejects.toThrow();
    // Nothing of the failed transactions stayed.
    expect((await s.getEntities(['per_2']))[0]!.data).toEqual({ v: 1 });
    expect((await s.viewTimes('roster', ['per_4'])).get('per_4')?.updatedSeq).toBe(8);
  });

  it('raises the first failure of a write sent in several statements, and keeps nothing of it', async () => {
    const s = await open(kind);
    await seed(s);
    // 1,200 rows: three statements, sent without waiting for each answer (inOrder). The stored k2,
    // falsely claimed fresh, fails the first; what is raised must be that failure, not PostgreSQL's
    // refusal of the statements queued behind it ("current transaction is aborted").
    const rows = [src('k2', 'per_2', 9), ...Array.from({ length: 1199 }, (_, i) => src(`f${i}`, `per_f${i}`, 9))];
    await expect(s.transaction((tx) => tx.putSourceRecords(rows, { fresh: () => true }))).rejects.toThrow(/unique|duplicate/i);
    const back = await s.transaction((tx) => tx.getSourceRecords([ref('k2'), ref('f0'), ref('f1198')]));
    expect(back.map((r) => [r.key, r.seenRun])).toEqual([['k2', 1]]);
  });

  it('chunks writes larger than one statement can bind, and reads them back in one call', async () => {
    const s = await open(kind);
    // 8 parameters a row: more rows than one statement binds on either store (SQLite 32766, PostgreSQL 65535), and than one statement takes.
    const rows = Array.from({ length: 9000 }, (_, i) => src(`n${i}`, `per_n${i}`, 1));
    rows.push(src('n0', 'per_last', 7));
    await s.transaction((tx) => tx.putSourceRecords(rows));
    await s.transaction(async (tx) => {
      const back = await tx.getSourceRecords(rows.map((r) => ref(r.key)));
      expect(back.length).toBe(9000);
      const n0 = back.find((r) => r.key === 'n0')!;
      expect([n0.entityId, n0.seenRun]).toEqual(['per_last', 7]);
      expect(await tx.countSourceRecords('sis', ['person'])).toBe(9000);
      await tx.deleteSourceRecords(rows.slice(0, 8500).map((r) => ref(r.key)));
      expect(await tx.countSourceRecords('sis', ['person'])).toBe(500);
    });
  });
});
