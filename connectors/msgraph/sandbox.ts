/**
 * Microsoft Graph Education sandbox: a local emulator of the identity platform's token endpoint
 * (client credentials, AADSTS error bodies) and of Graph v1.0 /education: schools, users, classes
 * and their members/teachers, OData envelopes with @odata.nextLink ($skiptoken) and $top/$select,
 * and delta functions whose deltaLinks ($deltatoken) replay the demo dataset's journal — with
 * Graph's documented gap: class delta does not report deleted classes.
 */
import { randomBytes } from 'node:crypto';
import type { DatasetRow, DatasetView } from '../dataset-view.ts';
import { bearer, perVersion, renderPage, vendorId, type SandboxApp, type SandboxRequest, type SandboxResponse } from '../sandbox-kit.ts';

export const MSGRAPH_SANDBOX_TENANT = '00000000-0000-4000-8000-00000000d3m0';
export const MSGRAPH_SANDBOX_CLIENT_ID = 'demo-graph-app';
export const MSGRAPH_SANDBOX_CLIENT_SECRET = 'demo-graph-secret';
export const graphId = (type: string, key: string) => vendorId('msgraph', `${type}:${key}`, 'uuid');

export interface GraphSandboxOptions {
  /**
   * Refuse every delta token, as Graph does once one has expired: 410 `resyncRequired` (the default)
   * or 400 `syncStateNotFound` (which status education delta uses is not documented). Mutable by tests.
   */
  rejectDeltaTokens?: boolean | 410 | 400;
  /** Send student.birthDate as the old timestamp form ("2001-01-01T00:00:00Z"). */
  birthDateAsTimestamp?: boolean;
  /** Changed users in a delta round carry only their id and name properties ("at least the changed properties"). */
  partialDeltaItems?: boolean;
  /** The client secret has expired (AADSTS7000222), as happens when nobody renews it. */
  secretExpired?: boolean;
  /**
   * An admin revoked the app's EduRoster consent: client credentials still get a token (with no
   * roles in it), and every education call is 403 Authorization_RequestDenied.
   */
  consentRevoked?: boolean;
}

const graphError = (status: number, code: string, message: string): SandboxResponse => ({
  status,
  body: { error: { code, message, innerError: { 'request-id': randomBytes(8).toString('hex'), date: new Date().toISOString() } } },
});

const aad = (status: number, error: string, code: number, text: string): SandboxResponse => ({
  status,
  body: { error, error_description: `AADSTS${code}: ${text}`, error_codes: [code], timestamp: new Date().toISOString(), trace_id: randomBytes(8).toString('hex'), correlation_id: randomBytes(8).toString('hex') },
});

export function graphSandbox(options: GraphSandboxOptions = {}): SandboxApp {
  return {
    name: 'Microsoft Graph Education v1.0 (sandbox)',
    prefix: '/msgraph',
    create({ dataset, baseUrl }) {
      const tokens = new Set<string>();
      const graphBase = `${baseUrl}/v1.0`;
      const view = new GraphView(dataset, options);
      return {
        errorBody: (status) => graphError(status, status === 429 ? 'TooManyRequests' : 'serviceNotAvailable', 'injected').body,
        handle(req: SandboxRequest): SandboxResponse {
          const tokenPath = /^\/([^/]+)\/oauth2\/v2\.0\/token$/.exec(req.path);
          if (tokenPath) {
            if (tokenPath[1] !== MSGRAPH_SANDBOX_TENANT) return aad(400, 'invalid_request', 90002, `Tenant '${tokenPath[1]}' not found.`);
            const form = new URLSearchParams(req.body);
            if (form.get('grant_type') !== 'client_credentials') return aad(400, 'unsupported_grant_type', 70003, 'The app requested an unsupported grant type.');
            if (form.get('client_id') !== MSGRAPH_SANDBOX_CLIENT_ID) return aad(400, 'unauthorized_client', 700016, 'Application was not found in the directory.');
            if (form.get('client_secret') !== MSGRAPH_SANDBOX_CLIENT_SECRET) return aad(401, 'invalid_client', 7000215, 'Invalid client secret provided.');
            if (options.secretExpired) return aad(401, 'invalid_client', 7000222, 'The provided client secret keys for app are expired.');
            if (form.get('scope') !== 'https://graph.microsoft.com/.default') return aad(400, 'invalid_scope', 70011, 'The provided value for scope is not valid.');
            const t = randomBytes(24).toString('base64url');
            tokens.add(t);
            return { status: 200, body: { token_type: 'Bearer', expires_in: 3599, ext_expires_in: 3599, access_token: t } };
          }
          if (!req.path.startsWith('/v1.0/education/')) return graphError(404, 'itemNotFound', 'no such path');
          const t = bearer(req.headers);
          if (!t || !tokens.has(t)) return graphError(401, 'InvalidAuthenticationToken', 'Access token is empty or invalid.');
          if (options.consentRevoked) return graphError(403, 'Authorization_RequestDenied', 'Insufficient privileges to complete the operation.');
          const path = req.path.slice('/v1.0/education'.length);
          const q = req.url.searchParams;
          const select = q.get('$select')?.split(',').map((x) => x.trim());
          const pick = (o: Record<string, unknown>) => (select ? Object.fromEntries(Object.entries(o).filter(([k]) => k === 'id' || k.startsWith('@') || select.includes(k))) : o);
          // Lists page by $top; delta functions ignore it and take `Prefer: odata.maxpagesize`.
          const isDelta = path.endsWith('/delta');
          const preferred = /odata\.maxpagesize=(\d+)/.exec(String(req.headers.prefer ?? ''))?.[1];
          const top = Math.min(999, Number((isDelta ? preferred : q.get('$top')) ?? 100) || 100);
          const context = (what: string) => `${graphBase}/$metadata#${what}`;
          // The skiptoken is an offset into a listing kept per dataset version: a page renders only its records.
          const listPage = <T,>(items: readonly T[], what: string, extra: Record<string, unknown> = {}, render: (x: T) => Record<string, unknown> = (x) => x as Record<string, unknown>): SandboxResponse => {
            const skip = q.get('$skiptoken') ? Number(Buffer.from(q.get('$skiptoken')!, 'base64url').toString()) : 0;
            const page = renderPage(items.slice(skip, skip + top), render);
            const next = skip + top < items.length ? new URL(req.url.toString().replace(req.url.origin, new URL(baseUrl).origin)) : undefined;
            next?.searchParams.set('$skiptoken', Buffer.from(String(skip + top)).toString('base64url'));
            return {
              status: 200,
              headers: { 'odata-version': '4.0', ...(isDelta && preferred ? { 'preference-applied': `odata.maxpagesize=${top}` } : {}) },
              body: { '@odata.context': context(what), ...(next ? { '@odata.nextLink': next.toString() } : extra), value: page.map(pick) },
            };
          };
          let m: RegExpExecArray | null;
          if (path === '/schools') return listPage(view.schools(), 'education/schools');
          if ((m = /^\/schools\/([^/]+)\/(users|classes)$/.exec(path))) {
            const school = view.schoolKey(m[1]!);
            if (!school) return graphError(404, 'itemNotFound', 'no such school');
            return listPage(m[2] === 'users' ? view.usersOfSchool(school) : view.classesOfSchool(school), `Collection(microsoft.graph.education${m[2] === 'users' ? 'User' : 'Class'})`);
          }
          if (path === '/users') return listPage(view.userRows(), 'education/users', {}, (p) => view.user(p));
          if (path === '/classes') return listPage(view.classRows(), 'education/classes', {}, (c) => view.cls(c));
          if ((m = /^\/(users|classes)\/delta$/.exec(path))) {
            const what = m[1] as 'users' | 'classes';
            const token = q.get('$deltatoken');
            if (token !== null) {
              if (options.rejectDeltaTokens === 400) return graphError(400, 'syncStateNotFound', 'The sync state was not found.');
              if (options.rejectDeltaTokens) return graphError(410, 'resyncRequired', 'The delta token is no longer valid.');
              const since = Number(Buffer.from(token, 'base64url').toString());
              const changed = what === 'users' ? view.changedUsers(since) : view.changedClasses(since);
              return listPage(changed, `Collection(microsoft.graph.education${what === 'users' ? 'User' : 'Class'})`, { '@odata.deltaLink': deltaLink(graphBase, what, select, dataset.headSeq) });
            }
            // The initial round: everything, then a deltaLink for what happens next.
            const seq = q.get('$rgseq') ? Number(q.get('$rgseq')) : dataset.headSeq;
            if (!q.get('$rgseq')) req.url.searchParams.set('$rgseq', String(seq));
            const context = `Collection(microsoft.graph.education${what === 'users' ? 'User' : 'Class'})`;
            const extra = { '@odata.deltaLink': deltaLink(graphBase, what, select, seq) };
            return what === 'users' ? listPage(view.userRows(), context, extra, (p) => view.user(p)) : listPage(view.classRows(), context, extra, (c) => view.cls(c));
          }
          if ((m = /^\/users\/([^/]+)$/.exec(path))) {
            const row = view.userById(m[1]!);
            const u = row && view.user(row);
            return u ? { status: 200, body: { '@odata.context': context('education/users/$entity'), ...pick(u) } } : graphError(404, 'itemNotFound', 'no such user');
          }
          if ((m = /^\/users\/([^/]+)\/schools$/.exec(path))) return listPage(view.schoolsOfUser(m[1]!), 'Collection(microsoft.graph.educationSchool)');
          if ((m = /^\/classes\/([^/]+)\/(members|teachers|schools)$/.exec(path))) return listPage(view.ofClass(m[1]!, m[2] as 'members'), `Collection(microsoft.graph.education${m[2] === 'schools' ? 'School' : 'User'})`);
          return graphError(404, 'itemNotFound', 'no such resource');
        },
      };
    },
  };
}

function deltaLink(graphBase: string, what: string, select: string[] | undefined, seq: number): string {
  const u = new URL(`${graphBase}/education/${what}/delta`);
  if (select) u.searchParams.set('$select', select.join(','));
  u.searchParams.set('$deltatoken', Buffer.from(String(seq)).toString('base64url'));
  return u.toString();
}

/** The dataset as Graph renders it; listings and lookups by Graph id kept per dataset version. */
class GraphView {
  private readonly ix: () => {
    schools: ReturnType<GraphView['renderSchools']>;
    users: readonly DatasetRow<'person'>[];
    usersById: Map<string, DatasetRow<'person'>>;
    usersOfSchool: Map<string, { id: string }[]>;
    classesById: Map<string, DatasetRow<'class'>>;
    classesOfSchool: Map<string, { id: string }[]>;
    enrollmentsOfClass: Map<string, DatasetRow<'enrollment'>[]>;
    changed: Map<string, Record<string, unknown>[]>;
  };

  constructor(private readonly ds: DatasetView, private readonly opts: GraphSandboxOptions) {
    this.ix = perVersion(ds, () => {
      // Education users are students and teachers (and staff as primaryRole none); guardians are not.
      const users = ds.list('person').filter((p) => !p.data.roles.includes('guardian'));
      const push = <K, V>(m: Map<K, V[]>, k: K, v: V) => {
        const xs = m.get(k);
        if (xs) xs.push(v);
        else m.set(k, [v]);
      };
      const usersOfSchool = new Map<string, { id: string }[]>();
      for (const p of users) for (const k of new Set(p.data.orgKeys ?? [])) push(usersOfSchool, k, { id: graphId('person', p.key) });
      const classesOfSchool = new Map<string, { id: string }[]>();
      for (const c of ds.list('class')) if (c.data.schoolKey) push(classesOfSchool, c.data.schoolKey, { id: graphId('class', c.key) });
      const enrollmentsOfClass = new Map<string, DatasetRow<'enrollment'>[]>();
      for (const e of ds.list('enrollment')) push(enrollmentsOfClass, e.data.classKey, e);
      return {
        schools: this.renderSchools(),
        users,
        usersById: new Map(users.map((p) => [graphId('person', p.key), p])),
        usersOfSchool,
        classesById: new Map(ds.list('class').map((c) => [graphId('class', c.key), c])),
        classesOfSchool,
        enrollmentsOfClass,
        changed: new Map(),
      };
    });
  }

  private schoolRows() {
    return this.ds.list('org').filter((o) => o.data.type === 'school');
  }
  schoolKey(id: string) {
    return this.schoolRows().find((s) => graphId('org', s.key) === id)?.key;
  }
  schools() {
    return this.ix().schools;
  }
  private renderSchools() {
    return this.schoolRows().map((s) => ({
      '@odata.type': '#microsoft.graph.educationSchool', id: graphId('org', s.key), displayName: s.data.name, externalId: s.data.sisId ?? null,
      schoolNumber: s.data.schoolNumber ?? null, lowestGrade: s.data.lowGrade ?? null, highestGrade: s.data.highGrade ?? null, phone: s.data.phone ?? null,
      address: { street: s.data.address?.street ?? null, city: s.data.address?.city ?? null, state: s.data.address?.state ?? null, postalCode: s.data.address?.postalCode ?? null, countryOrRegion: s.data.address?.country ?? null },
      externalSource: 'sis',
    }));
  }
  /** Education users are students and teachers (and staff as primaryRole none); guardians are not. */
  userRows() {
    return this.ix().users;
  }
  userById(id: string) {
    return this.ix().usersById.get(id);
  }
  user(p: DatasetRow<'person'>) {
    const d = this.ds.get('demographics', p.key)?.data;
    const student = p.data.roles.includes('student');
    return {
      '@odata.type': '#microsoft.graph.educationUser', id: graphId('person', p.key), displayName: `${p.data.givenName} ${p.data.familyName}`,
      givenName: p.data.givenName, surname: p.data.familyName, middleName: p.data.middleName ?? null, mail: p.data.email ?? null,
      userPrincipalName: p.data.email ?? `${p.data.username}@rostergate-demo.example`, mobilePhone: null, accountEnabled: p.data.enabled ?? true,
      primaryRole: student ? 'student' : p.data.roles.includes('teacher') ? 'teacher' : 'none', externalSource: 'sis',
      student: student
        ? {
            externalId: p.data.sisId ?? null, studentNumber: p.data.studentNumber ?? null, grade: p.data.grades?.[0] ?? null, graduationYear: p.data.graduationYear ?? null,
            birthDate: d?.birthDate ? (this.opts.birthDateAsTimestamp ? `${d.birthDate}T00:00:00Z` : d.birthDate) : null, gender: d?.sex === 'unspecified' ? null : d?.sex ?? null,
          }
        : null,
      teacher: p.data.roles.includes('teacher') ? { externalId: p.data.sisId ?? null, teacherNumber: p.data.teacherNumber ?? null } : null,
    };
  }
  usersOfSchool(school: string) {
    return this.ix().usersOfSchool.get(school) ?? [];
  }
  schoolsOfUser(id: string) {
    const p = this.userById(id);
    return (p?.data.orgKeys ?? []).filter((k) => this.ds.get('org', k)?.data.type === 'school').map((k) => this.schools().find((s) => s.id === graphId('org', k))!).filter(Boolean);
  }
  cls(c: DatasetRow<'class'>) {
    const course = c.data.courseKey ? this.ds.get('course', c.data.courseKey) : undefined;
    const term = c.data.termKeys?.[0] ? this.ds.get('academicSession', c.data.termKeys[0]) : undefined;
    return {
      '@odata.type': '#microsoft.graph.educationClass', id: graphId('class', c.key), displayName: c.data.title, classCode: c.data.classCode ?? null,
      externalId: c.key, grade: c.data.grades?.[0] ?? null, mailNickname: c.key.replace(/[^A-Za-z0-9]/g, ''), externalSource: 'sis',
      term: term ? { displayName: term.data.title, startDate: term.data.startDate ?? null, endDate: term.data.endDate ?? null, externalId: term.key } : null,
      course: course ? { displayName: course.data.title, courseNumber: course.data.courseCode ?? null, externalId: course.key, subject: course.data.subjects?.[0] ?? null, description: null } : null,
    };
  }
  classRows() {
    return this.ds.list('class');
  }
  classesOfSchool(school: string) {
    return this.ix().classesOfSchool.get(school) ?? [];
  }
  ofClass(id: string, what: 'members' | 'teachers' | 'schools') {
    const c = this.ix().classesById.get(id);
    if (!c) return [];
    if (what === 'schools') return this.schools().filter((s) => s.id === graphId('org', c.data.schoolKey ?? ''));
    const enr = (this.ix().enrollmentsOfClass.get(c.key) ?? []).filter((e) => what === 'members' || e.data.role === 'teacher');
    return enr.map((e) => ({ '@odata.type': '#microsoft.graph.educationUser', id: graphId('person', e.data.personKey) }));
  }
  /** A delta round's changes, worked out once per token and dataset version (its pages share them). */
  private changedOnce(id: string, make: () => Record<string, unknown>[]) {
    const cache = this.ix().changed;
    let out = cache.get(id);
    if (!out) {
      if (cache.size >= 32) cache.clear();
      cache.set(id, (out = make()));
    }
    return out;
  }
  changedUsers(since: number) {
    return this.changedOnce(`users>${since}`, () => {
      const out = new Map<string, Record<string, unknown>>();
      for (const e of this.ds.changesSince(since)) {
        const key = e.type === 'person' ? e.key : e.type === 'demographics' ? this.ds.getWithDeleted('demographics', e.key)?.data.personKey : undefined;
        if (!key) continue;
        const row = this.ds.getWithDeleted('person', key);
        if (!row || row.data.roles.includes('guardian')) continue;
        const id = graphId('person', key);
        if (row.deletedAt) out.set(id, { id, '@removed': { reason: 'deleted' } });
        else if (this.opts.partialDeltaItems) {
          const u = this.user(row);
          out.set(id, { '@odata.type': u['@odata.type'], id, displayName: u.displayName, givenName: u.givenName, surname: u.surname });
        } else out.set(id, this.user(row));
      }
      return [...out.values()];
    });
  }
  changedClasses(since: number) {
    return this.changedOnce(`classes>${since}`, () => {
      const out = new Map<string, Record<string, unknown>>();
      for (const e of this.ds.changesSince(since)) {
        const key = e.type === 'class' ? e.key : e.type === 'enrollment' ? this.ds.getWithDeleted('enrollment', e.key)?.data.classKey : undefined;
        if (!key) continue;
        const row = this.ds.get('class', key);
        // As documented: class delta does not include deleted classes.
        if (row) out.set(graphId('class', key), this.cls(row));
      }
      return [...out.values()];
    });
  }
}

export const graphSandboxApp = graphSandbox();
