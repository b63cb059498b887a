/**
 * personBySignIn: a person synced through each provider's connector (the demo's sandboxes) is found
 * by the id that provider's sign-in token carries — the sandbox's own user id, computed here the
 * way each sandbox mints it — and is returned as the asking purpose sees people.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { join } from 'node:path';
import { request } from 'undici';
import { demoViews, startDemo, type Demo } from '../../src/demo/demo.ts';
import { serveStore } from '../../src/runtime.ts';
import { createLogger } from '../../src/log.ts';
import type { RunningGateway } from '../../src/server/gateway.ts';
import { cleverId } from '../../connectors/clever/sandbox.ts';
import { googleId } from '../../connectors/google-classroom/sandbox.ts';
import { graphId } from '../../connectors/msgraph/sandbox.ts';
import type { SourceType } from '../../connectors/types.ts';
import { openTestStore, storeKinds, tempDir } from '../support/stores.ts';

const log = createLogger({ level: 'silent' });

/* eslint-disable @typescript-eslint/no-explicit-any */
describe.each(storeKinds())('personBySignIn on %s', (kind) => {
  let demo: Demo;
  let gw: RunningGateway;
  beforeAll(async () => {
    demo = await startDemo({ dataDir: join(tempDir(), 'demo'), district: { students: 60, teachers: 6, classes: 9 }, log, store: await openTestStore(kind) });
    gw = await serveStore(demo.store, demo.config, log, { port: 0, privacy: demo.privacy, webhooks: false });
  }, 240_000);
  afterAll(async () => {
    await gw?.close();
    await demo?.close();
  });

  async function gql(client: string, query: string, variables: Record<string, unknown> = {}): Promise<{ data?: any; errors?: { message: string }[] }> {
    const key = demo.keys.find((k) => k.client === client)!.key;
    const r = await request(`${gw.url}/graphql`, { method: 'POST', headers: { 'content-type': 'application/json', 'x-api-key': key }, body: JSON.stringify({ query, variables }) });
    return (await r.body.json()) as any;
  }

  /** A student whom the demo serves through a connector of this type, by dataset key. */
  const studentOf = (type: SourceType) => {
    const view = demoViews(demo.dataset).get(type)!;
    const e = view.list('enrollment').find((x) => x.data.role === 'student')!;
    return demo.dataset.get('person', e.data.personKey)!;
  };

  // What each provider's token carries for a person, as the demo's sandbox of its roster API names them.
  const CASES: [provider: string, type: SourceType, subject: (key: string) => string][] = [
    ['CLEVER', 'clever', (k) => cleverId('person', k)],
    ['GOOGLE', 'google-classroom', (k) => googleId(k)],
    ['MICROSOFT', 'msgraph', (k) => graphId('person', k)],
    ['CLASSLINK', 'oneroster', (k) => k],
    ['ONEROSTER', 'oneroster-csv', (k) => k],
  ];

  const LOOKUP = `query SignIn($p: SignInProvider!, $s: String!) { personBySignIn(provider: $p, subject: $s) { id sisId roles enrollments(first: 50) { edges { node { role class { id } } } } } }`;

  for (const [provider, type, subject] of CASES) {
    it(`${provider}: the subject of its sign-in token finds the person synced from ${type}, with roles and classes`, async () => {
      const p = studentOf(type);
      const r = await gql('lms-demo', LOOKUP, { p: provider, s: subject(p.key) });
      expect(r.errors).toBeUndefined();
      const got = r.data.personBySignIn;
      expect(got.sisId).toBe(p.data.sisId);
      expect(got.roles).toContain('STUDENT');
      expect(got.enrollments.edges.length).toBeGreaterThan(0);
      const theSame = await gql('lms-demo', `{ person(id: "${got.id}") { sisId } }`);
      expect(theSame.data.person.sisId).toBe(p.data.sisId);
    });
  }

  it('a subject no source of the provider holds finds no one; another provider’s id does not match', async () => {
    const p = studentOf('clever');
    expect((await gql('lms-demo', LOOKUP, { p: 'CLEVER', s: 'no-such-user' })).data.personBySignIn).toBeNull();
    // The Clever id of a person is not their Google id: providers are not mixed up.
    expect((await gql('lms-demo', LOOKUP, { p: 'GOOGLE', s: cleverId('person', p.key) })).data.personBySignIn).toBeNull();
    expect((await gql('lms-demo', LOOKUP, { p: 'CLEVER', s: '' })).data.personBySignIn).toBeNull();
  });

  it('sso: id, roles and class memberships only; names and emails are validation errors; audited and ledgered', async () => {
    const p = studentOf('clever');
    const before = (await demo.store.auditEntries({})).length;
    const r = await gql('sso-demo', `query Login($s: String!) { personBySignIn(provider: CLEVER, subject: $s) { id roles enrollments { edges { node { role class { id subjects } } } } } }`, { s: cleverId('person', p.key) });
    expect(r.errors).toBeUndefined();
    const got = r.data.personBySignIn;
    expect(got.roles).toEqual(['STUDENT']);
    expect(got.enrollments.edges.length).toBeGreaterThan(0);
    for (const e of got.enrollments.edges) expect(typeof e.node.class.id).toBe('string');
    const entries = await demo.store.auditEntries({});
    expect(entries.length).toBe(before + 1);
    expect(entries.at(-1)).toMatchObject({ client: 'sso-demo', purpose: 'sso', operation: 'Login', people: 1 });
    expect((await demo.store.disclosuresOf(got.id)).map((d) => d.client)).toContain('sso-demo');

    for (const field of ['givenName', 'email', 'sisId', 'grades']) {
      const denied = await gql('sso-demo', `{ personBySignIn(provider: CLEVER, subject: "${cleverId('person', p.key)}") { ${field} } }`);
      expect(denied.data).toBeUndefined();
      expect(denied.errors![0]!.message).toContain(`Person.${field}`);
    }
    const title = await gql('sso-demo', `{ personBySignIn(provider: CLEVER, subject: "x") { enrollments { edges { node { class { title } } } } } }`);
    expect(title.errors![0]!.message).toContain('Class.title');
  });

  it('analytics is not granted the lookup (its identifiers are pseudonymised): the field does not exist for it', async () => {
    const r = await gql('analytics-demo', `{ personBySignIn(provider: CLEVER, subject: "x") { id } }`);
    expect(r.errors![0]!.message).toContain('personBySignIn');
    const intro = await gql('analytics-demo', `{ __type(name: "Query") { fields { name } } }`);
    expect(intro.data.__type.fields.map((f: any) => f.name)).not.toContain('personBySignIn');
  });
});
