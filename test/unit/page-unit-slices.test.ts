/**
 * A page unit written in slices (PageUnit.flushAhead): the plan written so far becomes what the
 * unit knows is stored, and planning goes on while the store still executes the writes (on
 * PostgreSQL). Random sequences of the unit's operations, the same on two stores: one flushed only
 * at the end, one also at random points in between. Every read along the way must give the same
 * answer on both, and the stores must end up holding the same rows: entities with their seqs,
 * source records, links and their reverse lookups, match keys, the change log, pseudonyms and view
 * times. The operations touch a small set of ids again and again, so a slice often rewrites,
 * deletes or re-creates what the slice before it wrote.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { buildUnifiedSchema } from '../../src/graphql/schema.ts';
import { setupPrivacy } from '../../src/graphql/privacy.ts';
import { KeyRing } from '../../src/privacy/pseudonym.ts';
import { ingestPolicy, type IngestPolicy } from '../../src/store/ingest-policy.ts';
import { openPageUnit, type PageUnit } from '../../src/store/page-unit.ts';
import type { Store, StoreTx } from '../../src/store/types.ts';
import { RosterDataset } from '../../src/demo/dataset.ts';
import { directConnector } from '../../src/demo/direct-connector.ts';
import { prng } from '../../src/demo/generator.ts';
import { syncSource } from '../../src/sync/runner.ts';
import { demoPrivacyConfig, TEST_MASTER_KEY } from '../support/privacy.ts';
import { openTestStore, storedViewRows, storeKinds } from '../support/stores.ts';

const ENTITIES = ['per_s1', 'per_s2', 'per_s3', 'per_s4', 'per_s5'];
const RECORDS = ['k1', 'k2', 'k3', 'k4', 'k5', 'k6'];
const TARGETS = ['cls_t1', 'cls_t2', 'cls_t3'];
const MATCH = ['m1', 'm2', 'm3'];
const AT = '2030-01-01T00:00:00.000Z';

/**
 * One transaction's worth of random operations. `flushAt(i)` says whether to flush ahead before
 * operation i. Returns what every read answered, seqs left out (a seq read before its flush is
 * provisional, after it final: both become the same seq when written).
 */
async function run(unit: PageUnit, seed: number, ops: number, created: Set<string>, flushAt: (i: number) => boolean): Promise<unknown[]> {
  const rnd = prng(seed);
  const pick = <T>(xs: readonly T[]) => xs[Math.floor(rnd() * xs.length)]!;
  const seen: unknown[] = [];
  const withoutSeq = (e: { updatedSeq: number } | undefined) => e && { ...e, updatedSeq: 0 };
  for (let i = 0; i < ops; i++) {
    if (flushAt(i)) await unit.flushAhead();
    const r = rnd();
    const id = pick(ENTITIES);
    if (r < 0.16) {
      // Create or update an entity, logging the change as ingest does.
      const existing = await unit.getEntity(id);
      if (!existing && !created.has(id)) unit.declareNew(id);
      created.add(id);
      const seq = await unit.appendChange({ at: AT, entityId: id, type: 'person', op: existing ? 'updated' : 'created', fields: ['givenName'], source: 'a' });
      await unit.putEntity({ id, type: 'person', data: { givenName: `n${seed}-${i}`, roles: ['student'] }, updatedAt: AT, updatedSeq: seq });
    } else if (r < 0.24) {
      const existing = await unit.getEntity(id);
      if (existing) {
        await unit.deleteEntity(id);
        await unit.appendChange({ at: AT, entityId: id, type: 'person', op: 'deleted', fields: [], source: 'a', before: existing.data });
      }
    } else if (r < 0.36) {
      if (await unit.getEntity(id)) await unit.setLinks(id, TARGETS.filter(() => rnd() < 0.5).map((to) => ({ rel: 'enrollment.class', to })));
    } else if (r < 0.44) {
      if (await unit.getEntity(id)) await unit.setMatchKeys(id, MATCH.filter(() => rnd() < 0.4).map((value) => ({ kind: 'email', value })));
    } else if (r < 0.58) {
      const key = pick(RECORDS);
      const entityId = rnd() < 0.8 ? id : null;
      await unit.putSourceRecord({ source: 'a', type: 'person', key, entityId, data: { v: `${seed}-${i}` }, hash: `h${seed}-${i}`, lastModified: null, seenRun: seed });
    } else if (r < 0.63) {
      await unit.deleteSourceRecord('a', 'person', pick(RECORDS));
    } else if (r < 0.68) {
      // A stored record seen again unchanged: only its run moves (the flush's seen-only path).
      const row = await unit.getSourceRecord('a', 'person', pick(RECORDS));
      if (row) await unit.putSourceRecord({ ...row, seenRun: row.seenRun + 1000 });
    } else if (r < 0.71) {
      seen.push(['entity', id, withoutSeq(await unit.getEntity(id))]);
    } else if (r < 0.74) {
      // Written again as read, its seq kept: a seq handed out before a flush must be the one stored.
      const e = await unit.getEntity(id);
      if (e) await unit.putEntity({ ...e, data: { ...(e.data as object), touched: i } });
    } else if (r < 0.8) {
      const key = pick(RECORDS);
      seen.push(['record', key, await unit.getSourceRecord('a', 'person', key), await unit.resolveKey('a', 'person', key)]);
    } else if (r < 0.85) {
      seen.push(['recordsOf', id, (await unit.sourceRecordsOf(id)).map((x) => x.key).sort()]);
    } else if (r < 0.9) {
      const to = pick(TARGETS);
      seen.push(['linksTo', to, await unit.linksTo('enrollment.class', to)]);
    } else if (r < 0.94) {
      const value = pick(MATCH);
      seen.push(['match', value, await unit.findByMatchKey('email', value)]);
    } else if (r < 0.97) {
      seen.push(['pseudonyms', id, await unit.pseudonymsOfEntity(id)]);
    } else {
      seen.push(['count', await unit.countSourceRecords('a', ['person'])]);
    }
  }
  await unit.flush();
  return seen;
}

/** Everything the unit's operations can have left in a store, read back in one transaction. */
async function dump(store: Store, views: string[]) {
  const changes = await store.changes({ afterSeq: 0, limit: 100_000 });
  const viewTimes: unknown[] = [];
  for (const view of views) viewTimes.push(...[...(await store.viewTimes(view, ENTITIES))].sort());
  const rest = await store.transaction(async (tx: StoreTx) => {
    const out: unknown[] = [];
    for (const id of ENTITIES) {
      const entity = await tx.getEntity(id);
      const pseudonyms = await tx.pseudonymsOfEntity(id);
      // A stored pseudonym's person is stored (StoreTx.putPseudonyms): walks in pseudonym order rely on it.
      if (entity?.type !== 'person') expect(pseudonyms, `pseudonyms of ${id}, not a stored person`).toEqual({});
      out.push(entity, (await tx.sourceRecordsOf(id)).map((r) => r.key).sort(), pseudonyms);
    }
    for (const key of RECORDS) out.push(await tx.getSourceRecord('a', 'person', key));
    for (const to of TARGETS) out.push(await tx.linksTo('enrollment.class', to));
    for (const value of MATCH) out.push(await tx.findByMatchKey('email', value));
    out.push(await tx.countSourceRecords('a', ['person']));
    return out;
  });
  return { changes, viewTimes, viewRows: await storedViewRows(store), rest };
}

type TxMethod = (...args: unknown[]) => Promise<unknown>;
/** The store, with methods of its transactions replaced where `replace` gives a replacement for the original. */
function replacingTx(store: Store, replace: (name: string | symbol, original: TxMethod) => TxMethod | undefined): Store {
  return new Proxy(store, {
    get(target, prop) {
      if (prop !== 'transaction') return Reflect.get(target, prop, target);
      return <T>(fn: (tx: StoreTx) => Promise<T>) => target.transaction((tx) => fn(new Proxy(tx, {
        get(t, p) {
          const v = Reflect.get(t, p, t) as unknown;
          if (typeof v !== 'function') return v;
          const original = (v as TxMethod).bind(t);
          return replace(p, original) ?? original;
        },
      })));
    },
  });
}

let stores: Store[] = [];
afterEach(async () => {
  for (const s of stores) await s.close();
  stores = [];
});

describe.each(storeKinds())('page unit written in slices on %s', (kind) => {
  it('reads and leaves what one flush at the end leaves, over random operations and random slice points', async () => {
    const privacy = setupPrivacy(demoPrivacyConfig(':memory:'), buildUnifiedSchema(), { keyring: new KeyRing(TEST_MASTER_KEY, 'test') });
    const [whole, sliced] = [await openTestStore(kind), await openTestStore(kind)];
    stores.push(whole, sliced);
    const policyOf = async (s: Store): Promise<IngestPolicy> => ingestPolicy(await privacy.ingest(s));
    const [wholePolicy, slicedPolicy] = [await policyOf(whole), await policyOf(sliced)];
    for (const s of [whole, sliced]) await privacy.viewTimes.backfill(s);
    const [wholeCreated, slicedCreated] = [new Set<string>(), new Set<string>()];
    let flushes = 0;
    // One transaction per seed, on the same two stores: later seeds start from what earlier ones stored.
    for (let seed = 1; seed <= 40; seed++) {
      const points = prng(seed * 7919);
      const a = await whole.transaction((tx) => run(openPageUnit(tx, wholePolicy), seed, 60, wholeCreated, () => false));
      const b = await sliced.transaction((tx) => run(openPageUnit(tx, slicedPolicy), seed, 60, slicedCreated, (i) => i > 0 && points() < 0.15 && ++flushes > 0));
      expect(b, `reads of seed ${seed}`).toEqual(a);
    }
    expect(flushes).toBeGreaterThan(100);
    const views = [...privacy.purposes.keys()];
    const [da, db] = [await dump(whole, views), await dump(sliced, views)];
    expect(da.changes.length).toBeGreaterThan(200);
    expect(da.viewTimes.length).toBeGreaterThan(0);
    // Rows only where a time is not the entity's own, on both.
    expect(da.viewRows.filter((r) => Number(r.row.split(' ')[2]) === r.own)).toEqual([]);
    expect(db).toEqual(da);
  }, 120_000);

  it('a failed slice write is what the next read of the unit raises, and nothing of the transaction stays', async () => {
    const privacy = setupPrivacy(demoPrivacyConfig(':memory:'), buildUnifiedSchema(), { keyring: new KeyRing(TEST_MASTER_KEY, 'test') });
    const store = await openTestStore(kind);
    stores.push(store);
    const policy = ingestPolicy(await privacy.ingest(store));
    await store.transaction(async (tx) => {
      const unit = openPageUnit(tx, policy);
      await unit.putSourceRecord({ source: 'a', type: 'person', key: 'k1', entityId: null, data: {}, hash: 'h', lastModified: null, seenRun: 1 });
      await unit.flush();
    });
    const failure = store.transaction(async (tx) => {
      const unit = openPageUnit(tx, policy);
      // Claimed fresh (loaded as absent) while stored: the insert without a conflict check fails.
      await unit.loadRecords([]);
      (unit as unknown as { baseRecord: Map<string, null> }).baseRecord.set('a\0person\0k1', null);
      await unit.putSourceRecord({ source: 'a', type: 'person', key: 'k1', entityId: null, data: { v: 2 }, hash: 'h2', lastModified: null, seenRun: 2 });
      await unit.putSourceRecord({ source: 'a', type: 'person', key: 'k2', entityId: null, data: {}, hash: 'h', lastModified: null, seenRun: 2 });
      await unit.flushAhead();
      await unit.getSourceRecord('a', 'person', 'k9');
    });
    await expect(failure).rejects.toThrow(/UNIQUE|unique|duplicate/);
    const left = await store.transaction(async (tx) => [await tx.getSourceRecord('a', 'person', 'k1'), await tx.getSourceRecord('a', 'person', 'k2')]);
    expect(left[0]?.hash).toBe('h');
    expect(left[1]).toBeUndefined();
  });

  it('a sync whose slice write fails while the next slice is planned fails with the error of that write and keeps nothing of the group', async () => {
    const ds = RosterDataset.generate({ students: 60, teachers: 4, classes: 5, schools: 2 });
    const privacy = setupPrivacy(demoPrivacyConfig(':memory:'), buildUnifiedSchema(), { keyring: new KeyRing(TEST_MASTER_KEY, 'test') });
    const store = await openTestStore(kind);
    stores.push(store);
    // The third write of people fails: two slices of the people's group were written before it, and
    // the next slice is planned while it runs.
    let entityWrites = 0;
    const failing = replacingTx(store, (name, original) => name === 'putEntities'
      ? async (...args) => {
        if ((args[0] as { type: string }[])[0]?.type === 'person' && ++entityWrites === 3) throw new Error('the disk is on fire');
        return original(...args);
      }
      : undefined);
    const s = await syncSource(failing, directConnector('demo', ds, { pageSize: 500 }), { ...(await privacy.ingest(store)), sliceRecords: 20, onFailure: 'return' });
    expect(s.status).toBe('failed');
    expect(s.error).toMatch(/could not store the page: the disk is on fire/);
    expect(entityWrites).toBe(3);
    // The groups before the people's are kept; of the people's nothing stays, not even the slices
    // written before the failure, nor any change logged for them.
    expect(s.byResource.person).toBeUndefined();
    const counts = await store.counts();
    expect(counts.person).toBe(0);
    const kept = Object.values(s.byResource).reduce((n, r) => n + r.records, 0);
    expect(kept).toBeGreaterThan(0);
    expect(Object.values(counts).reduce((a, b) => a + b, 0)).toBe(kept);
    const changes = await store.changes({ afterSeq: 0, limit: 10_000 });
    expect(changes.length).toBe(kept);
    expect(changes.some((c) => c.type === 'person')).toBe(false);
  });

  it('a sync whose planning fails while a slice is still being written ends the transaction only after that write: none of it stays', async () => {
    const ds = RosterDataset.generate({ students: 60, teachers: 4, classes: 5, schools: 2 });
    const privacy = setupPrivacy(demoPrivacyConfig(':memory:'), buildUnifiedSchema(), { keyring: new KeyRing(TEST_MASTER_KEY, 'test') });
    const store = await openTestStore(kind);
    stores.push(store);
    // The first slice of people's changes is appended late (the first statement of a slice's write);
    // planning fails while it is pending. A ROLLBACK sent before it is answered would leave it and
    // the rest of the slice's statements to run outside the transaction.
    let pending = false;
    let late: Promise<unknown> | undefined;
    const failing = replacingTx(store, (name, original) => {
      if (name === 'appendChanges') {
        return async (...args) => {
          if ((args[0] as { type: string }[])[0]?.type !== 'person' || late) return original(...args);
          pending = true;
          late = new Promise((r) => setTimeout(r, 100)).then(() => original(...args));
          return late.finally(() => (pending = false));
        };
      }
      if (name === 'yieldTurn') {
        return async () => {
          if (pending) throw new Error('planning broke');
        };
      }
      return undefined;
    });
    const s = await syncSource(failing, directConnector('demo', ds, { pageSize: 500 }), { ...(await privacy.ingest(store)), sliceRecords: 20, onFailure: 'return' });
    expect(s.status).toBe('failed');
    expect(s.error).toMatch(/planning broke/);
    expect(late).toBeDefined();
    await late!.catch(() => undefined);
    await new Promise((r) => setTimeout(r, 50));
    expect((await store.counts()).person).toBe(0);
    expect((await store.changes({ afterSeq: 0, limit: 10_000 })).some((c) => c.type === 'person')).toBe(false);
  });
});
