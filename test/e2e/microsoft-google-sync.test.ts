/**
 * Issue 4's end-to-end promise: a full and then an incremental sync of one district through each of
 * Microsoft Graph Education, a School Data Sync CSV drop and Google Classroom lands the same roster
 * in a real store and in GraphQL — renames, a new student, a removed enrollment, a removed class
 * (which Graph's class delta never reports) and a removed guardianship included.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { join } from 'node:path';
import { execute, parse } from 'graphql';
import { RosterDataset } from '../../src/demo/dataset.ts';
import { startSandboxServer, type RunningSandbox } from '../../connectors/sandbox-kit.ts';
import { CONNECTORS } from '../../connectors/registry.ts';
import { sandboxSourceConfig as graphSource } from '../../connectors/msgraph/index.ts';
import { sandboxSourceConfig as classroomSource } from '../../connectors/google-classroom/index.ts';
import { writeSdsDrop } from '../../connectors/sds-csv/index.ts';
import { parseConfig } from '../../src/config/config.ts';
import { createLogger } from '../../src/log.ts';
import { syncAll } from '../../src/runtime.ts';
import { SqliteStore } from '../../src/store/sqlite.ts';
import type { Store } from '../../src/store/types.ts';
import type { SyncSummary } from '../../src/sync/runner.ts';
import { buildUnifiedSchema } from '../../src/graphql/schema.ts';
import { createContext } from '../../src/graphql/context.ts';
import type { PersonData } from '../../src/model/records.ts';
import { tempDir } from '../support/stores.ts';

const log = createLogger({ level: 'silent' });
const schema = buildUnifiedSchema();

type Vendor = 'msgraph' | 'sds-csv' | 'google-classroom';
interface View { classes: string[]; enrollments: string[]; students: string[]; teachers: string[]; guardianships: string[] }

/**
 * How each vendor names what the dataset holds: Graph carries the SIS id (student.externalId), an
 * SDS drop's sourcedId is the dataset key, Classroom knows people only by email and has no schools
 * (its placeholder) and no grades; Graph has no guardians.
 */
const WHO: Record<Vendor, (p: PersonData, key: string) => string> = {
  msgraph: (p) => p.sisId!, 'sds-csv': (_p, key) => key, 'google-classroom': (p) => p.email!,
};

const QUERY = parse(`{
  classes(first: 1000) { edges { node { title school { name } enrollments(first: 200) { edges { node { role person { sisId email } } } } } } }
  students: people(first: 1000, role: STUDENT) { edges { node { sisId email givenName familyName grades } } }
  teachers: people(first: 1000, role: TEACHER) { edges { node { sisId email givenName familyName } } }
  guardianships(first: 1000) { edges { node { guardian { sisId email } student { sisId email } } } }
}`);

/* eslint-disable @typescript-eslint/no-explicit-any */
async function viaGraphQL(store: Store, vendor: Vendor): Promise<View> {
  const r = await execute({ schema, contextValue: createContext(store, new Map()), document: QUERY });
  if (r.errors) throw new Error(r.errors[0]!.message);
  const d = r.data as any;
  const who = (p: any) => (vendor === 'google-classroom' ? p?.email : p?.sisId);
  const grades = (p: any) => (vendor === 'google-classroom' ? '' : ` ${p.grades.join(',')}`);
  return {
    classes: d.classes.edges.map((e: any) => `${e.node.title} @ ${e.node.school?.name}`).sort(),
    enrollments: d.classes.edges.flatMap((e: any) => e.node.enrollments.edges.map((x: any) => `${e.node.title}|${x.node.role}|${who(x.node.person)}`)).sort(),
    students: d.students.edges.map((e: any) => `${who(e.node)} ${e.node.givenName} ${e.node.familyName}${grades(e.node)}`).sort(),
    teachers: d.teachers.edges.map((e: any) => `${who(e.node)} ${e.node.givenName} ${e.node.familyName}`).sort(),
    guardianships: d.guardianships.edges.map((e: any) => `${who(e.node.guardian)} → ${who(e.node.student)}`).sort(),
  };
}
/* eslint-enable @typescript-eslint/no-explicit-any */

function expected(ds: RosterDataset, vendor: Vendor): View {
  const school = new Map(ds.list('org').map((o) => [o.key, o.data.name]));
  const cls = new Map(ds.list('class').map((c) => [c.key, c.data.title]));
  const person = new Map(ds.list('person').map((p) => [p.key, p.data]));
  const who = (key: string) => WHO[vendor](person.get(key)!, key);
  const withRole = (role: string) => ds.list('person').filter((p) => p.data.roles.includes(role as never));
  const grades = (p: PersonData) => (vendor === 'google-classroom' ? '' : ` ${(p.grades ?? []).join(',')}`);
  return {
    classes: ds.list('class').map((c) => `${c.data.title} @ ${vendor === 'google-classroom' ? 'Google Classroom' : school.get(c.data.schoolKey!)}`).sort(),
    enrollments: ds.list('enrollment').map((e) => `${cls.get(e.data.classKey)}|${e.data.role.toUpperCase()}|${who(e.data.personKey)}`).sort(),
    students: withRole('student').map((p) => `${who(p.key)} ${p.data.givenName} ${p.data.familyName}${grades(p.data)}`).sort(),
    teachers: withRole('teacher').map((p) => `${who(p.key)} ${p.data.givenName} ${p.data.familyName}`).sort(),
    guardianships: vendor === 'msgraph' ? [] : ds.list('guardianship').map((g) => `${who(g.data.guardianKey)} → ${who(g.data.studentKey)}`).sort(),
  };
}

describe('the same roster through Graph, SDS CSV and Classroom, full then incremental', () => {
  let ds: RosterDataset;
  let sandbox: RunningSandbox;
  const dir = tempDir();
  let drops = 0;
  const stores = new Map<Vendor, SqliteStore>();
  // SDS uploads are always complete: every sync reads a new drop written from the district as it is.
  const sources = (): Record<Vendor, Record<string, unknown>> => ({
    msgraph: graphSource(sandbox.urlOf('/msgraph')),
    'sds-csv': { type: 'sds-csv', path: writeSdsDrop(ds, join(dir, `sds-${++drops}`)), mode: 'strict' },
    'google-classroom': classroomSource(sandbox.urlOf('/google')),
  });

  beforeAll(async () => {
    ds = RosterDataset.generate({ students: 90, teachers: 6, classes: 9, schools: 3 });
    sandbox = await startSandboxServer({ dataset: ds, apps: CONNECTORS.flatMap((d) => (d.sandbox ? [d.sandbox] : [])) });
  });
  afterAll(async () => {
    for (const s of stores.values()) await s.close();
    await sandbox.close();
  });

  async function syncEach() {
    const out = new Map<Vendor, { view: View; summary: SyncSummary }>();
    for (const [vendor, block] of Object.entries(sources()) as [Vendor, Record<string, unknown>][]) {
      const cfg = parseConfig({ store: join(dir, `${vendor}.db`), server: { openAccess: true }, sources: [{ id: vendor, ...block }] });
      const store = stores.get(vendor) ?? SqliteStore.open(cfg.store);
      stores.set(vendor, store);
      const [s] = await syncAll(store, cfg, log);
      expect(s!.status, vendor).toBe('complete');
      out.set(vendor, { view: await viaGraphQL(store, vendor), summary: s! });
    }
    return out;
  }

  it('a full sync lands the district through each, as GraphQL shows it', async () => {
    for (const [vendor, got] of await syncEach()) {
      expect(got.summary.mode, vendor).toBe('full');
      expect(got.view, vendor).toEqual(expected(ds, vendor));
      expect(got.view.enrollments.length, vendor).toBeGreaterThan(50);
    }
  });

  it('an incremental sync after changes lands the changed district through each', async () => {
    const student = ds.list('person').find((p) => p.data.roles.includes('student'))!;
    ds.upsert('person', student.key, { givenName: 'Zoé-Renée' });
    ds.remove('enrollment', ds.list('enrollment').find((e) => e.data.role === 'student')!.key);
    // A class gone with its roster: Graph's class delta leaves it out; the connector finds it missing.
    const gone = ds.list('class').at(-1)!;
    for (const e of ds.list('enrollment').filter((x) => x.data.classKey === gone.key)) ds.remove('enrollment', e.key);
    ds.remove('class', gone.key);
    const school = ds.list('org').find((o) => o.data.type === 'school')!.key;
    ds.upsert('person', 'stu-late', { givenName: 'Late', familyName: 'Arrival', roles: ['student'], sisId: 'S777777', email: 'late.arrival@rostergate-demo.example', orgKeys: [school], primaryOrgKey: school, grades: ['KG'] });
    ds.upsert('demographics', 'stu-late', { personKey: 'stu-late', birthDate: '2020-02-03', sex: 'female' });
    ds.upsert('enrollment', 'late-enr', { classKey: ds.list('class')[0]!.key, personKey: 'stu-late', schoolKey: school, role: 'student' });
    ds.remove('guardianship', ds.list('guardianship')[0]!.key);
    for (const [vendor, got] of await syncEach()) {
      // Graph follows its deltaLinks; SDS and Classroom re-read everything and the store keeps only the differences.
      expect(got.summary.mode, vendor).toBe('incremental');
      if (vendor === 'msgraph') expect(got.summary.byResource['users/delta'], vendor).toBeDefined();
      expect(got.summary.counters.created + got.summary.counters.updated + got.summary.counters.deleted, vendor).toBeLessThan(40);
      expect(got.summary.counters.deleted, vendor).toBeGreaterThan(0);
      expect(got.view, vendor).toEqual(expected(ds, vendor));
    }
  });
});
