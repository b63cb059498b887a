/**
 * Issue 3's end-to-end promise: a full and then an incremental sync of the demo district through
 * each of Clever, OneRoster 1.1, OneRoster 1.2 and OneRoster CSV lands the same roster in the store
 * and in GraphQL; and the demo as `npm start` runs it shows each person once with all its sources.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { join } from 'node:path';
import { execute, parse } from 'graphql';
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
import { buildUnifiedSchema } from '../../src/graphql/schema.ts';
import { createContext } from '../../src/graphql/context.ts';
import { tempDir } from '../support/stores.ts';
import { startDemo, type Demo } from '../../src/demo/demo.ts';

const log = createLogger({ level: 'silent' });
const schema = buildUnifiedSchema();

/** The roster as GraphQL shows it, in vendor-neutral terms (names, SIS ids, class titles). */
async function roster(store: SqliteStore) {
  const ctx = createContext(store, new Map());
  const r = await execute({
    schema, contextValue: ctx,
    document: parse(`{ classes(first: 1000) { edges { node { title school { name } enrollments(first: 1000) { edges { node { role person { sisId givenName familyName } } } } } } }
      people(first: 1000, role: STUDENT) { edges { node { sisId givenName familyName grades } } } }`),
  });
  if (r.errors) throw new Error(r.errors[0]!.message);
  const d = r.data as any;
  return {
    classes: d.classes.edges.map((e: any) => `${e.node.title} @ ${e.node.school?.name}`).sort(),
    enrollments: d.classes.edges.flatMap((e: any) => e.node.enrollments.edges.map((x: any) => `${e.node.title}|${x.node.role}|${x.node.person.sisId}`)).sort(),
    students: d.people.edges.map((e: any) => `${e.node.sisId} ${e.node.givenName} ${e.node.familyName} ${e.node.grades.join(',')}`).sort(),
  };
}

function expected(ds: RosterDataset) {
  const school = new Map(ds.list('org').map((o) => [o.key, o.data.name]));
  const cls = new Map(ds.list('class').map((c) => [c.key, c.data.title]));
  const person = new Map(ds.list('person').map((p) => [p.key, p.data]));
  return {
    classes: ds.list('class').map((c) => `${c.data.title} @ ${school.get(c.data.schoolKey!)}`).sort(),
    enrollments: ds.list('enrollment').map((e) => `${cls.get(e.data.classKey)}|${e.data.role.toUpperCase()}|${person.get(e.data.personKey)!.sisId}`).sort(),
    students: ds.list('person').filter((p) => p.data.roles.includes('student')).map((p) => `${p.data.sisId} ${p.data.givenName} ${p.data.familyName} ${(p.data.grades ?? []).join(',')}`).sort(),
  };
}

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

  async function syncEach() {
    const out = new Map<string, Awaited<ReturnType<typeof roster>>>();
    for (const [id, block] of Object.entries(sources())) {
      const cfg = parseConfig({ store: join(dir, `${id}.db`), sources: [{ id, ...block }] });
      const store = stores.get(id) ?? SqliteStore.open(cfg.store);
      stores.set(id, store);
      const [s] = await syncAll(store, cfg, log);
      expect(s!.status, id).toBe('complete');
      out.set(id, await roster(store));
    }
    return out;
  }

  it('a full sync lands the district identically through each', async () => {
    const want = expected(ds);
    for (const [id, got] of await syncEach()) {
      expect(got.classes, id).toEqual(want.classes);
      expect(got.enrollments, id).toEqual(want.enrollments);
      expect(got.students, id).toEqual(want.students);
    }
  });

  it('an incremental sync after changes lands the same changed roster through each', async () => {
    const student = ds.list('person').find((p) => p.data.roles.includes('student'))!;
    ds.upsert('person', student.key, { givenName: 'Zoé-Renée' });
    ds.remove('enrollment', ds.list('enrollment').find((e) => e.data.role === 'student')!.key);
    ds.upsert('person', 'stu-late', { givenName: 'Late', familyName: 'Arrival', roles: ['student'], sisId: 'S777777', orgKeys: ['sch-01'], primaryOrgKey: 'sch-01', grades: ['KG'] });
    ds.upsert('enrollment', 'late-enr', { classKey: ds.list('class')[0]!.key, personKey: 'stu-late', schoolKey: 'sch-01', role: 'student' });
    writeOneRosterDrop(ds, join(dir, 'drop'), { mode: 'delta', sinceSeq: csvSeq, version: '1.2', zip: true });
    const want = expected(ds);
    for (const [id, got] of await syncEach()) {
      expect(got.students, id).toEqual(want.students);
      expect(got.enrollments, id).toEqual(want.enrollments);
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
