/**
 * OneRoster sandbox: a local emulator of OneRoster REST as ClassLink's Roster Server serves it —
 * 1.1 at /ims/oneroster/v1p1 signed with OAuth 1.0a HMAC-SHA256 (verified exactly: signature,
 * timestamp window, nonce reuse), 1.2 at /ims/oneroster/rostering/v1p2 with OAuth 2 client
 * credentials from /token. limit/offset paging with X-Total-Count, `filter=dateLastModified>'…'`
 * (deleted records then appear with status tobedeleted), envelope keys per resource, imsx error
 * bodies, and ClassLink's 1.1 quirks (enabledUser as a string, empty strings, periods as []).
 */
import { randomBytes } from 'node:crypto';
import type { DatasetRow, DatasetView } from '../dataset-view.ts';
import type { EntityType } from '../../src/model/records.ts';
import { basicAuth, bearer, perVersion, renderPage, sandboxWork, seek, type SandboxApp, type SandboxRequest, type SandboxResponse } from '../sandbox-kit.ts';
import { hmacSignature, signatureBase } from './auth.ts';
import { ENVELOPE } from './wire.ts';

export const ONEROSTER_SANDBOX_CLIENT_ID = 'demo-oneroster-key';
export const ONEROSTER_SANDBOX_CLIENT_SECRET = 'demo-oneroster-secret';
export const V11 = '/ims/oneroster/v1p1';
export const V12 = '/ims/oneroster/rostering/v1p2';

const ROLE_12: Record<string, string> = { student: 'student', teacher: 'teacher', staff: 'aide', administrator: 'districtAdministrator', guardian: 'guardian' };
const ROLE_11: Record<string, string> = { student: 'student', teacher: 'teacher', staff: 'aide', administrator: 'administrator', guardian: 'guardian' };

function imsx(status: number, major: string, minor: string, description: string): SandboxResponse {
  return {
    status,
    body: { imsx_codeMajor: major, imsx_severity: 'error', imsx_description: description, imsx_CodeMinor: { imsx_codeMinorField: [{ imsx_codeMinorFieldName: 'TargetEndSystem', imsx_codeMinorFieldValue: minor }] } },
  };
}

/** What rendering needs from the whole district, derived once per dataset version. */
interface RenderContext {
  touched: Map<string, string>;
  guardiansOf: Map<string, string[]>;
  studentsOf: Map<string, string[]>;
  districtKey: string;
}

function renderContext(ds: DatasetView): RenderContext {
  const guardiansOf = new Map<string, string[]>();
  const studentsOf = new Map<string, string[]>();
  const push = (m: Map<string, string[]>, k: string, v: string) => {
    const xs = m.get(k);
    if (xs) xs.push(v);
    else m.set(k, [v]);
  };
  for (const g of ds.list('guardianship')) {
    push(guardiansOf, g.data.studentKey, g.data.guardianKey);
    push(studentsOf, g.data.guardianKey, g.data.studentKey);
  }
  return { touched: agentsTouched(ds), guardiansOf, studentsOf, districtKey: ds.list('org').find((o) => o.data.type === 'district')?.key ?? '' };
}

/** Renders dataset rows as OneRoster objects of one version. */
function render(cx: RenderContext, baseUrl: string, v12: boolean) {
  const ref = (type: string, path: string, key?: string) => (key ? { href: `${baseUrl}${v12 ? V12 : V11}/${path}/${key}`, sourcedId: key, type } : undefined);
  const b = (x: boolean | undefined) => (x === undefined ? undefined : v12 ? String(x) : x);
  const { touched, guardiansOf, studentsOf, districtKey } = cx;
  const base = (r: DatasetRow) => ({ sourcedId: r.key, status: r.deletedAt ? 'tobedeleted' : 'active', dateLastModified: lastModifiedOf(r, touched) });
  const renderers: Record<string, (r: DatasetRow) => Record<string, unknown>> = {
    orgs: (r) => {
      const o = (r as DatasetRow<'org'>).data;
      return { ...base(r), name: o.name, type: o.type, identifier: o.identifier ?? '', parent: ref('org', 'orgs', o.parentKey) ?? null };
    },
    academicSessions: (r) => {
      const a = (r as DatasetRow<'academicSession'>).data;
      return { ...base(r), title: a.title, type: a.type, startDate: a.startDate ?? '', endDate: a.endDate ?? '', parent: ref('academicSession', 'academicSessions', a.parentKey) ?? null, schoolYear: a.schoolYear ?? '' };
    },
    courses: (r) => {
      const c = (r as DatasetRow<'course'>).data;
      return { ...base(r), title: c.title, courseCode: c.courseCode ?? '', grades: c.grades ?? [], subjects: c.subjects ?? [], org: ref('org', 'orgs', c.orgKey) ?? null, schoolYear: ref('academicSession', 'academicSessions', c.schoolYearKey) ?? null };
    },
    classes: (r) => {
      const c = (r as DatasetRow<'class'>).data;
      return {
        ...base(r), title: c.title, classCode: c.classCode ?? '', classType: c.classType ?? 'scheduled', location: c.location ?? '', grades: c.grades ?? [],
        subjects: c.subjects ?? [], course: ref('course', 'courses', c.courseKey), school: ref('org', 'schools', c.schoolKey),
        terms: (c.termKeys ?? []).map((k) => ref('academicSession', 'academicSessions', k)), periods: c.periods ?? [],
      };
    },
    users: (r) => {
      const p = (r as DatasetRow<'person'>).data;
      const agents = p.roles.includes('student') ? guardiansOf.get(r.key) ?? [] : p.roles.includes('guardian') ? studentsOf.get(r.key) ?? [] : [];
      const common = {
        ...base(r), username: p.username ?? '', enabledUser: 'true', givenName: p.givenName, familyName: p.familyName, middleName: p.middleName ?? '',
        identifier: p.sisId ?? '', email: p.email ?? '', sms: '', phone: p.phone ?? '', grades: p.grades ?? [],
        userIds: p.stateId ? [{ type: 'StateID', identifier: p.stateId }] : [], agents: agents.map((k) => ref('user', 'users', k)), password: '',
      };
      if (!v12) return { ...common, role: ROLE_11[p.roles[0] ?? 'student'], orgs: (p.orgKeys ?? []).map((k) => ref('org', 'orgs', k)) };
      return {
        ...common, preferredFirstName: p.preferredGivenName ?? '', userMasterIdentifier: p.sisId ?? '',
        // 1.2 requires at least one role with an org: people without one (guardians) hold theirs at the district.
        roles: (p.orgKeys?.length ? p.orgKeys : [districtKey]).flatMap((k) => p.roles.map((role, i) => ({ roleType: k === p.primaryOrgKey && i === 0 ? 'primary' : 'secondary', role: ROLE_12[role], org: ref('org', 'orgs', k) }))),
        primaryOrg: ref('org', 'orgs', p.primaryOrgKey) ?? null,
      };
    },
    demographics: (r) => {
      const d = (r as DatasetRow<'demographics'>).data;
      return {
        ...base(r), birthDate: d.birthDate ?? '', sex: d.sex === 'male' || d.sex === 'female' || v12 ? d.sex ?? '' : '',
        americanIndianOrAlaskaNative: b(d.americanIndianOrAlaskaNative ?? false), asian: b(d.asian ?? false), blackOrAfricanAmerican: b(d.blackOrAfricanAmerican ?? false),
        nativeHawaiianOrOtherPacificIslander: b(d.nativeHawaiianOrOtherPacificIslander ?? false), white: b(d.white ?? false),
        demographicRaceTwoOrMoreRaces: b(d.twoOrMoreRaces ?? false), hispanicOrLatinoEthnicity: b(d.hispanicOrLatino ?? false),
        countryOfBirthCode: d.countryOfBirth ?? '', stateOfBirthAbbreviation: '', cityOfBirth: '', publicSchoolResidenceStatus: '',
      };
    },
    enrollments: (r) => {
      const e = (r as DatasetRow<'enrollment'>).data;
      return {
        ...base(r), user: ref('user', 'users', e.personKey), class: ref('class', 'classes', e.classKey), school: ref('org', 'schools', e.schoolKey),
        role: e.role, primary: b(e.primary ?? false), beginDate: e.beginDate ?? '', endDate: e.endDate ?? '',
      };
    },
  };
  return renderers;
}

/**
 * When each person's `agents` last changed. A user's agents are part of the user record, so a
 * guardianship that starts or ends changes both users' dateLastModified, as a SIS would report it.
 */
function agentsTouched(ds: DatasetView): Map<string, string> {
  const out = new Map<string, string>();
  for (const g of ds.listWithDeleted('guardianship')) {
    const at = g.deletedAt ?? g.lastModified;
    for (const k of [g.data.guardianKey, g.data.studentKey]) if (at > (out.get(k) ?? '')) out.set(k, at);
  }
  return out;
}

function lastModifiedOf(r: DatasetRow, touched: Map<string, string>): string {
  const t = r.type === 'person' ? touched.get(r.key) : undefined;
  return t && t > r.lastModified ? t : r.lastModified;
}

const TYPE_OF: Record<string, EntityType> = {
  orgs: 'org', academicSessions: 'academicSession', courses: 'course', users: 'person', demographics: 'demographics', classes: 'class', enrollments: 'enrollment',
};

const SINGLE: Record<string, string> = {
  orgs: 'org', academicSessions: 'academicSession', courses: 'course', users: 'user', demographics: 'demographics', classes: 'class', enrollments: 'enrollment',
};

export interface OneRosterSandboxOptions {
  /** Ignore offset (a broken server), to test paging-loop detection. */
  ignoreOffset?: boolean;
  /** Leave one record out of every listing while counting it in X-Total-Count (a server that skips). */
  skipOne?: boolean;
}

export function oneRosterSandbox(options: OneRosterSandboxOptions = {}): SandboxApp {
  return {
    name: 'OneRoster 1.1/1.2 REST, ClassLink style (sandbox)',
    prefix: '/oneroster',
    create({ dataset, baseUrl }) {
      const tokens = new Map<string, number>();
      // Everything a page needs from the whole district, once per dataset version: rendering
      // context, and per resource its records by modification time (for the dateLastModified
      // filter) plus the filtered listings already asked for. Listings come from the dataset in key order.
      type Indexes = {
        cx: RenderContext;
        renderers: { v11: ReturnType<typeof render>; v12: ReturnType<typeof render> };
        byModified: Map<EntityType, { rows: DatasetRow[]; times: string[] }>;
        filtered: Map<string, readonly DatasetRow[]>;
      };
      const byModifiedOf = (ix: Indexes, type: EntityType) => {
        let m = ix.byModified.get(type);
        if (!m) {
          const sorted = [...dataset.listWithDeleted(type)].map((r) => ({ r, at: lastModifiedOf(r, ix.cx.touched) })).sort((a, b) => (a.at < b.at ? -1 : a.at > b.at ? 1 : 0));
          ix.byModified.set(type, (m = { rows: sorted.map((x) => x.r), times: sorted.map((x) => x.at) }));
          sandboxWork.indexed += sorted.length;
        }
        return m;
      };
      const indexes = perVersion(
        dataset,
        (): Indexes => {
          const cx = renderContext(dataset);
          return {
            cx,
            renderers: { v11: render(cx, baseUrl, false), v12: render(cx, baseUrl, true) },
            byModified: new Map(),
            filtered: new Map(),
          };
        },
        (ix) => {
          for (const type of new Set(Object.values(TYPE_OF))) byModifiedOf(ix, type);
        },
      );
      const changedSince = (type: EntityType, since: string): readonly DatasetRow[] => {
        const ix = indexes();
        const id = `${type}>${since}`;
        let rows = ix.filtered.get(id);
        if (!rows) {
          const m = byModifiedOf(ix, type);
          // The changed records, back in key order: the listing order without a filter.
          rows = m.rows.slice(seek(m.times, since)).sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
          if (ix.filtered.size >= 32) ix.filtered.clear();
          ix.filtered.set(id, rows);
        }
        return rows;
      };
      const nonces = new Map<string, number>();
      const checkOAuth1 = (req: SandboxRequest): string | undefined => {
        const h = req.headers.authorization;
        if (!h?.startsWith('OAuth ')) return 'missing OAuth authorization';
        const params = Object.fromEntries([...h.slice(6).matchAll(/(\w+)="([^"]*)"/g)].map((m) => [m[1]!, decodeURIComponent(m[2]!)]));
        if (params.oauth_consumer_key !== ONEROSTER_SANDBOX_CLIENT_ID) return 'unknown consumer key';
        if (params.oauth_signature_method !== 'HMAC-SHA256') return 'signature method must be HMAC-SHA256';
        const ts = Number(params.oauth_timestamp);
        if (!Number.isFinite(ts) || Math.abs(Date.now() / 1000 - ts) > 300) return 'timestamp outside the 5-minute window';
        const nonce = params.oauth_nonce ?? '';
        if (!nonce || nonces.has(nonce)) return 'nonce missing or reused';
        nonces.set(nonce, ts);
        if (nonces.size > 100_000) nonces.clear();
        const { oauth_signature: sig, ...rest } = params;
        const expected = hmacSignature(signatureBase(req.method, req.url, rest), ONEROSTER_SANDBOX_CLIENT_SECRET);
        return sig === expected ? undefined : 'signature does not match';
      };
      return {
        errorBody: (status) => imsx(status, 'failure', status === 429 ? 'server_busy' : 'internal_server_error', 'injected fault').body,
        handle(req: SandboxRequest): SandboxResponse {
          if (req.path === '/token') {
            const creds = basicAuth(req.headers);
            if (req.method !== 'POST') return { status: 405, body: { error: 'invalid_request' } };
            if (!creds || creds[0] !== ONEROSTER_SANDBOX_CLIENT_ID || creds[1] !== ONEROSTER_SANDBOX_CLIENT_SECRET) return { status: 401, body: { error: 'invalid_client' } };
            if (new URLSearchParams(req.body).get('grant_type') !== 'client_credentials') return { status: 400, body: { error: 'unsupported_grant_type' } };
            const t = randomBytes(24).toString('base64url');
            tokens.set(t, Date.now() + 3600_000);
            return { status: 200, body: { access_token: t, token_type: 'bearer', expires_in: 3600, scope: new URLSearchParams(req.body).get('scope') ?? '' } };
          }
          const v12 = req.path.startsWith(`${V12}/`);
          if (!v12 && !req.path.startsWith(`${V11}/`)) return imsx(404, 'failure', 'unknownobject', 'unknown path');
          if (v12) {
            const t = bearer(req.headers);
            if (!t || !tokens.has(t) || tokens.get(t)! < Date.now()) return imsx(401, 'failure', 'unauthorisedrequest', 'invalid or expired token');
          } else {
            const problem = checkOAuth1(req);
            if (problem) return imsx(401, 'failure', 'unauthorisedrequest', problem);
          }
          const rest = req.path.slice((v12 ? V12 : V11).length + 1).split('/');
          const resource = rest[0]!;
          const type = TYPE_OF[resource];
          if (!type) return imsx(404, 'failure', 'unknownobject', `unknown resource ${resource}`);
          const renderer = indexes().renderers[v12 ? 'v12' : 'v11'][resource]!;
          if (rest[1]) {
            const row = dataset.get(type, decodeURIComponent(rest[1]));
            if (!row) return imsx(404, 'failure', 'unknownobject', 'no such record');
            return { status: 200, body: { [SINGLE[resource]!]: renderer(row) } };
          }
          const q = req.url.searchParams;
          const limit = Number(q.get('limit') ?? 100);
          const offset = Number(q.get('offset') ?? 0);
          if (!Number.isInteger(limit) || limit < 1 || !Number.isInteger(offset) || offset < 0) return imsx(400, 'failure', 'invalid_selection_field', 'bad limit or offset');
          if (limit > 10_000) return imsx(413, 'failure', 'invalid_selection_field', 'limit above 10000');
          const filter = q.get('filter');
          let rows: readonly DatasetRow[] = dataset.list(type);
          if (filter) {
            const m = /^dateLastModified>'([^']+)'$/.exec(filter.trim());
            if (!m || Number.isNaN(Date.parse(m[1]!))) return imsx(400, 'failure', 'invalid_filter_field', 'only dateLastModified>\'ISO-8601\' is supported');
            rows = changedSince(type, new Date(m[1]!).toISOString());
          }
          const total = rows.length;
          const from = options.ignoreOffset ? 0 : offset;
          let page = rows.slice(from, from + limit);
          if (options.skipOne && total > 1) {
            // The listing without its middle record, paged by the same offsets.
            const mid = Math.floor(total / 2);
            page = rows.slice(from < mid ? from : from + 1, (from < mid ? from : from + 1) + limit + 1).filter((r) => r !== rows[mid]).slice(0, limit);
          }
          return { status: 200, headers: { 'x-total-count': String(total) }, body: { [ENVELOPE[resource]!]: renderPage(page, renderer) } };
        },
      };
    },
  };
}

export const oneRosterSandboxApp = oneRosterSandbox();
