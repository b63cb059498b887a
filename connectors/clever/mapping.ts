/**
 * Clever records → unified records. Clever keeps one user with up to five role objects; a user
 * becomes one person, plus demographics for a student and guardianships for a contact. Sections
 * carry their rosters, which become enrollments keyed `${section}:${user}`.
 */
import type {
  DemographicsData,
  GuardianRelation,
  PersonData,
  PersonRole,
  SourceRecord,
} from '../../src/model/records.ts';
import type { CleverCourse, CleverDistrict, CleverSchool, CleverSection, CleverTerm, CleverUser } from './wire.ts';

const s = (v: string | undefined | null): string | undefined => (v === undefined || v === null || v === '' ? undefined : v);
const yn = (v: string | undefined): boolean | undefined => (v === 'Y' ? true : v === 'N' ? false : undefined);

const GRADES: Record<string, string> = {
  InfantToddler: 'IT', Preschool: 'PR', PreKindergarten: 'PK', TransitionalKindergarten: 'TK', Kindergarten: 'KG',
  PostGraduate: 'PS', Ungraded: 'UG', Other: 'Other',
};

/** Clever grade enum → CEDS-style code ("1" → "01", Kindergarten → KG). */
export function grade(v: string | undefined): string | undefined {
  if (!s(v)) return undefined;
  if (/^\d{1,2}$/.test(v!)) return v!.padStart(2, '0');
  return GRADES[v!] ?? 'Other';
}

export { isoDate } from '../dates.ts';
import { isoDate } from '../dates.ts';

const RACE_FLAG: Record<string, keyof DemographicsData> = {
  Caucasian: 'white',
  Asian: 'asian',
  'Black or African American': 'blackOrAfricanAmerican',
  'American Indian': 'americanIndianOrAlaskaNative',
  'Hawaiian or Other Pacific Islander': 'nativeHawaiianOrOtherPacificIslander',
  'Two or More Races': 'twoOrMoreRaces',
};

const RELATION: Record<string, GuardianRelation> = {
  Parent: 'parent', Grandparent: 'grandparent', Self: 'self', 'Aunt/Uncle': 'aunt_uncle', Sibling: 'sibling', Other: 'other',
};

export function districtRecord(d: CleverDistrict): SourceRecord {
  return { type: 'org', key: d.id, data: { name: d.name || 'District', type: 'district', identifier: s(d.nces_id) } };
}

export function schoolRecord(x: CleverSchool): SourceRecord {
  return {
    type: 'org',
    key: x.id,
    lastModified: s(x.last_modified),
    data: {
      // Each kind of id to its own field: nces_id is the official id, sis_id the SIS's, state_id the state's.
      name: x.name || x.id, type: 'school', identifier: s(x.nces_id), sisId: s(x.sis_id), stateId: s(x.state_id), schoolNumber: s(x.school_number),
      parentKey: s(x.district),
      lowGrade: grade(x.low_grade), highGrade: grade(x.high_grade), phone: s(x.phone),
      address: x.location ? { street: s(x.location.address), city: s(x.location.city), state: s(x.location.state), postalCode: s(x.location.zip) } : undefined,
    },
  };
}

export function termRecord(t: CleverTerm): SourceRecord {
  return {
    type: 'academicSession',
    key: t.id,
    data: { title: t.name || t.id, type: 'term', startDate: isoDate(t.start_date), endDate: isoDate(t.end_date), orgKey: s(t.district) },
  };
}

export function courseRecord(c: CleverCourse): SourceRecord {
  return { type: 'course', key: c.id, data: { title: c.name || c.id, courseCode: s(c.number), orgKey: s(c.district) } };
}

/** A user as its person, demographics (students) and guardianships (contacts). */
export function userRecords(u: CleverUser): SourceRecord[] {
  const r = u.roles ?? {};
  const roles: PersonRole[] = [];
  if (r.student) roles.push('student');
  if (r.teacher) roles.push('teacher');
  if (r.staff) roles.push('staff');
  if (r.district_admin) roles.push('administrator');
  if (r.contact) roles.push('guardian');
  const st = r.student;
  const te = r.teacher;
  const orgKeys = [...new Set([...(st?.schools ?? []), ...(te?.schools ?? []), ...(r.staff?.schools ?? []), ...(r.district_admin ? [u.district ?? ''] : [])].filter(Boolean))];
  const person: PersonData = {
    givenName: u.name?.first ?? '',
    familyName: u.name?.last ?? '',
    middleName: s(u.name?.middle),
    preferredGivenName: s(st?.preferred_name?.first),
    email: s(u.email),
    username: s(st?.credentials?.district_username) ?? s(te?.credentials?.district_username) ?? s(r.staff?.credentials?.district_username),
    phone: s(r.contact?.phone),
    roles,
    sisId: s(st?.sis_id) ?? s(te?.sis_id) ?? s(r.staff?.staff_id) ?? s(r.contact?.sis_id),
    stateId: s(st?.state_id) ?? s(te?.state_id),
    studentNumber: s(st?.student_number),
    teacherNumber: s(te?.teacher_number),
    orgKeys: orgKeys.length ? orgKeys : undefined,
    primaryOrgKey: s(st?.school) ?? s(te?.school) ?? (r.district_admin ? s(u.district) : undefined),
    grades: grade(st?.grade) ? [grade(st?.grade)!] : undefined,
    graduationYear: s(st?.graduation_year),
    title: s(te?.title) ?? s(r.staff?.title) ?? s(r.district_admin?.title),
  };
  const relationships = r.contact?.student_relationships ?? [];
  const out: SourceRecord[] = [{
    type: 'person', key: u.id, lastModified: s(u.last_modified), data: person,
    // A contact's student_relationships are all its guardianships: one no longer listed has ended.
    owns: r.contact ? [{ rel: 'guardianship.guardian', keys: relationships.map((rel) => `${u.id}:${rel.student}`) }] : undefined,
  }];
  if (st) {
    const race = st.race ? RACE_FLAG[st.race] : undefined;
    const demo: DemographicsData = {
      personKey: u.id,
      birthDate: isoDate(st.dob),
      sex: st.gender === 'M' ? 'male' : st.gender === 'F' ? 'female' : st.gender === 'X' ? 'other' : undefined,
      hispanicOrLatino: yn(st.hispanic_ethnicity),
      englishLanguageLearner: yn(st.ell_status),
      iep: st.iep_status === undefined || st.iep_status === '' ? undefined : /^(y|yes|active|true)$/i.test(st.iep_status),
      section504: yn(st.section_504_status),
      gifted: yn(st.gifted_status),
      freeReducedLunch: st.frl_status ? (st.frl_status.toLowerCase() as DemographicsData['freeReducedLunch']) : undefined,
      homeLanguage: s(st.home_language_code) ?? s(st.home_language),
      postalCode: s(st.location?.zip),
    };
    if (race) (demo as unknown as Record<string, unknown>)[race] = true;
    out.push({ type: 'demographics', key: u.id, data: demo });
  }
  for (const rel of relationships) out.push(guardianshipRecord(u.id, rel));
  return out;
}

export function guardianshipRecord(contactId: string, rel: { student: string; relationship?: string; type?: string }): SourceRecord {
  return {
    type: 'guardianship',
    key: `${contactId}:${rel.student}`,
    data: {
      guardianKey: contactId, studentKey: rel.student,
      relation: rel.relationship ? RELATION[rel.relationship] ?? 'other' : undefined,
      contactType: s(rel.type), emergencyContact: rel.type === 'Emergency' ? true : undefined,
    },
  };
}

/** A section as its class and its enrollments (the primary teacher is `teacher`). */
export function sectionRecords(x: CleverSection): SourceRecord[] {
  const teachers = [...new Set([...(x.teacher ? [x.teacher] : []), ...(x.teachers ?? [])])];
  const students = [...new Set(x.students ?? [])];
  const out: SourceRecord[] = [
    {
      type: 'class',
      key: x.id,
      lastModified: s(x.last_modified),
      // The section's teachers and students are its whole roster: anyone no longer listed left it.
      owns: [{ rel: 'enrollment.class', keys: [...teachers, ...students].map((u) => enrollmentKey(x.id, u)) }],
      data: {
        title: x.name || x.id, classCode: s(x.section_number) ?? s(x.sis_id), schoolKey: s(x.school), courseKey: s(x.course),
        termKeys: s(x.term_id) ? [x.term_id!] : undefined, periods: s(x.period) ? [x.period!] : undefined,
        subjects: s(x.subject) ? [x.subject!] : undefined, grades: grade(x.grade) ? [grade(x.grade)!] : undefined,
      },
    },
  ];
  for (const t of teachers) out.push(enrollmentRecord(x, t, 'teacher', t === x.teacher));
  for (const st of students) out.push(enrollmentRecord(x, st, 'student', false));
  return out;
}

export function enrollmentKey(sectionId: string, userId: string): string {
  return `${sectionId}:${userId}`;
}

function enrollmentRecord(x: CleverSection, user: string, role: 'student' | 'teacher', primary: boolean): SourceRecord {
  return { type: 'enrollment', key: enrollmentKey(x.id, user), data: { classKey: x.id, personKey: user, schoolKey: s(x.school), role, primary } };
}
