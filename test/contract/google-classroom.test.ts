/**
 * Google Classroom connector ↔ sandbox: the connector suite (a full re-list each run), a roundtrip,
 * the sandbox against the Classroom discovery document, JWT grant failures, and guardians that the
 * domain does not grant.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readFileSync, writeFileSync, chmodSync } from 'node:fs';
import { join } from 'node:path';
import { generateKeyPairSync } from 'node:crypto';
import { RosterDataset } from '../../src/demo/dataset.ts';
import { startSandboxServer } from '../../connectors/sandbox-kit.ts';
import { googleClassroomDefinition, googleId, googleSandbox, sandboxServiceAccountKey, sandboxSourceConfig } from '../../connectors/google-classroom/index.ts';
import { collect, defineConnectorSuite, MiniStore, testHttp } from '../support/connector-suite.ts';
import { createLogger } from '../../src/log.ts';
import { externalPath, itExternal } from '../support/external.ts';
import { openTestStore, tempDir } from '../support/stores.ts';
import { syncSource } from '../../src/sync/runner.ts';
import { RostergateError } from '../../src/errors.ts';
import type { PersonData } from '../../src/model/records.ts';
import { request } from 'undici';
import { jwtBearer, loadServiceAccountKey, SCOPES } from '../../connectors/google-classroom/auth.ts';
import { COURSE_STATES } from '../../connectors/google-classroom/config.ts';

const log = createLogger({ level: 'silent' });

async function start(opts: Parameters<typeof googleSandbox>[0] = {}, extra: (base: string) => Record<string, unknown> = () => ({})) {
  const dataset = RosterDataset.generate({ students: 120, teachers: 8, classes: 16, schools: 2 });
  const sandbox = await startSandboxServer({ dataset, apps: [googleSandbox(opts)] });
  const make = () => {
    const base = sandbox.urlOf('/google');
    const cfg = googleClassroomDefinition.configSchema.parse({ id: 'classroom', ...sandboxSourceConfig(base), pageSize: 7, ...extra(base) });
    return googleClassroomDefinition.create(cfg, { http: testHttp('classroom'), log });
  };
  return { dataset, sandbox, make, close: () => sandbox.close() };
}

defineConnectorSuite({ name: 'google classroom', start, types: ['org', 'person', 'class', 'enrollment', 'guardianship'] });

describe('google classroom roundtrip', () => {
  let s: Awaited<ReturnType<typeof start>>;
  beforeAll(async () => {
    s = await start();
  });
  afterAll(() => s.close());

  it('gives back courses as classes of the placeholder school, people by email, rosters and guardians', async () => {
    const store = new MiniStore().apply(await collect(s.make(), null));
    expect(store.ofType('org')).toEqual([expect.objectContaining({ key: 'classroom:placeholder', data: { name: 'Google Classroom', type: 'school' } })]);
    expect(store.ofType('class')).toHaveLength(s.dataset.list('class').length);
    expect(store.ofType('enrollment')).toHaveLength(s.dataset.list('enrollment').length);
    expect(store.ofType('guardianship')).toHaveLength(s.dataset.list('guardianship').length);
    const st = s.dataset.list('person').find((p) => p.data.roles.includes('student'))!;
    const got = (store.records.get(`person/${googleId(st.key)}`) as { data: PersonData }).data;
    expect(got).toMatchObject({ givenName: st.data.givenName, familyName: st.data.familyName, email: st.data.email, roles: ['student'], orgKeys: ['classroom:placeholder'] });
    expect(got.sisId).toBeUndefined();
    const e = s.dataset.list('enrollment').find((x) => x.data.role === 'teacher' && x.data.primary)!;
    expect(store.records.get(`enrollment/${googleId(e.data.classKey)}:${googleId(e.data.personKey)}`)).toMatchObject({ data: { role: 'teacher', primary: true } });
  });

  it('the placeholder school is configurable: its key and name hold every class and person', async () => {
    const s2 = await start({}, () => ({ placeholderSchool: { key: 'gc:lincoln-high', name: 'Lincoln High (Classroom)' } }));
    try {
      const store = new MiniStore().apply(await collect(s2.make(), null));
      expect(store.ofType('org')).toEqual([expect.objectContaining({ key: 'gc:lincoln-high', data: { name: 'Lincoln High (Classroom)', type: 'school' } })]);
      expect(new Set(store.ofType('class').map((c) => c.data.schoolKey))).toEqual(new Set(['gc:lincoln-high']));
      const nonGuardians = store.ofType('person').filter((p) => !p.data.roles.includes('guardian'));
      expect(nonGuardians.every((p) => p.data.primaryOrgKey === 'gc:lincoln-high')).toBe(true);
    } finally {
      await s2.close();
    }
  });

  it('reads courses in every state, though courses.list leaves SUSPENDED out by default; courseStates narrows it', async () => {
    // One course in each state, in turn.
    const order: string[] = [];
    const stateOf = (k: string) => COURSE_STATES[order.indexOf(k) % COURSE_STATES.length]!;
    const s2 = await start({ courseState: stateOf });
    try {
      order.push(...s2.dataset.list('class').map((c) => c.key));
      const suspended = order.filter((k) => stateOf(k) === 'SUSPENDED');
      expect(suspended.length).toBeGreaterThan(0);
      // Google's default, as the sandbox answers it: without courseStates no SUSPENDED course is listed.
      const base = s2.sandbox.urlOf('/google');
      const cfg = googleClassroomDefinition.configSchema.parse({ id: 'x', ...sandboxSourceConfig(base) });
      const auth = {} as Record<string, string>;
      await jwtBearer(testHttp('x'), cfg, loadServiceAccountKey(cfg)).authorize({ method: 'GET', url: new URL(base), headers: auth });
      const listed = ((await (await request(`${base}/v1/courses?pageSize=1000`, { headers: auth })).body.json()) as { courses: { id: string }[] }).courses.map((c) => c.id);
      expect(listed).toHaveLength(order.length - suspended.length);
      for (const k of suspended) expect(listed).not.toContain(googleId(k));

      // The connector asks for every state: each course is a class, its roster read.
      const all = new MiniStore().apply(await collect(s2.make(), null));
      expect(all.ofType('class').map((c) => c.key).sort()).toEqual(order.map((k) => googleId(k)).sort());
      expect(all.ofType('enrollment')).toHaveLength(s2.dataset.list('enrollment').length);

      // Narrowed by config: only ACTIVE courses and their rosters.
      const active = order.filter((k) => stateOf(k) === 'ACTIVE');
      const narrowed = googleClassroomDefinition.create(
        googleClassroomDefinition.configSchema.parse({ id: 'classroom', ...sandboxSourceConfig(base), courseStates: ['ACTIVE'] }),
        { http: testHttp('classroom'), log },
      );
      const some = new MiniStore().apply(await collect(narrowed, null));
      expect(some.ofType('class').map((c) => c.key).sort()).toEqual(active.map((k) => googleId(k)).sort());
      expect(some.ofType('enrollment')).toHaveLength(s2.dataset.list('enrollment').filter((e) => active.includes(e.data.classKey)).length);
    } finally {
      await s2.close();
    }
  });

  it('skips guardians without failing when the domain does not grant them', async () => {
    const s2 = await start({ guardiansForbidden: true });
    try {
      const store = new MiniStore().apply(await collect(s2.make(), null));
      expect(store.ofType('guardianship')).toEqual([]);
      expect(store.ofType('class').length).toBeGreaterThan(0);
    } finally {
      await s2.close();
    }
  });
});

describe('google classroom without a delta API', () => {
  it('profiles that come without a name are read with userProfiles.get, once per user', async () => {
    const s = await start({ omitSomeProfiles: true });
    const plain = await start();
    try {
      const before = s.sandbox.faults.hits.length;
      const got = new MiniStore().apply(await collect(s.make(), null));
      const want = new MiniStore().apply(await collect(plain.make(), null));
      expect([...got.records.values()].sort((a, b) => (a.key < b.key ? -1 : 1))).toEqual([...want.records.values()].sort((a, b) => (a.key < b.key ? -1 : 1)));
      const lookups = s.sandbox.faults.hits.slice(before).filter((h) => /^\/google\/v1\/userProfiles\/\d+$/.test(h));
      expect(lookups.length).toBeGreaterThan(0);
      expect(new Set(lookups).size).toBe(lookups.length);
    } finally {
      await s.close();
      await plain.close();
    }
  });

  it('a guardian link to a student in no course brings the student from userProfiles.get', async () => {
    const s = await start();
    try {
      const g = s.dataset.list('guardianship')[0]!;
      for (const e of s.dataset.list('enrollment').filter((x) => x.data.personKey === g.data.studentKey)) s.dataset.remove('enrollment', e.key);
      const before = s.sandbox.faults.hits.length;
      const store = new MiniStore().apply(await collect(s.make(), null));
      expect(s.sandbox.faults.hits.slice(before)).toContain(`/google/v1/userProfiles/${googleId(g.data.studentKey)}`);
      const st = s.dataset.get('person', g.data.studentKey)!;
      expect(store.records.get(`person/${googleId(st.key)}`)).toMatchObject({ data: { givenName: st.data.givenName, email: st.data.email, roles: ['student'] } });
      expect(store.records.get(`guardianship/${googleId(g.data.guardianKey)}:${googleId(st.key)}`)).toBeDefined();
    } finally {
      await s.close();
    }
  });

  it('a re-list of an unchanged Classroom changes nothing in the store; a rename is one update', async () => {
    const s = await start();
    const store = await openTestStore('sqlite');
    try {
      const first = await syncSource(store, s.make());
      expect(first.counters.created).toBeGreaterThan(0);
      const before = s.sandbox.faults.hits.length;
      const again = await syncSource(store, s.make());
      expect(again.mode).toBe('incremental');
      expect(again.counters).toMatchObject({ created: 0, updated: 0, deleted: 0 });
      // Cheap: one token, the list pages and nothing else — no per-user profile reads when profiles come inline.
      const pages = (n: number) => Math.max(1, Math.ceil(n / 7));
      const classes = s.dataset.list('class');
      const roster = (k: string, role: string) => s.dataset.list('enrollment').filter((e) => e.data.classKey === k && e.data.role === role).length;
      const want = 1 + pages(classes.length) + classes.reduce((n, c) => n + pages(roster(c.key, 'teacher')) + pages(roster(c.key, 'student')), 0) + pages(s.dataset.list('guardianship').length);
      const hits = s.sandbox.faults.hits.slice(before);
      expect(hits.filter((h) => /\/userProfiles\/\d+$/.test(h))).toEqual([]);
      expect(hits).toHaveLength(want);
      const changesBefore = (await store.changes({ afterSeq: 0, limit: 100_000 })).length;
      const st = s.dataset.list('person').find((p) => p.data.roles.includes('student'))!;
      s.dataset.upsert('person', st.key, { givenName: 'Renamed' });
      const third = await syncSource(store, s.make());
      expect(third.counters).toMatchObject({ created: 0, updated: 1, deleted: 0 });
      expect((await store.changes({ afterSeq: 0, limit: 100_000 })).length).toBe(changesBefore + 1);
    } finally {
      await store.close();
      await s.close();
    }
  });

  it('quota errors (429 RESOURCE_EXHAUSTED, no Retry-After) back off and recover; a lasting one names the status', async () => {
    const s = await start();
    try {
      s.sandbox.faults.inject({ kind: 'status', status: 429 }, { match: /\/students$/, times: 3 });
      const pages = await collect(s.make(), null);
      expect(new MiniStore().apply(pages).ofType('enrollment')).toHaveLength(s.dataset.list('enrollment').length);
      s.sandbox.faults.inject({ kind: 'status', status: 429 }, { match: /\/v1\/courses$/, times: 20 });
      const e = await collect(s.make(), null).catch((x: unknown) => x);
      s.sandbox.faults.clear();
      expect((e as RostergateError).code).toBe('SOURCE_RATE_LIMITED');
      expect((e as Error).message).toMatch(/^source classroom, resource courses.*rate limited \(429\) after 4 attempts — RESOURCE_EXHAUSTED$/);
    } finally {
      await s.close();
    }
  });

  it('rate limits Google sends as 403 back off and recover; a lasting one on guardians fails the run instead of skipping them', async () => {
    const s = await start();
    try {
      s.sandbox.faults.inject({ kind: 'status', status: 403 }, { match: /\/v1\/courses$/, times: 3 });
      const pages = await collect(s.make(), null);
      expect(new MiniStore().apply(pages).ofType('guardianship')).toHaveLength(s.dataset.list('guardianship').length);
      // Skipping guardians would complete (and so delete) every stored guardianship.
      s.sandbox.faults.inject({ kind: 'status', status: 403 }, { match: /\/guardians$/, times: 20 });
      const e = await collect(s.make(), null).catch((x: unknown) => x);
      s.sandbox.faults.clear();
      expect((e as RostergateError).code).toBe('SOURCE_RATE_LIMITED');
      expect((e as Error).message).toMatch(/^source classroom, resource userProfiles\.guardians, HTTP 403: rate limited \(403\) after 4 attempts — userRateLimitExceeded$/);
    } finally {
      await s.close();
    }
  });

  it('Classroom API turned off for the admin: the status, the @Code sub-code and what to do, nothing else of the message', async () => {
    const s = await start({ apiDisabled: true });
    try {
      const e = await collect(s.make(), null).catch((x: unknown) => x);
      expect((e as RostergateError).code).toBe('SOURCE_AUTH');
      expect((e as Error).message).toMatch(/^source classroom, resource courses, HTTP 403: access denied \(403\).* — PERMISSION_DENIED @ClassroomApiDisabled: Classroom data access \(the API\) is off for the impersonated user: turn it on in the Admin console/);
      expect((e as Error).message).not.toContain('is not permitted');
    } finally {
      await s.close();
    }
  });
});

describe('google classroom sandbox against the discovery document', () => {
  itExternal('paths and every property sent are in the Classroom v1 discovery schemas', async () => {
    const disc = JSON.parse(readFileSync(externalPath('google/classroom-v1.json'), 'utf8')) as {
      schemas: Record<string, { properties: Record<string, unknown> }>;
      resources: { courses: { methods: { list: { path: string } }; resources: { students: { methods: { list: { path: string } } } } } };
    };
    expect(disc.resources.courses.methods.list.path).toBe('v1/courses');
    expect(disc.resources.courses.resources.students.methods.list.path).toBe('v1/courses/{courseId}/students');
    // What the connector sends: its scopes, and every course state it asks for, exist in the document.
    const raw = disc as unknown as { auth: { oauth2: { scopes: Record<string, unknown> } }; resources: { courses: { methods: { list: { parameters: { courseStates: { enum: string[] } } } } } } };
    for (const scope of SCOPES) expect(Object.keys(raw.auth.oauth2.scopes)).toContain(scope);
    expect(raw.resources.courses.methods.list.parameters.courseStates.enum).toEqual(expect.arrayContaining([...COURSE_STATES]));
    const s = await start();
    try {
      const base = s.sandbox.urlOf('/google');
      const cfg = googleClassroomDefinition.configSchema.parse({ id: 'x', ...sandboxSourceConfig(base) });
      const auth = {} as Record<string, string>;
      await jwtBearer(testHttp('x'), cfg, loadServiceAccountKey(cfg)).authorize({ method: 'GET', url: new URL(base), headers: auth });
      const get = async (p: string) => (await (await request(`${base}${p}`, { headers: auth })).body.json()) as Record<string, Record<string, unknown>[]>;
      const check = (obj: Record<string, unknown>, schema: string) => {
        for (const k of Object.keys(obj)) expect(Object.keys(disc.schemas[schema]!.properties), `${schema}.${k}`).toContain(k);
      };
      const courses = (await get(`/v1/courses?${COURSE_STATES.map((x) => `courseStates=${x}`).join('&')}`)).courses!;
      for (const course of courses.slice(0, 5)) check(course, 'Course');
      // The states the sandbox gives its courses are the Course.courseState values of the document.
      const stateEnum = (disc.schemas.Course!.properties.courseState as { enum: string[] }).enum;
      for (const course of courses) expect(stateEnum).toContain(course.courseState);
      expect(new Set(courses.map((c) => c.courseState)).size).toBeGreaterThan(1);
      const students = (await get(`/v1/courses/${courses[0]!.id}/students`)).students!;
      check(students[0]!, 'Student');
      check(students[0]!.profile as Record<string, unknown>, 'UserProfile');
      check((students[0]!.profile as { name: Record<string, unknown> }).name, 'Name');
      const guardians = (await get('/v1/userProfiles/-/guardians')).guardians!;
      check(guardians[0]!, 'Guardian');
    } finally {
      await s.close();
    }
  });
});

describe('google classroom credentials', () => {
  it('a key the service account does not have fails the JWT grant with what to check', async () => {
    const other = generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
    const s = await start({}, (base) => ({ serviceAccountKey: JSON.stringify({ ...sandboxServiceAccountKey(`${base}/token`), private_key: other }) }));
    try {
      const e = await collect(s.make(), null).catch((x: unknown) => x);
      expect((e as RostergateError).code).toBe('SOURCE_AUTH');
      expect((e as Error).message).toMatch(/source classroom, resource token.*invalid_grant\): check subject \(the admin to impersonate\), that the key is not revoked/);
    } finally {
      await s.close();
    }
  });

  it('an assertion lasts exactly an hour, even when the clock passes a second while it is signed', async () => {
    // Each reading of the clock is 0.6 s after the one before (jose reads it with new Date()): iat
    // and exp read apart would be a second apart, and the sandbox, as Google, refuses exp more than
    // 3,600 s after iat.
    const RealDate = Date;
    let t = Math.floor(RealDate.now() / 1000) * 1000 + 700;
    class SteppingDate extends RealDate {
      constructor(...args: unknown[]) {
        if (args.length) super(...(args as [number]));
        else super((t += 600));
      }
      static override now() {
        return (t += 600);
      }
    }
    const s = await start();
    globalThis.Date = SteppingDate as DateConstructor;
    try {
      const records = await collect(s.make(), null);
      expect(records.length).toBeGreaterThan(0);
    } finally {
      globalThis.Date = RealDate;
      await s.close();
    }
  });

  it('domain-wide delegation revoked by the domain admin: the source and where to grant it again', async () => {
    const s = await start({ delegationRevoked: true });
    try {
      const e = await collect(s.make(), null).catch((x: unknown) => x);
      expect((e as RostergateError).code).toBe('SOURCE_AUTH');
      expect((e as Error).message).toMatch(/^source classroom, resource token, HTTP 401: token request refused \(unauthorized_client\): domain-wide delegation or the Classroom scopes are not granted to this service account's client id \(Admin console › Security › API controls\)$/);
    } finally {
      await s.close();
    }
  });

  it('impersonating someone who is not an admin is refused; a key file readable by others is refused', async () => {
    const s = await start({}, () => ({ subject: 'student@rostergate-demo.example' }));
    try {
      expect(((await collect(s.make(), null).catch((x: unknown) => x)) as Error).message).toMatch(/invalid_grant/);
    } finally {
      await s.close();
    }
    const f = join(tempDir(), 'key.json');
    writeFileSync(f, JSON.stringify(sandboxServiceAccountKey('https://oauth2.googleapis.com/token')));
    chmodSync(f, 0o644);
    const cfg = googleClassroomDefinition.configSchema.parse({ id: 'c', type: 'google-classroom', serviceAccountKeyFile: f, subject: 'admin@rostergate-demo.example' });
    expect(() => googleClassroomDefinition.create(cfg, { http: testHttp('c'), log })).toThrow(/readable by group or others.*chmod 600/);
    chmodSync(f, 0o600);
    expect(() => googleClassroomDefinition.create(cfg, { http: testHttp('c'), log })).not.toThrow();
  });
});
