/**
 * The vendor sandboxes serve a page with work in proportion to the page, not to the district:
 * counted with `sandboxWork` (indexes built, cursor comparisons, records rendered), never timed.
 * A sandbox that re-sorts, re-renders or scans the resource for each page fails these counts.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { SignJWT, importPKCS8 } from 'jose';
import { RosterDataset } from '../../src/demo/dataset.ts';
import { prepareIndexes, sandboxWork, type SandboxApp, type SandboxHandler, type SandboxResponse } from '../../connectors/sandbox-kit.ts';
import { CLEVER_SANDBOX_TOKEN, cleverId, cleverSandbox } from '../../connectors/clever/sandbox.ts';
import { ONEROSTER_SANDBOX_CLIENT_ID, ONEROSTER_SANDBOX_CLIENT_SECRET, oneRosterSandbox, V12 } from '../../connectors/oneroster/sandbox.ts';
import { graphId, graphSandbox, MSGRAPH_SANDBOX_CLIENT_ID, MSGRAPH_SANDBOX_CLIENT_SECRET, MSGRAPH_SANDBOX_TENANT } from '../../connectors/msgraph/sandbox.ts';
import { GOOGLE_SANDBOX_ADMIN, googleSandbox, sandboxServiceAccountKey } from '../../connectors/google-classroom/sandbox.ts';

const BASE = 'http://sandbox.test';

/** A sandbox handler called directly (no HTTP: the counts are about the handler alone). */
function mount(app: SandboxApp, dataset: RosterDataset) {
  const h: SandboxHandler = app.create({ dataset, baseUrl: BASE + app.prefix });
  return async (path: string, init: { method?: string; headers?: Record<string, string>; body?: string } = {}) => {
    const url = new URL(BASE + app.prefix + path);
    const res: SandboxResponse = await h.handle({ method: init.method ?? 'GET', url, path: url.pathname.slice(app.prefix.length), headers: init.headers ?? {}, body: init.body ?? '' });
    expect(res.status, `${path}: ${JSON.stringify(res.body).slice(0, 200)}`).toBe(200);
    return res;
  };
}

/** The work of one request, after a warm-up request has built the version's indexes. */
async function workOf<T>(fn: () => Promise<T>): Promise<{ result: T; builds: number; indexed: number; compared: number; rendered: number }> {
  sandboxWork.reset();
  const result = await fn();
  return { result, builds: sandboxWork.builds, indexed: sandboxWork.indexed, compared: sandboxWork.compared, rendered: sandboxWork.rendered };
}

const districts: Record<'small' | 'large', RosterDataset> = {} as never;
beforeAll(() => {
  districts.small = RosterDataset.generate({ students: 300 });
  districts.large = RosterDataset.generate({ students: 4000 });
});

describe('Clever sandbox', () => {
  const LIMIT = 50;
  async function deepPage(ds: RosterDataset) {
    const get = mount(cleverSandbox(), ds);
    const auth = { headers: { authorization: `Bearer ${CLEVER_SANDBOX_TOKEN}` } };
    await get(`/v3.0/users?limit=${LIMIT}`, auth);
    const ids = ds.list('person').map((p) => cleverId('person', p.key)).sort();
    const cursor = ids[Math.floor(ids.length * 0.8)]!;
    const w = await workOf(() => get(`/v3.0/users?limit=${LIMIT}&starting_after=${cursor}`, auth));
    const body = w.result.body as { data: { data: { id: string } }[]; links: { rel: string }[] };
    return { ...w, ids, cursor, body, get, auth };
  }

  it('serves a starting_after page deep in the users by binary search, rendering only the page', async () => {
    const { ids, cursor, body, builds, compared, rendered } = await deepPage(districts.large);
    const at = ids.indexOf(cursor);
    expect(body.data.map((x) => x.data.id)).toEqual(ids.slice(at + 1, at + 1 + LIMIT));
    expect(body.links.map((l) => l.rel)).toEqual(['self', 'next', 'prev']);
    expect(builds).toBe(0);
    expect(rendered).toBe(LIMIT);
    expect(compared).toBeLessThanOrEqual(Math.ceil(Math.log2(ids.length)) + 1);
  });

  it('does the same work for a page whatever the size of the district (bar one comparison per doubling)', async () => {
    const small = await deepPage(districts.small);
    const large = await deepPage(districts.large);
    expect(large.ids.length).toBeGreaterThan(8 * small.ids.length);
    expect(large.rendered).toBe(small.rendered);
    expect(large.compared - small.compared).toBeLessThanOrEqual(Math.ceil(Math.log2(large.ids.length / small.ids.length)) + 1);
  });

  it('ending_before pages backwards by the same search; a change rebuilds the indexes once', async () => {
    const ds = RosterDataset.generate({ students: 300 });
    const { ids, get, auth } = await deepPage(ds);
    const before = ids[200]!;
    const w = await workOf(() => get(`/v3.0/users?limit=${LIMIT}&ending_before=${before}`, auth));
    expect((w.result.body as { data: { data: { id: string } }[] }).data.map((x) => x.data.id)).toEqual(ids.slice(200 - LIMIT, 200));
    expect(w.rendered).toBe(LIMIT);
    const p = ds.list('person')[0]!;
    ds.upsert('person', p.key, { middleName: 'Changed' });
    const after = await workOf(() => get(`/v3.0/users/${cleverId('person', p.key)}`, auth));
    expect(after.builds).toBe(1);
    expect((after.result.body as { data: { name: { middle: string } } }).data.name.middle).toBe('Changed');
  });
});

describe('OneRoster sandbox', () => {
  async function start(ds: RosterDataset) {
    const get = mount(oneRosterSandbox(), ds);
    const token = await get('/token', {
      method: 'POST',
      headers: { authorization: `Basic ${Buffer.from(`${ONEROSTER_SANDBOX_CLIENT_ID}:${ONEROSTER_SANDBOX_CLIENT_SECRET}`).toString('base64')}` },
      body: 'grant_type=client_credentials',
    });
    const auth = { headers: { authorization: `Bearer ${(token.body as { access_token: string }).access_token}` } };
    await get(`${V12}/users?limit=10`, auth);
    return { get, auth };
  }

  it('serves an offset page of users rendering only the page, in key order', async () => {
    const ds = districts.large;
    const { get, auth } = await start(ds);
    const offset = Math.floor(ds.list('person').length * 0.7);
    const w = await workOf(() => get(`${V12}/users?limit=100&offset=${offset}`, auth));
    expect((w.result.body as { users: { sourcedId: string }[] }).users.map((u) => u.sourcedId)).toEqual(ds.list('person').slice(offset, offset + 100).map((p) => p.key));
    expect(w.result.headers?.['x-total-count']).toBe(String(ds.list('person').length));
    expect(w).toMatchObject({ builds: 0, rendered: 100 });
  });

  it('answers a dateLastModified filter from its index: the changed records only, rendered once each', async () => {
    const ds = RosterDataset.generate({ students: 2000 });
    const { get, auth } = await start(ds);
    const since = new Date(Date.now() - 1000).toISOString();
    const changed = ds.list('course').slice(0, 5).map((c) => ds.upsert('course', c.key, { title: `${c.data.title} (renamed)` }).key);
    const url = `${V12}/courses?limit=3&filter=${encodeURIComponent(`dateLastModified>'${since}'`)}`;
    const first = await workOf(() => get(url, auth));
    expect(first.builds).toBe(1);
    const second = await workOf(() => get(`${url}&offset=3`, auth));
    const keys = [...(first.result.body as { courses: { sourcedId: string }[] }).courses, ...(second.result.body as { courses: { sourcedId: string }[] }).courses].map((c) => c.sourcedId);
    expect(keys).toEqual([...changed].sort());
    expect(second.result.headers?.['x-total-count']).toBe('5');
    // The second page of the same filter reuses the first's listing: no index, no scan.
    expect(second).toMatchObject({ builds: 0, rendered: 2 });
    expect(second.compared).toBe(0);
  });

  it('re-indexes the district after a change when asked (prepareIndexes), so the next delta query costs only its page', async () => {
    const ds = RosterDataset.generate({ students: 2000 });
    const { get, auth } = await start(ds);
    const since = new Date(Date.now() - 1000).toISOString();
    const filter = (resource: string) => `${V12}/${resource}?limit=50&filter=${encodeURIComponent(`dateLastModified>'${since}'`)}`;
    // Lazily: the first delta query after a change re-indexes the whole resource.
    ds.upsert('course', ds.list('course')[0]!.key, { title: 'Renamed A' });
    const lazy = await workOf(() => get(filter('courses'), auth));
    expect(lazy.builds).toBe(1);
    expect(lazy.indexed).toBeGreaterThanOrEqual(ds.list('course').length);
    // Prepared: the change's cost is paid when asked; the queries that follow index nothing.
    const student = ds.list('person').find((p) => p.data.roles.includes('student'))!;
    ds.upsert('person', student.key, { familyName: 'Renamed-B' });
    sandboxWork.reset();
    prepareIndexes(ds);
    expect(sandboxWork.builds).toBe(1);
    expect(sandboxWork.indexed).toBeGreaterThanOrEqual(ds.listWithDeleted('person').length + ds.listWithDeleted('enrollment').length);
    const users = await workOf(() => get(filter('users'), auth));
    expect((users.result.body as { users: { sourcedId: string }[] }).users.map((u) => u.sourcedId)).toContain(student.key);
    const enrollments = await workOf(() => get(filter('enrollments'), auth));
    for (const w of [users, enrollments]) expect(w).toMatchObject({ builds: 0, indexed: 0 });
  });
});

describe('Microsoft Graph sandbox', () => {
  it('serves a $skiptoken page of users rendering only the page', async () => {
    const ds = districts.large;
    const get = mount(graphSandbox(), ds);
    const token = await get(`/${MSGRAPH_SANDBOX_TENANT}/oauth2/v2.0/token`, {
      method: 'POST',
      body: new URLSearchParams({ grant_type: 'client_credentials', client_id: MSGRAPH_SANDBOX_CLIENT_ID, client_secret: MSGRAPH_SANDBOX_CLIENT_SECRET, scope: 'https://graph.microsoft.com/.default' }).toString(),
    });
    const auth = { headers: { authorization: `Bearer ${(token.body as { access_token: string }).access_token}` } };
    const first = await get('/v1.0/education/users?$top=100', auth);
    const next = new URL((first.body as { '@odata.nextLink': string })['@odata.nextLink']);
    const users = ds.list('person').filter((p) => !p.data.roles.includes('guardian'));
    const w = await workOf(() => get(`/v1.0/education/users?$top=100&$skiptoken=${next.searchParams.get('$skiptoken')}`, auth));
    expect((w.result.body as { value: { id: string }[] }).value.map((u) => u.id)).toEqual(users.slice(100, 200).map((p) => graphId('person', p.key)));
    expect(w).toMatchObject({ builds: 0, rendered: 100 });
  });
});

describe('Google Classroom sandbox', () => {
  it('serves a page of courses and a course roster without rendering the district', async () => {
    const ds = districts.large;
    const get = mount(googleSandbox(), ds);
    const key = sandboxServiceAccountKey(`${BASE}/google/token`);
    const now = Math.floor(Date.now() / 1000);
    const assertion = await new SignJWT({ scope: 'https://www.googleapis.com/auth/classroom.rosters.readonly https://www.googleapis.com/auth/classroom.courses.readonly' })
      .setProtectedHeader({ alg: 'RS256' })
      .setIssuer(key.client_email).setSubject(GOOGLE_SANDBOX_ADMIN).setAudience(`${BASE}/google/token`).setIssuedAt(now).setExpirationTime(now + 3600)
      .sign(await importPKCS8(key.private_key, 'RS256'));
    const token = await get('/token', { method: 'POST', body: new URLSearchParams({ grant_type: 'urn:ietf:params:oauth:grant-type:jwt-bearer', assertion }).toString() });
    const auth = { headers: { authorization: `Bearer ${(token.body as { access_token: string }).access_token}` } };
    const first = await get('/v1/courses?pageSize=20', auth);
    const course = (first.body as { courses: { id: string }[]; nextPageToken: string }).courses[0]!;
    const w = await workOf(() => get(`/v1/courses?pageSize=20&pageToken=${(first.body as { nextPageToken: string }).nextPageToken}`, auth));
    expect(w).toMatchObject({ builds: 0, rendered: 20 });
    expect((w.result.body as { courses: unknown[] }).courses).toHaveLength(20);
    const roster = await workOf(() => get(`/v1/courses/${course.id}/students`, auth));
    const students = (roster.result.body as { students: unknown[] }).students;
    expect(students.length).toBeGreaterThan(0);
    expect(roster).toMatchObject({ builds: 0, rendered: students.length });
  });
});
