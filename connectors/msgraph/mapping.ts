/**
 * Graph education objects → unified records. A class's term and course are embedded objects in
 * Graph; they become academic sessions and courses keyed by their externalId (or, lacking one, by
 * their content). The tenant stands in as the district.
 */
import { createHash } from 'node:crypto';
import type { SourceRecord } from '../../src/model/records.ts';
import { isoDate as parseDate } from '../dates.ts';
import type { EduClass, EduCourse, EduSchool, EduTerm, EduUser } from './wire.ts';

/** Text of an optional property; numbers become text (graduationYear is Edm.String, but not every tenant's data is). */
const s = (v: unknown): string | undefined => {
  const t = typeof v === 'string' ? v.trim() : typeof v === 'number' ? String(v) : '';
  return t === '' ? undefined : t;
};
const hash = (x: unknown) => createHash('sha256').update(JSON.stringify(x)).digest('hex').slice(0, 16);

export const tenantKey = (tenantId: string) => `tenant:${tenantId}`;

/** Graph grades are free text ("10", "ps1", "Kindergarten"): numbers become CEDS codes. */
export function grade(v: string | null | undefined): string | undefined {
  const t = s(v);
  if (!t) return undefined;
  if (/^\d{1,2}$/.test(t)) return t.padStart(2, '0');
  if (/^k(g|indergarten)?$/i.test(t)) return 'KG';
  return t;
}

/** birthDate is Edm.Date ("2001-07-02"); old samples send a timestamp ("2001-07-02T00:00:00Z"): both give the date. */
export const isoDate = (v: string | null | undefined) => parseDate(s(v));

export function schoolRecord(x: EduSchool, tenantId: string): SourceRecord {
  return {
    type: 'org', key: x.id,
    data: {
      // externalId is the school's "ID in the syncing system": the SIS id SDS uploaded, never an NCES id.
      name: s(x.displayName) ?? x.id, type: 'school', sisId: s(x.externalId), schoolNumber: s(x.schoolNumber), parentKey: tenantKey(tenantId),
      lowGrade: grade(x.lowestGrade), highGrade: grade(x.highestGrade), phone: s(x.phone),
      address: x.address ? { street: s(x.address.street), city: s(x.address.city), state: s(x.address.state), postalCode: s(x.address.postalCode), country: s(x.address.countryOrRegion) } : undefined,
    },
  };
}

export function userRecords(u: EduUser, schools: string[] | undefined): SourceRecord[] {
  const role = u.primaryRole === 'student' ? 'student' : u.primaryRole === 'teacher' ? 'teacher' : 'staff';
  const [given, ...rest] = (s(u.displayName) ?? '').split(' ');
  const person: SourceRecord = {
    type: 'person', key: u.id,
    data: {
      givenName: s(u.givenName) ?? given ?? '', familyName: s(u.surname) ?? rest.join(' '), middleName: s(u.middleName),
      email: s(u.mail), username: s(u.userPrincipalName), phone: s(u.mobilePhone), roles: [role],
      sisId: s(u.student?.externalId) ?? s(u.teacher?.externalId), studentNumber: s(u.student?.studentNumber), teacherNumber: s(u.teacher?.teacherNumber),
      orgKeys: schools?.length ? schools : undefined, primaryOrgKey: schools?.[0],
      grades: grade(u.student?.grade) ? [grade(u.student?.grade)!] : undefined, graduationYear: s(u.student?.graduationYear),
      enabled: u.accountEnabled ?? undefined,
    },
  };
  if (role !== 'student') return [person];
  const g = s(u.student?.gender)?.toLowerCase();
  return [
    person,
    {
      type: 'demographics', key: u.id,
      data: { personKey: u.id, birthDate: isoDate(u.student?.birthDate), sex: g === 'female' || g === 'male' || g === 'other' ? g : undefined },
    },
  ];
}

export const termKey = (t: EduTerm) => `term:${s(t.externalId) ?? hash([t.displayName, t.startDate, t.endDate])}`;
export const courseKey = (c: EduCourse) => `course:${s(c.externalId) ?? hash([c.displayName, c.courseNumber, c.subject])}`;

/** A class with its term and course (as sessions and courses of their own). */
export function classRecords(c: EduClass, school: string | undefined): SourceRecord[] {
  const out: SourceRecord[] = [];
  if (c.term && (s(c.term.displayName) || s(c.term.externalId))) {
    out.push({
      type: 'academicSession', key: termKey(c.term),
      data: { title: s(c.term.displayName) ?? 'Term', type: 'term', startDate: isoDate(c.term.startDate), endDate: isoDate(c.term.endDate) },
    });
  }
  if (c.course && (s(c.course.displayName) || s(c.course.externalId))) {
    out.push({
      type: 'course', key: courseKey(c.course),
      data: { title: s(c.course.displayName) ?? 'Course', courseCode: s(c.course.courseNumber), subjects: s(c.course.subject) ? [c.course.subject!] : undefined, description: s(c.course.description) },
    });
  }
  out.push({
    type: 'class', key: c.id,
    data: {
      title: s(c.displayName) ?? c.id, classCode: s(c.classCode), schoolKey: school, grades: grade(c.grade) ? [grade(c.grade)!] : undefined,
      termKeys: out.some((r) => r.type === 'academicSession') ? [termKey(c.term!)] : undefined,
      courseKey: out.some((r) => r.type === 'course') ? courseKey(c.course!) : undefined,
    },
  });
  return out;
}

export const enrollmentKey = (classId: string, userId: string) => `${classId}:${userId}`;
