/**
 * School Data Sync CSV connector: the connector suite over v2.1 drops written from the demo
 * dataset, Microsoft's public v2.1 and v1 samples, the UK variant, and header defects.
 */
import { describe, expect, it } from 'vitest';
import { cpSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { RosterDataset } from '../../src/demo/dataset.ts';
import { sdsCsvDefinition, SdsCsvConnector, writeSdsDrop } from '../../connectors/sds-csv/index.ts';
import { collect, defineConnectorSuite, MiniStore, testHttp } from '../support/connector-suite.ts';
import { createLogger } from '../../src/log.ts';
import { externalPath, itExternal } from '../support/external.ts';
import { tempDir } from '../support/stores.ts';
import type { OrgData, PersonData } from '../../src/model/records.ts';

const log = createLogger({ level: 'silent' });
const sds = (path: string, mode: 'strict' | 'tolerant' = 'strict', format?: string) =>
  sdsCsvDefinition.create(sdsCsvDefinition.configSchema.parse({ id: 'sds', type: 'sds-csv', path, mode, ...(format ? { format } : {}) }), { http: testHttp('sds'), log }) as SdsCsvConnector;

defineConnectorSuite({
  name: 'sds csv v2.1',
  faults: false,
  types: ['org', 'academicSession', 'course', 'person', 'demographics', 'class', 'enrollment', 'guardianship'],
  async start() {
    const dataset = RosterDataset.generate({ students: 120, teachers: 8, classes: 16, schools: 2 });
    const dir = tempDir();
    let seq = -1;
    let path = '';
    // SDS uploads are always complete: a change means a new full drop.
    const make = () => {
      if (dataset.headSeq !== seq) {
        path = writeSdsDrop(dataset, join(dir, `drop-${dataset.headSeq}`));
        seq = dataset.headSeq;
      }
      return sds(path);
    };
    return { dataset, make, close: async () => undefined };
  },
});

describe('sds csv samples and formats', () => {
  itExternal('imports Microsoft’s v2.1 sample (CRLF) in strict mode: every file, users with roles, guardians, flags and demographics', async () => {
    expect(readFileSync(externalPath('microsoft/sds-csv/v2.1/users.csv'), 'utf8')).toContain('\r\n');
    const c = sds(externalPath('microsoft/sds-csv/v2.1'), 'strict');
    const store = new MiniStore().apply(await collect(c, null));
    expect(c.format).toBe('v2.1');
    expect(c.warnings).toEqual([]);
    const count = (f: string) => readFileSync(externalPath(`microsoft/sds-csv/v2.1/${f}`), 'utf8').trim().split(/\r?\n/).length - 1;
    expect(store.ofType('person')).toHaveLength(count('users.csv'));
    expect(store.ofType('org')).toHaveLength(count('orgs.csv'));
    expect(store.ofType('academicSession')).toHaveLength(count('academicSessions.csv'));
    expect(store.ofType('course')).toHaveLength(count('courses.csv'));
    expect(store.ofType('class')).toHaveLength(count('classes.csv'));
    expect(store.ofType('enrollment')).toHaveLength(count('enrollments.csv'));
    expect(store.ofType('guardianship')).toHaveLength(count('relationships.csv'));
    const jack = store.records.get('person/114001') as { data: PersonData };
    expect(jack.data).toMatchObject({ givenName: 'Jack', familyName: 'Craig', roles: ['student'], orgKeys: ['110003'], grades: ['10'], sisId: '114001' });
    expect((store.records.get('person/114002') as { data: PersonData }).data.roles).toContain('guardian');
    expect((store.records.get('demographics/114001') as unknown as { data: Record<string, unknown> }).data).toMatchObject({ sex: 'male', birthDate: '2001-07-02', hispanicOrLatino: true, iep: true });
    expect((store.records.get('demographics/114003') as unknown as { data: Record<string, unknown> }).data).toMatchObject({ asian: true, freeReducedLunch: 'free' });
    expect(store.records.get('guardianship/114002:114001')).toMatchObject({ data: { relation: 'guardian' } });
    expect(store.ofType('enrollment').find((e) => e.key === '112001:114006')?.data.role).toBe('teacher');
    // v2.1 orgs carry only their SIS id, the sourcedId.
    expect(store.records.get('org/110003')).toMatchObject({ data: { type: 'school', sisId: '110003' } });
    expect((store.records.get('org/110003') as { data: OrgData }).data.identifier).toBeUndefined();
  });

  itExternal('imports Microsoft’s classic v1 sample (CRLF), sections with their terms and courses', async () => {
    const c = sds(externalPath('microsoft/sds-csv/v1-25-users'));
    const store = new MiniStore().apply(await collect(c, null));
    expect(c.format).toBe('v1');
    const count = (f: string) => readFileSync(externalPath(`microsoft/sds-csv/v1-25-users/${f}`), 'utf8').trim().split(/\r?\n/).length - 1;
    expect(store.ofType('person')).toHaveLength(count('Student.csv') + count('Teacher.csv'));
    expect(store.ofType('class')).toHaveLength(count('Section.csv'));
    expect(store.ofType('enrollment')).toHaveLength(count('StudentEnrollment.csv') + count('TeacherRoster.csv'));
    expect(store.records.get('person/13001')).toMatchObject({ data: { givenName: 'Ora', familyName: 'Klein', roles: ['student'], grades: ['09'], graduationYear: '2019' } });
    expect(store.records.get('demographics/13001')).toMatchObject({ data: { birthDate: '2000-04-02' } });
    expect(store.records.get('academicSession/12000')).toMatchObject({ data: { startDate: '2017-07-01', endDate: '2018-06-30' } });
    // Each of School.csv's kinds of id in its own field (the sample's State ID is the state's code, WA).
    expect(store.records.get('org/10001')).toMatchObject({ data: { sisId: '10001', identifier: '1', stateId: 'WA', schoolNumber: '10001' } });
  });

  itExternal('reads the UK variant’s column names (DfE Number, ID, School DfE Number, Section ID)', async () => {
    const dir = tempDir();
    for (const f of readdirSync(externalPath('microsoft/sds-csv/v1-25-users'))) {
      if (!f.endsWith('.csv')) continue;
      const [head, ...rest] = readFileSync(externalPath(`microsoft/sds-csv/v1-25-users/${f}`), 'utf8').split('\r\n');
      const uk = head!.split(',').map((h) =>
        f === 'School.csv' ? (h === 'SIS ID' ? 'DfE Number' : h === 'Zip' ? 'Postal Code' : h) : h === 'SIS ID' ? 'ID' : h === 'School SIS ID' ? 'School DfE Number' : h === 'Section SIS ID' ? 'Section ID' : h,
      );
      writeFileSync(join(dir, f), [uk.join(','), ...rest].join('\r\n'));
    }
    const c = sds(dir);
    const store = new MiniStore().apply(await collect(c, null));
    expect(c.format).toBe('v1-uk');
    expect(store.records.get('person/13001')).toMatchObject({ data: { givenName: 'Ora', orgKeys: ['10001'] } });
    // The DfE number is the official id and the SIS's id of the school alike.
    expect(store.records.get('org/10001')).toMatchObject({ data: { identifier: '10001', sisId: '10001' } });
    expect(store.ofType('enrollment').length).toBeGreaterThan(0);
  });

  itExternal('a missing required column is an error naming file, line and column; unknown columns warn or fail by mode', async () => {
    const dir = tempDir();
    cpSync(externalPath('microsoft/sds-csv/v2.1'), dir, { recursive: true });
    const users = readFileSync(join(dir, 'users.csv'), 'utf8');
    writeFileSync(join(dir, 'users.csv'), users.replace(/^sourcedId,username/, 'sourcedId,login'));
    const e = await collect(sds(dir, 'tolerant'), null).catch((x: unknown) => x);
    expect((e as Error).message).toMatch(/source sds, resource users\.csv, record line 1, column username: required column "username" is missing/);
    writeFileSync(join(dir, 'users.csv'), users.replace(/^(sourcedId,username,[^\r\n]*)/, '$1,shoeSize').replace(/\r\n(\d+,[^\r\n]*)/g, '\r\n$1,42'));
    const tolerant = sds(dir, 'tolerant');
    await collect(tolerant, null);
    expect(tolerant.warnings.some((w) => /users\.csv line 1, column shoeSize: unknown column "shoeSize"/.test(w))).toBe(true);
    const strict = await collect(sds(dir, 'strict'), null).catch((x: unknown) => x);
    expect((strict as Error).message).toMatch(/users\.csv, record line 1, column shoeSize: unknown column/);
  });

  itExternal('a drop with only the required files and columns imports in strict mode (UK "minimum required attributes")', async () => {
    const dir = tempDir();
    const uk: Record<string, Record<string, string>> = {
      'School.csv': { 'SIS ID': 'DfE Number' },
      'Student.csv': { 'SIS ID': 'ID', 'School SIS ID': 'School DfE Number' },
      'Teacher.csv': { 'SIS ID': 'ID', 'School SIS ID': 'School DfE Number' },
    };
    const keep: Record<string, string[]> = { 'School.csv': ['SIS ID', 'Name'], 'Student.csv': ['SIS ID', 'School SIS ID', 'Username'], 'Teacher.csv': ['SIS ID', 'School SIS ID', 'Username'] };
    for (const [f, cols] of Object.entries(keep)) {
      const [head, ...rows] = readFileSync(externalPath(`microsoft/sds-csv/v1-25-users/${f}`), 'utf8').trim().split('\r\n');
      const idx = cols.map((c) => head!.split(',').indexOf(c));
      writeFileSync(join(dir, f), [cols.map((c) => uk[f]![c] ?? c).join(','), ...rows.map((r) => idx.map((i) => r.split(',')[i]).join(','))].join('\r\n') + '\r\n');
    }
    const c = sds(dir, 'strict');
    const store = new MiniStore().apply(await collect(c, null));
    expect(c.format).toBe('v1-uk');
    expect(c.warnings).toEqual([]);
    expect(store.records.get('person/13001')).toMatchObject({ data: { username: 'OKlein', roles: ['student'], orgKeys: ['10001'] } });
    expect(store.ofType('class')).toEqual([]);
  });

  it('files left out of a later drop delete nothing; a missing required file is named', async () => {
    const ds = RosterDataset.generate({ students: 40, teachers: 4, classes: 6, schools: 1 });
    const first = writeSdsDrop(ds, join(tempDir(), 'a'));
    const store = new MiniStore().apply(await collect(sds(first), null));
    const classes = store.ofType('class').length;
    expect(classes).toBeGreaterThan(0);
    const second = writeSdsDrop(ds, join(tempDir(), 'b'));
    for (const f of ['classes.csv', 'enrollments.csv', 'academicSessions.csv', 'courses.csv', 'demographics.csv', 'userFlags.csv', 'relationships.csv']) rmSync(join(second, f));
    const pages = await collect(sds(second), null);
    expect(pages.flatMap((p) => p.completes ?? []).sort()).toEqual(['org', 'person']);
    store.newRun().apply(pages);
    expect(store.ofType('class')).toHaveLength(classes);
    expect(store.ofType('enrollment')).toHaveLength(ds.list('enrollment').length);
    rmSync(join(second, 'roles.csv'));
    expect(((await collect(sds(second), null).catch((x: unknown) => x)) as Error).message).toMatch(/source sds, resource roles\.csv.*required file roles\.csv is missing/);
  });

  it('a blank id names file, line and column in any mode; a bad date fails strict and is left out in tolerant', async () => {
    const ds = RosterDataset.generate({ students: 20, teachers: 2, classes: 2, schools: 1 });
    const dir = writeSdsDrop(ds, join(tempDir(), 'd'));
    const enr = readFileSync(join(dir, 'enrollments.csv'), 'utf8').split('\r\n');
    writeFileSync(join(dir, 'enrollments.csv'), [enr[0], enr[1], `,${enr[2]!.split(',').slice(1).join(',')}`, ...enr.slice(3)].join('\r\n'));
    for (const mode of ['strict', 'tolerant'] as const) {
      const e = await collect(sds(dir, mode), null).catch((x: unknown) => x);
      expect((e as Error).message, mode).toMatch(/resource enrollments\.csv, record line 3, column classSourcedId: blank, but it identifies the record/);
    }
    writeFileSync(join(dir, 'enrollments.csv'), enr.join('\r\n'));
    const demo = readFileSync(join(dir, 'demographics.csv'), 'utf8').split('\r\n');
    const cells = demo[1]!.split(',');
    cells[2] = '31/12/2010';
    writeFileSync(join(dir, 'demographics.csv'), [demo[0], cells.join(','), ...demo.slice(2)].join('\r\n'));
    expect(((await collect(sds(dir, 'strict'), null).catch((x: unknown) => x)) as Error).message).toMatch(/resource demographics\.csv, record line 2, column birthDate: not a date/);
    const tolerant = sds(dir, 'tolerant');
    const pages = await collect(tolerant, null);
    const store = new MiniStore().apply(pages);
    expect(tolerant.warnings).toEqual(['demographics.csv line 2, column birthDate: not a date (expected YYYY-MM-DD, YYYYMMDD or M/D/YYYY)']);
    // Every finding goes to the sync report, once, with the first page.
    expect(pages.filter((p) => p.notes).map((p) => p.notes)).toEqual([{ defects: tolerant.warnings }]);
    expect((store.records.get(`demographics/${cells[0]}`) as unknown as { data: { birthDate?: string } }).data.birthDate).toBeUndefined();
    expect(store.ofType('demographics')).toHaveLength(ds.list('demographics').length);
  });
});
