/**
 * OneRoster REST connector ↔ sandbox, 1.1 (OAuth 1.0a) and 1.2 (OAuth 2): the connector suite,
 * a roundtrip of the demo district, the sandbox against the OneRoster 1.2 OpenAPI (Ed-Fi) and real
 * 1.1 envelopes (FINT), auth failures, paging defects and bad records.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createHmac } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { request } from 'undici';
import { RosterDataset } from '../../src/demo/dataset.ts';
import { startSandboxServer } from '../../connectors/sandbox-kit.ts';
import { oneRosterDefinition, oneRosterSandbox, sandboxSourceConfig, V11, V12 } from '../../connectors/oneroster/index.ts';
import { signatureBase, hmacSignature, oauth1 } from '../../connectors/oneroster/auth.ts';
import { classRecord, demographicsRecord, enrollmentRecord, RESOURCES, userRecords } from '../../connectors/oneroster/mapping.ts';
import { collect, defineConnectorSuite, MiniStore, testHttp } from '../support/connector-suite.ts';
import { createLogger } from '../../src/log.ts';
import { externalPath, itExternal } from '../support/external.ts';
import { loadSpec } from '../support/schema-check.ts';
import { RostergateError } from '../../src/errors.ts';
import type { PersonData } from '../../src/model/records.ts';

const log = createLogger({ level: 'silent' });

async function start(version: '1.1' | '1.2', opts: Parameters<typeof oneRosterSandbox>[0] = {}, extra: Record<string, unknown> = {}) {
  const dataset = RosterDataset.generate({ students: 120, teachers: 8, classes: 16, schools: 2 });
  const sandbox = await startSandboxServer({ dataset, apps: [oneRosterSandbox(opts)] });
  const make = () => {
    const cfg = oneRosterDefinition.configSchema.parse({ id: `or-${version}`, ...sandboxSourceConfig(sandbox.urlOf('/oneroster'), version), pageSize: 60, ...extra });
    return oneRosterDefinition.create(cfg, { http: testHttp(`or-${version}`), log });
  };
  return { dataset, sandbox, make, close: () => sandbox.close() };
}

for (const version of ['1.1', '1.2'] as const) {
  defineConnectorSuite({
    name: `oneroster ${version}`,
    start: () => start(version),
    types: ['org', 'academicSession', 'course', 'person', 'demographics', 'class', 'enrollment', 'guardianship'],
  });

  describe(`oneroster ${version} roundtrip`, () => {
    let s: Awaited<ReturnType<typeof start>>;
    let store: MiniStore;
    beforeAll(async () => {
      s = await start(version);
      store = new MiniStore().apply(await collect(s.make(), null, { full: true }));
    });
    afterAll(() => s.close());

    it('gives back every record, keyed by sourcedId, with its values', () => {
      for (const t of ['org', 'academicSession', 'course', 'person', 'demographics', 'class', 'enrollment', 'guardianship'] as const) {
        expect(store.ofType(t).length, t).toBe(s.dataset.list(t).length);
      }
      for (const p of s.dataset.list('person')) {
        const got = (store.records.get(`person/${p.key}`) as { data: PersonData }).data;
        expect(got).toMatchObject({ givenName: p.data.givenName, familyName: p.data.familyName, email: p.data.email, sisId: p.data.sisId });
        expect(got.roles).toEqual(p.data.roles);
        if (p.data.orgKeys) expect(got.orgKeys?.sort()).toEqual([...p.data.orgKeys].sort());
      }
      // An org's identifier is its official id; its sourcedId serves as its SIS id (see orgRecord).
      for (const o of s.dataset.list('org')) {
        expect((store.records.get(`org/${o.key}`) as { data: unknown }).data, o.key).toMatchObject({ type: o.data.type, identifier: o.data.identifier, sisId: o.key });
      }
      for (const e of s.dataset.list('enrollment').slice(0, 40)) {
        expect((store.records.get(`enrollment/${e.key}`) as { data: unknown }).data).toMatchObject({ classKey: e.data.classKey, personKey: e.data.personKey, role: e.data.role, primary: e.data.primary });
      }
      for (const d of s.dataset.list('demographics').slice(0, 40)) {
        const got = (store.records.get(`demographics/${d.key}`) as unknown as { data: Record<string, unknown> }).data;
        expect(got).toMatchObject({ birthDate: d.data.birthDate, hispanicOrLatino: d.data.hispanicOrLatino ?? false, asian: d.data.asian ?? false });
        if (version === '1.2' || d.data.sex === 'male' || d.data.sex === 'female') expect(got.sex).toBe(d.data.sex);
      }
    });
  });
}

describe('OAuth 1.0a signing', () => {
  it('matches an independent implementation, including the characters ClassLink encodes', () => {
    const url = new URL(`https://tenant-st-v2.rosterserver.com/ims/oneroster/v1p1/users?limit=100&offset=0&filter=dateLastModified>'2026-01-01T00:00:00Z'`);
    const oauth = { oauth_consumer_key: 'k', oauth_signature_method: 'HMAC-SHA256', oauth_timestamp: '1700000000', oauth_nonce: 'n0nce', oauth_version: '1.0' };
    const enc = (s: string) => encodeURIComponent(s).replace(/!/g, '%21').replace(/'/g, '%27').replace(/\(/g, '%28').replace(/\)/g, '%29').replace(/\*/g, '%2A');
    const pairs = [['limit', '100'], ['offset', '0'], ['filter', "dateLastModified>'2026-01-01T00:00:00Z'"], ...Object.entries(oauth)]
      .map(([k, v]) => `${enc(k!)}=${enc(v!)}`).sort();
    const expected = `GET&${enc('https://tenant-st-v2.rosterserver.com/ims/oneroster/v1p1/users')}&${enc(pairs.join('&'))}`;
    expect(signatureBase('GET', url, oauth)).toBe(expected);
    expect(expected).toContain('%2527');
    expect(hmacSignature(expected, 's&cret')).toBe(createHmac('sha256', 's%26cret&').update(expected).digest('base64'));
  });
});

describe('ClassLink’s 1.1 quirks', () => {
  // Synthetic records shaped like the certification-tenant captures the reference describes.
  it('reads booleans as strings in any case, zero-padded or bare grades, empty strings as absent, 1.2 roles[] on 1.1 users', () => {
    const [person] = userRecords({
      sourcedId: '7_1111', status: 'active', dateLastModified: '2024-05-01T00:00:00.000Z', enabledUser: 'TRUE', role: 'student',
      givenName: 'Ada', familyName: 'Example', middleName: '', email: '', sms: '', phone: '', username: 'ada1', identifier: '',
      grades: ['5'], orgs: [{ sourcedId: 'FY', type: 'org' }],
      roles: [{ roleType: 'primary', role: 'student', org: { sourcedId: 'SCH1' } }],
      userIds: [{ type: 'Fed', identifier: 'F-1' }, { type: 'StateID', identifier: 'ST-9' }],
    });
    expect(person).toMatchObject({ type: 'person', key: '7_1111', data: { enabled: true, grades: ['05'], stateId: 'ST-9', roles: ['student'], primaryOrgKey: 'SCH1' } });
    const d = (person as unknown as { data: Record<string, unknown> }).data;
    for (const absent of ['middleName', 'email', 'sms', 'phone', 'sisId']) expect(d[absent], absent).toBeUndefined();
    expect((d.orgKeys as string[]).sort()).toEqual(['FY', 'SCH1']);
    expect(userRecords({ sourcedId: 'u2', enabledUser: 'false', role: 'teacher', givenName: 'B', familyName: 'C', grades: ['05', 'K'] })[0])
      .toMatchObject({ data: { enabled: false, grades: ['05', 'KG'] } });

    expect(classRecord({ sourcedId: 'c1', title: 'Math', classType: 'scheduled', periods: '1, 2', grades: ['09'], location: '', course: { sourcedId: 'k' }, school: { sourcedId: 's' }, terms: [] }))
      .toMatchObject({ data: { periods: ['1', '2'], grades: ['09'] } });
    expect((classRecord({ sourcedId: 'c2', title: 'Art', periods: [], course: { sourcedId: 'k' } }) as unknown as { data: Record<string, unknown> }).data.periods).toBeUndefined();
    expect(demographicsRecord({ sourcedId: 'u1', birthDate: '2012-03-04', sex: 'Female', asian: 'true', white: 'False', hispanicOrLatinoEthnicity: '', countryOfBirthCode: '' }))
      .toMatchObject({ data: { sex: 'female', asian: true, white: false, hispanicOrLatino: undefined, countryOfBirth: undefined } });
    expect(enrollmentRecord({ sourcedId: 'e1', user: { sourcedId: 'u1' }, class: { sourcedId: 'c1' }, role: 'student', primary: 'false', beginDate: '', endDate: '2025-06-30T00:00:00Z' }))
      .toMatchObject({ data: { primary: false, beginDate: undefined, endDate: '2025-06-30' } });
    // tobedeleted is a deletion, whatever else the record still carries.
    expect(userRecords({ sourcedId: '7_1111', status: 'tobedeleted', givenName: '', familyName: '' })).toEqual([{ type: 'person', key: '7_1111', deleted: true, lastModified: undefined }]);
  });
});

describe('oneroster sandbox against the specs', () => {
  let s: Awaited<ReturnType<typeof start>>;
  beforeAll(async () => {
    s = await start('1.2');
  });
  afterAll(() => s.close());

  itExternal('1.2 paths exist in the OneRoster 1.2 OpenAPI, and records use its property names', async () => {
    const spec = loadSpec(externalPath('oneroster/edfi-oneroster-openapi/swagger.yml'));
    const schemas = spec.components!.schemas!;
    // Names of 1EdTech's 1.2 JSON binding that this (Ed-Fi) OpenAPI spells otherwise or leaves out.
    const binding12 = new Set(['grades', 'enabledUser', 'preferredFirstName', 'userMasterIdentifier', 'primaryOrg']);
    const token = JSON.parse(await (await request(`${s.sandbox.urlOf('/oneroster')}/token`, {
      method: 'POST', body: 'grant_type=client_credentials', headers: { authorization: `Basic ${Buffer.from('demo-oneroster-key:demo-oneroster-secret').toString('base64')}`, 'content-type': 'application/x-www-form-urlencoded' },
    })).body.text()).access_token;
    for (const [resource, schema] of [['orgs', 'org'], ['academicSessions', 'academicSession'], ['courses', 'course'], ['users', 'user'], ['demographics', 'demographic'], ['classes', 'class'], ['enrollments', 'enrollment']] as const) {
      expect(Object.keys(spec.paths)).toContain(`${V12}/${resource}`);
      const r = await request(`${s.sandbox.urlOf('/oneroster')}${V12}/${resource}?limit=5`, { headers: { authorization: `Bearer ${token}` } });
      expect(r.statusCode).toBe(200);
      expect(Number(r.headers['x-total-count'])).toBeGreaterThan(0);
      const body = (await r.body.json()) as Record<string, Record<string, unknown>[]>;
      const props = new Set(Object.keys(schemas[schema]!.properties!));
      for (const rec of body[resource]!) {
        const unknown = Object.keys(rec).filter((k) => !props.has(k) && !binding12.has(k));
        expect(unknown, `${resource}`).toEqual([]);
        expect(['active', 'tobedeleted']).toContain(rec.status);
      }
    }
  });

  itExternal('the connector reads a real provider’s 1.1 records (FINT) without complaint', async () => {
    const s11 = await start('1.1');
    try {
      const c = s11.make();
      const pages = await collect(c, null, { full: true });
      expect(pages.length).toBeGreaterThan(0);
      for (const f of ['user', 'class', 'enrollment', 'org', 'academicSession', 'course']) {
        const real = JSON.parse(readFileSync(externalPath(`oneroster/fint-v1p1-json/${f}.json`), 'utf8')) as Record<string, Record<string, unknown>[]>;
        const [envelope, records] = Object.entries(real)[0]!;
        // The connector reads the real provider's records without complaint.
        const res = RESOURCES.find((r) => r.name === envelope)!;
        expect(res, envelope).toBeDefined();
        for (const rec of records) expect(() => res.map(rec)).not.toThrow();
      }
      const fintUser = (JSON.parse(readFileSync(externalPath('oneroster/fint-v1p1-json/user.json'), 'utf8')) as { users: never[] }).users[0]!;
      expect(userRecords(fintUser)[0]).toMatchObject({ type: 'person', data: { roles: ['student'], enabled: true } });
    } finally {
      await s11.close();
    }
  });

  itExternal('1.1 sandbox responses use the real provider’s envelopes, property names, value kinds and references', async () => {
    const s11 = await start('1.1');
    try {
      const edfi = loadSpec(externalPath('oneroster/edfi-oneroster-openapi/swagger.yml')).components!.schemas!;
      const sign = oauth1('demo-oneroster-key', 'demo-oneroster-secret');
      const kind = (v: unknown) => (Array.isArray(v) ? 'array' : v === null ? 'null' : typeof v);
      // The 1EdTech JSON binding's names that the Ed-Fi OpenAPI spells otherwise (grades), and
      // ClassLink's documented 1.1 quirk: enabledUser as the string "true".
      const binding = new Set(['grades', 'enabledUser']);
      const quirks: Record<string, string> = { 'users.enabledUser': 'string' };
      for (const [file, schema] of [['org', 'org'], ['academicSession', 'academicSession'], ['course', 'course'], ['user', 'user'], ['class', 'class'], ['enrollment', 'enrollment']] as const) {
        const real = JSON.parse(readFileSync(externalPath(`oneroster/fint-v1p1-json/${file}.json`), 'utf8')) as Record<string, Record<string, unknown>[]>;
        const [envelope, realRecords] = Object.entries(real)[0]!;
        const url = new URL(`${s11.sandbox.urlOf('/oneroster')}${V11}/${envelope}?limit=50&offset=0`);
        const headers: Record<string, string> = {};
        await sign.authorize({ method: 'GET', url, headers });
        const r = await request(url, { headers });
        expect(r.statusCode, envelope).toBe(200);
        expect(Number(r.headers['x-total-count']), envelope).toBeGreaterThan(0);
        const body = (await r.body.json()) as Record<string, Record<string, unknown>[]>;
        expect(Object.keys(body), envelope).toEqual([envelope]);
        const named = new Set([...realRecords.flatMap((x) => Object.keys(x)), ...Object.keys(edfi[schema]!.properties!), ...binding]);
        for (const rec of body[envelope]!) {
          expect(Object.keys(rec).filter((k) => !named.has(k)), `${envelope}: properties no 1.1 provider or spec names`).toEqual([]);
          for (const real of realRecords) {
            for (const [k, v] of Object.entries(rec)) {
              if (!(k in real) || v === null || v === undefined) continue;
              expect(kind(v), `${envelope}.${k}`).toBe(quirks[`${envelope}.${k}`] ?? kind(real[k]));
              // References are GUIDRefs shaped as the provider's: {sourcedId, type, href} with its type.
              const refs = (xs: unknown) => (Array.isArray(xs) ? xs : [xs]).filter((x): x is Record<string, unknown> => kind(x) === 'object');
              const realRefs = refs(real[k]);
              if (realRefs.length === 0 || !('sourcedId' in realRefs[0]!)) continue;
              for (const ref of refs(v)) {
                expect(Object.keys(ref).sort(), `${envelope}.${k}`).toEqual(Object.keys(realRefs[0]!).sort());
                expect(ref.type, `${envelope}.${k}.type`).toBe(realRefs[0]!.type);
                expect(String(ref.href)).toMatch(new RegExp(`${V11}/\\w+/${String(ref.sourcedId)}$`));
              }
            }
          }
        }
      }
    } finally {
      await s11.close();
    }
  });
});

describe('oneroster sandbox errors look like a Roster Server’s', () => {
  it('401 without or with a bad signature, 404 for unknown resources and records, 413 above limit 10000, 429 with Retry-After', async () => {
    const dataset = RosterDataset.generate({ students: 10, teachers: 1, classes: 1, schools: 1 });
    const sandbox = await startSandboxServer({ dataset, apps: [oneRosterSandbox()], rateLimit: { requests: 6, windowMs: 60_000 } });
    try {
      const base = sandbox.urlOf('/oneroster');
      const token = JSON.parse(await (await request(`${base}/token`, {
        method: 'POST', body: 'grant_type=client_credentials', headers: { authorization: `Basic ${Buffer.from('demo-oneroster-key:demo-oneroster-secret').toString('base64')}`, 'content-type': 'application/x-www-form-urlencoded' },
      })).body.text()).access_token as string;
      const get = async (path: string, auth = `Bearer ${token}`) => {
        const r = await request(`${base}${path}`, { headers: { authorization: auth } });
        return { status: r.statusCode, headers: r.headers, body: (await r.body.json()) as Record<string, unknown> };
      };
      const unauth = await get(`${V12}/users`, 'Bearer nope');
      expect(unauth.status).toBe(401);
      expect(unauth.body).toMatchObject({ imsx_codeMajor: 'failure', imsx_CodeMinor: { imsx_codeMinorField: [{ imsx_codeMinorFieldValue: 'unauthorisedrequest' }] } });
      expect((await get('/ims/oneroster/v1p1/users', 'OAuth oauth_consumer_key="demo-oneroster-key",oauth_signature="forged"')).status).toBe(401);
      expect((await get(`${V12}/widgets`)).status).toBe(404);
      expect((await get(`${V12}/users/no-such-user`)).status).toBe(404);
      expect((await get(`${V12}/users?limit=10001`)).status).toBe(413);
      const limited = await get(`${V12}/users?limit=1`);
      expect(limited.status).toBe(429);
      expect(Number(limited.headers['retry-after'])).toBeGreaterThan(0);
      expect(limited.body).toMatchObject({ imsx_codeMajor: 'failure' });
    } finally {
      await sandbox.close();
    }
  });
});

describe('oneroster errors', () => {
  for (const version of ['1.1', '1.2'] as const) {
    it(`${version}: a wrong secret is SOURCE_AUTH naming the source and what to check`, async () => {
      const s = await start(version, {}, { clientSecret: 'wrong' });
      try {
        const e = await collect(s.make(), null).catch((x: unknown) => x);
        expect((e as RostergateError).code).toBe('SOURCE_AUTH');
        expect((e as Error).message).toMatch(new RegExp(`source or-${version}.*(check clientId, clientSecret and tokenUrl|check the token or client id/secret)`));
      } finally {
        await s.close();
      }
    });
  }

  it('a server that ignores offset is a paging loop, not an endless sync', async () => {
    const s = await start('1.2', { ignoreOffset: true });
    try {
      const e = await collect(s.make(), null).catch((x: unknown) => x);
      expect((e as RostergateError).code).toBe('SOURCE_PAGING_LOOP');
      // orgs fits one page; users is the first resource that needs a second.
      expect((e as Error).message).toMatch(/source or-1.2, resource users: offset 60 returned the same page/);
    } finally {
      await s.close();
    }
  });

  it('a server that skips records in its pages deletes nothing: its short listing completes no types', async () => {
    const s = await start('1.2', { skipOne: true });
    try {
      const pages = await collect(s.make(), null, { full: true });
      expect(pages.filter((p) => p.resource === 'users').length).toBeGreaterThan(1);
      expect(pages.some((p) => p.completes?.length)).toBe(false);
      // Pages carry the listing's size for progress bars; the run ends asking for a full read next.
      expect(pages.find((p) => p.resource === 'users')!.total).toBe(s.dataset.list('person').length);
      expect(pages.at(-1)!.state).toEqual({ phase: 'done' });
      expect((await collect(s.make(), pages.at(-1)!.state))[0]!.state).toMatchObject({ phase: 'full' });
    } finally {
      await s.close();
    }
  });

  it('a record without a required field names resource and position, not values', async () => {
    const s = await start('1.2');
    try {
      const victim = s.dataset.list('person')[7]!;
      s.dataset.upsert('person', victim.key, { familyName: '' });
      const e = await collect(s.make(), null).catch((x: unknown) => x);
      expect((e as RostergateError).code).toBe('SOURCE_BAD_RECORD');
      expect((e as Error).message).toMatch(/source or-1.2, resource users, record #7: familyName is missing/);
      expect((e as Error).message).not.toContain(victim.data.givenName);
    } finally {
      await s.close();
    }
  });
});
