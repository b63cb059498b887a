/**
 * Each purpose's view times (the last change it could see of each record, src/graphql/view-times.ts):
 * kept by the sync hook, and recomputed from the change log at start-up for purposes and stores
 * that predate them — the same times either way; where the log no longer tells, its horizon. Stored
 * only where they differ from the record's own time, and read only once a view is computed.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { RosterDataset } from '../../src/demo/dataset.ts';
import { directConnector } from '../../src/demo/direct-connector.ts';
import { DEMO_CLIENTS, DEMO_PURPOSES } from '../../src/demo/demo-policy.ts';
import { buildUnifiedSchema } from '../../src/graphql/schema.ts';
import { ENTITY_TYPES } from '../../src/model/records.ts';
import { gradeBand } from '../../src/privacy/generalise.ts';
import { KeyRing } from '../../src/privacy/pseudonym.ts';
import { setupPrivacy, type Privacy } from '../../src/graphql/privacy.ts';
import type { Store } from '../../src/store/types.ts';
import { syncSource } from '../../src/sync/runner.ts';
import { demoPrivacyConfig, TEST_MASTER_KEY } from '../support/privacy.ts';
import { openTestStore, storedViewRows, storeKinds, type StoreKind } from '../support/stores.ts';

const T1 = '2030-01-01T00:00:00.000Z';
/** An unrelated change, after the purge point of the horizon test. */
const T1b = '2030-01-01T12:00:00.000Z';
const T2 = '2030-01-02T00:00:00.000Z';
const T3 = '2030-01-03T00:00:00.000Z';
const T4 = '2030-01-04T00:00:00.000Z';
const VIEWS = ['roster-sync', 'analytics', 'sso', 'admin'];

const schema = buildUnifiedSchema();
const privacyFor = (purposes: Record<string, unknown> = DEMO_PURPOSES) =>
  setupPrivacy(
    demoPrivacyConfig(':memory:', { purposes, clients: DEMO_CLIENTS.filter((c) => c.purpose in purposes) }),
    schema,
    { keyring: new KeyRing(TEST_MASTER_KEY, 'test') },
  );

let stores: Store[] = [];
afterEach(async () => {
  for (const s of stores) await s.close();
  stores = [];
});

interface Scenario {
  store: Store;
  privacy: Privacy;
  ds: RosterDataset;
  /** Gateway ids by dataset person key. */
  ids: Record<'a' | 'b' | 'c' | 'd' | 'n', string>;
}

async function sync(s: Pick<Scenario, 'store' | 'privacy' | 'ds'>, at: string) {
  const ingest = await s.privacy.ingest(s.store);
  const r = await syncSource(s.store, directConnector('demo', s.ds), { ...ingest, now: () => new Date(at) });
  expect(r.status).toBe('complete');
}


async function idOfSis(store: Store, sisId: string): Promise<string> {
  const row = (await store.list({ type: 'person', first: 100_000 })).rows.find((r) => (r.data as { sisId?: string }).sisId === sisId);
  return row!.id;
}

/**
 * T1 the district lands; T1b a class is renamed; T2 A's and B's emails change (analytics receives
 * no email); T3 B moves to another grade band and D's birth year changes (both visible to
 * analytics); T4 a student N arrives and another leaves.
 */
async function scenario(kind: StoreKind): Promise<Scenario> {
  const store = await openTestStore(kind);
  stores.push(store);
  const ds = RosterDataset.generate({ students: 24, teachers: 2, classes: 3, schools: 1 });
  const privacy = privacyFor();
  const s = { store, privacy, ds };
  // As the gateway's start-up does: each purpose's view is computed (empty) before the first sync.
  await privacy.viewTimes.backfill(store);
  await sync(s, T1);
  const students = ds.list('person').filter((p) => p.data.roles.includes('student') && ds.get('demographics', p.key));
  const [a, b, c, d, leaver] = students;
  ds.upsert('class', ds.list('class')[0]!.key, { title: 'Renamed class' });
  await sync(s, T1b);
  ds.upsert('person', a!.key, { email: 'a.changed@students.rostergate-demo.example' });
  ds.upsert('person', b!.key, { email: 'b.changed@students.rostergate-demo.example' });
  await sync(s, T2);
  ds.upsert('person', b!.key, { grades: gradeBand(b!.data.grades) === '9-12' ? ['01'] : ['11'] });
  ds.upsert('demographics', d!.key, { birthDate: '2001-05-05' });
  await sync(s, T3);
  ds.upsert('person', 'stu-new', { givenName: 'Nova', familyName: 'Nieuw', roles: ['student'], sisId: 'S990001', orgKeys: ['sch-01'], grades: ['03'] });
  for (const e of ds.list('enrollment').filter((x) => x.data.personKey === leaver!.key)) ds.remove('enrollment', e.key);
  for (const gd of ds.list('guardianship').filter((x) => x.data.studentKey === leaver!.key)) ds.remove('guardianship', gd.key);
  ds.remove('demographics', leaver!.key);
  ds.remove('person', leaver!.key);
  await sync(s, T4);
  const ids = {
    a: await idOfSis(store, a!.data.sisId!), b: await idOfSis(store, b!.data.sisId!), c: await idOfSis(store, c!.data.sisId!),
    d: await idOfSis(store, d!.data.sisId!), n: await idOfSis(store, 'S990001'),
  };
  return { ...s, ids };
}

/** Every view's time of every record, as `view id → at`. */
async function snapshot(store: Store, views = VIEWS): Promise<Record<string, string>> {
  const ids: string[] = [];
  for (const t of ENTITY_TYPES) ids.push(...(await store.list({ type: t, first: 100_000 })).rows.map((r) => r.id));
  const out: Record<string, string> = {};
  for (const v of views) for (const [id, t] of await store.viewTimes(v, ids)) out[`${v} ${id}`] = `${t.updatedAt}#${t.updatedSeq}`;
  return out;
}

const at = async (store: Store, view: string, id: string) => (await store.viewTimes(view, [id])).get(id)?.updatedAt;

async function dropViews(store: Store) {
  for (const v of (await store.viewFingerprints()).keys()) await store.transaction((tx) => tx.dropView(v));
  for (const v of VIEWS) await store.transaction((tx) => tx.dropView(v));
}

describe.each(storeKinds())('view times on %s', (kind) => {
  it('the sync keeps, per purpose, the last change it could see', async () => {
    const { store, ids } = await scenario(kind);
    // A's email: roster-sync sees it, analytics does not.
    expect(await at(store, 'roster-sync', ids.a)).toBe(T2);
    expect(await at(store, 'analytics', ids.a)).toBe(T1);
    // B's grade band and D's birth year (a demographics change, counted for the person): both see them.
    for (const v of ['roster-sync', 'analytics']) {
      expect(await at(store, v, ids.b)).toBe(T3);
      expect(await at(store, v, ids.d)).toBe(T3);
      expect(await at(store, v, ids.c)).toBe(T1);
      expect(await at(store, v, ids.n)).toBe(T4);
    }
    // Demographics have no times of their own; deleted records have none left.
    const all = await snapshot(store);
    expect(Object.keys(all).some((k) => k.includes(' dem_'))).toBe(false);
    const live = new Set((await store.list({ type: 'person', first: 100_000 })).rows.map((r) => r.id));
    expect(Object.keys(all).filter((k) => k.includes(' per_')).every((k) => live.has(k.split(' ')[1]!))).toBe(true);
  });

  it('stores a time only where it differs from the record\'s own: an unseen update holds it, a seen one drops it', async () => {
    const { store, ids } = await scenario(kind);
    const rows = await storedViewRows(store);
    expect(rows.filter((r) => Number(r.row.split(' ')[2]) === r.own)).toEqual([]);
    const own = async (id: string) => (await store.getEntities([id]))[0]!.updatedSeq;
    const rowsOf = (id: string) => rows.filter((r) => r.row.split(' ')[1] === id).map((r) => r.row.split(' ')[0]!).sort();
    // A's email change: analytics (and sso) do not see it, so their time is held at A's creation.
    expect(rowsOf(ids.a)).toEqual(['analytics', 'sso']);
    expect((await store.viewTimes('analytics', [ids.a])).get(ids.a)!.updatedSeq).toBeLessThan(await own(ids.a));
    expect((await store.viewTimes('roster-sync', [ids.a])).get(ids.a)!.updatedSeq).toBe(await own(ids.a));
    // B's grade band, after its email: seen by analytics, so the row held since T2 is gone; sso sees neither.
    expect(rowsOf(ids.b)).toEqual(['sso']);
    // D's birth year moves D in the views that receive it, not D's own time: rows for those.
    expect(rowsOf(ids.d).length).toBeGreaterThan(0);
    for (const v of rowsOf(ids.d)) expect(await at(store, v, ids.d)).toBe(T3);
    // C, untouched since T1: rows only where its demographics, created after it, moved it (still T1).
    for (const v of rowsOf(ids.c)) expect(await at(store, v, ids.c)).toBe(T1);
    const entities = (await Promise.all(ENTITY_TYPES.map(async (t) => (await store.list({ type: t, first: 100_000 })).rows.length))).reduce((a, b) => a + b);
    expect(rows.length).toBeLessThan(entities);
  });

  it('a view not yet computed answers nothing: the records\' own times do not stand in for it; computing it keeps the sync\'s rows', async () => {
    const store = await openTestStore(kind);
    stores.push(store);
    const ds = RosterDataset.generate({ students: 12, teachers: 1, classes: 2, schools: 1 });
    const privacy = privacyFor();
    await sync({ store, privacy, ds }, T1);
    const people = (await store.list({ type: 'person', first: 100 })).rows.map((r) => r.id);
    expect(await store.viewTimes('analytics', people)).toEqual(new Map());
    expect((await store.list({ type: 'person', first: 100, updatedSince: T1, view: 'analytics' })).rows).toEqual([]);
    // The sync kept the rows all the same: computing the views from the change log finds them right.
    const kept = await storedViewRows(store);
    expect(kept.length).toBeGreaterThan(0);
    const report = await privacy.viewTimes.backfill(store);
    expect(await storedViewRows(store)).toEqual(kept);
    expect(report.find((r) => r.view === 'analytics')).toMatchObject({ rebuilt: true });
    expect((await store.viewTimes('analytics', people)).size).toBe(people.length);
    expect((await store.list({ type: 'person', first: 100, updatedSince: T1, view: 'analytics' })).rows.map((r) => r.id).sort()).toEqual([...people].sort());
  });

  it('the start-up backfill computes from the change log the same times the sync kept', async () => {
    const { store, privacy } = await scenario(kind);
    const kept = await snapshot(store);
    expect(Object.keys(kept).length).toBeGreaterThan(100);
    const keptRows = await storedViewRows(store);
    await dropViews(store);
    expect(await snapshot(store)).toEqual({});
    const report = await privacy.viewTimes.backfill(store);
    expect(report.map((r) => [r.view, r.rebuilt])).toEqual(VIEWS.map((v) => [v, true]));
    expect(await snapshot(store)).toEqual(kept);
    // The same rows too: none where a time is the record's own.
    expect(await storedViewRows(store)).toEqual(keptRows);
    // Once built, a second start finds nothing to do.
    expect((await privacy.viewTimes.backfill(store)).map((r) => [r.rebuilt, r.records])).toEqual(VIEWS.map(() => [false, 0]));
  });

  it('where the log no longer shows the last visible change, its horizon stands in: never earlier, and nothing of invisible changes', async () => {
    const { store, privacy, ids } = await scenario(kind);
    // The district's creation (T1) leaves the retained window; the class rename at T1b is the oldest change kept.
    await store.purgeChanges('2030-01-01T06:00:00.000Z');
    await dropViews(store);
    await privacy.viewTimes.backfill(store);
    // A changed only its email within the window: analytics gets the horizon, not T2 (which would tell it).
    expect(await at(store, 'analytics', ids.a)).toBe(T1b);
    expect(await at(store, 'analytics', ids.c)).toBe(T1b);
    // Retained visible changes are exact.
    expect(await at(store, 'roster-sync', ids.a)).toBe(T2);
    expect(await at(store, 'analytics', ids.b)).toBe(T3);
    expect(await at(store, 'analytics', ids.d)).toBe(T3);
    expect(await at(store, 'analytics', ids.n)).toBe(T4);
  });

  it('a purpose whose policy changed is recomputed; one no longer configured is dropped', async () => {
    const { store, privacy, ids } = await scenario(kind);
    await privacy.viewTimes.backfill(store);
    const { admin: _, ...rest } = DEMO_PURPOSES;
    const changed = privacyFor({ ...rest, analytics: { ...rest.analytics, fields: { ...rest.analytics.fields, 'Person.email': 'allow' } } });
    const report = await changed.viewTimes.backfill(store);
    expect(report.map((r) => [r.view, r.rebuilt])).toEqual([['roster-sync', false], ['analytics', true], ['sso', false]]);
    // Analytics now receives email: A's email change is its last visible change.
    expect(await at(store, 'analytics', ids.a)).toBe(T2);
    expect([...(await store.viewFingerprints()).keys()].sort()).toEqual(['analytics', 'roster-sync', 'sso']);
    expect(await at(store, 'admin', ids.a)).toBeUndefined();
  });
});
