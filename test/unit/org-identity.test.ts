/**
 * One school (or district) across sources: organisations arriving from several sources with the
 * same official identifier become one organisation with every source in its provenance, and every
 * class, enrollment and person of either source points at it; anything ambiguous is a reported
 * conflict, never a silent merge. On every store the suite runs on.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { RosterDataset } from '../../src/demo/dataset.ts';
import { directConnector } from '../../src/demo/direct-connector.ts';
import { openTestStore, storeKinds } from '../support/stores.ts';
import type { EntityRow, Store } from '../../src/store/types.ts';
import { syncSource, type SyncOptions } from '../../src/sync/runner.ts';
import { orgMatchKeysOf, type OrgMatchRule } from '../../src/sync/identity.ts';
import { parseConfig } from '../../src/config/config.ts';
import type { Connector } from '../../connectors/types.ts';
import type { OrgData, SourceRecord } from '../../src/model/records.ts';

describe('organisation match keys and config', () => {
  it('keys follow the configured rules in order, normalised, under kinds of their own', () => {
    const data: Partial<OrgData> = { identifier: ' 990001a ', schoolNumber: '100' };
    expect(orgMatchKeysOf(data, ['identifier'])).toEqual([{ kind: 'org.identifier', value: '990001A' }]);
    expect(orgMatchKeysOf(data, ['schoolNumber', 'identifier'])).toEqual([
      { kind: 'org.schoolNumber', value: '100' },
      { kind: 'org.identifier', value: '990001A' },
    ]);
    expect(orgMatchKeysOf({ identifier: '  ' }, ['identifier'])).toEqual([]);
    expect(orgMatchKeysOf(data, [])).toEqual([]);
    // With the gateway's keyed hash the identifier itself is not what is stored.
    const [k] = orgMatchKeysOf(data, ['identifier'], (kind, v) => `h(${kind}:${v})`);
    expect(k).toEqual({ kind: 'org.identifier', value: 'h(org.identifier:990001A)' });
  });

  it('identity.matchOrgs defaults to the official identifier then the SIS id, takes stateId, schoolNumber or [] (off), and refuses anything else', () => {
    expect(parseConfig({}).identity).toEqual({ match: ['sisId', 'email'], matchOrgs: ['identifier', 'sisId'] });
    expect(parseConfig({ identity: { matchOrgs: ['schoolNumber', 'stateId', 'identifier'] } }).identity.matchOrgs).toEqual(['schoolNumber', 'stateId', 'identifier']);
    expect(parseConfig({ identity: { matchOrgs: [] } }).identity.matchOrgs).toEqual([]);
    expect(() => parseConfig({ identity: { matchOrgs: ['name'] } }, 'cfg.yaml')).toThrow(/cfg\.yaml: identity\.matchOrgs\.0: .*"identifier".*"sisId".*"stateId".*"schoolNumber"/);
  });

  it('each kind of id is a key of its own kind: an SIS id never meets an official identifier of the same text', () => {
    const data: Partial<OrgData> = { identifier: '123', sisId: '123', stateId: 'st-9' };
    expect(orgMatchKeysOf(data, ['identifier', 'sisId', 'stateId'])).toEqual([
      { kind: 'org.identifier', value: '123' },
      { kind: 'org.sisId', value: '123' },
      { kind: 'org.stateId', value: 'ST-9' },
    ]);
  });
});

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

const precedence = ['sis', 'graph', 'other'];

/**
 * A second source describing the district's organisations under its own keys (as Graph does: the
 * tenant as district, schools by object id), each school with one class, one teacher and her
 * enrollment, all referring to the school by this source's key.
 */
function orgSource(id: string, orgs: { key: string; data: OrgData }[], opts: { classes?: boolean } = {}): Connector {
  return {
    sourceId: id, type: 'msgraph',
    async *read() {
      const records: SourceRecord[] = orgs.map((o) => ({ type: 'org', key: o.key, data: o.data }));
      if (opts.classes !== false) {
        for (const o of orgs.filter((x) => x.data.type === 'school')) {
          records.push(
            { type: 'class', key: `cls-${o.key}`, data: { title: `Team of ${o.data.name}`, schoolKey: o.key } },
            { type: 'person', key: `t-${o.key}`, data: { givenName: 'Ada', familyName: `Teacher ${o.key}`, roles: ['teacher'], orgKeys: [o.key], primaryOrgKey: o.key } },
            { type: 'enrollment', key: `e-${o.key}`, data: { classKey: `cls-${o.key}`, personKey: `t-${o.key}`, schoolKey: o.key, role: 'teacher' } },
          );
        }
      }
      yield { resource: 'orgs', records, state: { done: true }, completes: ['org', 'class', 'person', 'enrollment'] };
    },
  };
}

/** The dataset's organisations as another source keys them, with edits (undefined: left out). */
function renamed(ds: RosterDataset, edit: (o: OrgData, key: string) => OrgData | undefined = (o) => o): { key: string; data: OrgData }[] {
  return ds.list('org').flatMap((o) => {
    const data = edit({ ...o.data, parentKey: o.data.parentKey ? `g-${o.data.parentKey}` : undefined }, o.key);
    return data ? [{ key: `g-${o.key}`, data }] : [];
  });
}

async function orgs(store: Store): Promise<EntityRow[]> {
  return (await store.list({ type: 'org', first: 1000 })).rows;
}
const sourcesOf = async (store: Store, id: string) => ((await store.sourcesOf([id])).get(id) ?? []).map((s) => `${s.source}:${s.key}`).sort();

describe.each(storeKinds())('organisations across sources on %s', (k) => {
  beforeEach(() => {
    kind = k;
  });
  const sync = (store: Store, c: Connector, o: SyncOptions = {}) => syncSource(store, c, { precedence, ...o });

  it('links each school and the district by identifier: one organisation, every source, and both sources\' records point at it', async () => {
    const ds = RosterDataset.generate({ students: 20, teachers: 3, classes: 3, schools: 2 });
    const store = await open();
    await sync(store, directConnector('sis', ds));
    // Graph's copy: identifiers in another case and with spaces, a different name and phone.
    const s = await sync(store, orgSource('graph', renamed(ds, (o) => ({ ...o, identifier: ` ${o.identifier!.toLowerCase()} `, name: `${o.name} (M365)`, phone: undefined }))));
    expect(s.counters).toMatchObject({ linkedOrgs: 3, conflicts: 0 });
    const all = await orgs(store);
    expect(all).toHaveLength(3);
    for (const o of ds.list('org')) {
      const row = all.find((r) => (r.data as OrgData).identifier === o.data.identifier)!;
      expect(await sourcesOf(store, row.id)).toEqual([`graph:g-${o.key}`, `sis:${o.key}`]);
      // Fields merge in precedence: the SIS's name and phone.
      expect(row.data).toMatchObject({ name: o.data.name, type: o.data.type, ...(o.data.phone ? { phone: o.data.phone } : {}) });
      if (o.data.type !== 'school') continue;
      // Classes, people and enrollments of both sources are under the one school.
      const classes = (await store.list({ type: 'class', first: 1000, linkedTo: { rel: 'class.school', to: row.id } })).rows;
      expect(classes.map((c) => (c.data as { title: string }).title)).toContain(`Team of ${o.data.name} (M365)`);
      expect(classes).toHaveLength(ds.list('class').filter((c) => c.data.schoolKey === o.key).length + 1);
      const teacher = (await store.list({ type: 'person', first: 1000 })).rows.find((p) => (p.data as { familyName: string }).familyName === `Teacher g-${o.key}`)!;
      expect(teacher.data).toMatchObject({ orgIds: [row.id], primaryOrgId: row.id });
      expect((await store.linkedFrom('enrollment.school', [row.id])).get(row.id)!.length).toBeGreaterThan(0);
    }
    // The schools' parent stays the SIS district, which is the linked district too.
    const district = all.find((r) => (r.data as OrgData).type === 'district')!;
    for (const school of all.filter((r) => (r.data as OrgData).type === 'school')) expect((school.data as { parentId: string }).parentId).toBe(district.id);
    expect(await store.conflicts()).toEqual([]);
  });

  it('a school without an identifier (a placeholder such as Classroom\'s) is never linked, even under the same name', async () => {
    const ds = RosterDataset.generate({ students: 10, teachers: 2, classes: 2, schools: 1 });
    const store = await open();
    await sync(store, directConnector('sis', ds));
    const school = ds.list('org').find((o) => o.data.type === 'school')!;
    const s = await sync(store, orgSource('graph', [
      { key: 'classroom:placeholder', data: { name: 'Google Classroom', type: 'school' } },
      { key: 'same-name', data: { name: school.data.name, type: 'school', schoolNumber: school.data.schoolNumber } },
    ]));
    expect(s.counters).toMatchObject({ linkedOrgs: 0, conflicts: 0 });
    expect(await orgs(store)).toHaveLength(ds.list('org').length + 2);
  });

  it('a school and a district sharing an identifier, an identifier matching two schools, or a second record of one source: reported and kept apart', async () => {
    const ds = RosterDataset.generate({ students: 10, teachers: 2, classes: 2, schools: 2 });
    const [a, b] = ds.list('org').filter((o) => o.data.type === 'school');
    const cases: [string, { key: string; data: OrgData }[], string[]][] = [
      ['type', [{ key: 'g-d', data: { name: 'District', type: 'district', identifier: a!.data.identifier } }], ['g-d: identifier matches a school but this record is a district']],
      ['same source', [
        { key: 'g-a', data: { ...a!.data, parentKey: undefined } },
        { key: 'g-a2', data: { ...a!.data, name: 'Annex', parentKey: undefined } },
      ], ['g-a2: identifier matches a different record of the same source']],
    ];
    for (const [label, records, reasons] of cases) {
      const store = await open();
      await sync(store, directConnector('sis', ds));
      const s = await sync(store, orgSource('graph', records, { classes: false }));
      expect(s.counters.conflicts, label).toBe(1);
      expect((await store.conflicts()).map((c) => `${c.key}: ${c.reason}`), label).toEqual(reasons);
      const [c] = await store.conflicts();
      expect(c, label).toMatchObject({ source: 'graph', type: 'org' });
      expect(await orgs(store), label).toHaveLength(ds.list('org').length + records.length - s.counters.linkedOrgs);
    }
    // Two SIS schools with one identifier (a typo in the SIS): the SIS's second is a conflict within
    // the source, and another source's record with that identifier is ambiguous.
    ds.upsert('org', b!.key, { identifier: a!.data.identifier });
    const store = await open();
    await sync(store, directConnector('sis', ds));
    const s = await sync(store, orgSource('graph', [{ key: 'g-a', data: { ...a!.data, parentKey: undefined } }], { classes: false }));
    expect(s.counters).toMatchObject({ linkedOrgs: 0, conflicts: 1 });
    const conflicts = await store.conflicts();
    expect(conflicts.map((c) => [c.source, c.key, c.reason])).toEqual([
      ['sis', b!.key, 'identifier matches a different record of the same source'],
      ['graph', 'g-a', 'ambiguous identifier: matches 2 organisations'],
    ]);
    expect(conflicts[1]!.candidates).toHaveLength(2);
  });

  it('rules are configurable: the default links Graph\'s schools by SIS id; stateId or schoolNumber link where asked; rules that disagree are a conflict; [] links nothing', async () => {
    const ds = RosterDataset.generate({ students: 10, teachers: 2, classes: 2, schools: 2 });
    const schools = ds.list('org').filter((o) => o.data.type === 'school');
    const [a, b] = schools;
    const run = async (rules: OrgMatchRule[] | undefined, records: { key: string; data: OrgData }[]) => {
      const store = await open();
      await sync(store, directConnector('sis', ds), rules ? { orgMatchRules: rules } : {});
      const s = await sync(store, orgSource('graph', records, { classes: false }), rules ? { orgMatchRules: rules } : {});
      return { store, s };
    };
    // Graph has no official id: its externalId is the SIS id, and only that (and the school number) agrees.
    const graph = schools.map((o) => ({ key: `g-${o.key}`, data: { name: o.data.name, type: 'school' as const, sisId: o.data.sisId, schoolNumber: o.data.schoolNumber } }));
    const linked = await run(undefined, graph);
    expect(linked.s.counters).toMatchObject({ linkedOrgs: 2, conflicts: 0, created: 0 });
    for (const o of schools) {
      const row = (await orgs(linked.store)).find((r) => (r.data as OrgData).sisId === o.data.sisId)!;
      expect(await sourcesOf(linked.store, row.id)).toEqual([`graph:g-${o.key}`, `sis:${o.key}`]);
    }
    expect((await run(['identifier'], graph)).s.counters).toMatchObject({ linkedOrgs: 0, conflicts: 0, created: 2 });
    expect((await run(['schoolNumber'], graph)).s.counters).toMatchObject({ linkedOrgs: 2, conflicts: 0 });
    const byState = schools.map((o) => ({ key: `g-${o.key}`, data: { name: o.data.name, type: 'school' as const, stateId: o.data.stateId } }));
    expect((await run(undefined, byState)).s.counters).toMatchObject({ linkedOrgs: 0, created: 2 });
    expect((await run(['stateId'], byState)).s.counters).toMatchObject({ linkedOrgs: 2, conflicts: 0 });
    expect((await run([], schools.map((o) => ({ key: `g-${o.key}`, data: { ...o.data, parentKey: undefined } })))).s.counters).toMatchObject({ linkedOrgs: 0, conflicts: 0, created: 2 });
    // a's official identifier with b's SIS id, under the default rules: a conflict, not a merge.
    const { store, s } = await run(undefined, [{ key: 'g-x', data: { ...a!.data, sisId: b!.data.sisId, parentKey: undefined } }]);
    expect(s.counters).toMatchObject({ linkedOrgs: 0, conflicts: 1 });
    const [c] = await store.conflicts();
    expect(c!.reason).toBe('identifier and sisId point at different organisations');
    expect(c!.candidates).toHaveLength(2);
  });

  it('a school one source deletes stays while another delivers it, with every class of the other; it goes with its last source', async () => {
    const ds = RosterDataset.generate({ students: 20, teachers: 3, classes: 3, schools: 1 });
    const school = ds.list('org').find((o) => o.data.type === 'school')!;
    const store = await open();
    await sync(store, directConnector('sis', ds));
    const graphOrgs = renamed(ds);
    await sync(store, orgSource('graph', graphOrgs));
    const row = (await orgs(store)).find((r) => (r.data as OrgData).identifier === school.data.identifier)!;
    const sisClasses = ds.list('class').length;
    const classesOf = async () => (await store.list({ type: 'class', first: 1000, linkedTo: { rel: 'class.school', to: row.id } })).rows.length;
    expect(await classesOf()).toBe(sisClasses + 1);

    // Graph no longer has the school (nor its team): the SIS still delivers it.
    await sync(store, orgSource('graph', graphOrgs.filter((o) => o.data.type !== 'school')), { allowMassDelete: true });
    expect((await store.getEntities([row.id]))[0]).toBeDefined();
    expect(await sourcesOf(store, row.id)).toEqual([`sis:${school.key}`]);
    expect(await classesOf()).toBe(sisClasses);
    const changes = await store.changes({ afterSeq: 0, limit: 100_000, types: ['org'] });
    expect(changes.filter((c) => c.entityId === row.id && c.op === 'deleted')).toEqual([]);

    // The SIS drops it too (with its classes): now it goes, with a tombstone.
    ds.remove('org', school.key);
    for (const e of ds.list('enrollment')) ds.remove('enrollment', e.key);
    for (const c of ds.list('class')) ds.remove('class', c.key);
    await sync(store, directConnector('sis', ds), { allowMassDelete: true });
    expect((await store.getEntities([row.id]))[0]).toBeUndefined();
    const after = await store.changes({ afterSeq: 0, limit: 100_000, types: ['org'] });
    expect(after.filter((c) => c.entityId === row.id).map((c) => c.op).at(-1)).toBe('deleted');
  });
});
