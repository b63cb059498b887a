/**
 * OneRoster CSV connector: the connector suite over drops written from the demo dataset (bulk,
 * then delta), the public sample sets, and the defects real exports contain.
 */
import { describe, expect, it } from 'vitest';
import { mkdirSync, writeFileSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { RosterDataset } from '../../src/demo/dataset.ts';
import { oneRosterCsvDefinition, writeOneRosterDrop, OneRosterCsvConnector } from '../../connectors/oneroster-csv/index.ts';
import { collect, defineConnectorSuite, MiniStore, testHttp } from '../support/connector-suite.ts';
import { createLogger } from '../../src/log.ts';
import { externalPath, itExternal } from '../support/external.ts';
import { tempDir } from '../support/stores.ts';
import { RostergateError } from '../../src/errors.ts';
import type { PersonData } from '../../src/model/records.ts';
import { SqliteStore } from '../../src/store/sqlite.ts';
import { syncSource } from '../../src/sync/runner.ts';
import { expectedRoster, rosterViaGraphQL } from '../support/roster.ts';

const log = createLogger({ level: 'silent' });

function csvConnector(path: string, mode: 'strict' | 'tolerant' = 'strict') {
  return oneRosterCsvDefinition.create(oneRosterCsvDefinition.configSchema.parse({ id: 'or-csv', type: 'oneroster-csv', path, mode }), { http: testHttp('or-csv'), log }) as OneRosterCsvConnector;
}

for (const version of ['1.1', '1.2'] as const) {
  defineConnectorSuite({
    name: `oneroster csv ${version}`,
    faults: false,
    types: ['org', 'academicSession', 'course', 'person', 'demographics', 'class', 'enrollment', 'guardianship'],
    async start() {
      const dataset = RosterDataset.generate({ students: 120, teachers: 8, classes: 16, schools: 2 });
      const dir = tempDir();
      let seq = dataset.headSeq;
      let path = writeOneRosterDrop(dataset, join(dir, 'bulk'), { version, zip: true });
      // A file source sees changes when the district sends a new drop: a delta since the last one.
      const make = () => {
        if (dataset.headSeq !== seq) {
          path = writeOneRosterDrop(dataset, join(dir, `delta-${dataset.headSeq}`), { mode: 'delta', sinceSeq: seq, version, zip: true });
          seq = dataset.headSeq;
        }
        return csvConnector(path);
      };
      return { dataset, make, close: async () => undefined };
    },
  });
}

describe('oneroster csv drops', () => {
  it('a bulk drop gives back the district, and reading the same drop again yields nothing', async () => {
    const ds = RosterDataset.generate({ students: 60, teachers: 4, classes: 6, schools: 1 });
    const path = writeOneRosterDrop(ds, join(tempDir(), 'd'), { version: '1.2' });
    const pages = await collect(csvConnector(path), null);
    const store = new MiniStore().apply(pages);
    expect(store.ofType('person')).toHaveLength(ds.list('person').length);
    const p = ds.list('person').find((x) => x.data.roles.includes('teacher'))!;
    expect((store.records.get(`person/${p.key}`) as { data: PersonData }).data).toMatchObject({ givenName: p.data.givenName, sisId: p.data.sisId, roles: ['teacher'] });
    const again = await collect(csvConnector(path), pages.at(-1)!.state);
    expect(again.flatMap((x) => x.records)).toEqual([]);
  });

  itExternal('imports the public OneRoster 1.1 bulk sample (tolerant: it has statuses in bulk files and TRUE)', async () => {
    const c = csvConnector(externalPath('oneroster/moodle-1.1-full'), 'tolerant');
    const store = new MiniStore().apply(await collect(c, null));
    expect(store.ofType('person').length).toBe(6);
    expect(store.ofType('enrollment').length).toBe(6);
    expect(store.ofType('class').length).toBe(1);
    const mary = store.ofType('person').find((x) => x.key === 'usr-222-66778899')!;
    expect(mary.data).toMatchObject({ givenName: 'Mary', roles: ['student'], grades: ['12'], enabled: true });
    expect(store.ofType('guardianship').map((g) => g.key)).toContain('usr-222-123456:usr-222-66778899');
    expect(c.warnings.some((w) => /users\.csv line 2, column status: must be empty in a bulk file/.test(w))).toBe(true);
    expect(c.warnings.some((w) => /column enabledUser: booleans are lower case/.test(w))).toBe(true);
    expect(c.warnings.join('\n')).not.toContain('Mary');
  });

  itExternal('imports the public OneRoster 1.2 delta sample in tolerant mode; strict mode names file, line and column', async () => {
    const store = new MiniStore().apply(await collect(csvConnector(externalPath('oneroster/moodle-1.2-delta'), 'tolerant'), null));
    const bruce = store.ofType('person').find((x) => x.key === 'USER_0')!;
    expect(bruce.data).toMatchObject({ givenName: 'Bruce', familyName: 'Wayne', roles: ['student'], orgKeys: ['ORG_1'] });
    expect(store.ofType('enrollment')).toHaveLength(1);
    const e = await collect(csvConnector(externalPath('oneroster/moodle-1.2-delta'), 'strict'), null).catch((x: unknown) => x);
    expect(e).toBeInstanceOf(RostergateError);
    expect((e as Error).message).toMatch(/source or-csv, resource users\.csv, record line 1, column resourceSourcedIds: optional column\(s\) missing|record line 2, column enabledUser: booleans are lower case/);
  });

  it('accepts a BOM, CRLF line ends and quoted multi-values', async () => {
    const ds = RosterDataset.generate({ students: 20, teachers: 2, classes: 2, schools: 1 });
    const dir = join(tempDir(), 'd');
    writeOneRosterDrop(ds, dir, { version: '1.2' });
    const classes = readFileSync(join(dir, 'classes.csv'), 'utf8').split('\n').filter(Boolean);
    classes[1] = classes[1]!.replace(/,([^,]*),,(\d)$/, ',"$1,s2-2027",,$2');
    writeFileSync(join(dir, 'classes.csv'), '\uFEFF' + classes.join('\r\n') + '\r\n');
    const store = new MiniStore().apply(await collect(csvConnector(dir), null));
    expect(store.ofType('class')).toHaveLength(2);
  });

  it('a truncated file or a broken row is an error naming file and line, and nothing of the drop is read', async () => {
    const ds = RosterDataset.generate({ students: 20, teachers: 2, classes: 2, schools: 1 });
    const dir = join(tempDir(), 'd');
    writeOneRosterDrop(ds, dir, { version: '1.2' });
    const text = readFileSync(join(dir, 'enrollments.csv'), 'utf8');
    writeFileSync(join(dir, 'enrollments.csv'), text.slice(0, text.length - 40) + '"unterminated');
    const pages: unknown[] = [];
    const e = await (async () => {
      for await (const p of csvConnector(dir).read(null)) pages.push(p);
    })().catch((x: unknown) => x);
    expect(pages).toEqual([]);
    expect((e as RostergateError).code).toBe('CSV_INVALID');
    expect((e as Error).message).toMatch(/resource enrollments\.csv, record line \d+: (a quoted field is not closed|a quote opens inside a field)/);
    // The message describes the defect; it does not quote the row (which holds ids).
    expect((e as Error).message).not.toMatch(/tch-|stu-|value is/);
    const lines = text.split('\n');
    lines[3] = lines[3] + ',extra';
    writeFileSync(join(dir, 'enrollments.csv'), lines.join('\n'));
    const e2 = await collect(csvConnector(dir), null).catch((x: unknown) => x);
    expect((e2 as Error).message).toMatch(/enrollments\.csv, record line 4: the row has a different number of fields/);
  });

  it('strict refuses columns out of order and unknown columns among the binding’s; tolerant warns', async () => {
    const ds = RosterDataset.generate({ students: 20, teachers: 2, classes: 2, schools: 1 });
    const dir = join(tempDir(), 'd');
    writeOneRosterDrop(ds, dir, { version: '1.2' });
    const rows = readFileSync(join(dir, 'orgs.csv'), 'utf8').split('\n').filter(Boolean).map((l) => l.split(','));
    const swapped = rows.map((r) => [r[0], r[1], r[2], r[4], r[3], ...r.slice(5)].join(','));
    writeFileSync(join(dir, 'orgs.csv'), swapped.join('\n') + '\n');
    const e = await collect(csvConnector(dir, 'strict'), null).catch((x: unknown) => x);
    expect((e as Error).message).toMatch(/orgs\.csv, record line 1: columns are not in the order the binding gives/);
    const tolerant = csvConnector(dir, 'tolerant');
    await collect(tolerant, null);
    expect(tolerant.warnings[0]).toMatch(/orgs\.csv line 1: columns are not in the order/);
    const withExtra = rows.map((r, i) => [...r.slice(0, 4), i === 0 ? 'color' : 'blue', ...r.slice(4)].join(','));
    writeFileSync(join(dir, 'orgs.csv'), withExtra.join('\n') + '\n');
    const e2 = await collect(csvConnector(dir, 'strict'), null).catch((x: unknown) => x);
    expect((e2 as Error).message).toMatch(/orgs\.csv, record line 1, column color: unknown column "color" among the binding's columns/);
  });

  it('1.2 delta: a user row without its roles.csv rows keeps its roles; a role row without its user is a warning', async () => {
    const ds = RosterDataset.generate({ students: 30, teachers: 3, classes: 3, schools: 1 });
    const dir = tempDir();
    const path = join(dir, 'drop');
    const store = SqliteStore.open(join(dir, 'rg.db'));
    try {
      writeOneRosterDrop(ds, path, { version: '1.2' });
      const seq = ds.headSeq;
      await syncSource(store, csvConnector(path));
      const student = ds.list('person').find((p) => p.data.roles.includes('student'))!;
      const teacher = ds.list('person').find((p) => p.data.roles.includes('teacher'))!;
      ds.upsert('person', student.key, { givenName: 'Renamed' });
      const delta = join(dir, 'delta');
      writeOneRosterDrop(ds, delta, { mode: 'delta', sinceSeq: seq, version: '1.2' });
      // The producer sends the user row alone, and a role row for a user it sends no row for.
      const roleRow = `${teacher.key}:role,active,2026-01-01T00:00:00Z,${teacher.key},primary,teacher,,,${teacher.data.primaryOrgKey},`;
      writeFileSync(join(delta, 'roles.csv'), `sourcedId,status,dateLastModified,userSourcedId,roleType,role,beginDate,endDate,orgSourcedId,userProfileSourcedId\n${roleRow}\n`);
      const c = csvConnector(delta, 'strict');
      expect((await syncSource(store, c)).status).toBe('complete');
      expect(await rosterViaGraphQL(store)).toEqual(expectedRoster(ds));
      const [stored] = (await store.list({ type: 'person', first: 1000 })).rows.filter((p) => (p.data as PersonData).givenName === 'Renamed');
      expect((stored!.data as PersonData).roles).toEqual(['student']);
      expect(c.warnings).toEqual(['roles.csv line 2: a role change for a user whose users.csv row is not in this drop is not applied (the next bulk drop carries it)']);
    } finally {
      await store.close();
    }
  });

  it('a manifest listing a missing file, or no manifest, is a clear error', async () => {
    const dir = join(tempDir(), 'd');
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, 'users.csv'), 'sourcedId\n');
    expect(((await collect(csvConnector(dir), null).catch((x: unknown) => x)) as Error).message).toMatch(/manifest\.csv is missing/);
    writeFileSync(join(dir, 'manifest.csv'), 'propertyName,value\nmanifest.version,1.0\noneroster.version,1.2\nfile.orgs,bulk\n');
    expect(((await collect(csvConnector(dir), null).catch((x: unknown) => x)) as Error).message).toBe(
      'source or-csv, resource manifest.csv, record line 4, column value: the manifest lists orgs as bulk but orgs.csv is not in the drop',
    );
  });
});
