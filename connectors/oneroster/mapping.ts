/**
 * OneRoster objects → unified records, shared by the REST and CSV connectors. Tolerant of the
 * quirks real providers ship: booleans as "true"/"TRUE"/true, empty strings for absent values,
 * grades with or without zero padding, `periods` as a string or an array, 1.2-style `roles[]` on
 * 1.1 users. A record missing what makes it meaningful throws, and the caller names its position.
 */
import type { Delivers } from '../types.ts';
import type { EnrollmentRole, OrgType, PersonRole, SessionType, SourceRecord } from '../../src/model/records.ts';
import type { Bool, GUIDRef, OrAcademicSession, OrClass, OrCourse, OrDemographics, OrEnrollment, OrOrg, OrUser } from './wire.ts';

export const str = (v: unknown): string | undefined => (typeof v === 'string' && v.trim() !== '' ? v.trim() : undefined);
export const bool = (v: Bool | undefined | null): boolean | undefined =>
  v === true || (typeof v === 'string' && v.trim().toLowerCase() === 'true') ? true : v === false || (typeof v === 'string' && v.trim().toLowerCase() === 'false') ? false : undefined;
const ref = (r: GUIDRef | null | undefined) => str(r?.sourcedId);
const list = (v: unknown): string[] | undefined => {
  const xs = (Array.isArray(v) ? v : typeof v === 'string' ? v.split(',') : []).map((x) => String(x).trim()).filter(Boolean);
  return xs.length ? xs : undefined;
};

/** CEDS grade codes: "5" and "05" are both "05"; "K"/"KG" → "KG". */
export function grade(v: string): string {
  const t = v.trim();
  if (/^\d{1,2}$/.test(t)) return t.padStart(2, '0');
  if (/^k$/i.test(t)) return 'KG';
  return t;
}
const grades = (v: unknown) => list(v)?.map(grade);

const ORG_TYPES: OrgType[] = ['district', 'school', 'department', 'local', 'state', 'national'];
const SESSION_TYPES: SessionType[] = ['schoolYear', 'semester', 'term', 'gradingPeriod'];

export function personRole(role: string): PersonRole | undefined {
  switch (role.trim().toLowerCase()) {
    case 'student': return 'student';
    case 'teacher': return 'teacher';
    case 'administrator': case 'siteadministrator': case 'districtadministrator': case 'principal': case 'systemadministrator': return 'administrator';
    case 'aide': case 'proctor': case 'counselor': return 'staff';
    case 'guardian': case 'parent': case 'relative': return 'guardian';
    default: return undefined;
  }
}

export function enrollmentRole(role: string | undefined): EnrollmentRole {
  const r = (role ?? '').trim().toLowerCase();
  return r === 'teacher' ? 'teacher' : r === 'administrator' ? 'administrator' : r === 'aide' ? 'aide' : r === 'proctor' ? 'proctor' : 'student';
}

function need(v: string | undefined, what: string): string {
  if (!v) throw new Error(`${what} is missing`);
  return v;
}

const deletedOr = <T extends { sourcedId: string; status?: string; dateLastModified?: string }>(
  x: T, type: SourceRecord['type'], build: () => SourceRecord,
): SourceRecord => {
  const key = need(str(x.sourcedId), 'sourcedId');
  if (str(x.status)?.toLowerCase() === 'tobedeleted') return { type, key, deleted: true, lastModified: str(x.dateLastModified) } as SourceRecord;
  return { ...build(), lastModified: str(x.dateLastModified) };
};

/**
 * An org's `identifier` is its official id (the spec's example: an NCES id). OneRoster has no
 * other field for the SIS's own id of an org, and its sourcedId is that id in practice: the SIS (or
 * a rostering service passing the SIS's keys through) assigns it, and School Data Sync, which reads
 * OneRoster providers and whose OneRoster-shaped v2.1 CSV keys orgs by sourcedId alone, has nothing
 * else to give a school as its SIS id (Graph's externalId). So sourcedId also serves as sisId. A
 * provider that mints its own GUIDs instead only misses links, since a GUID matches no other
 * vendor's SIS id. (People differ: OneRoster gives them a SIS id of their own, `identifier`.)
 */
export function orgRecord(o: OrOrg): SourceRecord {
  return deletedOr(o, 'org', () => {
    const t = str(o.type)?.toLowerCase();
    return {
      type: 'org', key: o.sourcedId.trim(),
      data: {
        name: need(str(o.name), 'name'), type: ORG_TYPES.find((x) => x === t) ?? 'other', identifier: str(o.identifier), sisId: o.sourcedId.trim(),
        parentKey: ref(o.parent),
      },
    };
  });
}

export function sessionRecord(a: OrAcademicSession): SourceRecord {
  return deletedOr(a, 'academicSession', () => ({
    type: 'academicSession', key: a.sourcedId.trim(),
    data: {
      title: need(str(a.title), 'title'), type: SESSION_TYPES.find((x) => x.toLowerCase() === str(a.type)?.toLowerCase()) ?? 'term',
      startDate: str(a.startDate)?.slice(0, 10), endDate: str(a.endDate)?.slice(0, 10), parentKey: ref(a.parent), schoolYear: str(a.schoolYear),
    },
  }));
}

export function courseRecord(c: OrCourse): SourceRecord {
  return deletedOr(c, 'course', () => ({
    type: 'course', key: c.sourcedId.trim(),
    data: { title: need(str(c.title), 'title'), courseCode: str(c.courseCode), orgKey: ref(c.org), schoolYearKey: ref(c.schoolYear), grades: grades(c.grades), subjects: list(c.subjects) },
  }));
}

export function classRecord(c: OrClass): SourceRecord {
  return deletedOr(c, 'class', () => ({
    type: 'class', key: c.sourcedId.trim(),
    data: {
      title: need(str(c.title), 'title'), classCode: str(c.classCode),
      classType: str(c.classType)?.toLowerCase() === 'homeroom' ? 'homeroom' : str(c.classType) ? 'scheduled' : undefined,
      location: str(c.location), grades: grades(c.grades), subjects: list(c.subjects), courseKey: ref(c.course), schoolKey: ref(c.school),
      termKeys: (c.terms ?? []).map(ref).filter((x): x is string => !!x), periods: list(c.periods),
    },
  }));
}

/** A user as its person and, for students, guardianships to the agents they list. */
export function userRecords(u: OrUser): SourceRecord[] {
  const base = deletedOr(u, 'person', () => {
    const roleNames = [...(u.roles ?? []).map((r) => r.role), ...(str(u.role) ? [u.role!] : [])];
    const roles = [...new Set(roleNames.map(personRole).filter((r): r is PersonRole => !!r))];
    const orgKeys = [...new Set([...(u.orgs ?? []).map(ref), ...(u.roles ?? []).map((r) => ref(r.org))].filter((x): x is string => !!x))];
    const ids = new Map((u.userIds ?? []).map((x) => [String(x.type).toLowerCase(), str(x.identifier)]));
    return {
      type: 'person', key: u.sourcedId.trim(),
      data: {
        givenName: need(str(u.givenName), 'givenName'), familyName: need(str(u.familyName), 'familyName'), middleName: str(u.middleName),
        preferredGivenName: str(u.preferredFirstName), email: str(u.email), username: str(u.username), phone: str(u.phone), sms: str(u.sms), roles,
        sisId: ids.get('sis') ?? str(u.identifier), stateId: ids.get('stateid') ?? ids.get('state'),
        orgKeys: orgKeys.length ? orgKeys : undefined, primaryOrgKey: ref(u.primaryOrg) ?? ref((u.roles ?? []).find((r) => r.roleType === 'primary')?.org),
        grades: grades(u.grades), enabled: bool(u.enabledUser),
      },
    };
  });
  if (base.deleted || !(base.data as { roles: string[] }).roles.includes('student')) return [base];
  // A student's agents are its parents and guardians (OneRoster 1.1 §4.9 / 1.2 users.agents), and
  // the complete list of them: an agent no longer listed is a guardianship that ended.
  const guardianships = [...new Set((u.agents ?? []).map(ref).filter((x): x is string => !!x))].map((agent) => ({
    type: 'guardianship' as const, key: `${agent}:${base.key}`, data: { guardianKey: agent, studentKey: base.key },
  }));
  return [{ ...base, owns: [{ rel: 'guardianship.student', keys: guardianships.map((g) => g.key) }] }, ...guardianships];
}

export function demographicsRecord(d: OrDemographics): SourceRecord {
  return deletedOr(d, 'demographics', () => {
    const sex = str(d.sex)?.toLowerCase();
    return {
      type: 'demographics', key: d.sourcedId.trim(),
      data: {
        personKey: d.sourcedId.trim(), birthDate: str(d.birthDate)?.slice(0, 10),
        sex: sex === 'male' || sex === 'female' || sex === 'other' || sex === 'unspecified' ? sex : undefined,
        americanIndianOrAlaskaNative: bool(d.americanIndianOrAlaskaNative), asian: bool(d.asian), blackOrAfricanAmerican: bool(d.blackOrAfricanAmerican),
        nativeHawaiianOrOtherPacificIslander: bool(d.nativeHawaiianOrOtherPacificIslander), white: bool(d.white),
        twoOrMoreRaces: bool(d.demographicRaceTwoOrMoreRaces), hispanicOrLatino: bool(d.hispanicOrLatinoEthnicity), countryOfBirth: str(d.countryOfBirthCode),
      },
    };
  });
}

export function enrollmentRecord(e: OrEnrollment): SourceRecord {
  return deletedOr(e, 'enrollment', () => ({
    type: 'enrollment', key: e.sourcedId.trim(),
    data: {
      classKey: need(ref(e.class), 'class'), personKey: need(ref(e.user), 'user'), schoolKey: ref(e.school), role: enrollmentRole(e.role),
      primary: bool(e.primary), beginDate: str(e.beginDate)?.slice(0, 10), endDate: str(e.endDate)?.slice(0, 10),
    },
  }));
}

/** Resources in dependency order, their mapping and the record types a complete listing covers. */
export const RESOURCES = [
  { name: 'orgs', map: (x: unknown) => [orgRecord(x as OrOrg)], completes: ['org'] },
  { name: 'academicSessions', map: (x: unknown) => [sessionRecord(x as OrAcademicSession)], completes: ['academicSession'] },
  { name: 'courses', map: (x: unknown) => [courseRecord(x as OrCourse)], completes: ['course'] },
  { name: 'users', map: (x: unknown) => userRecords(x as OrUser), completes: ['person', 'guardianship'] },
  { name: 'demographics', map: (x: unknown) => [demographicsRecord(x as OrDemographics)], completes: ['demographics'] },
  { name: 'classes', map: (x: unknown) => [classRecord(x as OrClass)], completes: ['class'] },
  { name: 'enrollments', map: (x: unknown) => [enrollmentRecord(x as OrEnrollment)], completes: ['enrollment'] },
] as const;

/** What the OneRoster mapping fills (REST and CSV drops share it). */
export const ONEROSTER_DELIVERS: Delivers = {
  org: ['identifier', 'name', 'parentKey', 'sisId', 'type'],
  academicSession: ['endDate', 'parentKey', 'schoolYear', 'startDate', 'title', 'type'],
  course: ['courseCode', 'grades', 'orgKey', 'schoolYearKey', 'subjects', 'title'],
  person: ['email', 'enabled', 'familyName', 'givenName', 'grades', 'middleName', 'orgKeys', 'phone', 'preferredGivenName', 'primaryOrgKey', 'roles', 'sisId', 'sms', 'stateId', 'username'],
  demographics: ['americanIndianOrAlaskaNative', 'asian', 'birthDate', 'blackOrAfricanAmerican', 'countryOfBirth', 'hispanicOrLatino', 'nativeHawaiianOrOtherPacificIslander', 'personKey', 'sex', 'twoOrMoreRaces', 'white'],
  class: ['classCode', 'classType', 'courseKey', 'grades', 'location', 'periods', 'schoolKey', 'subjects', 'termKeys', 'title'],
  enrollment: ['beginDate', 'classKey', 'endDate', 'personKey', 'primary', 'role', 'schoolKey'],
  guardianship: ['guardianKey', 'studentKey'],
};
