/**
 * Writes the demo dataset as a OneRoster CSV drop (bulk, or delta since a journal position): the
 * file-source counterpart of a vendor sandbox, used by the demo and the tests.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { stringify } from 'csv-stringify/sync';
import { zipSync } from 'fflate';
import type { DatasetRow, DatasetView } from '../dataset-view.ts';
import type { EntityType } from '../../src/model/records.ts';
import { FILES } from './binding.ts';

const TYPE: Record<string, EntityType> = {
  orgs: 'org', academicSessions: 'academicSession', courses: 'course', users: 'person', demographics: 'demographics', classes: 'class', enrollments: 'enrollment',
};
const ROLE: Record<string, string> = { student: 'student', teacher: 'teacher', staff: 'aide', administrator: 'administrator', guardian: 'guardian' };
const b = (x: boolean | undefined) => (x === undefined ? '' : String(x));
const j = (xs: string[] | undefined) => (xs ?? []).join(',');

/** Cell values of a row by column; undefined is an empty cell. */
function cells(name: string, r: DatasetRow, version: '1.1' | '1.2', agents: Map<string, string[]>): Record<string, string | undefined> {
  const d = r.data as unknown as Record<string, string | undefined> & Record<'grades' | 'subjects' | 'termKeys' | 'periods' | 'orgKeys' | 'roles', string[] | undefined> & Record<'primary' | 'americanIndianOrAlaskaNative' | 'asian' | 'blackOrAfricanAmerican' | 'nativeHawaiianOrOtherPacificIslander' | 'white' | 'twoOrMoreRaces' | 'hispanicOrLatino', boolean | undefined>;
  switch (name) {
    case 'orgs':
      return { name: d.name, type: d.type, identifier: d.identifier ?? '', parentSourcedId: d.parentKey ?? '' };
    case 'academicSessions':
      return { title: d.title, type: d.type, startDate: d.startDate ?? '', endDate: d.endDate ?? '', parentSourcedId: d.parentKey ?? '', schoolYear: d.schoolYear ?? '' };
    case 'courses':
      return { schoolYearSourcedId: d.schoolYearKey ?? '', title: d.title, courseCode: d.courseCode ?? '', grades: j(d.grades), orgSourcedId: d.orgKey ?? '', subjects: j(d.subjects), subjectCodes: '' };
    case 'classes':
      return {
        title: d.title, grades: j(d.grades), courseSourcedId: d.courseKey ?? '', classCode: d.classCode ?? '', classType: d.classType ?? 'scheduled', location: d.location ?? '',
        schoolSourcedId: d.schoolKey ?? '', termSourcedIds: j(d.termKeys), subjects: j(d.subjects), subjectCodes: '', periods: j(d.periods),
      };
    case 'enrollments':
      return { classSourcedId: d.classKey, schoolSourcedId: d.schoolKey ?? '', userSourcedId: d.personKey, role: d.role, primary: b(d.primary), beginDate: d.beginDate ?? '', endDate: d.endDate ?? '' };
    case 'demographics':
      return {
        birthDate: d.birthDate ?? '', sex: d.sex ?? '', americanIndianOrAlaskaNative: b(d.americanIndianOrAlaskaNative ?? false), asian: b(d.asian ?? false),
        blackOrAfricanAmerican: b(d.blackOrAfricanAmerican ?? false), nativeHawaiianOrOtherPacificIslander: b(d.nativeHawaiianOrOtherPacificIslander ?? false),
        white: b(d.white ?? false), demographicRaceTwoOrMoreRaces: b(d.twoOrMoreRaces ?? false), hispanicOrLatinoEthnicity: b(d.hispanicOrLatino ?? false),
        countryOfBirthCode: d.countryOfBirth ?? '', stateOfBirthAbbreviation: '', cityOfBirth: '', publicSchoolResidenceStatus: '',
      };
    case 'users': {
      const roles = d.roles ?? [];
      const common = {
        enabledUser: 'true', username: d.username ?? '', userIds: d.stateId ? `{StateID:${d.stateId}}` : '', givenName: d.givenName, familyName: d.familyName,
        middleName: d.middleName ?? '', identifier: d.sisId ?? '', email: d.email ?? '', sms: '', phone: d.phone ?? '',
        agentSourcedIds: j(roles.includes('student') ? agents.get(r.key) : []), grades: j(d.grades), password: '',
      };
      if (version === '1.1') return { ...common, orgSourcedIds: j(d.orgKeys), role: ROLE[roles[0] ?? 'student']! };
      return {
        ...common, userMasterIdentifier: d.sisId ?? '', resourceSourcedIds: '', preferredGivenName: d.preferredGivenName ?? '', preferredMiddleName: '',
        preferredFamilyName: '', primaryOrgSourcedId: d.primaryOrgKey ?? '', pronouns: '',
      };
    }
  }
  return {};
}

/** Writes the drop into `dir` (a folder) and, with `zip`, also `dir.zip`; returns the path to read. */
export function writeOneRosterDrop(
  ds: DatasetView,
  dir: string,
  opts: { mode?: 'bulk' | 'delta'; sinceSeq?: number; version?: '1.1' | '1.2'; zip?: boolean } = {},
): string {
  const mode = opts.mode ?? 'bulk';
  const version = opts.version ?? '1.2';
  // A drop holds personal data: owner-only (folders 0700, files 0600), as the gateway's store.
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const agents = new Map<string, string[]>();
  for (const g of ds.list('guardianship')) agents.set(g.data.studentKey, [...(agents.get(g.data.studentKey) ?? []), g.data.guardianKey]);
  const changed = new Set(ds.changesSince(opts.sinceSeq ?? 0).map((e) => `${e.type}/${e.key}`));
  // A changed guardianship changes its student's agentSourcedIds.
  for (const e of ds.changesSince(opts.sinceSeq ?? 0)) {
    if (e.type === 'guardianship') changed.add(`person/${e.key.split(':')[1]}`);
  }
  const rowsOf = <T extends EntityType>(type: T): readonly DatasetRow<T>[] =>
    mode === 'bulk' ? ds.list(type) : ds.listWithDeleted(type).filter((r) => changed.has(`${type}/${r.key}`));
  const files: Record<string, string> = {};
  const manifest: string[][] = [['propertyName', 'value'], ['manifest.version', '1.0'], ['oneroster.version', version]];
  for (const [name, spec] of Object.entries(FILES[version])) {
    if (name === 'roles') continue;
    const rows = rowsOf(TYPE[name]!);
    if (mode === 'delta' && rows.length === 0) {
      manifest.push([`file.${name}`, 'absent']);
      continue;
    }
    manifest.push([`file.${name}`, mode]);
    files[`${name}.csv`] = stringify([
      spec.columns,
      ...rows.map((r) => {
        const v = cells(name, r, version, agents);
        const head = mode === 'bulk' ? { sourcedId: r.key, status: '', dateLastModified: '' } : { sourcedId: r.key, status: r.deletedAt ? 'tobedeleted' : 'active', dateLastModified: r.lastModified };
        return spec.columns.map((c) => ({ ...head, ...v })[c] ?? '');
      }),
    ]);
  }
  if (version === '1.2') {
    const people = rowsOf('person');
    const district = ds.list('org').find((o) => o.data.type === 'district')?.key ?? '';
    const rows = people.flatMap((p) =>
      (p.data.orgKeys?.length ? p.data.orgKeys : [district]).flatMap((org) =>
        p.data.roles.map((role, i) => [
          `${p.key}:${org}:${role}`, mode === 'bulk' ? '' : p.deletedAt ? 'tobedeleted' : 'active', mode === 'bulk' ? '' : p.lastModified,
          p.key, (org === (p.data.primaryOrgKey ?? district) && i === 0) ? 'primary' : 'secondary', ROLE[role]!, '', '', org, '',
        ]),
      ),
    );
    if (rows.length || mode === 'bulk') {
      manifest.push(['file.roles', mode]);
      files['roles.csv'] = stringify([FILES['1.2'].roles!.columns, ...rows]);
    } else manifest.push(['file.roles', 'absent']);
  }
  manifest.push(['source.systemName', 'rostergate demo'], ['source.systemCode', 'rostergate']);
  files['manifest.csv'] = stringify(manifest);
  for (const [f, text] of Object.entries(files)) writeFileSync(join(dir, f), text, { mode: 0o600 });
  if (!opts.zip) return dir;
  writeFileSync(`${dir}.zip`, zipSync(Object.fromEntries(Object.entries(files).map(([f, t]) => [f, Buffer.from(t)]))), { mode: 0o600 });
  return `${dir}.zip`;
}
