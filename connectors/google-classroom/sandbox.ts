/**
 * Google Classroom sandbox: a local emulator of Google's OAuth token endpoint for service accounts
 * (it verifies the RS256 JWT against the demo service account's public key, the audience, the
 * one-hour lifetime, the scopes and the impersonated admin) and of Classroom v1: courses (newest
 * first, in every course state, filtered by courseStates with Google's default that leaves out
 * SUSPENDED, pageToken), students and teachers (30 per page unless asked), user profiles
 * and guardians, with Google's {error:{code,message,status}} bodies.
 */
import { generateKeyPairSync, randomBytes, type KeyPairKeyObjectResult } from 'node:crypto';
import { jwtVerify } from 'jose';
import type { DatasetRow, DatasetView } from '../dataset-view.ts';
import { bearer, perVersion, renderPage, vendorId, type SandboxApp, type SandboxRequest, type SandboxResponse } from '../sandbox-kit.ts';
import { COURSE_STATES, type ServiceAccountKey } from './config.ts';

export const GOOGLE_SANDBOX_ADMIN = 'admin@rostergate-demo.example';
export const googleId = (key: string) => vendorId('google', key, 'digits21');

// The demo service account's key pair, made once per process when first needed: the sandbox and
// the demo config of that process share it. It signs nothing but sandbox tokens. Not at import:
// every command imports the connectors, and an RSA key costs tens to hundreds of milliseconds of
// CPU that a `sync` or `serve` without the Google sandbox would pay for nothing.
let madePair: KeyPairKeyObjectResult | undefined;
const pair = (): KeyPairKeyObjectResult => (madePair ??= generateKeyPairSync('rsa', { modulusLength: 2048 }));
const CLIENT_EMAIL = 'rostergate-demo@rostergate-demo.iam.gserviceaccount.example';

/** The demo service account key JSON (what Google's console downloads), token_uri set per sandbox. */
export function sandboxServiceAccountKey(tokenUri: string): ServiceAccountKey {
  return {
    type: 'service_account', client_email: CLIENT_EMAIL, private_key_id: 'demo-key-1', token_uri: tokenUri,
    private_key: pair().privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(),
  };
}

const gError = (code: number, status: string, message: string): SandboxResponse => ({ status: code, body: { error: { code, message, status } } });

export interface GoogleSandboxOptions {
  /** Refuse guardians (as for a domain without the guardian link grant). */
  guardiansForbidden?: boolean;
  /** Leave the inline profile out of every third roster entry and guardian (clients then ask userProfiles.get). */
  omitSomeProfiles?: boolean;
  /** Classroom data access is off for the impersonated admin: every API call is 403 @ClassroomApiDisabled. */
  apiDisabled?: boolean;
  /** The domain's admin has removed the service account's domain-wide delegation (or never granted the scopes). */
  delegationRevoked?: boolean;
  /** The state of each course, by class key (default: `defaultCourseState` of its id). Tests set it. */
  courseState?: (classKey: string) => CourseState;
}

export type CourseState = (typeof COURSE_STATES)[number];
/** What courses.list returns without courseStates (discovery document: every state but SUSPENDED). */
const LIST_DEFAULT_STATES: readonly string[] = ['ACTIVE', 'ARCHIVED', 'PROVISIONED', 'DECLINED'];

/**
 * A real domain holds courses in every state (last year's archived, new ones still provisioned):
 * the last digit of the course id picks one, stably, so the demo has some of each.
 */
export function defaultCourseState(courseId: string): CourseState {
  return ({ '0': 'ARCHIVED', '1': 'PROVISIONED', '2': 'DECLINED', '3': 'SUSPENDED' } as Record<string, CourseState>)[courseId.slice(-1)] ?? 'ACTIVE';
}

export function googleSandbox(options: GoogleSandboxOptions = {}): SandboxApp {
  return {
    name: 'Google Classroom API v1 (sandbox)',
    prefix: '/google',
    create({ dataset, baseUrl }) {
      const tokens = new Set<string>();
      const tokenUrl = `${baseUrl}/token`;
      const view = new ClassroomView(dataset, !!options.omitSomeProfiles, options.courseState);
      return {
        // Injected faults answer as Google does: 429 RESOURCE_EXHAUSTED, and the per-user rate limit
        // Google also sends as 403 (older error format, reason userRateLimitExceeded).
        errorBody: (status) =>
          status === 429
            ? gError(429, 'RESOURCE_EXHAUSTED', 'Quota exceeded.').body
            : status === 403
              ? { error: { code: 403, message: 'User Rate Limit Exceeded', errors: [{ domain: 'usageLimits', reason: 'userRateLimitExceeded', message: 'User Rate Limit Exceeded' }] } }
              : gError(status, 'UNAVAILABLE', 'The service is currently unavailable.').body,
        async handle(req: SandboxRequest): Promise<SandboxResponse> {
          if (req.path === '/token' || req.path === '/oauth2/v4/token') {
            const form = new URLSearchParams(req.body);
            if (form.get('grant_type') !== 'urn:ietf:params:oauth:grant-type:jwt-bearer') return { status: 400, body: { error: 'unsupported_grant_type', error_description: 'Invalid grant_type.' } };
            let claims: Record<string, unknown>;
            try {
              ({ payload: claims } = await jwtVerify(form.get('assertion') ?? '', pair().publicKey, { algorithms: ['RS256'], audience: [tokenUrl, `${baseUrl}/oauth2/v4/token`] }));
            } catch {
              return { status: 400, body: { error: 'invalid_grant', error_description: 'Invalid JWT Signature.' } };
            }
            if (claims.iss !== CLIENT_EMAIL) return { status: 401, body: { error: 'unauthorized_client', error_description: 'Client is unauthorized to retrieve access tokens using this method.' } };
            if (typeof claims.exp !== 'number' || typeof claims.iat !== 'number' || claims.exp - claims.iat > 3600) return { status: 400, body: { error: 'invalid_grant', error_description: 'Invalid JWT: expiration too far in the future.' } };
            if (claims.sub !== GOOGLE_SANDBOX_ADMIN) return { status: 400, body: { error: 'invalid_grant', error_description: 'Invalid email or User ID' } };
            const scopes = String(claims.scope ?? '').split(' ');
            if (options.delegationRevoked || (!scopes.includes('https://www.googleapis.com/auth/classroom.rosters.readonly') || !scopes.includes('https://www.googleapis.com/auth/classroom.courses.readonly'))) {
              return { status: 401, body: { error: 'unauthorized_client', error_description: 'Client is unauthorized for these scopes.' } };
            }
            const t = `ya29.${randomBytes(24).toString('base64url')}`;
            tokens.add(t);
            return { status: 200, body: { access_token: t, token_type: 'Bearer', expires_in: 3599 } };
          }
          const t = bearer(req.headers);
          if (!t || !tokens.has(t)) return gError(401, 'UNAUTHENTICATED', 'Request had invalid authentication credentials. Expected OAuth 2 access token.');
          if (options.apiDisabled) return gError(403, 'PERMISSION_DENIED', '@ClassroomApiDisabled The user is not permitted to access the Classroom API.');
          const q = req.url.searchParams;
          // The page token is an offset into a listing kept per dataset version; only the page is rendered.
          const page = <T,>(items: readonly T[], key: string, dflt: number, render: (x: T, i: number) => unknown = (x) => x): SandboxResponse => {
            const size = Math.min(1000, Number(q.get('pageSize') || 0) || dflt);
            const from = q.get('pageToken') ? Number(Buffer.from(q.get('pageToken')!, 'base64url').toString()) : 0;
            if (!Number.isInteger(from) || from < 0) return gError(400, 'INVALID_ARGUMENT', 'Invalid page token.');
            const slice = renderPage(items.slice(from, from + size), render, from);
            const next = from + size < items.length ? Buffer.from(String(from + size)).toString('base64url') : undefined;
            return { status: 200, body: { [key]: slice, ...(next ? { nextPageToken: next } : {}) } };
          };
          const v = view;
          let m: RegExpExecArray | null;
          if (req.path === '/v1/courses') {
            const asked = q.getAll('courseStates');
            const bad = asked.find((x) => !(COURSE_STATES as readonly string[]).includes(x));
            if (bad !== undefined) return gError(400, 'INVALID_ARGUMENT', `Invalid value at 'course_states' (type.googleapis.com/google.classroom.v1.Course.CourseState), "${bad.replace(/[^A-Z_]/gi, '')}"`);
            const states = asked.length ? asked : LIST_DEFAULT_STATES;
            return page(v.courses(states), 'courses', 100);
          }
          if ((m = /^\/v1\/courses\/(\d+)\/(students|teachers)$/.exec(req.path))) {
            const c = v.classRow(m[1]!);
            if (!c) return gError(404, 'NOT_FOUND', 'Requested entity was not found.');
            return page(v.roster(c, m[2] === 'students' ? 'student' : 'teacher'), m[2]!, 30, (e, i) => v.rosterEntry(c, e, i));
          }
          if ((m = /^\/v1\/userProfiles\/([^/]+)\/guardians$/.exec(req.path))) {
            if (options.guardiansForbidden) return gError(403, 'PERMISSION_DENIED', '@CannotAccessGuardians The caller does not have permission.');
            return page(v.guardians(m[1] === '-' ? undefined : m[1]), 'guardians', 100, (g, i) => v.guardian(g, i));
          }
          if ((m = /^\/v1\/userProfiles\/([^/]+)$/.exec(req.path))) {
            const p = v.person(m[1]!);
            return p ? { status: 200, body: v.profile(p) } : gError(404, 'NOT_FOUND', 'Requested entity was not found.');
          }
          return gError(404, 'NOT_FOUND', 'Method not found.');
        },
      };
    },
  };
}

/** The dataset as Classroom renders it; listings and lookups by Google id kept per dataset version. */
class ClassroomView {
  private readonly ix: () => {
    courses: ReturnType<ClassroomView['renderCourses']>;
    byStates: Map<string, ReturnType<ClassroomView['renderCourses']>>;
    classById: Map<string, DatasetRow<'class'>>;
    personById: Map<string, DatasetRow<'person'>>;
    roster: Map<string, DatasetRow<'person'>[]>;
    guardianships: readonly DatasetRow<'guardianship'>[];
    guardiansOf: Map<string, DatasetRow<'guardianship'>[]>;
  };

  constructor(
    private readonly ds: DatasetView,
    private readonly omitSomeProfiles = false,
    private readonly stateOf: (classKey: string) => CourseState = (k) => defaultCourseState(googleId(k)),
  ) {
    this.ix = perVersion(ds, () => {
      const push = <V,>(m: Map<string, V[]>, k: string, v: V) => {
        const xs = m.get(k);
        if (xs) xs.push(v);
        else m.set(k, [v]);
      };
      // A course's students and teachers (enrollments whose person exists), by class key and role.
      const roster = new Map<string, DatasetRow<'person'>[]>();
      for (const e of ds.list('enrollment')) {
        const p = ds.get('person', e.data.personKey);
        if (p) push(roster, `${e.data.classKey}/${e.data.role}`, p);
      }
      const guardianships = ds.list('guardianship').filter((g) => ds.get('person', g.data.guardianKey));
      const guardiansOf = new Map<string, DatasetRow<'guardianship'>[]>();
      for (const g of guardianships) push(guardiansOf, googleId(g.data.studentKey), g);
      return {
        courses: this.renderCourses(),
        byStates: new Map(),
        classById: new Map(ds.list('class').map((c) => [googleId(c.key), c])),
        personById: new Map(ds.list('person').map((p) => [googleId(p.key), p])),
        roster,
        guardianships,
        guardiansOf,
      };
    });
  }
  /** With `omitSomeProfiles`, every third entry of a list comes without its profile. */
  private withProfile<T extends Record<string, unknown>>(entry: T, field: string, i: number): T {
    return this.omitSomeProfiles && i % 3 === 0 ? (Object.fromEntries(Object.entries(entry).filter(([k]) => k !== field)) as T) : entry;
  }
  classRow(id: string) {
    return this.ix().classById.get(id);
  }
  person(id: string) {
    return this.ix().personById.get(id);
  }
  profile(p: DatasetRow<'person'>) {
    return {
      id: googleId(p.key), name: { givenName: p.data.givenName, familyName: p.data.familyName, fullName: `${p.data.givenName} ${p.data.familyName}` },
      emailAddress: p.data.email ?? '', verifiedTeacher: p.data.roles.includes('teacher'), permissions: p.data.roles.includes('teacher') ? [{ permission: 'CREATE_COURSE' }] : [],
    };
  }
  /** Courses in the given states, newest first. */
  courses(states: readonly string[]) {
    const ix = this.ix();
    const id = [...states].sort().join(',');
    let out = ix.byStates.get(id);
    if (!out) ix.byStates.set(id, (out = ix.courses.filter((c) => states.includes(c.courseState))));
    return out;
  }
  private renderCourses() {
    const teachers = new Map<string, DatasetRow<'enrollment'>[]>();
    for (const e of this.ds.list('enrollment')) {
      if (e.data.role !== 'teacher') continue;
      const xs = teachers.get(e.data.classKey);
      if (xs) xs.push(e);
      else teachers.set(e.data.classKey, [e]);
    }
    return this.ds
      .list('class')
      .map((c) => {
        const ts = teachers.get(c.key) ?? [];
        const owner = ts.find((e) => e.data.primary) ?? ts[0];
        return {
          id: googleId(c.key), name: c.data.title, section: c.data.classCode ?? '', room: c.data.location ?? '', ownerId: owner ? googleId(owner.data.personKey) : undefined,
          creationTime: c.created, updateTime: c.lastModified, courseState: this.stateOf(c.key), enrollmentCode: c.key.replace(/\W/g, '').slice(-6), guardiansEnabled: true,
        };
      })
      .sort((a, b) => (a.creationTime < b.creationTime ? 1 : a.creationTime > b.creationTime ? -1 : a.id < b.id ? 1 : -1)); // newest first
  }
  roster(c: DatasetRow<'class'>, role: 'student' | 'teacher') {
    return this.ix().roster.get(`${c.key}/${role}`) ?? [];
  }
  rosterEntry(c: DatasetRow<'class'>, p: DatasetRow<'person'>, i: number) {
    return this.withProfile({ courseId: googleId(c.key), userId: googleId(p.key), profile: this.profile(p) }, 'profile', i);
  }
  guardians(studentId?: string) {
    return studentId === undefined ? this.ix().guardianships : this.ix().guardiansOf.get(studentId) ?? [];
  }
  guardian(g: DatasetRow<'guardianship'>, i: number) {
    const p = this.ds.get('person', g.data.guardianKey)!;
    return this.withProfile({ studentId: googleId(g.data.studentKey), guardianId: googleId(p.key), guardianProfile: this.profile(p), invitedEmailAddress: p.data.email ?? '' }, 'guardianProfile', i);
  }
}

export const googleSandboxApp = googleSandbox();
