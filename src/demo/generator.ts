/**
 * A deterministic, seeded generator of a synthetic school district. Every person in it is made up:
 * names are drawn at random from mixed-language lists, emails live under the reserved `.example`
 * domain, and ids are sequential. The same options always give the same district.
 *
 * Output is unified `SourceRecord`s keyed by the district SIS's own ids; the vendor sandboxes turn
 * these into each vendor's wire format.
 */
import type {
  AcademicSessionData,
  ClassData,
  CourseData,
  DemographicsData,
  EnrollmentData,
  EntityData,
  EntityType,
  GuardianRelation,
  GuardianshipData,
  OrgData,
  PersonData,
  UpsertRecord,
} from '../model/records.ts';

export interface DistrictOptions {
  seed?: number;
  schools?: number;
  students?: number;
  teachers?: number;
  classes?: number;
  /** The school year the district is in, as the calendar year it ends in. */
  schoolYear?: number;
}

export type District = { [T in EntityType]: UpsertRecord<T>[] };

export const DEFAULT_DISTRICT: Required<DistrictOptions> = {
  seed: 20261125,
  schools: 3,
  students: 1500,
  teachers: 80,
  classes: 200,
  schoolYear: 2027,
};

/** A small, fast PRNG (mulberry32): good enough for fixtures, fully determined by the seed. */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const GIVEN = [
  'Amara', 'Zoë', 'José', 'Łukasz', 'Søren', 'Aïcha', 'Mateo', 'Chloé', 'Ngozi', 'Björn', 'Élodie', 'Kenji',
  'Priya', 'Mohammed', 'Saoirse', 'Dmitri', 'Anaïs', 'Thảo', 'Kwame', 'Ingrid', 'Ravi', 'Lucía', 'Oğuz', 'Hana',
  'Emil', 'Noa', 'Sebastián', 'Mei', 'Tomasz', 'Fatima', 'Liam', 'Olivia', 'Noah', 'Emma', 'Aarav', 'Yara',
  'Jonas', 'Maëlle', 'Kai', 'Leilani', 'Rafael', 'Ines', 'Joaquín', 'Astrid', 'Tariq', 'Sakura', 'Nikolai', 'Zaid',
];
const FAMILY = [
  'Okafor', 'Nguyễn', 'García', 'Müller', 'Kowalski', 'Østergaard', 'Haddad', 'Çelik', "O'Brien", 'Yamamoto',
  'Dubois', 'Patel', 'Ivanova', 'Mensah', 'Fernández', 'Lindqvist', 'Kim', 'Santos', 'Novák', 'Rossi', 'Ahmed',
  'Schröder', 'Nakamura', 'Papadopoulos', 'Moreau', 'Jovanović', 'Ávila', 'Bergström', 'Chen', 'Smith', 'Johnson',
  'Brown', 'Van der Berg', 'Al-Sayed', 'Mbeki', 'Håkansson', 'Núñez', 'Wójcik', 'Tanaka', 'Ó Súilleabháin',
];
const HOME_LANGUAGES: [string, number][] = [
  ['eng', 0.72], ['spa', 0.14], ['vie', 0.03], ['ara', 0.03], ['zho', 0.02], ['pol', 0.02], ['tur', 0.02], ['fra', 0.02],
];
const SUBJECTS = ['English Language Arts', 'Mathematics', 'Science', 'Social Studies', 'Art', 'Music', 'Physical Education', 'World Languages', 'Technology'];

/**
 * The options filled in. Teachers and classes not given grow with the number of students, in the
 * default district's ratios (and at least one per school), so a larger demo keeps full schedules.
 */
export function districtShape(options: DistrictOptions = {}): Required<DistrictOptions> {
  const o = { ...DEFAULT_DISTRICT, ...options };
  const scale = o.students / DEFAULT_DISTRICT.students;
  return {
    ...o,
    teachers: options.teachers ?? Math.max(o.schools, Math.round(DEFAULT_DISTRICT.teachers * scale)),
    classes: options.classes ?? Math.max(o.schools, Math.round(DEFAULT_DISTRICT.classes * scale)),
  };
}

export function generateDistrict(options: DistrictOptions = {}): District {
  const o = districtShape(options);
  const rnd = prng(o.seed);
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rnd() * xs.length)]!;
  const chance = (p: number) => rnd() < p;
  const weighted = <T>(xs: [T, number][]): T => {
    let r = rnd() * xs.reduce((s, [, w]) => s + w, 0);
    for (const [x, w] of xs) if ((r -= w) < 0) return x;
    return xs[xs.length - 1]![0];
  };
  const pad = (n: number, w: number) => String(n).padStart(w, '0');
  /** A date in the school cohort of `year`: from 2 September of year - 1 to 1 September of year. */
  const birthDate = (year: number, month: number, day: number) => `${month > 9 || (month === 9 && day > 1) ? year - 1 : year}-${pad(month, 2)}-${pad(day, 2)}`;
  const lm = `${o.schoolYear - 1}-08-01T12:00:00.000Z`;

  const d: District = {
    org: [], academicSession: [], course: [], person: [], demographics: [], class: [], enrollment: [], guardianship: [],
  };
  const add = <T extends EntityType>(type: T, key: string, data: EntityData[T]) => {
    (d[type] as UpsertRecord<T>[]).push({ type, key, data, lastModified: lm } as UpsertRecord<T>);
  };
  const usedEmails = new Set<string>();
  const email = (given: string, family: string, domain: string) => {
    const base = `${ascii(given)}.${ascii(family)}`.toLowerCase();
    let e = `${base}@${domain}`;
    for (let i = 2; usedEmails.has(e); i++) e = `${base}${i}@${domain}`;
    usedEmails.add(e);
    return e;
  };

  // Organisations: one district, schools spread over the grade bands. They carry each kind of id a vendor may know them by: the official (NCES-style) id, the
  // SIS's own id (the record's key, as for every SIS record here), the state's id, the school number.
  add('org', 'district', { name: 'Rostergate Demo Unified School District', type: 'district', identifier: '9900001', sisId: 'district' } satisfies OrgData);
  const bands: { name: string; grades: string[] }[] = [
    { name: 'Elementary', grades: ['KG', '01', '02', '03', '04', '05'] },
    { name: 'Middle', grades: ['06', '07', '08'] },
    { name: 'High', grades: ['09', '10', '11', '12'] },
  ];
  const schoolNames = ['Lindenwood', 'Riverside', 'Northgate', 'Cedar Hill', 'Harbor View', 'Maple Grove', 'Summit', 'Lakeside'];
  const schools = Array.from({ length: o.schools }, (_, i) => {
    const band = bands[i % bands.length]!;
    const key = `sch-${pad(i + 1, 2)}`;
    add('org', key, {
      name: `${schoolNames[i % schoolNames.length]} ${band.name} School${i >= schoolNames.length ? ` ${i + 1}` : ''}`,
      type: 'school',
      identifier: `99000${pad(i + 10, 2)}`,
      sisId: key,
      stateId: `DS-99-${pad(i + 1, 4)}`,
      schoolNumber: pad(100 + i, 3),
      parentKey: 'district',
      lowGrade: band.grades[0],
      highGrade: band.grades[band.grades.length - 1],
      phone: `+1555010${pad(i, 4)}`,
      address: { street: `${100 + i} School Lane`, city: 'Demo City', state: 'CA', postalCode: `9990${i % 10}`, country: 'US' },
    } satisfies OrgData);
    return { key, grades: band.grades };
  });

  // Academic sessions: the school year, two semesters, four grading periods.
  const y = o.schoolYear;
  add('academicSession', `sy-${y}`, { title: `${y - 1}-${y}`, type: 'schoolYear', startDate: `${y - 1}-08-15`, endDate: `${y}-06-15`, schoolYear: String(y), orgKey: 'district' } satisfies AcademicSessionData);
  const semesters = [
    { key: `s1-${y}`, title: `Fall ${y - 1}`, start: `${y - 1}-08-15`, end: `${y - 1}-12-20` },
    { key: `s2-${y}`, title: `Spring ${y}`, start: `${y}-01-06`, end: `${y}-06-15` },
  ];
  for (const s of semesters) {
    add('academicSession', s.key, { title: s.title, type: 'semester', startDate: s.start, endDate: s.end, schoolYear: String(y), parentKey: `sy-${y}`, orgKey: 'district' });
  }
  const gps = [
    [`gp1-${y}`, 'Quarter 1', `${y - 1}-08-15`, `${y - 1}-10-17`, 0],
    [`gp2-${y}`, 'Quarter 2', `${y - 1}-10-20`, `${y - 1}-12-20`, 0],
    [`gp3-${y}`, 'Quarter 3', `${y}-01-06`, `${y}-03-20`, 1],
    [`gp4-${y}`, 'Quarter 4', `${y}-03-23`, `${y}-06-15`, 1],
  ] as const;
  for (const [key, title, start, end, sem] of gps) {
    add('academicSession', key, { title, type: 'gradingPeriod', startDate: start, endDate: end, schoolYear: String(y), parentKey: semesters[sem]!.key, orgKey: 'district' });
  }

  // Teachers (one of them teaches in two schools), a few staff and two district administrators.
  const teacherSchools: string[][] = [];
  for (let i = 0; i < o.teachers; i++) {
    const given = pick(GIVEN);
    const family = pick(FAMILY);
    const home = schools[i % schools.length]!.key;
    const orgs = i === 0 && schools.length > 1 ? [home, schools[1]!.key] : [home];
    teacherSchools.push(orgs);
    add('person', `tch-${pad(i + 1, 4)}`, {
      givenName: given, familyName: family, email: email(given, family, 'staff.rostergate-demo.example'),
      username: `t${pad(i + 1, 4)}`, roles: ['teacher'], sisId: `T${pad(5000 + i, 6)}`, stateId: `ST${pad(880000 + i, 8)}`,
      teacherNumber: pad(i + 1, 4), orgKeys: orgs, primaryOrgKey: home, title: chance(0.3) ? 'Lead Teacher' : 'Teacher', enabled: true,
    } satisfies PersonData);
  }
  const staffCount = Math.max(2, Math.round(o.teachers / 8));
  for (let i = 0; i < staffCount; i++) {
    const given = pick(GIVEN);
    const family = pick(FAMILY);
    const school = schools[i % schools.length]!.key;
    add('person', `stf-${pad(i + 1, 4)}`, {
      givenName: given, familyName: family, email: email(given, family, 'staff.rostergate-demo.example'), username: `s${pad(i + 1, 4)}`,
      roles: ['staff'], sisId: `F${pad(7000 + i, 6)}`, orgKeys: [school], primaryOrgKey: school,
      title: pick(['Counselor', 'Librarian', 'Nurse', 'Office Manager']), enabled: true,
    });
  }
  for (let i = 0; i < 2; i++) {
    const given = pick(GIVEN);
    const family = pick(FAMILY);
    add('person', `adm-${pad(i + 1, 4)}`, {
      givenName: given, familyName: family, email: email(given, family, 'rostergate-demo.example'), username: `a${pad(i + 1, 4)}`,
      roles: ['administrator'], sisId: `A${pad(9000 + i, 6)}`, orgKeys: ['district'], primaryOrgKey: 'district',
      title: i === 0 ? 'Superintendent' : 'Data Coordinator', enabled: true,
    });
  }

  // Where each class sits is a pure function of its index, so students can be placed in grades that
  // have classes: every student then has a schedule (see the rosters below).
  const classPlace = (c: number) => {
    const school = schools[c % schools.length]!;
    const grade = school.grades[Math.floor(c / schools.length) % school.grades.length]!;
    return { school, grade };
  };
  const taughtGrades = new Map<string, string[]>();
  for (let c = 0; c < o.classes; c++) {
    const { school, grade } = classPlace(c);
    const gs = taughtGrades.get(school.key) ?? [];
    if (!gs.includes(grade)) taughtGrades.set(school.key, [...gs, grade]);
  }

  // Students with demographics, spread over the schools' grades (those that have classes).
  const studentsBySchoolGrade = new Map<string, string[]>();
  const families: { family: string; students: string[] }[] = [];
  for (let i = 0; i < o.students; i++) {
    const school = schools[i % schools.length]!;
    const grade = pick(taughtGrades.get(school.key) ?? school.grades);
    // Siblings: some students join the previous family (same family name, shared guardians).
    const sibling = families.length > 0 && chance(0.18);
    const fam = sibling ? families[families.length - 1]! : { family: pick(FAMILY), students: [] };
    if (!sibling) families.push(fam);
    const given = pick(GIVEN);
    const key = `stu-${pad(i + 1, 6)}`;
    fam.students.push(key);
    const gradeNum = grade === 'KG' ? 0 : Number(grade);
    // Born in the twelve months that reach kindergarten age (5) by 1 September of the year the
    // school year starts; a quarter of students a year older (late start or a repeated year).
    const older = chance(0.25) ? 1 : 0;
    add('person', key, {
      givenName: given, familyName: fam.family, middleName: chance(0.3) ? pick(GIVEN) : undefined,
      preferredGivenName: chance(0.05) ? pick(GIVEN) : undefined,
      email: email(given, fam.family, 'students.rostergate-demo.example'), username: `${pad(100000 + i, 6)}`,
      roles: ['student'], sisId: `S${pad(100000 + i, 6)}`, stateId: `SSID${pad(4400000 + i, 9)}`, studentNumber: pad(100000 + i, 6),
      orgKeys: [school.key], primaryOrgKey: school.key, grades: [grade], graduationYear: String(y + (12 - gradeNum)), enabled: true,
    });
    const race = weighted<keyof DemographicsData>([
      ['white', 0.45], ['asian', 0.12], ['blackOrAfricanAmerican', 0.14], ['americanIndianOrAlaskaNative', 0.02],
      ['nativeHawaiianOrOtherPacificIslander', 0.01], ['twoOrMoreRaces', 0.06],
    ]);
    const frl = weighted<DemographicsData['freeReducedLunch']>([['free', 0.3], ['reduced', 0.08], ['paid', 0.6], ['other', 0.02]]);
    const homeLanguage = weighted(HOME_LANGUAGES);
    add('demographics', key, {
      personKey: key,
      birthDate: birthDate(y - 6 - gradeNum - older, 1 + Math.floor(rnd() * 12), 1 + Math.floor(rnd() * 28)),
      sex: weighted([['female', 0.49], ['male', 0.49], ['other', 0.01], ['unspecified', 0.01]]),
      [race]: true,
      hispanicOrLatino: chance(0.25),
      englishLanguageLearner: homeLanguage !== 'eng' && chance(0.45),
      iep: chance(0.13),
      section504: chance(0.03),
      gifted: chance(0.07),
      freeReducedLunch: frl,
      homeLanguage,
      postalCode: `9990${Math.floor(rnd() * 10)}`,
    } as DemographicsData);
    const k = `${school.key}/${grade}`;
    studentsBySchoolGrade.set(k, [...(studentsBySchoolGrade.get(k) ?? []), key]);
  }

  // Guardians: one or two per family, shared between siblings.
  let g = 0;
  for (const fam of families) {
    const n = chance(0.55) ? 2 : 1;
    for (let j = 0; j < n; j++) {
      const given = pick(GIVEN);
      const gkey = `gdn-${pad(++g, 6)}`;
      add('person', gkey, {
        givenName: given, familyName: chance(0.8) ? fam.family : pick(FAMILY), email: email(given, fam.family, 'mail.example'),
        phone: `+1555${pad(2000000 + g, 7)}`, roles: ['guardian'], sisId: `G${pad(300000 + g, 6)}`, enabled: true,
      });
      const relation = weighted<GuardianRelation>([['parent', 0.85], ['guardian', 0.07], ['grandparent', 0.06], ['aunt_uncle', 0.02]]);
      for (const s of fam.students) {
        add('guardianship', `${gkey}:${s}`, {
          guardianKey: gkey, studentKey: s, relation, contactType: j === 0 ? 'Primary' : 'Secondary', emergencyContact: j === 0,
        } satisfies GuardianshipData);
      }
    }
  }

  // Courses and classes. Each class belongs to one school, one course and one semester.
  const courseKeys = new Map<string, string>();
  const courseFor = (school: { key: string }, subject: string, grade: string) => {
    const id = `${school.key}/${subject}/${grade}`;
    let key = courseKeys.get(id);
    if (!key) {
      key = `crs-${pad(courseKeys.size + 1, 4)}`;
      courseKeys.set(id, key);
      add('course', key, {
        title: `${subject} ${grade === 'KG' ? 'Kindergarten' : `Grade ${Number(grade)}`}`,
        courseCode: `${subject.slice(0, 4).toUpperCase().replace(/\s/g, '')}-${grade}`,
        orgKey: school.key, schoolYearKey: `sy-${y}`, subjects: [subject], grades: [grade],
      } satisfies CourseData);
    }
    return key;
  };
  const teachersOf = (schoolKey: string) =>
    teacherSchools.map((orgs, i) => (orgs.includes(schoolKey) ? `tch-${pad(i + 1, 4)}` : undefined)).filter((t): t is string => !!t);
  const seenEnrollment = new Set<string>();
  const enroll = (classKey: string, personKey: string, schoolKey: string, role: EnrollmentData['role'], primary: boolean, sem: (typeof semesters)[number]) => {
    const key = `${classKey}:${personKey}`;
    if (seenEnrollment.has(key)) return;
    seenEnrollment.add(key);
    add('enrollment', key, { classKey, personKey, schoolKey, role, primary, beginDate: sem.start, endDate: sem.end } satisfies EnrollmentData);
  };
  // Rosters: each class takes the next students of its school and grade, wrapping round, so the
  // classes of a grade together cover all its students (about four classes each by default). Where
  // a grade has fewer seats than students, those left over join its emptiest class.
  const nextSeat = new Map<string, number>();
  const classesOf = new Map<string, { key: string; students: number; sem: (typeof semesters)[number] }[]>();
  for (let c = 0; c < o.classes; c++) {
    const { school, grade } = classPlace(c);
    const subject = SUBJECTS[Math.floor(c / (schools.length * school.grades.length)) % SUBJECTS.length]!;
    const sem = semesters[c % 2]!;
    const key = `cls-${pad(c + 1, 5)}`;
    const section = Math.floor(c / (schools.length * school.grades.length * SUBJECTS.length)) + 1;
    add('class', key, {
      title: `${subject} ${grade === 'KG' ? 'K' : Number(grade)} · Section ${section}`,
      classCode: `${subject.slice(0, 3).toUpperCase()}${grade}-${pad(section, 2)}`,
      classType: subject === 'English Language Arts' && school.grades.includes('KG') ? 'homeroom' : 'scheduled',
      schoolKey: school.key, courseKey: courseFor(school, subject, grade), termKeys: [sem.key],
      periods: [String(1 + (c % 7))], subjects: [subject], grades: [grade], location: `Room ${100 + (c % 40)}`,
    } satisfies ClassData);
    const teachers = teachersOf(school.key);
    // The two-school teacher gets one class in each school; others rotate.
    const teacher = c < schools.length && c < 2 ? 'tch-0001' : teachers[c % teachers.length]!;
    enroll(key, teacher, school.key, 'teacher', true, sem);
    if (chance(0.1)) enroll(key, teachers[(c + 1) % teachers.length]!, school.key, 'teacher', false, sem);
    const poolKey = `${school.key}/${grade}`;
    const pool = studentsBySchoolGrade.get(poolKey) ?? [];
    const size = Math.min(pool.length, 22 + Math.floor(rnd() * 12));
    const start = nextSeat.get(poolKey) ?? Math.floor(rnd() * Math.max(1, pool.length));
    nextSeat.set(poolKey, (start + size) % Math.max(1, pool.length));
    for (let s = 0; s < size; s++) enroll(key, pool[(start + s) % pool.length]!, school.key, 'student', false, sem);
    classesOf.set(poolKey, [...(classesOf.get(poolKey) ?? []), { key, students: size, sem }]);
  }
  const scheduled = new Set(d.enrollment.map((e) => e.data.personKey));
  for (const [poolKey, pool] of studentsBySchoolGrade) {
    const classes = classesOf.get(poolKey) ?? [];
    for (const student of pool) {
      if (scheduled.has(student) || classes.length === 0) continue;
      const emptiest = classes.reduce((a, b) => (b.students < a.students ? b : a));
      enroll(emptiest.key, student, poolKey.split('/')[0]!, 'student', false, emptiest.sem);
      emptiest.students++;
    }
  }
  return d;
}

/** Removes diacritics and non-letters, for synthetic usernames and email local parts. */
export function ascii(s: string): string {
  return s
    .normalize('NFKD')
    .replace(/[\u0300-\u036f]/g, '')
    .replace(/ł/g, 'l').replace(/Ł/g, 'L').replace(/ø/g, 'o').replace(/Ø/g, 'O').replace(/ı/g, 'i')
    .replace(/[^A-Za-z0-9]/g, '');
}

export function countDistrict(d: District): Record<EntityType, number> {
  return Object.fromEntries(Object.entries(d).map(([t, rs]) => [t, rs.length])) as Record<EntityType, number>;
}
