/**
 * Clever sandbox: a local emulator of the Clever Data and Events API v3.0/v3.1 wire format, serving
 * the synthetic demo district. Paths, envelopes ({data:[{data,uri}],links}), range paging by
 * `starting_after`/`ending_before`, the 10000 limit (413 above), bearer-token checks (401) and
 * unknown ids (404) follow Clever's swagger and docs. Events are rendered from the dataset's journal.
 */
import type { DatasetRow, DatasetView } from '../dataset-view.ts';
import type { AcademicSessionData, ClassData, DemographicsData, EnrollmentData, GuardianshipData, OrgData, PersonData } from '../../src/model/records.ts';
import { basicAuth, bearer, perVersion, renderPage, seek, vendorId, type SandboxApp, type SandboxRequest, type SandboxResponse } from '../sandbox-kit.ts';
import type { CleverEvent, CleverSection, CleverUser } from './wire.ts';

export const CLEVER_SANDBOX_TOKEN = 'DEMO_CLEVER_DISTRICT_TOKEN';
export const CLEVER_SANDBOX_CLIENT_ID = 'demo-clever-client';
export const CLEVER_SANDBOX_CLIENT_SECRET = 'demo-clever-secret';

/** The Clever id of a demo record. */
export const cleverId = (type: string, key: string) => vendorId('clever', `${type}:${key}`, 'hex24');

const ts = (iso: string) => new Date(iso).toISOString();
const usDate = (iso?: string) => (iso ? `${Number(iso.slice(5, 7))}/${Number(iso.slice(8, 10))}/${iso.slice(0, 4)}` : undefined);
const cleverGrade = (g?: string) =>
  g === undefined ? undefined : g === 'KG' ? 'Kindergarten' : g === 'PK' ? 'PreKindergarten' : /^\d\d$/.test(g) ? String(Number(g)) : 'Other';
const RACE: [keyof DemographicsData, string][] = [
  ['white', 'Caucasian'], ['asian', 'Asian'], ['blackOrAfricanAmerican', 'Black or African American'],
  ['americanIndianOrAlaskaNative', 'American Indian'], ['nativeHawaiianOrOtherPacificIslander', 'Hawaiian or Other Pacific Islander'],
  ['twoOrMoreRaces', 'Two or More Races'],
];
const RELATION: Record<string, string> = { parent: 'Parent', grandparent: 'Grandparent', aunt_uncle: 'Aunt/Uncle', sibling: 'Sibling', self: 'Self' };

export interface CleverSandboxOptions {
  /** Put previous_attributes inside `data` (as the one real v1.2 sample does) instead of on the event. */
  previousAttributesInData?: boolean;
  /** Answer /events with 404, as for an app without Events API access. */
  eventsDisabled?: boolean;
  /** Ignore `starting_after` (a broken server whose next link leads back to the same page). Read per request. */
  ignoreStartingAfter?: boolean;
}

/** Renders the dataset as Clever objects. */
class CleverView {
  constructor(private readonly ds: DatasetView, private readonly v31: boolean) {}

  district() {
    const d = this.ds.list('org').find((o) => o.data.type === 'district');
    return d && { id: cleverId('org', d.key), name: d.data.name, nces_id: d.data.identifier ?? '' };
  }

  private districtId() {
    const d = this.ds.list('org').find((o) => o.data.type === 'district');
    return d ? cleverId('org', d.key) : '';
  }

  school(r: DatasetRow<'org'>) {
    const o = r.data as OrgData;
    return {
      id: cleverId('org', r.key), district: this.districtId(), name: o.name, nces_id: o.identifier ?? '', school_number: o.schoolNumber ?? '',
      sis_id: o.sisId ?? '', state_id: o.stateId ?? '', low_grade: cleverGrade(o.lowGrade) ?? '', high_grade: cleverGrade(o.highGrade) ?? '', phone: o.phone ?? '',
      location: { address: o.address?.street ?? '', city: o.address?.city ?? '', state: o.address?.state ?? '', zip: o.address?.postalCode ?? '' },
      created: ts(r.created), last_modified: ts(r.lastModified),
    };
  }

  term(r: DatasetRow<'academicSession'>) {
    const t = r.data as AcademicSessionData;
    return { id: cleverId('academicSession', r.key), district: this.districtId(), name: t.title, start_date: t.startDate ? `${t.startDate}T00:00:00.000Z` : '', end_date: t.endDate ? `${t.endDate}T00:00:00.000Z` : '' };
  }

  course(r: DatasetRow<'course'>) {
    return { id: cleverId('course', r.key), district: this.districtId(), name: r.data.title, number: r.data.courseCode ?? '' };
  }

  user(r: DatasetRow<'person'>, idx: Indexes): CleverUser {
    const p = r.data as PersonData;
    const schools = (p.orgKeys ?? []).filter((k) => this.ds.get('org', k)?.data.type === 'school').map((k) => cleverId('org', k));
    const school = p.primaryOrgKey && this.ds.get('org', p.primaryOrgKey)?.data.type === 'school' ? cleverId('org', p.primaryOrgKey) : schools[0] ?? '';
    const roles: NonNullable<CleverUser['roles']> = {};
    const cred = { district_username: p.username ?? '' };
    if (p.roles.includes('student')) {
      const d = idx.demographics.get(r.key);
      const races = RACE.filter(([f]) => d?.[f] === true).map(([, name]) => name);
      roles.student = {
        sis_id: p.sisId ?? '', state_id: p.stateId ?? '', student_number: p.studentNumber ?? '', credentials: cred, school, schools,
        grade: cleverGrade(p.grades?.[0]) ?? '', graduation_year: p.graduationYear ?? '', dob: usDate(d?.birthDate) ?? '',
        gender: d?.sex === 'male' ? 'M' : d?.sex === 'female' ? 'F' : d?.sex ? 'X' : '',
        race: races.length > 1 ? 'Two or More Races' : races[0] ?? '',
        hispanic_ethnicity: d?.hispanicOrLatino === undefined ? '' : d.hispanicOrLatino ? 'Y' : 'N',
        ell_status: d?.englishLanguageLearner === undefined ? '' : d.englishLanguageLearner ? 'Y' : 'N',
        location: { zip: d?.postalCode ?? '' },
        ...(this.v31
          ? {
              frl_status: (d?.freeReducedLunch ? d.freeReducedLunch[0]!.toUpperCase() + d.freeReducedLunch.slice(1) : '') as 'Free',
              iep_status: d?.iep === undefined ? '' : d.iep ? 'Y' : 'N',
              section_504_status: d?.section504 === undefined ? '' : d.section504 ? 'Y' : 'N',
              gifted_status: d?.gifted === undefined ? '' : d.gifted ? 'Y' : 'N',
              home_language_code: d?.homeLanguage ?? '',
              preferred_name: p.preferredGivenName ? { first: p.preferredGivenName } : {},
            }
          : {}),
      };
    }
    if (p.roles.includes('teacher')) {
      roles.teacher = { sis_id: p.sisId ?? '', state_id: p.stateId ?? '', teacher_number: p.teacherNumber ?? '', title: p.title ?? '', credentials: cred, school, schools };
    }
    if (p.roles.includes('staff')) roles.staff = { staff_id: p.sisId ?? '', title: p.title ?? '', credentials: cred, schools };
    if (p.roles.includes('administrator')) roles.district_admin = { title: p.title ?? '' };
    if (p.roles.includes('guardian')) {
      roles.contact = {
        sis_id: p.sisId ?? '', phone: p.phone ?? '', phone_type: p.phone ? 'Cell' : '',
        student_relationships: (idx.wards.get(r.key) ?? []).map((g) => ({
          student: cleverId('person', g.studentKey), relationship: RELATION[g.relation ?? ''] ?? 'Other', type: g.contactType ?? '',
        })),
      };
    }
    return {
      id: cleverId('person', r.key), district: this.districtId(), email: p.email ?? '',
      name: { first: p.givenName, middle: p.middleName ?? '', last: p.familyName }, roles, created: ts(r.created), last_modified: ts(r.lastModified),
    };
  }

  section(r: DatasetRow<'class'>, idx: Indexes): CleverSection {
    const c = r.data as ClassData;
    const enr = idx.enrollments.get(r.key) ?? [];
    const teachers = enr.filter((e) => e.role === 'teacher');
    const primary = teachers.find((e) => e.primary) ?? teachers[0];
    return {
      id: cleverId('class', r.key), district: this.districtId(), school: c.schoolKey ? cleverId('org', c.schoolKey) : '',
      course: c.courseKey ? cleverId('course', c.courseKey) : '', term_id: c.termKeys?.[0] ? cleverId('academicSession', c.termKeys[0]) : '',
      name: c.title, period: c.periods?.[0] ?? '', section_number: c.classCode ?? '', sis_id: r.key, subject: 'other', grade: cleverGrade(c.grades?.[0]) ?? '',
      teacher: primary ? cleverId('person', primary.personKey) : '', teachers: teachers.map((e) => cleverId('person', e.personKey)),
      students: enr.filter((e) => e.role === 'student').map((e) => cleverId('person', e.personKey)), last_modified: ts(r.lastModified),
    };
  }
}

interface Indexes {
  demographics: Map<string, DemographicsData>;
  wards: Map<string, GuardianshipData[]>;
  enrollments: Map<string, EnrollmentData[]>;
}

function indexes(ds: DatasetView): Indexes {
  const group = <T>(rows: readonly T[], key: (t: T) => string) => {
    const m = new Map<string, T[]>();
    for (const r of rows) {
      const xs = m.get(key(r));
      if (xs) xs.push(r);
      else m.set(key(r), [r]);
    }
    return m;
  };
  return {
    demographics: new Map(ds.list('demographics').map((d) => [d.data.personKey, d.data])),
    wards: group(ds.list('guardianship').map((g) => g.data), (g) => g.guardianKey),
    enrollments: group(ds.list('enrollment').map((e) => e.data), (e) => e.classKey),
  };
}

/**
 * One resource's listing in Clever's order (by id), with the ids alone for the cursor's binary
 * search and a lookup by id. Records are rendered only when a page holds them.
 */
interface Listing {
  rows: readonly DatasetRow[];
  ids: string[];
  byId: Map<string, DatasetRow>;
}

function listing(type: string, rows: readonly DatasetRow[]): Listing {
  const withIds = rows.map((r) => ({ r, id: cleverId(type, r.key) })).sort((a, b) => (a.id < b.id ? -1 : 1));
  const out = { rows: withIds.map((x) => x.r), ids: withIds.map((x) => x.id), byId: new Map<string, DatasetRow>() };
  for (const x of withIds) out.byId.set(x.id, x.r);
  return out;
}

/** Clever's user roles (the `role` filter, the keys of `roles`) and the district's role each stands for. */
const ROLE_OF: Record<string, PersonData['roles'][number]> = { student: 'student', teacher: 'teacher', staff: 'staff', district_admin: 'administrator', contact: 'guardian' };

const isTerm = (r: DatasetRow<'academicSession'>) => r.data.type === 'semester' || r.data.type === 'term';

export function cleverSandbox(options: CleverSandboxOptions = {}): SandboxApp {
  return {
    name: 'Clever Data API v3 (sandbox)',
    prefix: '/clever',
    create({ dataset, baseUrl }) {
      // Indexes and listings once per dataset version; events rendered once per version and API version.
      const state = perVersion(dataset, () => {
        const people = dataset.list('person');
        const users = listing('person', people);
        const byRole = new Map<string, Listing>();
        for (const [role, ours] of Object.entries(ROLE_OF)) byRole.set(role, listing('person', people.filter((p) => p.data.roles.includes(ours))));
        const district = dataset.list('org').filter((o) => o.data.type === 'district');
        return {
          idx: indexes(dataset),
          listings: new Map<string, Listing>([
            ['districts', listing('org', district.slice(0, 1))],
            ['schools', listing('org', dataset.list('org').filter((o) => o.data.type === 'school'))],
            ['terms', listing('academicSession', dataset.list('academicSession').filter(isTerm))],
            ['courses', listing('course', dataset.list('course'))],
            ['users', users],
            ['sections', listing('class', dataset.list('class'))],
          ]),
          byRole,
          events: new Map<string, { id: string }[]>(),
        };
      });
      const views = { 'v3.0': new CleverView(dataset, false), 'v3.1': new CleverView(dataset, true) } as Record<string, CleverView>;
      const renderer = (version: string, resource: string): ((r: DatasetRow) => { id: string }) => {
        const v = views[version]!;
        const idx = state().idx;
        switch (resource) {
          case 'districts': return () => v.district()!;
          case 'schools': return (r) => v.school(r as DatasetRow<'org'>);
          case 'terms': return (r) => v.term(r as DatasetRow<'academicSession'>);
          case 'courses': return (r) => v.course(r as DatasetRow<'course'>);
          case 'users': return (r) => v.user(r as DatasetRow<'person'>, idx);
          default: return (r) => v.section(r as DatasetRow<'class'>, idx);
        }
      };
      const eventsOf = (version: string) => {
        const s = state();
        let list = s.events.get(version);
        if (!list) s.events.set(version, (list = events(dataset, views[version]!, s.idx, options)));
        return list;
      };
      return {
        errorBody: (status) => ({ message: status === 429 ? 'Rate limit exceeded' : status >= 500 ? 'Internal Server Error' : `error ${status}` }),
        // Clever's documented rate-limit header: when the per-minute window resets, in Unix seconds.
        rateLimitHeaders: (resetAtMs) => ({ 'x-ratelimit-reset': String(Math.ceil(resetAtMs / 1000)) }),
        handle(req: SandboxRequest): SandboxResponse {
          if (req.path === '/oauth/tokens') {
            const creds = basicAuth(req.headers);
            if (!creds || creds[0] !== CLEVER_SANDBOX_CLIENT_ID || creds[1] !== CLEVER_SANDBOX_CLIENT_SECRET) return { status: 401, body: { message: 'invalid client credentials' } };
            const district = views['v3.1']!.district()!;
            return {
              status: 200,
              body: {
                data: [{ id: 'sandbox-token', created: new Date(0).toISOString(), owner: { type: 'district', id: district.id }, access_token: CLEVER_SANDBOX_TOKEN, scopes: ['read:students', 'read:teachers', 'read:sections', 'read:district_admins', 'read:school_admins', 'read:user_id'] }],
                links: [{ rel: 'self', uri: '/oauth/tokens?owner_type=district' }],
              },
            };
          }
          const m = /^\/(v3\.[01])\/([a-z_]+)(?:\/([0-9a-f]{24}))?$/.exec(req.path);
          if (!m) return { status: 404, body: { message: 'Not Found' } };
          if (bearer(req.headers) !== CLEVER_SANDBOX_TOKEN) return { status: 401, body: { message: 'Unauthorized' } };
          const [, version, resource, id] = m as unknown as [string, string, string, string | undefined];
          if (resource === 'events' && options.eventsDisabled) return { status: 404, body: { message: 'Not Found' } };
          const uri = (x: { id: string }) => `/${version}/${resource}/${x.id}`;
          const q = req.url.searchParams;
          const limit = q.has('limit') ? Number(q.get('limit')) : 100;
          if (resource === 'events') {
            // Events are few and rendered once per version: plain array paging.
            const all = eventsOf(version);
            if (id) {
              const one = all.find((x) => x.id === id);
              return one ? { status: 200, body: { data: one, links: [{ rel: 'self', uri: uri(one) }] } } : { status: 404, body: { message: 'Not Found' } };
            }
            if (!Number.isInteger(limit) || limit < 1) return { status: 400, body: { message: 'invalid limit' } };
            if (limit > 10_000) return { status: 413, body: { message: 'Request entity too large' } };
            const ids = all.map((x) => x.id);
            return cursorPage(version, resource, q, limit, all, ids, (x) => x, uri);
          }
          const s = state();
          let all = s.listings.get(resource);
          if (!all) return { status: 404, body: { message: 'Not Found' } };
          const render = renderer(version, resource);
          if (id) {
            const row = all.byId.get(id);
            const one = row && render(row);
            return one ? { status: 200, body: { data: one, links: [{ rel: 'self', uri: uri(one) }] } } : { status: 404, body: { message: 'Not Found' } };
          }
          if (!Number.isInteger(limit) || limit < 1) return { status: 400, body: { message: 'invalid limit' } };
          if (limit > 10_000) return { status: 413, body: { message: 'Request entity too large' } };
          const role = q.get('role');
          if (resource === 'users' && role) all = s.byRole.get(role) ?? listing('person', []);
          return cursorPage(version, resource, q, limit, all.rows, all.ids, render, uri);
        },
      };
      /** A page by `starting_after` / `ending_before`, found by binary search over the sorted ids. */
      function cursorPage<T>(version: string, resource: string, q: URLSearchParams, limit: number, rows: readonly T[], ids: readonly string[], render: (x: T) => { id: string }, uri: (x: { id: string }) => string): SandboxResponse {
      const after = options.ignoreStartingAfter ? null : q.get('starting_after');
      const before = q.get('ending_before');
      let from: number;
      let to: number;
      if (before) {
        to = seek(ids, before, true);
        from = Math.max(0, to - limit);
      } else {
        from = after ? seek(ids, after) : 0;
        to = Math.min(ids.length, from + limit);
      }
      const page = renderPage(rows.slice(from, to), render);
      const self = `/${version}/${resource}?${q.toString()}`;
      const links = [{ rel: 'self', uri: self }];
      const last = page.at(-1);
      if (last && to < ids.length) links.push({ rel: 'next', uri: `/${version}/${resource}?limit=${limit}&starting_after=${last.id}` });
      // Documented quirk: a starting_after page may carry a prev link even when nothing precedes it.
      if (after && page[0]) links.push({ rel: 'prev', uri: `/${version}/${resource}?limit=${limit}&ending_before=${page[0].id}` });
      void baseUrl;
      return { status: 200, body: { data: page.map((x) => ({ data: x, uri: uri(x) })), links } };
      }
    },
  };
}

export const cleverSandboxApp = cleverSandbox();

/** The dataset journal as Clever events, ids increasing with the journal sequence. */
function events(ds: DatasetView, v: CleverView, idx: Indexes, options: CleverSandboxOptions): CleverEvent[] {
  const out: CleverEvent[] = [];
  const anyRow = <T extends 'person' | 'class' | 'org' | 'course' | 'academicSession'>(type: T, key: string) => ds.getWithDeleted(type, key);
  for (const e of ds.changesSince(0)) {
    const id = e.seq.toString(16).padStart(24, '0');
    const push = (type: string, object: Record<string, unknown>, previous?: Record<string, unknown>) => {
      const data = { object, ...(previous && options.previousAttributesInData ? { previous_attributes: previous } : {}) };
      out.push({ id, type, created: e.at, data, ...(previous && !options.previousAttributesInData ? { previous_attributes: previous } : {}) } as CleverEvent);
    };
    if (e.type === 'person' || e.type === 'demographics' || e.type === 'guardianship') {
      let personKey = e.key;
      let previous: Record<string, unknown> | undefined;
      if (e.type === 'demographics') personKey = (ds.getWithDeleted('demographics', e.key)?.data.personKey) ?? e.key;
      if (e.type === 'guardianship') {
        const g = ds.getWithDeleted('guardianship', e.key)!.data;
        personKey = g.guardianKey;
        const now = (idx.wards.get(g.guardianKey) ?? []).map((x) => cleverId('person', x.studentKey));
        const sid = cleverId('person', g.studentKey);
        const before = e.op === 'created' ? now.filter((x) => x !== sid) : e.op === 'deleted' ? [...now, sid] : now;
        previous = { roles: { contact: { student_relationships: before.map((student) => ({ student })) } } };
      }
      const row = anyRow('person', personKey);
      if (!row) continue;
      const op = e.type === 'person' ? e.op : 'updated';
      push(`users.${op}`, v.user(row, idx) as unknown as Record<string, unknown>, previous ?? (op === 'updated' ? {} : undefined));
    } else if (e.type === 'class' || e.type === 'enrollment') {
      let classKey = e.key;
      let previous: Record<string, unknown> | undefined;
      if (e.type === 'enrollment') {
        const en = ds.getWithDeleted('enrollment', e.key)!.data;
        classKey = en.classKey;
        const field = en.role === 'teacher' ? 'teachers' : 'students';
        const now = (idx.enrollments.get(classKey) ?? []).filter((x) => (x.role === 'teacher') === (field === 'teachers')).map((x) => cleverId('person', x.personKey));
        const uid = cleverId('person', en.personKey);
        previous = { [field]: e.op === 'created' ? now.filter((x) => x !== uid) : e.op === 'deleted' ? [...now, uid] : now };
      }
      const row = anyRow('class', classKey);
      if (!row) continue;
      push(`sections.${e.type === 'class' ? e.op : 'updated'}`, v.section(row, idx) as unknown as Record<string, unknown>, previous);
    } else if (e.type === 'org') {
      const row = anyRow('org', e.key)!;
      push(`${row.data.type === 'district' ? 'districts' : 'schools'}.${e.op}`, (row.data.type === 'district' ? v.district() : v.school(row)) as Record<string, unknown>);
    } else if (e.type === 'course') {
      push(`courses.${e.op}`, v.course(anyRow('course', e.key)!) as unknown as Record<string, unknown>);
    } else if (e.type === 'academicSession') {
      const row = anyRow('academicSession', e.key)!;
      if (isTerm(row)) push(`terms.${e.op}`, v.term(row) as unknown as Record<string, unknown>);
    }
  }
  return out;
}
