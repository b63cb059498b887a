/**
 * Microsoft Graph Education connector ↔ sandbox: the connector suite, a roundtrip, the sandbox
 * against the Graph CSDL (education types), expired delta tokens, deleted classes, and token errors.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { Agent, request } from 'undici';
import { Writable } from 'node:stream';
import { RosterDataset } from '../../src/demo/dataset.ts';
import { startSandboxServer } from '../../connectors/sandbox-kit.ts';
import { graphId, graphSandbox, msGraphDefinition, sandboxSourceConfig } from '../../connectors/msgraph/index.ts';
import { collect, defineConnectorSuite, MiniStore, testHttp } from '../support/connector-suite.ts';
import { createLogger } from '../../src/log.ts';
import { externalPath, itExternal } from '../support/external.ts';
import { RostergateError } from '../../src/errors.ts';
import { HttpClient } from '../../connectors/http.ts';
import type { OrgData, PersonData } from '../../src/model/records.ts';
import type { GraphSandboxOptions } from '../../connectors/msgraph/sandbox.ts';
import { CLASS_SELECT, SCHOOL_SELECT, USER_SELECT } from '../../connectors/msgraph/wire.ts';

const log = createLogger({ level: 'silent' });

async function start(opts: GraphSandboxOptions = {}, extra: Record<string, unknown> = {}) {
  const dataset = RosterDataset.generate({ students: 120, teachers: 8, classes: 16, schools: 2 });
  const sandbox = await startSandboxServer({ dataset, apps: [graphSandbox(opts)] });
  const make = () => {
    const cfg = msGraphDefinition.configSchema.parse({ id: 'graph', ...sandboxSourceConfig(sandbox.urlOf('/msgraph')), pageSize: 50, ...extra });
    return msGraphDefinition.create(cfg, { http: testHttp('graph'), log });
  };
  return { dataset, sandbox, make, close: () => sandbox.close() };
}

/** An app token from the sandbox's token endpoint, to read the wire format directly. */
async function token(s: { sandbox: { urlOf(p: string): string } }): Promise<string> {
  const t = await request(`${s.sandbox.urlOf('/msgraph')}/00000000-0000-4000-8000-00000000d3m0/oauth2/v2.0/token`, {
    method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: 'client_id=demo-graph-app&client_secret=demo-graph-secret&scope=https%3A%2F%2Fgraph.microsoft.com%2F.default&grant_type=client_credentials',
  });
  return ((await t.body.json()) as { access_token: string }).access_token;
}

defineConnectorSuite({ name: 'msgraph', start, types: ['org', 'academicSession', 'course', 'person', 'demographics', 'class', 'enrollment'] });

describe('msgraph roundtrip and delta', () => {
  let s: Awaited<ReturnType<typeof start>>;
  const opts: GraphSandboxOptions = { birthDateAsTimestamp: true };
  beforeAll(async () => {
    s = await start(opts);
  });
  afterAll(() => s.close());

  it('gives back students and teachers with their schools, birth dates (timestamp form too) and rosters', async () => {
    const store = new MiniStore().apply(await collect(s.make(), null, { full: true }));
    const people = s.dataset.list('person').filter((p) => !p.data.roles.includes('guardian'));
    expect(store.ofType('person')).toHaveLength(people.length);
    for (const p of people.filter((x) => x.data.roles.includes('student') || x.data.roles.includes('teacher'))) {
      const got = (store.records.get(`person/${graphId('person', p.key)}`) as { data: PersonData }).data;
      expect(got).toMatchObject({ givenName: p.data.givenName, familyName: p.data.familyName, email: p.data.email, sisId: p.data.sisId, roles: p.data.roles });
      expect(got.orgKeys?.length).toBe((p.data.orgKeys ?? []).length);
    }
    const d = s.dataset.list('demographics')[0]!;
    expect((store.records.get(`demographics/${graphId('person', d.key)}`) as unknown as { data: { birthDate: string } }).data.birthDate).toBe(d.data.birthDate);
    expect(store.ofType('enrollment')).toHaveLength(s.dataset.list('enrollment').length);
  });

  it('a school\'s externalId is its SIS id, not an official (NCES) id: Graph has none', async () => {
    const store = new MiniStore().apply(await collect(s.make(), null, { full: true }));
    const schools = s.dataset.list('org').filter((o) => o.data.type === 'school');
    for (const o of schools) {
      const got = (store.records.get(`org/${graphId('org', o.key)}`) as { data: OrgData }).data;
      expect(got).toMatchObject({ type: 'school', name: o.data.name, sisId: o.data.sisId, schoolNumber: o.data.schoolNumber });
      expect(got.identifier).toBeUndefined();
      expect(got.stateId).toBeUndefined();
    }
    // The sandbox speaks Graph: externalId carries the SIS id, never the NCES id.
    const r = await request(`${s.sandbox.urlOf('/msgraph')}/v1.0/education/schools`, { headers: { authorization: `Bearer ${await token(s)}` } });
    const body = (await r.body.json()) as { value: { externalId: string }[] };
    expect(body.value.map((x) => x.externalId).sort()).toEqual(schools.map((o) => o.data.sisId).sort());
  });

  it('finds deleted classes although class delta leaves them out, and falls back to a full sync on an expired token', async () => {
    const full = await collect(s.make(), null, { full: true });
    const store = new MiniStore().apply(full);
    const gone = s.dataset.list('class')[2]!;
    s.dataset.remove('class', gone.key);
    const inc = await collect(s.make(), full.at(-1)!.state);
    store.newRun().apply(inc);
    expect(store.records.has(`class/${graphId('class', gone.key)}`)).toBe(false);
    opts.rejectDeltaTokens = true;
    const again = await collect(s.make(), inc.at(-1)!.state);
    opts.rejectDeltaTokens = false;
    expect(again.some((p) => p.resource === 'users')).toBe(true);
    expect(again.some((p) => p.completes?.includes('class'))).toBe(true);
  });
});

describe('msgraph incremental sync in detail', () => {
  it('re-reads partial delta items whole, deletes removed users with their demographics, and pages delta by Prefer', async () => {
    const s = await start({ partialDeltaItems: true });
    try {
      const full = await collect(s.make(), null, { full: true });
      // pageSize 50: lists page by $top, delta by `Prefer: odata.maxpagesize` (the sandbox ignores $top there).
      const users = s.dataset.list('person').filter((p) => !p.data.roles.includes('guardian')).length;
      expect(full.filter((p) => p.resource === 'users')).toHaveLength(Math.ceil(users / 50));
      const store = new MiniStore().apply(full);
      const [renamed, removed] = s.dataset.list('person').filter((p) => p.data.roles.includes('student') && s.dataset.get('demographics', p.key));
      s.dataset.upsert('person', renamed!.key, { givenName: 'Renamed' });
      for (const e of s.dataset.list('enrollment').filter((x) => x.data.personKey === removed!.key)) s.dataset.remove('enrollment', e.key);
      s.dataset.remove('demographics', removed!.key);
      s.dataset.remove('person', removed!.key);
      const inc = await collect(s.make(), full.at(-1)!.state);
      // Delta, not a full re-read: users come from users/delta.
      expect(inc.some((p) => p.resource === 'users')).toBe(false);
      expect(inc.some((p) => p.resource === 'users/delta')).toBe(true);
      store.newRun().apply(inc);
      const got = store.records.get(`person/${graphId('person', renamed!.key)}`) as { data: PersonData };
      // The delta item carried only names: the student facet came from re-reading the user.
      expect(got.data).toMatchObject({ givenName: 'Renamed', sisId: renamed!.data.sisId, graduationYear: renamed!.data.graduationYear, roles: ['student'] });
      expect(typeof got.data.graduationYear).toBe('string');
      expect(store.records.get(`demographics/${graphId('person', renamed!.key)}`)).toMatchObject({ data: { birthDate: s.dataset.get('demographics', renamed!.key)!.data.birthDate } });
      expect(store.records.has(`person/${graphId('person', removed!.key)}`)).toBe(false);
      expect(store.records.has(`demographics/${graphId('person', removed!.key)}`)).toBe(false);
      expect(store.ofType('enrollment')).toHaveLength(s.dataset.list('enrollment').length);
    } finally {
      await s.close();
    }
  });

  it('an incremental run sees a new school (with its new class) and a school that is gone', async () => {
    const s = await start();
    try {
      const full = await collect(s.make(), null, { full: true });
      const store = new MiniStore().apply(full);
      const [gone] = s.dataset.list('org').filter((o) => o.data.type === 'school');
      for (const c of s.dataset.list('class').filter((x) => x.data.schoolKey === gone!.key)) {
        for (const e of s.dataset.list('enrollment').filter((x) => x.data.classKey === c.key)) s.dataset.remove('enrollment', e.key);
        s.dataset.remove('class', c.key);
      }
      s.dataset.remove('org', gone!.key);
      s.dataset.upsert('org', 'sch-new', { name: 'New Academy', type: 'school', parentKey: 'district' });
      s.dataset.upsert('class', 'cls-new', { title: 'Robotics', schoolKey: 'sch-new' });
      store.newRun().apply(await collect(s.make(), full.at(-1)!.state));
      expect(store.records.has(`org/${graphId('org', gone!.key)}`)).toBe(false);
      expect(store.records.get(`org/${graphId('org', 'sch-new')}`)).toMatchObject({ data: { name: 'New Academy', type: 'school' } });
      expect(store.records.get(`class/${graphId('class', 'cls-new')}`)).toMatchObject({ data: { title: 'Robotics', schoolKey: graphId('org', 'sch-new') } });
      expect(store.ofType('class')).toHaveLength(s.dataset.list('class').length);
    } finally {
      await s.close();
    }
  });

  it('asks only for the fields it maps: $select on every request it builds, $top on lists, Prefer on delta rounds', async () => {
    const s = await start({ partialDeltaItems: true });
    // Every request as it leaves undici: path with query, and the Prefer header.
    const seen: { path: string; prefer?: string }[] = [];
    const agent = new Agent();
    const dispatcher = agent.compose((dispatch) => (o, handler) => {
      const h = (o.headers ?? {}) as Record<string, string>;
      seen.push({ path: String(o.path), prefer: h.prefer });
      return dispatch(o, handler);
    });
    const http = new HttpClient({ sourceId: 'graph', dispatcher, baseDelayMs: 1, log });
    try {
      const cfg = msGraphDefinition.configSchema.parse({ id: 'graph', ...sandboxSourceConfig(s.sandbox.urlOf('/msgraph')), pageSize: 50 });
      const full = await collect(msGraphDefinition.create(cfg, { http, log }), null, { full: true });
      // An incremental round too: a renamed user comes back partial and is read whole, with its schools.
      const st = s.dataset.list('person').find((p) => p.data.roles.includes('student'))!;
      s.dataset.upsert('person', st.key, { givenName: 'Renamed' });
      s.dataset.upsert('class', s.dataset.list('class')[0]!.key, { title: 'Renamed class' });
      await collect(msGraphDefinition.create(cfg, { http, log }), full.at(-1)!.state);
      const reads = seen.map((r) => ({ ...r, url: new URL(r.path, 'http://graph') })).filter((r) => r.url.pathname.includes('/v1.0/education/'));
      const kinds = new Set<string>();
      for (const r of reads) {
        const p = r.url.pathname.replace(/^.*\/v1\.0\/education/, '').replace(/\/[0-9a-f-]{36}/g, '/{id}');
        kinds.add(p);
        // nextLinks and deltaLinks are followed unchanged: Graph encodes the query options into their tokens.
        const followed = r.url.searchParams.has('$skiptoken') || r.url.searchParams.has('$deltatoken');
        if (!followed) {
          const select = r.url.searchParams.get('$select');
          const want = p === '/schools' ? SCHOOL_SELECT : p === '/users/delta' || p === '/users/{id}' ? USER_SELECT : p === '/classes/delta' ? CLASS_SELECT : 'id';
          expect(select, r.path).toBe(want);
        }
        if (p.endsWith('/delta')) expect(r.prefer, r.path).toBe('odata.maxpagesize=50');
        else if (!followed && ['/schools', '/classes', '/schools/{id}/users', '/schools/{id}/classes'].includes(p)) expect(r.url.searchParams.get('$top'), r.path).toBe('50');
      }
      // Every kind of read was seen: the lists, both delta functions (first round and deltaLink), per-user and per-class reads.
      expect([...kinds].sort()).toEqual(['/classes', '/classes/delta', '/classes/{id}/members', '/classes/{id}/schools', '/classes/{id}/teachers', '/schools', '/schools/{id}/classes', '/schools/{id}/users', '/users/delta', '/users/{id}', '/users/{id}/schools']);
    } finally {
      await http.close();
      await agent.close();
      await s.close();
    }
  });

  it('a 429 waits exactly as long as Retry-After says, then carries on', async () => {
    const s = await start();
    try {
      const waits: number[] = [];
      const http = new HttpClient({ sourceId: 'graph', maxRetries: 3, sleep: async (ms) => void waits.push(ms), log });
      const cfg = msGraphDefinition.configSchema.parse({ id: 'graph', ...sandboxSourceConfig(s.sandbox.urlOf('/msgraph')), pageSize: 50 });
      s.sandbox.faults.inject({ kind: 'status', status: 429, retryAfter: '7' }, { match: /users\/delta$/, times: 2 });
      const pages = await collect(msGraphDefinition.create(cfg, { http, log }), null, { full: true });
      expect(waits).toEqual([7000, 7000]);
      expect(new MiniStore().apply(pages).ofType('person').length).toBeGreaterThan(0);
      await http.close();
    } finally {
      await s.close();
    }
  });

  for (const status of [410, 400] as const) {
    it(`a delta token refused with ${status} leads to a full sync, logged`, async () => {
      const opts: GraphSandboxOptions = {};
      const s = await start(opts);
      const lines: string[] = [];
      const sink = new Writable({ write: (c, _e, cb) => (lines.push(String(c)), cb()) });
      try {
        const full = await collect(s.make(), null, { full: true });
        opts.rejectDeltaTokens = status;
        const cfg = msGraphDefinition.configSchema.parse({ id: 'graph', ...sandboxSourceConfig(s.sandbox.urlOf('/msgraph')), pageSize: 50 });
        const c = msGraphDefinition.create(cfg, { http: testHttp('graph'), log: createLogger({ level: 'warn', destination: sink }) });
        const again = await collect(c, full.at(-1)!.state);
        expect(again.some((p) => p.resource === 'users')).toBe(true);
        expect(new MiniStore().apply(again).records.size).toBe(new MiniStore().apply(full).records.size);
        expect(lines.join('')).toMatch(/"source":"graph".*no longer accepts the delta token: running a full sync/);
      } finally {
        await s.close();
      }
    });
  }
});

describe('msgraph: 410 outside delta', () => {
  it('a 410 on a plain list is a source error naming the resource, not an expired delta token', async () => {
    const s = await start();
    try {
      s.sandbox.faults.inject({ kind: 'status', status: 410 }, { match: /education\/schools$/, times: 1 });
      const err = await collect(s.make(), null, { full: true }).then(() => undefined, (e: unknown) => e);
      expect(err).toBeInstanceOf(RostergateError);
      expect((err as RostergateError).code).toBe('SOURCE_HTTP');
      expect((err as RostergateError).message).toMatch(/gone \(410\)/);
      expect((err as RostergateError).message).not.toMatch(/delta/);
    } finally {
      await s.close();
    }
  });
});

describe('msgraph sandbox against the Graph CSDL', () => {
  itExternal('every property it sends for schools, users and classes is declared on the education types', async () => {
    const csdl = readFileSync(externalPath('microsoft/v1.0-Prod.education-subset.csdl.xml'), 'utf8');
    const props = (type: string) => {
      const m = new RegExp(`<(?:EntityType|ComplexType) Name="${type}"[^>]*>([\\s\\S]*?)</(?:EntityType|ComplexType)>`).exec(csdl);
      expect(m, type).not.toBeNull();
      return new Set([...m![1]!.matchAll(/<(?:Property|NavigationProperty) Name="(\w+)"/g)].map((x) => x[1]!));
    };
    const school = new Set([...props('educationSchool'), ...props('educationOrganization'), 'id']);
    const user = new Set([...props('educationUser'), 'id']);
    const cls = new Set([...props('educationClass'), 'id']);
    // What the connector asks for with $select is declared too.
    for (const [select, declared] of [[SCHOOL_SELECT, school], [USER_SELECT, user], [CLASS_SELECT, cls]] as const) {
      for (const k of select.split(',')) expect(declared, `$select ${k}`).toContain(k);
    }
    const s = await start();
    try {
      const bearer = await token(s);
      for (const [path, declared] of [['/schools', school], ['/users', user], ['/classes', cls]] as const) {
        const r = await request(`${s.sandbox.urlOf('/msgraph')}/v1.0/education${path}`, { headers: { authorization: `Bearer ${bearer}` } });
        const body = (await r.body.json()) as { value: Record<string, unknown>[]; '@odata.context': string };
        expect(body['@odata.context']).toMatch(/\$metadata#/);
        for (const item of body.value) for (const k of Object.keys(item)) if (!k.startsWith('@')) expect(declared, `${path}.${k}`).toContain(k);
      }
      for (const [nested, type] of [['student', 'educationStudent'], ['teacher', 'educationTeacher']] as const) {
        const declared = props(type);
        const r = await request(`${s.sandbox.urlOf('/msgraph')}/v1.0/education/users?$top=999`, { headers: { authorization: `Bearer ${bearer}` } });
        const u = ((await r.body.json()) as { value: Record<string, Record<string, unknown> | null>[] }).value.find((x) => x[nested]);
        for (const k of Object.keys(u![nested]!)) expect(declared, `${nested}.${k}`).toContain(k);
      }
    } finally {
      await s.close();
    }
  });
});

describe('msgraph consent revoked', () => {
  it('a token without the EduRoster permission: the source, Graph\'s code and what to grant', async () => {
    const s = await start({ consentRevoked: true });
    try {
      const e = await collect(s.make(), null).catch((x: unknown) => x);
      expect((e as RostergateError).code).toBe('SOURCE_AUTH');
      expect((e as Error).message).toBe(
        'source graph, resource schools, HTTP 403: access denied (403): the credentials lack a permission or scope this source needs — Graph error Authorization_RequestDenied: '
          + 'grant the app registration the application permission EduRoster.Read.All, with admin consent in this tenant (it may have been revoked)',
      );
    } finally {
      await s.close();
    }
  });
});

describe('msgraph token errors', () => {
  for (const [extra, pattern] of [
    [{ clientSecret: 'wrong' }, /AADSTS7000215\): client secret rejected: check clientSecret/],
    [{ tenantId: 'no-such-tenant' }, /AADSTS90002\): tenant not found: check tenantId/],
    [{ clientId: 'nobody' }, /AADSTS700016\): application not found/],
    [{ secretExpired: true }, /AADSTS7000222\): client secret expired: create a new one in the app registration and update clientSecret/],
  ] as const) {
    it(`names the source and what to fix: ${Object.keys(extra)[0]}`, async () => {
      const s = 'secretExpired' in extra ? await start(extra) : await start({}, extra);
      try {
        const e = await collect(s.make(), null).catch((x: unknown) => x);
        expect((e as RostergateError).code).toBe('SOURCE_AUTH');
        expect((e as Error).message).toMatch(/^source graph, resource token/);
        expect((e as Error).message).toMatch(pattern);
        expect((e as Error).message).not.toContain('wrong');
      } finally {
        await s.close();
      }
    });
  }
});
