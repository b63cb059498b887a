/**
 * A source record keeps the fields its references resolved to (`refs`), not its whole resolved
 * form (src/sync/ingest.ts, StoredSourceData): the form is `raw` with those fields in place of the
 * references (merge.ts: keptResolved, withRefs). Checked here: the form comes back exactly as resolveRefs
 * built it, for any record; a sync stores `refs` alone; and records stored whole before (`resolved`)
 * still merge as they did.
 */
import fc from 'fast-check';
import { afterEach, describe, expect, it } from 'vitest';
import type { Connector, Page } from '../../connectors/types.ts';
import { RosterDataset } from '../../src/demo/dataset.ts';
import { directConnector } from '../../src/demo/direct-connector.ts';
import { ENTITY_TYPES, REFERENCES, type EntityType, type PersonData, type SourceRecord } from '../../src/model/records.ts';
import type { SourceRecordRow, Store } from '../../src/store/types.ts';
import { keptResolved, resolveRefs, withRefs } from '../../src/sync/merge.ts';
import { syncSource } from '../../src/sync/runner.ts';
import { openTestStore, storeKinds } from '../support/stores.ts';

describe('keptResolved and withRefs', () => {
  it('give back what resolveRefs built, value for value and in its key order, for any record', async () => {
    const types = ENTITY_TYPES.filter((t) => Object.keys(REFERENCES[t]).length > 0);
    const key = fc.constantFrom('k1', 'k2', 'k3', 'k4');
    const refValue = fc.oneof(key, fc.array(key, { maxLength: 4 }), fc.constant(null), fc.constant(undefined));
    const other = fc.dictionary(fc.constantFrom('title', 'name', 'role', 'classId', 'orgIds', 'beginDate', 'grades'), fc.oneof(fc.string(), fc.integer(), fc.array(fc.string(), { maxLength: 2 }), fc.constant(null)));
    await fc.assert(fc.asyncProperty(
      fc.constantFrom(...types), other, fc.array(refValue, { minLength: 3, maxLength: 3 }), fc.subarray(['k1', 'k2', 'k3', 'k4']), fc.boolean(),
      async (type: EntityType, fields, values, known, refsFirst) => {
        const refFields = Object.keys(REFERENCES[type]);
        const refs = Object.fromEntries(refFields.map((f, i) => [f, values[i]]));
        const raw = refsFirst ? { ...refs, ...fields } : { ...fields, ...refs };
        const { data } = await resolveRefs(type, raw, async (t, k) => (known.includes(k) ? `${t}_${k}` : undefined));
        const kept = keptResolved(type, raw, data);
        const back = 'refs' in kept ? withRefs(type, raw, kept.refs) : kept.resolved;
        expect(Object.keys(back)).toEqual(Object.keys(data));
        expect(back).toEqual(data);
        // Whole only where raw has a field named like a resolved reference.
        const clash = Object.keys(raw).some((f) => f in REFERENCES[type] && raw[f] != null && ['classId', 'orgIds'].some((n) => n in raw && n === f.replace(/Keys$/, 'Ids').replace(/Key$/, 'Id')));
        expect('resolved' in kept).toBe(clash);
      },
    ), { numRuns: 2000 });
  });
});

/** A second source delivering some of the demo's people again (linked by SIS id), with its own title. */
function secondSource(people: { key: string; data: PersonData }[], title: string): Connector {
  return {
    sourceId: 'google',
    type: 'google-classroom',
    async *read(): AsyncIterable<Page> {
      const records: SourceRecord[] = people.map((p) => ({ type: 'person', key: `g-${p.key}`, data: { ...p.data, orgKeys: [], primaryOrgKey: undefined, email: undefined, title } }));
      yield { resource: 'userProfiles', records, state: { done: true }, completes: ['person'] };
    },
  };
}

/** Every entity's data, with each gateway id replaced by the source records behind it (ids are random per store). */
async function canonical(store: Store): Promise<string[]> {
  const label = new Map<string, string>();
  const entities: { id: string; data: unknown }[] = [];
  await store.transaction(async (tx) => {
    for (const type of ENTITY_TYPES) {
      for (const e of (await store.list({ type, first: 100_000 })).rows) {
        entities.push(e);
        label.set(e.id, (await tx.sourceRecordsOf(e.id)).map((r) => `${r.source}/${r.type}/${r.key}`).sort().join('+'));
      }
    }
  });
  return entities.map((e) => JSON.stringify(e.data).replace(/"([a-z]{3}_[\w-]{22})"/g, (m, id: string) => (label.has(id) ? `"${label.get(id)}"` : m))).sort();
}

describe.each(storeKinds())('source records on %s', (kind) => {
  const stores: Store[] = [];
  afterEach(async () => {
    for (const s of stores.splice(0)) await s.close();
  });
  const open = async () => {
    const s = await openTestStore(kind);
    stores.push(s);
    return s;
  };
  const precedence = ['sis', 'google'];

  it('keep their resolved references alone, and records kept whole before still merge as they did', async () => {
    const ds = RosterDataset.generate({ students: 30, teachers: 3, classes: 4, schools: 2 });
    // Students (they have schools at the SIS, and no title there, so the second source's title is theirs).
    const people = ds.list('person').filter((p) => (p.data as PersonData).sisId && (p.data as PersonData).roles?.includes('student') && !(p.data as PersonData).title).slice(0, 8) as { key: string; data: PersonData }[];
    expect(people).toHaveLength(8);
    const [whole, refs] = [await open(), await open()];
    for (const store of [whole, refs]) {
      await syncSource(store, directConnector('sis', ds), { precedence });
      expect((await syncSource(store, secondSource(people, 'Before'), { precedence })).counters.linked).toBe(people.length);
    }

    // What a sync stores now: the references' fields, no resolved form.
    const stored: SourceRecordRow[] = [];
    await whole.transaction(async (tx) => {
      for (const type of ENTITY_TYPES) for (const e of (await whole.list({ type, first: 100_000 })).rows) stored.push(...(await tx.sourceRecordsOf(e.id)));
    });
    expect(stored.length).toBeGreaterThan(100);
    for (const r of stored) {
      const d = r.data as { raw: Record<string, unknown>; refs?: unknown; resolved?: unknown };
      expect(d.resolved).toBeUndefined();
      expect(d.refs).toEqual(expect.any(Object));
    }
    const enrollment = stored.find((r) => r.type === 'enrollment')!;
    expect(Object.keys((enrollment.data as { refs: object }).refs).sort()).toEqual(['classId', 'personId', 'schoolId']);

    // One store's records rewritten as they were kept before 7 December 2026: the resolved form whole.
    await whole.transaction(async (tx) => {
      for (const r of stored) {
        const { refs: kept, ...rest } = r.data as { raw: Record<string, unknown>; refs: Record<string, unknown> };
        await tx.putSourceRecord({ ...r, data: { ...rest, resolved: withRefs(r.type, rest.raw, kept) } });
      }
    });
    expect(await canonical(whole)).toEqual(await canonical(refs));

    // The second source changes its people: each is merged again from its SIS record (kept whole in
    // one store, as refs in the other) and the new one. Both stores must end the same.
    for (const store of [whole, refs]) {
      const s = await syncSource(store, secondSource(people, 'After'), { precedence });
      expect(s.counters.updated).toBe(people.length);
    }
    const after = await canonical(refs);
    expect(await canonical(whole)).toEqual(after);
    // The merged people kept what only the SIS record has: their schools, resolved to the SIS's orgs.
    const merged = after.filter((e) => e.includes('"title":"After"'));
    expect(merged.length).toBeGreaterThan(0);
    for (const e of merged) expect(e).toMatch(/"orgIds":\["sis\/org\//);
  });
});
