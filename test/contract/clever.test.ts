/**
 * Clever connector ↔ Clever sandbox: the shared connector suite, a value-for-value roundtrip of the
 * demo district, the sandbox checked against Clever's official swagger, auth and events tolerance.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { request } from 'undici';
import { RosterDataset } from '../../src/demo/dataset.ts';
import { startSandboxServer, type RunningSandbox } from '../../connectors/sandbox-kit.ts';
import { cleverDefinition, cleverId, cleverSandbox, CLEVER_SANDBOX_TOKEN } from '../../connectors/clever/index.ts';
import { collect, defineConnectorSuite, MiniStore, testHttp } from '../support/connector-suite.ts';
import { createLogger } from '../../src/log.ts';
import { externalAvailable, externalPath, itExternal } from '../support/external.ts';
import { check, loadSpec, ref } from '../support/schema-check.ts';
import { RostergateError } from '../../src/errors.ts';
import type { OrgData, PersonData } from '../../src/model/records.ts';
import { schoolRecord } from '../../connectors/clever/mapping.ts';

const log = createLogger({ level: 'silent' });
const small = () => RosterDataset.generate({ students: 120, teachers: 8, classes: 16, schools: 2 });

function connector(baseUrl: string, extra: Record<string, unknown> = {}) {
  const cfg = cleverDefinition.configSchema.parse({ id: 'clever-test', type: 'clever', baseUrl, token: CLEVER_SANDBOX_TOKEN, pageSize: 50, ...extra });
  return cleverDefinition.create(cfg, { http: testHttp('clever-test'), log });
}

async function start(opts: Parameters<typeof cleverSandbox>[0] = {}) {
  const dataset = small();
  const sandbox = await startSandboxServer({ dataset, apps: [cleverSandbox(opts)] });
  return { dataset, sandbox, make: () => connector(sandbox.urlOf('/clever')), close: () => sandbox.close() };
}

defineConnectorSuite({
  name: 'clever',
  start,
  types: ['org', 'academicSession', 'course', 'person', 'demographics', 'class', 'enrollment', 'guardianship'],
});

defineConnectorSuite({
  name: 'clever (previous_attributes inside data)',
  start: () => start({ previousAttributesInData: true }),
  types: ['org', 'person', 'class', 'enrollment'],
});

describe('clever roundtrip', () => {
  let s: Awaited<ReturnType<typeof start>>;
  let store: MiniStore;
  beforeAll(async () => {
    s = await start();
    store = new MiniStore().apply(await collect(s.make(), null, { full: true }));
  });
  afterAll(() => s.close());

  it('gives back every person with the values Clever carries', () => {
    for (const p of s.dataset.list('person')) {
      const got = store.records.get(`person/${cleverId('person', p.key)}`);
      expect(got, p.key).toBeDefined();
      const d = (got as { data: PersonData }).data;
      expect(d).toMatchObject({ givenName: p.data.givenName, familyName: p.data.familyName, email: p.data.email });
      // Clever's district_admin role has no SIS id field.
      expect(d.sisId).toBe(p.data.roles.includes('administrator') ? undefined : p.data.sisId);
      expect(d.roles.sort()).toEqual([...p.data.roles].sort());
      if (p.data.roles.includes('student')) expect(d.grades).toEqual(p.data.grades);
    }
  });

  it('gives back demographics, program flags, enrollments and guardianships', () => {
    for (const dm of s.dataset.list('demographics').slice(0, 50)) {
      const got = store.records.get(`demographics/${cleverId("person", dm.key)}`) as unknown as { data: Record<string, unknown> };
      const want = dm.data;
      expect(got.data).toMatchObject({
        birthDate: want.birthDate, sex: want.sex, hispanicOrLatino: want.hispanicOrLatino, iep: want.iep, section504: want.section504,
        freeReducedLunch: want.freeReducedLunch, homeLanguage: want.homeLanguage, englishLanguageLearner: want.englishLanguageLearner,
      });
    }
    expect(store.ofType('enrollment')).toHaveLength(s.dataset.list('enrollment').length);
    expect(store.ofType('guardianship')).toHaveLength(s.dataset.list('guardianship').length);
    const e = s.dataset.list('enrollment')[0]!;
    expect(store.records.get(`enrollment/${cleverId('class', e.data.classKey)}:${cleverId('person', e.data.personKey)}`)).toBeDefined();
  });

  it('gives back each kind of school id in its own field: nces_id, sis_id, state_id, school_number', () => {
    for (const o of s.dataset.list('org')) {
      const got = (store.records.get(`org/${cleverId('org', o.key)}`) as { data: OrgData }).data;
      if (o.data.type === 'district') expect(got).toMatchObject({ type: 'district', identifier: o.data.identifier });
      else expect(got).toMatchObject({ identifier: o.data.identifier, sisId: o.data.sisId, stateId: o.data.stateId, schoolNumber: o.data.schoolNumber });
    }
    // A school without an NCES id has no official identifier: its state id stays a state id.
    const bare = schoolRecord({ id: 'x', name: 'Annex', nces_id: '', state_id: 'ST-1', sis_id: '', school_number: '7' });
    expect(bare).toMatchObject({ data: { stateId: 'ST-1', schoolNumber: '7' } });
    expect((bare as { data: OrgData }).data.identifier).toBeUndefined();
    expect((bare as { data: OrgData }).data.sisId).toBeUndefined();
  });
});

describe('clever sandbox against the official swagger', () => {
  let s: Awaited<ReturnType<typeof start>>;
  let data: ReturnType<typeof loadSpec>;
  let events: ReturnType<typeof loadSpec>;
  beforeAll(async () => {
    s = await start();
    if (externalAvailable) {
      data = loadSpec(externalPath('clever/v3.1.yml'));
      events = loadSpec(externalPath('clever/v3.1-events.yml'));
    }
  });
  afterAll(() => s.close());
  const get = async (path: string) => {
    const r = await request(`${s.sandbox.urlOf('/clever')}/v3.1${path}`, { headers: { authorization: `Bearer ${CLEVER_SANDBOX_TOKEN}` } });
    return { status: r.statusCode, body: (await r.body.json()) as any };
  };

  for (const [path, def] of [['/districts', 'DistrictsResponse'], ['/schools', 'SchoolsResponse'], ['/users', 'UsersResponse'], ['/sections', 'SectionsResponse'], ['/terms', 'TermsResponse'], ['/courses', 'CoursesResponse']] as const) {
    itExternal(`${path} exists in the spec and every record matches ${def}`, async () => {
      expect(Object.keys(data.paths)).toContain(path);
      const r = await get(`${path}?limit=10000`);
      expect(r.status).toBe(200);
      // `uri` per element appears in Clever's own mocks though the swagger omits it.
      const body = { ...r.body, data: r.body.data.map((x: any) => ({ data: x.data })) };
      expect(check(data, ref(def), body).slice(0, 10)).toEqual([]);
      expect(r.body.data.every((x: any) => typeof x.uri === 'string' && x.uri.endsWith(x.data.id))).toBe(true);
    });
  }

  itExternal('events match the events swagger (users.updated with previous_attributes)', async () => {
    s.dataset.upsert('person', s.dataset.list('person')[0]!.key, { givenName: 'Changed' });
    const r = await get('/events?limit=100');
    expect(r.status).toBe(200);
    const ev = r.body.data.at(-1).data;
    expect(ev.type).toBe('users.updated');
    expect(check(events, ref('users.updated'), ev)).toEqual([]);
  });

  it('behaves like Clever on errors: 401, 404, 413, and paging links', async () => {
    const noAuth = await request(`${s.sandbox.urlOf('/clever')}/v3.1/users`);
    expect(noAuth.statusCode).toBe(401);
    expect(await noAuth.body.json()).toEqual({ message: 'Unauthorized' });
    expect((await get('/users/000000000000000000000000')).status).toBe(404);
    expect((await get('/users?limit=10001')).status).toBe(413);
    const p1 = await get('/users?limit=5');
    const next = p1.body.data.at(-1).data.id;
    expect(p1.body.links.find((l: any) => l.rel === 'next').uri).toContain(`starting_after=${next}`);
  });
});

describe('clever connector errors', () => {
  it('a wrong token is SOURCE_AUTH naming the source and what to check', async () => {
    const s = await start();
    try {
      const c = cleverDefinition.create(
        cleverDefinition.configSchema.parse({ id: 'clever-test', type: 'clever', baseUrl: s.sandbox.urlOf('/clever'), token: 'wrong' }),
        { http: testHttp('clever-test'), log },
      );
      const e = await collect(c, null).catch((x: unknown) => x);
      expect(e).toBeInstanceOf(RostergateError);
      expect((e as RostergateError).code).toBe('SOURCE_AUTH');
      expect((e as Error).message).toMatch(/source clever-test, resource events, HTTP 401: credentials rejected \(401\): check the token/);
    } finally {
      await s.close();
    }
  });

  it('events switched off after a full sync: the next run falls back to a full sync that sees changes; once back, runs are incremental again', async () => {
    const opts: Parameters<typeof cleverSandbox>[0] = {};
    const s = await start(opts);
    try {
      const first = await collect(s.make(), null);
      expect(first.at(-1)!.state).toMatchObject({ phase: 'events' });
      const store = new MiniStore().apply(first);
      opts.eventsDisabled = true;
      s.dataset.remove('enrollment', s.dataset.list('enrollment')[0]!.key);
      const student = s.dataset.list('person').find((p) => p.data.roles.includes('student'))!;
      s.dataset.upsert('person', student.key, { givenName: 'Fallback' });
      const second = await collect(s.make(), first.at(-1)!.state);
      store.newRun().apply(second);
      expect(second.map((p) => p.resource)).not.toContain('events');
      expect(second.some((p) => p.resource === 'users' && p.completes?.includes('person'))).toBe(true);
      expect(store.ofType('enrollment')).toHaveLength(s.dataset.list('enrollment').length);
      expect(store.ofType('person').find((p) => p.key === cleverId('person', student.key))!.data.givenName).toBe('Fallback');
      expect(second.at(-1)!.state).toEqual({ phase: 'done-full' });
      // Events back: one more full sync takes a new anchor, and the run after it reads events only.
      opts.eventsDisabled = false;
      const third = await collect(s.make(), second.at(-1)!.state);
      expect(third[0]!.resource).toBe('districts');
      expect(third.at(-1)!.state).toMatchObject({ phase: 'events' });
      const fourth = await collect(s.make(), third.at(-1)!.state);
      expect(fourth.map((p) => p.resource)).toEqual(['events']);
    } finally {
      await s.close();
    }
  });

  it('without Events API access every run is a full sync that still sees deletions', async () => {
    const s = await start({ eventsDisabled: true });
    try {
      const first = await collect(s.make(), null);
      const store = new MiniStore().apply(first);
      s.dataset.remove('enrollment', s.dataset.list('enrollment')[0]!.key);
      const second = await collect(s.make(), first.at(-1)!.state);
      store.newRun().apply(second);
      expect(second[0]!.resource).toBe('districts');
      expect(store.ofType('enrollment')).toHaveLength(s.dataset.list('enrollment').length);
    } finally {
      await s.close();
    }
  });
});
