/**
 * Issue 3's end-to-end promise: a full and then an incremental sync of the demo district through
 * each of Clever, OneRoster 1.1, OneRoster 1.2 and OneRoster CSV lands the same roster in the store
 * and in GraphQL; and the demo as `npm start` runs it shows each person once with all its sources.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { join } from 'node:path';
import { RosterDataset } from '../../src/demo/dataset.ts';
import { startSandboxServer, type RunningSandbox } from '../../connectors/sandbox-kit.ts';
import { CONNECTORS } from '../../connectors/registry.ts';
import { sandboxSourceConfig as cleverSource } from '../../connectors/clever/index.ts';
import { sandboxSourceConfig as orSource } from '../../connectors/oneroster/index.ts';
import { writeOneRosterDrop } from '../../connectors/oneroster-csv/index.ts';
import { parseConfig } from '../../src/config/config.ts';
import { createLogger } from '../../src/log.ts';
import { syncAll } from '../../src/runtime.ts';
import { SqliteStore } from '../../src/store/sqlite.ts';
import type { SyncSummary } from '../../src/sync/runner.ts';
import { tempDir } from '../support/stores.ts';
import { expectedRoster, rosterViaGraphQL, type RosterView } from '../support/roster.ts';
import { startDemo, type Demo } from '../../src/demo/demo.ts';

const log = createLogger({ level: 'silent' });

describe('the same roster through every issue-3 connector', () => {
  let ds: RosterDataset;
  let sandbox: RunningSandbox;
  const dir = tempDir();
  let csvSeq = 0;
  const sources = () => ({
    clever: cleverSource(sandbox.urlOf('/clever')),
    'oneroster-1.1': orSource(sandbox.urlOf('/oneroster'), '1.1'),
    'oneroster-1.2': orSource(sandbox.urlOf('/oneroster'), '1.2'),
    'oneroster-csv': { type: 'oneroster-csv', path: join(dir, 'drop.zip'), mode: 'strict' },
  });
  const stores = new Map<string, SqliteStore>();

  beforeAll(async () => {
    ds = RosterDataset.generate({ students: 90, teachers: 6, classes: 9, schools: 3 });
    sandbox = await startSandboxServer({ dataset: ds, apps: CONNECTORS.flatMap((d) => (d.sandbox ? [d.sandbox] : [])) });
    writeOneRosterDrop(ds, join(dir, 'drop'), { version: '1.2', zip: true });
    csvSeq = ds.headSeq;
  });
  afterAll(async () => {
    for (const s of stores.values()) await s.close();
    await sandbox.close();
  });

  const STORE_TYPES = ['person', 'demographics', 'class', 'enrollment', 'guardianship'] as const;

  async function syncEach() {
    const out = new Map<string, { roster: RosterView; summary: SyncSummary; counts: Record<string, number> }>();
    for (const [id, block] of Object.entries(sources())) {
      const cfg = parseConfig({ store: join(dir, `${id}.db`), sources: [{ id, ...block }] });
      const store = stores.get(id) ?? SqliteStore.open(cfg.store);
      stores.set(id, store);
      const [s] = await syncAll(store, cfg, log);
      expect(s!.status, id).toBe('complete');
      out.set(id, { roster: await rosterViaGraphQL(store), summary: s!, counts: await store.counts() });
    }
    return out;
  }

  /** The store holds exactly the district's records of the types every one of these sources carries. */
  function expectStoreCounts(id: string, counts: Record<string, number>) {
    for (const t of STORE_TYPES) expect(counts[t] ?? 0, `${id}: stored ${t}`).toBe(ds.list(t).length);
  }

  it('a full sync lands the district identically through each, in the store and in GraphQL', async () => {
    const want = expectedRoster(ds);
    for (const [id, got] of await syncEach()) {
      expect(got.summary.mode, id).toBe('full');
      expectStoreCounts(id, got.counts);
      expect(got.roster, id).toEqual(want);
    }
  });

  it('an incremental sync after changes lands the same changed roster through each', async () => {
    const student = ds.list('person').find((p) => p.data.roles.includes('student'))!;
    ds.upsert('person', student.key, { givenName: 'Zoé-Renée' });
    ds.remove('enrollment', ds.list('enrollment').find((e) => e.data.role === 'student')!.key);
    ds.upsert('person', 'stu-late', { givenName: 'Late', familyName: 'Arrival', roles: ['student'], sisId: 'S777777', orgKeys: ['sch-01'], primaryOrgKey: 'sch-01', grades: ['KG'] });
    ds.upsert('demographics', 'stu-late', { personKey: 'stu-late', birthDate: '2020-02-03', sex: 'female' });
    ds.upsert('enrollment', 'late-enr', { classKey: ds.list('class')[0]!.key, personKey: 'stu-late', schoolKey: 'sch-01', role: 'student' });
    const g = ds.list('guardianship')[0]!;
    ds.remove('guardianship', g.key);
    writeOneRosterDrop(ds, join(dir, 'drop'), { mode: 'delta', sinceSeq: csvSeq, version: '1.2', zip: true });
    const want = expectedRoster(ds);
    for (const [id, got] of await syncEach()) {
      // Really incremental: events, a dateLastModified window or a delta drop, not a re-read.
      expect(got.summary.mode, id).toBe('incremental');
      expect(got.summary.records, id).toBeLessThan(40);
      expectStoreCounts(id, got.counts);
      expect(got.roster, id).toEqual(want);
    }
  });
});

describe('the demo (npm start) end to end', () => {
  let demo: Demo;
  beforeAll(async () => {
    demo = await startDemo({ dataDir: tempDir(), district: { students: 150, teachers: 9, classes: 15 }, log });
  });
  afterAll(() => demo?.close());

  it('syncs every part of the district through its vendor and shows each person once, with all sources', async () => {
    expect(demo.summaries.map((s) => [s.source, s.status])).toEqual(demo.config.sources.map((s) => [s.id, 'complete']));
    // The demo district is consistent: no source leaves records waiting for references.
    expect(demo.summaries.map((s) => [s.source, s.unresolved])).toEqual(demo.config.sources.map((s) => [s.id, 0]));
    const counts = await demo.store.counts();
    expect(counts.person).toBe(demo.dataset.list('person').length);
    // SIS sections arrive once (each school through one vendor); Teams classes (the whole district)
    // and Classroom courses (the high school) are objects of their own.
    const high = demo.dataset.list('class').filter((c) => c.data.schoolKey === 'sch-03').length;
    expect(counts.class).toBe(demo.dataset.list('class').length * 2 + high);
    const linked = demo.summaries.reduce((n, s) => n + s.counters.linked, 0);
    expect(linked).toBeGreaterThan(0);
    const people = (await demo.store.list({ type: 'person', first: 10_000 })).rows;
    const sources = await demo.store.sourcesOf(people.map((p) => p.id));
    const teacher = people.find((p) => (p.data as { sisId?: string }).sisId === 'T005000')!;
    expect(sources.get(teacher.id)!.map((s) => s.source).sort()).toEqual(['demo-clever', 'demo-msgraph', 'demo-oneroster']);
    expect(await demo.store.conflicts()).toEqual([]);
    // Classroom has no SIS ids: its people were linked by email.
    const highStudent = people.find((p) => (p.data as { orgIds?: string[] }).orgIds?.length && (p.data as { roles: string[] }).roles.includes('student') && sources.get(p.id)!.some((s) => s.source === 'demo-google-classroom'))!;
    expect(sources.get(highStudent.id)!.map((s) => s.source)).toEqual(expect.arrayContaining(['demo-oneroster-csv', 'demo-google-classroom', 'demo-msgraph']));
  });
});
