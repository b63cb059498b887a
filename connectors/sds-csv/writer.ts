/** Writes the demo dataset as a School Data Sync v2.1 drop (CRLF, no BOM, as Microsoft's samples). */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { stringify } from 'csv-stringify/sync';
import type { DatasetView } from '../dataset-view.ts';
import { V21 } from './formats.ts';

const ROLE: Record<string, string> = { student: 'student', teacher: 'teacher', staff: 'aide', administrator: 'principal' };

export function writeSdsDrop(ds: DatasetView, dir: string): string {
  // A drop holds personal data: owner-only (folders 0700, files 0600), as the gateway's store.
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const csv = (name: string, rows: string[][]) => writeFileSync(join(dir, name), stringify([V21[name]!.columns, ...rows], { record_delimiter: '\r\n' }), { mode: 0o600 });
  const people = ds.list('person');
  const district = ds.list('org').find((o) => o.data.type === 'district')?.key;
  csv('orgs.csv', ds.list('org').map((o) => [o.key, o.data.name, o.data.type, o.data.parentKey ?? '']));
  csv('users.csv', people.map((p) => [p.key, p.data.username ?? p.data.email ?? p.key, p.data.givenName, p.data.familyName, '', '', p.data.email ?? '', p.data.phone ?? '', '']));
  csv('roles.csv', people.flatMap((p) =>
    p.data.roles.filter((r) => r !== 'guardian').flatMap((r) => (p.data.orgKeys?.length ? p.data.orgKeys : district ? [district] : []).map((org) => [
      p.key, org, ROLE[r]!, '', p.data.grades?.[0] ?? '', org === (p.data.primaryOrgKey ?? district) ? 'TRUE' : 'FALSE', '', '',
    ])),
  ));
  csv('classes.csv', ds.list('class').map((c) => [c.key, c.data.schoolKey ?? '', c.data.title, (c.data.termKeys ?? []).join(','), c.data.courseKey ?? '', c.data.classCode ?? '']));
  csv('enrollments.csv', ds.list('enrollment').map((e) => [e.data.classKey, e.data.personKey, e.data.role === 'teacher' ? 'teacher' : 'student']));
  csv('academicSessions.csv', ds.list('academicSession').map((a) => [a.key, a.data.title, a.data.type, a.data.schoolYear ?? '', a.data.startDate ?? '', a.data.endDate ?? '']));
  csv('courses.csv', ds.list('course').map((c) => [c.key, c.data.orgKey ?? '', c.data.title, c.data.courseCode ?? '', c.data.schoolYearKey ?? '', c.data.subjects?.[0] ?? '', c.data.grades?.[0] ?? '']));
  const race: [string, string][] = [['asian', 'asian'], ['white', 'white'], ['blackOrAfricanAmerican', 'blackOrAfricanAmerican'], ['americanIndianOrAlaskaNative', 'americanIndianOrAlaskaNative'], ['nativeHawaiianOrOtherPacificIslander', 'nativeHawaiianOrOtherPacificIslander'], ['twoOrMoreRaces', 'demographicRaceTwoOrMoreRaces']];
  csv('demographics.csv', ds.list('demographics').map((d) => {
    const x = d.data as unknown as Record<string, unknown>;
    return [d.key, d.data.sex ?? '', d.data.birthDate ?? '', '', '', d.data.countryOfBirth ?? '', d.data.hispanicOrLatino ? 'hispanicOrLatinoEthnicity' : '', race.filter(([f]) => x[f] === true).map(([, c]) => c).join(',')];
  }));
  csv('userFlags.csv', ds.list('demographics').flatMap((d) => [
    ...(d.data.iep ? [[d.key, 'iep']] : []), ...(d.data.section504 ? [[d.key, '504']] : []), ...(d.data.englishLanguageLearner ? [[d.key, 'ell']] : []),
    ...(d.data.freeReducedLunch === 'free' ? [[d.key, 'freeLunch']] : d.data.freeReducedLunch === 'reduced' ? [[d.key, 'reducedLunch']] : []),
  ]));
  csv('relationships.csv', ds.list('guardianship').map((g) => [g.data.studentKey, g.data.guardianKey, g.data.relation === 'parent' || g.data.relation === 'guardian' ? g.data.relation : 'relative']));
  return dir;
}
