/**
 * The query console at `/` over HTTP: the page and its files as the gateway serves them (offline,
 * cacheable, under a strict CSP), and the examples it offers, each run with its purpose's demo key
 * against the real demo. What the page does in a browser: console-browser.test.ts.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { request } from 'undici';
import { gunzipSync } from 'node:zlib';
import { makeExecutableSchema } from '@graphql-tools/schema';
import { startConsoleDemo, type ConsoleDemo } from '../support/console-demo.ts';
import { createLogger } from '../../src/log.ts';
import { startGateway } from '../../src/server/gateway.ts';
import { DEFAULT_EXAMPLES, landingPage } from '../../src/server/landing.ts';
import { DEMO_CLIENTS, DEMO_PURPOSES } from '../../src/demo/demo-policy.ts';

/* eslint-disable @typescript-eslint/no-explicit-any */
const configOf = (html: string) => JSON.parse(/<script type="application\/json" id="rg-config">([\s\S]*?)<\/script>/.exec(html)![1]!);
const scriptsOf = (html: string) => [...html.matchAll(/<script\b([^>]*)>/g)].map((m) => m[1]!);
const assetUrls = (html: string) => [...html.matchAll(/(?:src|href)="(\/console\/[^"]+)"/g)].map((m) => m[1]!);

describe('the query console', () => {
  let c: ConsoleDemo;
  let html: string;
  beforeAll(async () => {
    c = await startConsoleDemo();
    html = await (await request(`${c.gw.url}/`)).body.text();
  }, 240_000);
  afterAll(async () => {
    await c?.close();
  });

  async function run(key: string, query: string, variables?: Record<string, unknown>) {
    const r = await request(`${c.gw.url}/graphql`, { method: 'POST', headers: { 'content-type': 'application/json', 'x-api-key': key }, body: JSON.stringify({ query, variables }) });
    return { status: r.statusCode, body: (await r.body.json()) as { data?: any; errors?: { message: string }[] } };
  }

  it('offers every demo client with its purpose and key, and an example for every demo purpose', () => {
    const config = configOf(html);
    expect(config.endpoint).toBe('/graphql');
    expect(config.demoKeys).toEqual(DEMO_CLIENTS.map((d) => ({ client: d.id, purpose: d.purpose, key: c.keyOf(d.purpose) })));
    expect(config.examples.map((e: any) => e.purpose).sort()).toEqual(Object.keys(DEMO_PURPOSES).sort());
    expect(html).toMatch(/<select id="rg-client">/);
  });

  it('each purpose’s example runs with that purpose’s key and answers what the purpose may see', async () => {
    const answers: Record<string, any> = {};
    for (const ex of c.examples) {
      const r = await run(c.keyOf(ex.purpose!), ex.query, ex.variables);
      expect(r.body.errors, `${ex.purpose}: ${JSON.stringify(r.body.errors)}`).toBeUndefined();
      expect(r.status).toBe(200);
      answers[ex.purpose!] = r.body.data;
    }
    const rosterPerson = answers['roster-sync'].schools.edges[0].node.classes.edges[0].node.enrollments.edges[0].node.person;
    expect(rosterPerson.givenName).toEqual(expect.any(String));
    // Analytics: people as pseudonyms (not the gateway ids the LMS gets), with a grade band.
    const analyticsPeople = answers.analytics.classes.edges.flatMap((e: any) => e.node.enrollments.edges.map((x: any) => x.node.person));
    expect(analyticsPeople.length).toBeGreaterThan(0);
    for (const p of analyticsPeople) expect(p).toEqual({ id: expect.not.stringMatching(/^per_/), gradeBand: expect.any(String), demographics: expect.anything() });
    // The sign-in example names a student who exists: found, with roles and classes.
    const signedIn = answers.sso.personBySignIn;
    expect(signedIn.roles).toEqual(['STUDENT']);
    expect(signedIn.enrollments.edges.length).toBeGreaterThan(0);
    expect(answers.admin.people.edges[0].node.sources.length).toBeGreaterThan(0);
  });

  it('an example is written for its purpose: the LMS example is refused to analytics, naming why', async () => {
    const roster = c.examples.find((e) => e.purpose === 'roster-sync')!;
    const r = await run(c.keyOf('analytics'), roster.query);
    expect(r.status).toBe(400);
    expect(r.body.errors!.map((e) => e.message).join('\n')).toMatch(/the purpose "analytics" (does not allow|withholds) /);
  });

  it('serves GraphiQL, React and its own files from the gateway, with their content types, immutable caching and gzip', async () => {
    const urls = assetUrls(html);
    expect(urls.map((u) => u.split('/').pop()).sort()).toEqual(['console.css', 'console.js', 'graphiql.css', 'graphiql.js', 'react-dom.js', 'react.js']);
    for (const url of urls) {
      const plain = await request(`${c.gw.url}${url}`);
      const body = Buffer.from(await plain.body.arrayBuffer());
      expect(plain.statusCode).toBe(200);
      expect(plain.headers['content-type']).toBe(url.endsWith('.css') ? 'text/css; charset=utf-8' : 'text/javascript; charset=utf-8');
      expect(plain.headers['cache-control']).toBe('public, max-age=31536000, immutable');
      expect(plain.headers['x-content-type-options']).toBe('nosniff');
      expect(Number(plain.headers['content-length'])).toBe(body.length);
      // Source maps are not served, so the files do not point at them.
      expect(body.toString('utf8')).not.toMatch(/sourceMappingURL/);
      const zipped = await request(`${c.gw.url}${url}`, { headers: { 'accept-encoding': 'gzip' } });
      expect(zipped.headers['content-encoding']).toBe('gzip');
      expect(gunzipSync(Buffer.from(await zipped.body.arrayBuffer())).equals(body)).toBe(true);
    }
    const graphiql = urls.find((u) => u.endsWith('/graphiql.js'))!;
    const stale = graphiql.replace(/\/console\/[^/]+\//, '/console/an-old-hash/');
    expect((await request(`${c.gw.url}${stale}`)).statusCode).toBe(404);
    expect((await request(`${c.gw.url}${graphiql}`, { method: 'POST' })).statusCode).toBe(405);
  });

  it('is served under a CSP with scripts and styles from its own origin only: no inline code, no eval, no CDN', async () => {
    const r = await request(`${c.gw.url}/`);
    await r.body.dump();
    expect(r.headers).toMatchObject({ 'x-frame-options': 'DENY', 'x-content-type-options': 'nosniff', 'referrer-policy': 'no-referrer', 'cache-control': 'no-store' });
    const policy = String(r.headers['content-security-policy']);
    const csp = Object.fromEntries(policy.split(/;\s*/).map((d) => [d.split(' ')[0], d.split(' ').slice(1)]));
    expect(csp).toEqual({
      'default-src': ["'none'"], 'script-src': ["'self'"], 'style-src': ["'self'"], 'font-src': ['data:'], 'img-src': ['data:'],
      'connect-src': ["'self'"], 'base-uri': ["'none'"], 'form-action': ["'none'"], 'frame-ancestors': ["'none'"],
    });
    expect(policy).not.toMatch(/unsafe-inline|unsafe-eval|https?:/);
    // Every script element is a file from this origin or the JSON data block, which a browser never runs.
    for (const attrs of scriptsOf(html)) expect(attrs).toMatch(/^ src="\/console\/[^"]+"$|^ type="application\/json" id="rg-config"$/);
    expect(html).not.toMatch(/<style|\son[a-z]+=|\sstyle=|https?:\/\//i);
  });

  it('keeps the page’s data block closed whatever an example contains', () => {
    const hostile = '# </script><script>alert(1)</script> \u2028';
    const page = landingPage({ examples: [{ title: 'x</script>', query: hostile }] });
    expect(configOf(page).examples).toEqual([{ title: 'x</script>', query: hostile }]);
    expect(page.match(/<\/script>/g)!.length).toBe(scriptsOf(page).length);
  });

  it('without demo keys (a real deployment): no client picker, no keys in the page, the default example', async () => {
    const schema = makeExecutableSchema({ typeDefs: 'type Query { ok: String }', resolvers: { Query: { ok: () => 'ok' } } });
    const g = await startGateway({ schemas: { default: { schema } }, context: async () => ({}), port: 0, log: createLogger({ level: 'silent' }) });
    try {
      const page = await (await request(`${g.url}/`)).body.text();
      expect(page).not.toMatch(/rg-client/);
      expect(configOf(page)).toEqual({ endpoint: '/graphql', examples: DEFAULT_EXAMPLES, demoKeys: [] });
    } finally {
      await g.close();
    }
  });
});
