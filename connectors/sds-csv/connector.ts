/**
 * Reading a School Data Sync CSV drop. SDS drops are always complete (records missing from a later
 * upload are inactive), so every file read completes its record types. The format is detected from
 * the file names (v2.1 vs v1) and the School.csv header (the UK variant), unless configured.
 */
import { isoDate as isoDateFromUs } from '../dates.ts';
import type { Connector, ConnectorContext, ConnectorState, Page, ReadOptions } from '../types.ts';
import type { DemographicsData, EntityType, GuardianRelation, PersonData, PersonRole, SourceRecord } from '../../src/model/records.ts';
import { RostergateError } from '../../src/errors.ts';
import { defect, dropPages, fail, file, readDrop, readTable, type CsvProblems, type CsvTable, type Drop, type DropPart, type DropState } from '../csv-kit.ts';
import { grade } from '../oneroster/mapping.ts';
import { filesOf, ukName, type SdsFile, type SdsFormat } from './formats.ts';
import type { SdsCsvConfig } from './config.ts';

const s = (v: string | undefined) => (v === undefined || v.trim() === '' ? undefined : v.trim());
const list = (v: string | undefined) => (v ?? '').split(/[,;]/).map((x) => x.trim()).filter(Boolean);

/** SDS role values → person roles (the staff roles of the default list become staff). */
export function sdsRole(role: string): PersonRole {
  const r = role.trim().toLowerCase();
  if (r === 'student') return 'student';
  if (['teacher', 'professor', 'lecturer', 'instructor', 'adjunct', 'teacherassistant', 'substitute'].includes(r)) return 'teacher';
  if (['principal', 'administrator', 'itadmin', 'chair'].includes(r)) return 'administrator';
  if (['guardian', 'parent', 'relative'].includes(r)) return 'guardian';
  return 'staff';
}

const RELATION: Record<string, GuardianRelation> = { parent: 'parent', guardian: 'guardian', relative: 'relative', child: 'other', aide: 'other', doctor: 'other', other: 'other' };
const RACE: Record<string, keyof DemographicsData> = {
  americanindianoralaskanative: 'americanIndianOrAlaskaNative', asian: 'asian', blackorafricanamerican: 'blackOrAfricanAmerican',
  nativehawaiianorotherpacificislander: 'nativeHawaiianOrOtherPacificIslander', white: 'white', demographicracetwoormoreraces: 'twoOrMoreRaces',
};
const SCHOOL_TYPES = new Set(['school', 'college', 'university', 'campus']);

export class SdsCsvConnector implements Connector {
  readonly type = 'sds-csv' as const;
  readonly sourceId: string;
  warnings: string[] = [];
  /** The format read last (detected or configured). */
  format?: SdsFormat;

  constructor(private readonly cfg: SdsCsvConfig, private readonly ctx: ConnectorContext) {
    this.sourceId = cfg.id;
  }

  async *read(prev: ConnectorState | null, opts: ReadOptions = {}): AsyncIterable<Page> {
    const drop = readDrop(this.cfg.path, this.sourceId, this.cfg);
    let loaded = false;
    const load = () => {
      const parts = this.load(drop);
      loaded = true;
      return parts;
    };
    yield* dropPages(load, drop.fingerprint, prev as DropState | null, !!opts.full, undefined, () => (loaded ? { defects: this.warnings } : undefined));
  }

  private detect(drop: Drop): SdsFormat {
    if (this.cfg.format) return this.cfg.format;
    if (file(drop, 'orgs.csv') && file(drop, 'users.csv')) return 'v2.1';
    const school = file(drop, 'School.csv');
    if (school) return school.bytes.toString('utf8').split(/\r?\n/)[0]!.includes('DfE Number') ? 'v1-uk' : 'v1';
    throw new RostergateError('CSV_INVALID', 'not a School Data Sync drop: expected orgs.csv and users.csv (v2.1) or School.csv (v1)', { source: this.sourceId });
  }

  private load(drop: Drop): DropPart[] {
    const format = this.detect(drop);
    this.format = format;
    const problems: CsvProblems = { source: this.sourceId, mode: this.cfg.mode, warnings: [], maxRowBytes: this.cfg.maxRowBytes };
    const specs = filesOf(format);
    const tables = new Map<string, CsvTable>();
    for (const [name, spec] of Object.entries(specs)) {
      const f = file(drop, name);
      if (!f) {
        if (!spec.optional) fail(problems, name, 0, undefined, `required file ${name} is missing from the drop`);
        continue;
      }
      const t = readTable(problems, f.name, f.bytes);
      if (this.cfg.mode === 'tolerant') {
        // Headers are case-sensitive per SDS; real exports vary, so tolerant mode matches loosely.
        const canon = new Map(spec.columns.map((c) => [c.toLowerCase(), c]));
        t.header = t.header.map((h) => canon.get(h.toLowerCase()) ?? h);
        t.rows = t.rows.map((r) => ({ line: r.line, values: Object.fromEntries(Object.entries(r.values).map(([k, v]) => [canon.get(k.toLowerCase()) ?? k, v])) }));
      }
      checkSdsTable(problems, t, spec);
      tables.set(name, t);
    }
    const parts = format === 'v2.1' ? this.v21(tables, problems) : this.v1(tables, format, problems);
    this.warnings = problems.warnings;
    // Every one of them is in the sync report (`--report FILE`); the log has the count and a sample.
    if (problems.warnings.length) this.ctx.log.warn({ source: this.sourceId, warnings: problems.warnings.length, first: problems.warnings.slice(0, 5) }, 'SDS drop accepted with defects (tolerant mode; all of them in the sync report)');
    return parts;
  }

  private v21(t: Map<string, CsvTable>, p: CsvProblems): DropPart[] {
    const rows = (f: string) => t.get(f)?.rows ?? [];
    // A file left out of the drop says nothing about its records: its types are not completed, so
    // nothing is deleted for want of a file (SDS asks for the same set of files on every upload).
    const part = (files: string[], records: SourceRecord[], completes: EntityType[]): DropPart => ({
      file: files.join(', '), records, completes: files.some((f) => t.has(f)) ? completes : undefined,
    });
    const date = (file: string, line: number, column: string, v: string | undefined) => sdsDate(p, file, line, column, v);
    // v2.1 orgs carry only their SIS id (sourcedId, what becomes the school's Graph externalId).
    const orgs = rows('orgs.csv').map(({ values: v }) => ({
      type: 'org', key: v.sourcedId!,
      data: {
        name: v.name!, type: SCHOOL_TYPES.has(v.type!.toLowerCase()) ? 'school' : v.type === 'district' ? 'district' : v.type === 'department' ? 'department' : 'other',
        sisId: s(v.sourcedId), parentKey: s(v.parentSourcedId),
      },
    }) as SourceRecord);
    const sessions = rows('academicSessions.csv').map(({ values: v, line }) => ({
      type: 'academicSession', key: v.sourcedId!,
      data: {
        title: v.title!, type: (['schoolYear', 'semester', 'term', 'gradingPeriod'].find((x) => x.toLowerCase() === v.type!.toLowerCase()) ?? 'term') as 'term', schoolYear: s(v.schoolYear),
        startDate: date('academicSessions.csv', line, 'startDate', v.startDate), endDate: date('academicSessions.csv', line, 'endDate', v.endDate),
      },
    }) as SourceRecord);
    const courses = rows('courses.csv').map(({ values: v }) => ({
      type: 'course', key: v.sourcedId!,
      data: { title: v.title!, courseCode: s(v.code), orgKey: s(v.orgSourcedId), schoolYearKey: s(v.schoolYearSourcedId), subjects: s(v.subject) ? [v.subject!] : undefined, grades: s(v.grade) ? [grade(v.grade!)] : undefined },
    }) as SourceRecord);
    // Roles, relationships and flags are joined onto users and their demographics.
    const roles = new Map<string, { role: PersonRole; org: string; primary: boolean; grade?: string }[]>();
    for (const { values: v } of rows('roles.csv')) {
      const list2 = roles.get(v.userSourcedId!) ?? [];
      list2.push({ role: sdsRole(v.role!), org: v.orgSourcedId!, primary: /^true$/i.test(v.isPrimary ?? ''), grade: s(v.grade) });
      roles.set(v.userSourcedId!, list2);
    }
    const guardians = new Set(rows('relationships.csv').map((r) => r.values.relationshipUserSourcedId!));
    const people = rows('users.csv').map(({ values: v, line }) => {
      const r = roles.get(v.sourcedId!) ?? [];
      const personRoles = [...new Set([...r.map((x) => x.role), ...(guardians.has(v.sourcedId!) ? ['guardian' as const] : [])])];
      // Names may be blank for users SDS matches to existing accounts, but guardians need them.
      if (guardians.has(v.sourcedId!) && (!s(v.givenName) || !s(v.familyName))) {
        defect(p, 'users.csv', line, !s(v.givenName) ? 'givenName' : 'familyName', 'blank, but SDS requires names of users who are guardians in relationships.csv');
      }
      const data: PersonData = {
        givenName: s(v.givenName) ?? '', familyName: s(v.familyName) ?? '', username: s(v.username), email: s(v.email), phone: s(v.phone), sms: s(v.sms),
        roles: personRoles, sisId: v.sourcedId, orgKeys: r.length ? [...new Set(r.map((x) => x.org))] : undefined,
        primaryOrgKey: (r.find((x) => x.primary) ?? r[0])?.org, grades: r.find((x) => x.grade) ? [grade(r.find((x) => x.grade)!.grade!)] : undefined,
      };
      return { type: 'person', key: v.sourcedId!, data } as SourceRecord;
    });
    const demo = new Map<string, DemographicsData>();
    const d = (id: string) => demo.get(id) ?? demo.set(id, { personKey: id }).get(id)!;
    for (const { values: v, line } of rows('demographics.csv')) {
      const x = d(v.userSourcedId!);
      const sex = s(v.sex)?.toLowerCase();
      Object.assign(x, { birthDate: date('demographics.csv', line, 'birthDate', v.birthDate), sex: sex === 'male' || sex === 'female' || sex === 'other' ? sex : sex ? 'unspecified' : undefined, countryOfBirth: s(v.birthCountry) });
      if (list(v.ethnicityCodes).some((c) => c.toLowerCase() === 'hispanicorlatinoethnicity')) x.hispanicOrLatino = true;
      for (const c of list(v.raceCodes)) if (RACE[c.toLowerCase()]) (x as unknown as Record<string, unknown>)[RACE[c.toLowerCase()]!] = true;
    }
    for (const { values: v } of rows('userFlags.csv')) {
      const x = d(v.userSourcedId!);
      const f = v.flag!.trim().toLowerCase();
      if (f === 'iep') x.iep = true;
      else if (f === '504') x.section504 = true;
      else if (f === 'freelunch') x.freeReducedLunch = 'free';
      else if (f === 'reducedlunch') x.freeReducedLunch = 'reduced';
      else if (f === 'ell') x.englishLanguageLearner = true;
      else if (f === 'gifted') x.gifted = true;
    }
    const demographics = [...demo.values()].map((x) => ({ type: 'demographics', key: x.personKey, data: x }) as SourceRecord);
    const guardianships = rows('relationships.csv').map(({ values: v }) => ({
      type: 'guardianship', key: `${v.relationshipUserSourcedId}:${v.userSourcedId}`,
      data: { guardianKey: v.relationshipUserSourcedId!, studentKey: v.userSourcedId!, relation: RELATION[(v.relationshipRole ?? '').toLowerCase()] },
    }) as SourceRecord);
    const classes = rows('classes.csv').map(({ values: v }) => ({
      type: 'class', key: v.sourcedId!,
      data: { title: v.title!, schoolKey: v.orgSourcedId, termKeys: list(v.sessionSourcedIds), courseKey: s(v.courseSourcedId), classCode: s(v.code) },
    }) as SourceRecord);
    const enrollments = rows('enrollments.csv').map(({ values: v }) => {
      const role = sdsRole(v.role!);
      return { type: 'enrollment', key: `${v.classSourcedId}:${v.userSourcedId}`, data: { classKey: v.classSourcedId!, personKey: v.userSourcedId!, role: role === 'student' ? 'student' : 'teacher' } } as SourceRecord;
    });
    return [
      part(['orgs.csv'], orgs, ['org']),
      part(['academicSessions.csv'], sessions, ['academicSession']),
      part(['courses.csv'], courses, ['course']),
      part(['users.csv'], people, ['person']),
      part(['demographics.csv', 'userFlags.csv'], demographics, ['demographics']),
      part(['classes.csv'], classes, ['class']),
      part(['enrollments.csv'], enrollments, ['enrollment']),
      part(['relationships.csv'], guardianships, ['guardianship']),
    ];
  }

  private v1(t: Map<string, CsvTable>, format: SdsFormat, p: CsvProblems): DropPart[] {
    const col = (f: string, c: string) => (format === 'v1-uk' ? ukName(f, c) : c);
    const rows = (f: string) => (t.get(f)?.rows ?? []).map((r) => ({ line: r.line, get: (c: string) => s(r.values[col(f, c)]) }));
    const date = (f: string, r: { line: number; get: (c: string) => string | undefined }, c: string) => sdsDate(p, f, r.line, col(f, c), r.get(c));
    // Types read from a file the drop left out are not completed (see v21).
    const has = (...files: string[]) => files.every((f) => t.has(f));
    // Each kind of id to its own field. The UK variant keys schools by their DfE number, which is
    // both the official id and the id the SIS (and so Graph's externalId) uses for the school.
    const schools = rows('School.csv').map((r) => ({
      type: 'org', key: r.get('SIS ID')!,
      data: {
        name: r.get('Name')!, type: 'school', sisId: r.get('SIS ID'), identifier: format === 'v1-uk' ? r.get('SIS ID') : r.get('School NCES_ID'),
        stateId: r.get('State ID'), schoolNumber: r.get('School Number'), lowGrade: r.get('Grade Low') && grade(r.get('Grade Low')!),
        highGrade: r.get('Grade High') && grade(r.get('Grade High')!), phone: r.get('Phone'),
        address: { street: r.get('Address'), city: r.get('City'), state: r.get('State'), postalCode: r.get('Zip'), country: r.get('Country') },
      },
    }) as SourceRecord);
    const sessions = new Map<string, SourceRecord>();
    const courses = new Map<string, SourceRecord>();
    const classes = rows('Section.csv').map((r) => {
      const term = r.get('Term SIS ID');
      if (term) sessions.set(term, { type: 'academicSession', key: term, data: { title: r.get('Term Name') ?? term, type: 'term', startDate: date('Section.csv', r, 'Term StartDate'), endDate: date('Section.csv', r, 'Term EndDate') } });
      const course = r.get('Course SIS ID');
      if (course) courses.set(course, { type: 'course', key: course, data: { title: r.get('Course Name') ?? course, courseCode: r.get('Course Number'), description: r.get('Course Description'), subjects: r.get('Course Subject') ? [r.get('Course Subject')!] : undefined, orgKey: r.get('School SIS ID') } });
      return {
        type: 'class', key: r.get('SIS ID')!,
        data: { title: r.get('Section Name')!, classCode: r.get('Section Number'), schoolKey: r.get('School SIS ID'), termKeys: term ? [term] : undefined, courseKey: course, periods: r.get('Periods') ? list(r.get('Periods')) : undefined },
      } as SourceRecord;
    });
    const person = (f: 'Student.csv' | 'Teacher.csv', role: PersonRole) =>
      rows(f).map((r) => {
        const username = r.get('Username');
        return {
          type: 'person', key: r.get('SIS ID')!,
          data: {
            givenName: r.get('First Name') ?? '', familyName: r.get('Last Name') ?? '', middleName: r.get('Middle Name'), username,
            email: r.get('Secondary Email') ?? (username?.includes('@') ? username : undefined), roles: [role], sisId: r.get('SIS ID'), stateId: r.get('State ID'),
            studentNumber: role === 'student' ? r.get('Student Number') : undefined, teacherNumber: role === 'teacher' ? r.get('Teacher Number') : undefined,
            orgKeys: [r.get('School SIS ID')!], primaryOrgKey: r.get('School SIS ID'), grades: role === 'student' && r.get('Grade') ? [grade(r.get('Grade')!)] : undefined,
            graduationYear: role === 'student' ? r.get('Graduation Year') : undefined, title: role === 'teacher' ? r.get('Title') : undefined,
          } satisfies PersonData,
        } as SourceRecord;
      });
    const students = person('Student.csv', 'student');
    const teachers = person('Teacher.csv', 'teacher');
    const demographics = rows('Student.csv').filter((r) => r.get('Birthdate')).map((r) => ({ type: 'demographics', key: r.get('SIS ID')!, data: { personKey: r.get('SIS ID')!, birthDate: date('Student.csv', r, 'Birthdate') } }) as SourceRecord);
    const enrol = (f: string, role: 'student' | 'teacher') =>
      rows(f).map((r) => ({ type: 'enrollment', key: `${r.get('Section SIS ID')}:${r.get('SIS ID')}`, data: { classKey: r.get('Section SIS ID')!, personKey: r.get('SIS ID')!, role, primary: role === 'teacher' ? undefined : false } }) as SourceRecord);
    // The parent add-on: guardians in user.csv, linked to students by email in guardianrelationship.csv.
    const guardianKey = new Map<string, string>();
    const guardians = rows('user.csv').map((r) => {
      const key = r.get('SIS ID') ?? `email:${r.get('Email')!.toLowerCase()}`;
      guardianKey.set(r.get('Email')!.toLowerCase(), key);
      return { type: 'person', key, data: { givenName: r.get('First Name') ?? '', familyName: r.get('Last Name') ?? '', email: r.get('Email'), phone: r.get('Phone'), roles: ['guardian'], sisId: r.get('SIS ID') } } as SourceRecord;
    });
    const guardianships = rows('guardianrelationship.csv').map((r) => {
      const g = guardianKey.get(r.get('Email')!.toLowerCase()) ?? `email:${r.get('Email')!.toLowerCase()}`;
      return { type: 'guardianship', key: `${g}:${r.get('SIS ID')}`, data: { guardianKey: g, studentKey: r.get('SIS ID')!, relation: RELATION[(r.get('Role') ?? '').toLowerCase()] ?? 'other' } } as SourceRecord;
    });
    const when = (present: boolean, types: EntityType[]) => (present ? types : undefined);
    return [
      { file: 'School.csv', records: schools, completes: ['org'] },
      { file: 'Section.csv (terms)', records: [...sessions.values()], completes: when(has('Section.csv'), ['academicSession']) },
      { file: 'Section.csv (courses)', records: [...courses.values()], completes: when(has('Section.csv'), ['course']) },
      // Guardians of the parent add-on go with the people: it is an add-on, so its absence is normal.
      { file: 'Student.csv, Teacher.csv, user.csv', records: [...students, ...teachers, ...guardians], completes: ['person'] },
      { file: 'Student.csv (birth dates)', records: demographics, completes: ['demographics'] },
      { file: 'Section.csv', records: classes, completes: when(has('Section.csv'), ['class']) },
      // Student and teacher rosters share a type: it completes only when both files came.
      { file: 'StudentEnrollment.csv, TeacherRoster.csv', records: [...enrol('StudentEnrollment.csv', 'student'), ...enrol('TeacherRoster.csv', 'teacher')], completes: when(has('StudentEnrollment.csv', 'TeacherRoster.csv'), ['enrollment']) },
      { file: 'guardianrelationship.csv', records: guardianships, completes: when(has('guardianrelationship.csv'), ['guardianship']) },
    ];
  }
}

/**
 * SDS headers: the required columns must be there (always an error); any other SDS column may be
 * left out (Microsoft's own "minimum required attributes" samples do); an unknown column is a
 * defect. Ids and references must not be blank in any row; other required values may be blank
 * only in tolerant mode.
 */
function checkSdsTable(p: CsvProblems, t: CsvTable, spec: SdsFile): void {
  for (const r of spec.required) if (!t.header.includes(r)) fail(p, t.file, 1, r, `required column "${r}" is missing`);
  for (const h of t.header) if (!spec.columns.includes(h)) defect(p, t.file, 1, h, `unknown column "${h}"`);
  const blankable = new Set(['Role']);
  for (const row of t.rows) {
    for (const c of spec.required) {
      if ((row.values[c] ?? '').trim() !== '') continue;
      if (spec.keys.includes(c)) fail(p, t.file, row.line, c, 'blank, but it identifies the record or what it refers to');
      else if (!blankable.has(c)) defect(p, t.file, row.line, c, 'blank, but SDS requires a value');
    }
  }
}

/**
 * Dates in SDS drops: ISO `YYYY-MM-DD` (v2.1, and what the v1 docs recommend), `YYYYMMDD`, or the
 * `M/D/YYYY` of Microsoft's v1 samples. Anything else is a defect; tolerant mode leaves the date out.
 */
function sdsDate(p: CsvProblems, file: string, line: number, column: string, v: string | undefined): string | undefined {
  const t = s(v);
  if (!t) return undefined;
  const compact = /^(\d{4})(\d{2})(\d{2})$/.exec(t);
  const iso = compact ? `${compact[1]}-${compact[2]}-${compact[3]}` : isoDateFromUs(t);
  if (iso && /^\d{4}-(0[1-9]|1[0-2])-(0[1-9]|[12]\d|3[01])$/.test(iso)) return iso;
  defect(p, file, line, column, 'not a date (expected YYYY-MM-DD, YYYYMMDD or M/D/YYYY)');
  return undefined;
}
