/**
 * Purpose-bound views end to end over HTTP with the demo purposes: the same nested query gives
 * names to roster-sync and pseudonyms and generalised values to analytics; denied fields are
 * validation errors naming the purpose; requests without a valid key get 401.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { privateGateway, type PrivateGateway } from '../support/privacy.ts';
import { join } from 'node:path';
import { storeKinds, tempDir } from '../support/stores.ts';
import { SqliteStore } from '../../src/store/sqlite.ts';
import { parseConfig } from '../../src/config/config.ts';
import { serveStore } from '../../src/runtime.ts';
import { createLogger } from '../../src/log.ts';
import { request } from 'undici';
import { createHash } from 'node:crypto';

let g: PrivateGateway;

const NESTED = `{ classes(first: 3) { edges { node { subjects enrollments(role: STUDENT, first: 5) { edges { node { person { id PERSON } } } } } } } }`;

describe.each(storeKinds())('on %s', (kind) => {
beforeAll(async () => {
  g = await privateGateway(undefined, undefined, { store: kind });
});
afterAll(() => g?.close());

describe('purpose-bound views', () => {
  it('roster-sync gets names; analytics gets pseudonyms and generalised values for the same query', async () => {
    const lms = await g.gql('lms-demo', NESTED.replace('PERSON', 'givenName familyName grades'));
    expect(lms.status).toBe(200);
    const lmsPeople = lms.body.data.classes.edges.flatMap((c: any) => c.node.enrollments.edges.map((e: any) => e.node.person));
    const names = new Set(g.dataset.list('person').map((p) => p.data.givenName));
    expect(lmsPeople.length).toBeGreaterThan(5);
    for (const p of lmsPeople) expect(names).toContain(p.givenName);

    const an = await g.gql('analytics-demo', NESTED.replace('PERSON', 'gradeBand demographics { birthYear ageBand }'));
    expect(an.status).toBe(200);
    const anPeople = an.body.data.classes.edges.flatMap((c: any) => c.node.enrollments.edges.map((e: any) => e.node.person));
    expect(anPeople.length).toBe(lmsPeople.length);
    for (const p of anPeople) {
      expect(p.id).toMatch(/^p1_[A-Za-z0-9_-]{22}$/);
      expect(p.gradeBand).toMatch(/^(PK|K-2|3-5|6-8|9-12|mixed)$/);
      expect(typeof p.demographics.birthYear).toBe('number');
      expect(p.demographics.ageBand).toMatch(/^\d+-\d+$|^18\+$/);
    }
    // Pseudonyms are not the gateway ids the LMS sees.
    expect(anPeople.map((p: any) => p.id)).not.toEqual(lmsPeople.map((p: any) => p.id));
  });

  it('analytics asking for email is a validation error naming the field and the purpose', async () => {
    const r = await g.gql('analytics-demo', `{ people(first: 1) { edges { node { email } } } }`);
    expect(r.status).toBe(400);
    expect(r.body.errors![0].message).toMatch(/Cannot query field "email" on type "Person": the purpose "analytics" does not allow Person.email \(DIRECT\)/);
  });

  it('introspection shows each client only what it may have', async () => {
    const q = `{ __type(name: "Person") { fields { name type { kind name ofType { name } } } } }`;
    const an = await g.gql('analytics-demo', q);
    const fields = an.body.data.__type.fields.map((f: any) => f.name);
    for (const denied of ['givenName', 'familyName', 'email', 'username', 'sisId', 'stateId', 'studentNumber', 'grades', 'organizations']) expect(fields).not.toContain(denied);
    const src = await g.gql('analytics-demo', `{ __type(name: "SourceRef") { fields { name } } }`);
    expect(src.body.data.__type.fields.map((f: any) => f.name)).toEqual(['source', 'system', 'lastModified']);
    const id = an.body.data.__type.fields.find((f: any) => f.name === 'id');
    expect(id.type.ofType.name).toBe('Pseudonym');
    const lms = await g.gql('lms-demo', q);
    const lmsFields = lms.body.data.__type.fields.map((f: any) => f.name);
    expect(lmsFields).toContain('email');
    expect(lmsFields).not.toContain('photoUrl');
    const demo = await g.gql('lms-demo', `{ __type(name: "Demographics") { fields { name } } }`);
    expect(demo.body.data.__type.fields.map((f: any) => f.name)).not.toContain('iep');
    // Types only denied fields or admin operations use, and the classification directives, are gone too.
    const schemaOf = async (client: string) => {
      const r = await g.gql(client, `{ __schema { types { name } directives { name } } }`);
      return { types: r.body.data.__schema.types.map((t: any) => t.name), directives: r.body.data.__schema.directives.map((d: any) => d.name) };
    };
    const an2 = await schemaOf('analytics-demo');
    for (const t of ['Webhook', 'WebhookCreated', 'DeliveryStatus', 'FreeReducedLunch', 'Sex', 'EmailAddress', 'PiiCategory']) expect(an2.types).not.toContain(t);
    expect(an2.types).toEqual(expect.arrayContaining(['Person', 'Pseudonym', 'Demographics', 'Class']));
    expect(an2.directives.filter((d: string) => ['pii', 'generalises', 'admin'].includes(d))).toEqual([]);
    const lms2 = await schemaOf('lms-demo');
    expect(lms2.types).toEqual(expect.arrayContaining(['Sex', 'EmailAddress']));
    for (const t of ['FreeReducedLunch', 'Webhook', 'Pseudonym']) expect(lms2.types).not.toContain(t);
    expect((await schemaOf('admin-demo')).types).toEqual(expect.arrayContaining(['Webhook', 'WebhookCreated', 'DeliveryStatus']));
  });

  it('requests without a valid key get 401, whether sent as x-api-key or as a bearer token', async () => {
    expect((await g.gql('', `{ schools { totalCount } }`)).status).toBe(401);
    expect((await g.gql('rgk_not-a-real-key', `{ schools { totalCount } }`)).status).toBe(401);
    const post = async (headers: Record<string, string>) => {
      const r = await request(`${g.gw.url}/graphql`, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: JSON.stringify({ query: '{ schools { totalCount } }' }) });
      const body = (await r.body.json()) as { data?: unknown; errors?: { extensions: { code: string } }[] };
      return { status: r.statusCode, body, challenge: r.headers['www-authenticate'] };
    };
    const key = g.keys['admin-demo']!;
    expect((await post({ authorization: `Bearer ${key}` })).status).toBe(200);
    expect((await post({ authorization: `bearer ${key}` })).status).toBe(200);
    const bad = await post({ authorization: 'Bearer rgk_not-a-real-key' });
    expect(bad.status).toBe(401);
    expect(bad.body.errors![0]!.extensions.code).toBe('UNAUTHENTICATED');
    expect(bad.body.data).toBeUndefined();
    expect(bad.challenge).toBeDefined();
    expect((await post({ authorization: `Basic ${Buffer.from(`admin:${key}`).toString('base64')}` })).status).toBe(401);
    expect((await post({ authorization: 'Bearer' })).status).toBe(401);
    // A GET carries no body to fail on: it is refused all the same.
    const get = await request(`${g.gw.url}/graphql?query=${encodeURIComponent('{ schools { totalCount } }')}`);
    expect(get.statusCode).toBe(401);
    await get.body.dump();
    await g.store.revokeApiKeys('lms-demo', new Date().toISOString());
    expect((await g.gql('lms-demo', `{ schools { totalCount } }`)).status).toBe(401);
  });

  it('pseudonyms are stable across queries and syncs; person(id:) and cursors work with them', async () => {
    const q = `query($after: Cursor) { people(role: STUDENT, first: 50, after: $after) { pageInfo { endCursor hasNextPage } edges { cursor node { id } } } }`;
    const a = await g.gql('analytics-demo', q);
    const b = await g.gql('analytics-demo', q);
    expect(b.body.data.people.edges.map((e: any) => e.node.id)).toEqual(a.body.data.people.edges.map((e: any) => e.node.id));
    // A cursor reveals no gateway id: it is sealed, and differs each time it is issued.
    const cursor = a.body.data.people.pageInfo.endCursor;
    expect(Buffer.from(cursor, 'base64url').toString('latin1')).not.toMatch(/per_/);
    expect(cursor).not.toBe(b.body.data.people.pageInfo.endCursor);
    const next = await g.gql('analytics-demo', q, { after: cursor });
    const ids = [...a.body.data.people.edges, ...next.body.data.people.edges].map((e: any) => e.node.id);
    expect(new Set(ids).size).toBe(ids.length);
    const one = a.body.data.people.edges[3].node.id;
    const p = await g.gql('analytics-demo', `query($id: Pseudonym!) { person(id: $id) { id gradeBand } }`, { id: one });
    expect(p.body.data.person.id).toBe(one);
    // node(id:) finds a person by pseudonym too (it returns the union AnyRecord here, Person being no
    // Node), while records whose ids the purpose does not see (people, enrollments by gateway id)
    // are not found.
    const byNode = (client: string, id: string) => g.gql(client, `query($id: ID!) { node(id: $id) { __typename } }`, { id });
    const asNode = await g.gql('analytics-demo', `query($id: ID!) { node(id: $id) { __typename ... on Person { id gradeBand } } }`, { id: one });
    expect(asNode.body).toEqual({ data: { node: { __typename: 'Person', id: one, gradeBand: p.body.data.person.gradeBand } } });
    const nodeType = await g.gql('analytics-demo', `{ __schema { queryType { fields { name type { kind name } } } } __type(name: "AnyRecord") { possibleTypes { name } } }`);
    expect(nodeType.body.data.__schema.queryType.fields.find((f: any) => f.name === 'node').type).toEqual({ kind: 'UNION', name: 'AnyRecord' });
    expect(nodeType.body.data.__type.possibleTypes.map((t: any) => t.name)).toEqual(expect.arrayContaining(['Person', 'Class', 'Organization']));
    expect(nodeType.body.data.__type.possibleTypes.map((t: any) => t.name)).not.toContain('Enrollment');
    // A pseudonym from another domain's version that does not exist finds nothing.
    expect((await byNode('analytics-demo', one.replace(/^p1_/, 'p9_'))).body).toEqual({ data: { node: null } });
    const gatewayPerson = (await g.store.list({ type: 'person', first: 1 })).rows[0]!.id;
    const gatewayEnrollment = (await g.store.list({ type: 'enrollment', first: 1 })).rows[0]!.id;
    for (const id of [gatewayPerson, gatewayEnrollment]) expect((await byNode('analytics-demo', id)).body).toEqual({ data: { node: null } });
    const cls = (await g.gql('analytics-demo', `{ classes(first: 1) { edges { node { id } } } }`)).body.data.classes.edges[0].node.id;
    expect((await byNode('analytics-demo', cls)).body).toEqual({ data: { node: { __typename: 'Class' } } });
    expect((await byNode('admin-demo', gatewayPerson)).body.data.node.__typename).toBe('Person');
    await g.resync();
    const c = await g.gql('analytics-demo', q);
    expect(c.body.data.people.edges.map((e: any) => e.node.id)).toEqual(a.body.data.people.edges.map((e: any) => e.node.id));
  });

  it('every request is audited with client, purpose, categories and people; disclosures are recorded', async () => {
    const before = (await g.store.auditEntries({})).length;
    await g.gql('admin-demo', `query AdminLook { people(role: STUDENT, first: 7) { edges { node { givenName email demographics { birthDate } } } } }`);
    const entries = await g.store.auditEntries({});
    expect(entries.length).toBe(before + 1);
    const e = entries.at(-1)!;
    expect(e).toMatchObject({ client: 'admin-demo', purpose: 'admin', kind: 'query', operation: 'AdminLook', people: 7 });
    expect(e.categories).toMatchObject({ DIRECT: 2, QUASI: 1 });
    expect(e.fields).toContain('Person.email');
    const someone = (await g.store.list({ type: 'person', first: 1, hasValue: { field: 'roles', value: 'student' } })).rows[0]!;
    expect((await g.store.disclosuresOf(someone.id)).map((d) => d.client)).toContain('admin-demo');
  });

  it('the audit entry carries the operation hash, and a pseudonymised request is audited and ledgered too', async () => {
    const query = `query Cohort { classes(first: 2) { edges { node { subjects enrollments(first: 3) { edges { node { person { id gradeBand demographics { birthYear } } } } } } } } }`;
    const r = await g.gql('analytics-demo', query);
    expect(r.body.errors).toBeUndefined();
    const e = (await g.store.auditEntries({})).at(-1)!;
    const returned = new Set(r.body.data.classes.edges.flatMap((c: any) => c.node.enrollments.edges.map((x: any) => x.node.person.id)));
    expect(e).toMatchObject({
      client: 'analytics-demo', purpose: 'analytics', operation: 'Cohort',
      operationHash: createHash('sha256').update(query).digest('hex').slice(0, 32),
      people: returned.size,
    });
    expect(e.fields).toEqual(expect.arrayContaining(['Person.id', 'Person.gradeBand', 'Demographics.birthYear']));
    expect(e.categories).toMatchObject({ IDENTIFIER: 1, QUASI: 2 });
    // The ledger holds gateway ids (for erasure notices), never the pseudonyms the client saw.
    const gatewayIds = await Promise.all([...returned].map((p) => g.store.entityByPseudonym('analytics', p as string)));
    for (const id of gatewayIds) expect((await g.store.disclosuresOf(id!)).map((d) => d.client)).toContain('analytics-demo');
    // A refused request (a denied field) is audited as an attempt that returned no one.
    await g.gql('analytics-demo', `query Snoop { people(first: 1) { edges { node { email } } } }`);
    expect((await g.store.auditEntries({})).at(-1)).toMatchObject({ client: 'analytics-demo', operation: 'Snoop', people: 0 });
  });

  it('queries read materialised pseudonyms: no HMAC is computed while serving', async () => {
    const ring = g.privacy.keyring;
    const original = ring.pseudonym.bind(ring);
    let calls = 0;
    ring.pseudonym = (...a: Parameters<typeof ring.pseudonym>) => {
      calls++;
      return original(...a);
    };
    try {
      const r = await g.gql('analytics-demo', `{ people(first: 100) { edges { node { id enrollments(first: 5) { edges { node { class { subjects } } } } } } } }`);
      expect(r.body.data.people.edges.length).toBeGreaterThan(50);
      expect(calls).toBe(0);
    } finally {
      ring.pseudonym = original;
    }
  });

  it('a repeated query finds its pseudonyms in the process cache: the store is asked once, and the answers agree', async () => {
    const original = g.store.pseudonymsOf.bind(g.store);
    let asked = 0;
    g.store.pseudonymsOf = async (...a: Parameters<typeof original>) => {
      asked += a[2].length;
      return original(...a);
    };
    try {
      const q = `{ classes(first: 7) { edges { node { enrollments(role: STUDENT, first: 9) { edges { node { person { id } } } } } } } }`;
      const ids = (r: { body: { data?: any } }) => r.body.data.classes.edges.flatMap((c: any) => c.node.enrollments.edges.map((e: any) => e.node.person.id)).sort();
      const first = await g.gql('analytics-demo', q);
      const afterFirst = asked;
      const second = await g.gql('analytics-demo', q);
      expect(ids(first).length).toBeGreaterThan(20);
      expect(ids(second)).toEqual(ids(first));
      expect(asked).toBe(afterFirst);
      // Each one is the person's materialised pseudonym in the analytics domain.
      const gid = (await g.store.entityByPseudonym('analytics', ids(first)[0]))!;
      expect(gid).toMatch(/^per_/);
    } finally {
      g.store.pseudonymsOf = original;
    }
  });
});

});

describe('open access (no purposes, no keys)', () => {
  it('is refused on any host but a loopback address', async () => {
    const path = join(tempDir(), 'open.db');
    const store = SqliteStore.open(path);
    try {
      const cfg = parseConfig({ store: path, server: { openAccess: true, host: '0.0.0.0' } });
      await expect(serveStore(store, cfg, createLogger({ level: 'silent' }), { port: 0 })).rejects.toThrow(/openAccess .* only on a loopback host .* not 0\.0\.0\.0/);
      const local = await serveStore(store, cfg, createLogger({ level: 'silent' }), { port: 0, host: '127.0.0.1' });
      await local.close();
    } finally {
      await store.close();
    }
  });
});
