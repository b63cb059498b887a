/**
 * Client authentication by JWT over HTTP, beside API keys, against a loopback identity provider
 * that serves its JWKS: a valid token gets its client's purpose schema; every kind of bad token
 * gets 401 with the reason in the challenge and the body (never the token); a rotated key works
 * once the JWKS is fetched again; extracts accept tokens too; per-client rate limits answer 429
 * with Retry-After and let the client through again once it has waited.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { request } from 'undici';
import { exportJWK, generateKeyPair, SignJWT, type JWK } from 'jose';
import { privateGateway, type PrivateGateway } from '../support/privacy.ts';
import { DEMO_CLIENTS } from '../../src/demo/demo-policy.ts';

const ISS = 'https://idp.school-board.example.org';
const AUD = 'rostergate-test';
const QUERY = `{ people(role: STUDENT, first: 3) { edges { node { id } } } }`;

let g: PrivateGateway;
let idp: Server;
let jwks: { keys: JWK[] } = { keys: [] };
let fetches = 0;
let rotatedKey: JWK;
const keys = new Map<string, CryptoKey>();

async function addKey(kid: string): Promise<JWK> {
  const pair = await generateKeyPair('RS256');
  keys.set(kid, pair.privateKey);
  return { ...(await exportJWK(pair.publicKey)), kid, alg: 'RS256', use: 'sig' };
}

function token(claims: Record<string, unknown>, opts: { kid?: string; iss?: string; aud?: string; exp?: string | number; nbf?: string | number } = {}) {
  const kid = opts.kid ?? 'a';
  const t = new SignJWT(claims).setProtectedHeader({ alg: 'RS256', kid }).setIssuer(opts.iss ?? ISS).setAudience(opts.aud ?? AUD).setIssuedAt().setExpirationTime(opts.exp ?? '5m');
  if (opts.nbf !== undefined) t.setNotBefore(opts.nbf);
  return t.sign(keys.get(kid)!);
}

async function post(credential: string | undefined, query = QUERY, header: 'authorization' | 'x-api-key' = 'authorization') {
  const headers: Record<string, string> = { 'content-type': 'application/json' };
  if (credential !== undefined) headers[header] = header === 'authorization' ? `Bearer ${credential}` : credential;
  const r = await request(`${g.gw.url}/graphql`, { method: 'POST', headers, body: JSON.stringify({ query }) });
  const text = await r.body.text();
  return { status: r.statusCode, text, body: JSON.parse(text) as { data?: any; errors?: any[] }, headers: r.headers };
}

beforeAll(async () => {
  jwks = { keys: [await addKey('a')] };
  // A key the issuer never publishes, and the one it rotates to (made here: key generation can be
  // slow on a busy machine, and the rotation test's steps must fit in the cooldown).
  await addKey('never-published');
  rotatedKey = await addKey('b');
  idp = createServer((req, res) => {
    if (req.url !== '/.well-known/jwks.json') return void res.writeHead(404).end();
    fetches++;
    res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(jwks));
  });
  await new Promise<void>((r) => idp.listen(0, '127.0.0.1', () => r()));
  const jwksUrl = `http://127.0.0.1:${(idp.address() as AddressInfo).port}/.well-known/jwks.json`;
  g = await privateGateway({ students: 30, teachers: 3, classes: 3, schools: 1 }, undefined, {
    config: {
      auth: { jwt: { issuer: ISS, audience: AUD, jwksUrl, allowHttp: true, jwksCooldownSec: 2, clientClaim: ['client_id', 'azp'] } },
      server: { rateLimit: { requestsPerMinute: 6000, burst: 1000 } },
      clients: [
        ...DEMO_CLIENTS,
        // 60 a minute refills one a second: short waits in a test.
        { id: 'quick-limited', purpose: 'analytics', rateLimit: { requestsPerMinute: 60, burst: 3 } },
        { id: 'slow-limited', purpose: 'analytics', rateLimit: { requestsPerMinute: 3, burst: 3 } },
      ],
    },
  });
});
afterAll(async () => {
  await g?.close();
  await new Promise<void>((r) => (idp ? idp.close(() => r()) : r()));
});

describe('JWT bearer tokens', () => {
  it('a valid token gets its client\'s purpose: analytics sees pseudonyms, the LMS gateway ids', async () => {
    const an = await post(await token({ client_id: 'analytics-demo' }));
    expect(an.status, an.text).toBe(200);
    for (const e of an.body.data.people.edges) expect(e.node.id).toMatch(/^p1_[A-Za-z0-9_-]{22}$/);
    // azp names the client when client_id is absent (clientClaim order); a purpose claim that matches is fine.
    const lms = await post(await token({ azp: 'lms-demo', purpose: 'roster-sync' }), `{ people(role: STUDENT, first: 3) { edges { node { id givenName } } } }`);
    expect(lms.status, lms.text).toBe(200);
    const names = new Set(g.dataset.list('person').map((p) => p.data.givenName));
    for (const e of lms.body.data.people.edges) expect(names).toContain(e.node.givenName);
    // The analytics purpose's schema, not the LMS's: asking it for names is a validation error.
    const denied = await post(await token({ client_id: 'analytics-demo' }), `{ people(first: 1) { edges { node { givenName } } } }`);
    expect(denied.status).toBe(400);
    expect(denied.body.errors![0].message).toMatch(/the purpose "analytics" does not allow Person.givenName/);
  });

  it('an API key still works, as x-api-key and as a bearer token', async () => {
    expect((await post(g.keys['lms-demo'], QUERY, 'x-api-key')).status).toBe(200);
    expect((await post(g.keys['lms-demo'])).status).toBe(200);
    const bad = await post('rgk_not-a-real-key');
    expect(bad.status).toBe(401);
    expect(bad.body.errors![0].extensions).toEqual({ code: 'UNAUTHENTICATED', reason: 'invalid_api_key' });
  });

  it('refuses bad tokens with 401, the reason in the challenge and the body, and never repeats the token', async () => {
    const base64url = (v: unknown) => Buffer.from(JSON.stringify(v)).toString('base64url');
    const now = Math.floor(Date.now() / 1000);
    const valid = await token({ client_id: 'analytics-demo' });
    const [h, , s] = valid.split('.');
    const cases: [string, string, RegExp][] = [
      [await token({ client_id: 'analytics-demo' }, { exp: now - 3600 }), 'token_expired', /the token has expired/],
      [await token({ client_id: 'analytics-demo' }, { nbf: now + 3600, exp: now + 7200 }), 'token_not_yet_valid', /not valid yet/],
      [await token({ client_id: 'analytics-demo' }, { aud: 'someone-else' }), 'wrong_audience', /audience \(aud\) does not include rostergate-test/],
      [await token({ client_id: 'analytics-demo' }, { iss: 'https://evil.example' }), 'wrong_issuer', /issuer \(iss\) is not https:\/\/idp\.school-board\.example\.org/],
      [await token({ client_id: 'nobody' }), 'unknown_client', /no client "nobody" is configured/],
      [await token({ sub: 'analytics-demo' }), 'no_client_claim', /none of the claims client_id, azp/],
      [await token({ client_id: 'analytics-demo', purpose: 'admin' }), 'purpose_mismatch', /does not match client analytics-demo's purpose "analytics"/],
      // The payload of an admin token under the analytics token's signature.
      [`${h}.${base64url({ client_id: 'admin-demo', iss: ISS, aud: AUD, exp: now + 300 })}.${s}`, 'bad_signature', /signature does not verify/],
      [`${base64url({ alg: 'none', typ: 'JWT' })}.${base64url({ client_id: 'admin-demo', iss: ISS, aud: AUD, exp: now + 300 })}.`, 'algorithm_not_allowed', /algorithm is not accepted/],
      [await token({ client_id: 'analytics-demo' }, { kid: 'never-published' }), 'unknown_key', /no key of the issuer matches/],
    ];
    for (const [jwt, reason, message] of cases) {
      const r = await post(jwt);
      expect(r.status, reason).toBe(401);
      expect(r.body.data).toBeUndefined();
      expect(r.body.errors![0], reason).toMatchObject({ message: expect.stringMatching(message), extensions: { code: 'UNAUTHENTICATED', reason } });
      const challenge = [r.headers['www-authenticate']].flat().join(', ');
      expect(challenge, reason).toMatch(/Bearer error="invalid_token", error_description="invalid bearer token: [^"]+"/);
      expect(r.text + challenge).not.toContain(jwt.split('.')[1]!);
    }
  });

  it('a key rotated at the issuer is used once the JWKS is fetched again, after the cooldown', async () => {
    const rotated = await token({ client_id: 'analytics-demo' }, { kid: 'b' });
    const unknown = await token({ client_id: 'analytics-demo' }, { kid: 'never-published' });
    // A token with a key id the gateway does not know makes it fetch the JWKS now (the cooldown starts).
    expect((await post(unknown)).body.errors![0].extensions.reason).toBe('unknown_key');
    const before = fetches;
    jwks = { keys: [rotatedKey] };
    // Within the cooldown (2 s here) the set is not fetched again: the new key is not known yet.
    const early = await post(rotated);
    expect(early.body.errors?.[0]?.extensions.reason).toBe('unknown_key');
    expect(fetches).toBe(before);
    await new Promise((r) => setTimeout(r, 2100));
    const later = await post(rotated);
    expect(later.status, later.text).toBe(200);
    expect(fetches).toBe(before + 1);
    // The old key is gone from the set, so its tokens are refused.
    expect((await post(await token({ client_id: 'analytics-demo' }, { kid: 'a' }))).body.errors![0].extensions.reason).toBe('unknown_key');
  });

  it('extracts accept a token, and refuse a bad one the same way', async () => {
    const get = async (jwt: string) => {
      const r = await request(`${g.gw.url}/extracts/people.csv`, { headers: { authorization: `Bearer ${jwt}` } });
      return { status: r.statusCode, text: await r.body.text(), headers: r.headers };
    };
    const ok = await get(await token({ client_id: 'analytics-demo' }, { kid: 'b' }));
    expect(ok.status, ok.text).toBe(200);
    expect(ok.text).toMatch(/p1_[A-Za-z0-9_-]{22}/);
    const expired = await get(await token({ client_id: 'analytics-demo' }, { kid: 'b', exp: Math.floor(Date.now() / 1000) - 60 }));
    expect(expired.status).toBe(401);
    expect(JSON.parse(expired.text)).toMatchObject({ error: expect.stringMatching(/expired/), errors: [{ extensions: { reason: 'token_expired' } }] });
    expect(String(expired.headers['www-authenticate'])).toMatch(/error="invalid_token"/);
  });
});

describe('per-client rate limits', () => {
  it('the request over the burst gets 429 with Retry-After and RATE_LIMITED; after waiting it goes through', async () => {
    const jwt = await token({ client_id: 'quick-limited' }, { kid: 'b' });
    for (let i = 0; i < 3; i++) expect((await post(jwt)).status).toBe(200);
    const over = await post(jwt);
    expect(over.status).toBe(429);
    expect(over.headers['retry-after']).toBe('1');
    expect(over.body.errors![0]).toMatchObject({
      message: 'client quick-limited is over its rate limit of 60 requests per minute (burst 3): retry after 1 s',
      extensions: { code: 'RATE_LIMITED', client: 'quick-limited', retryAfterSec: 1 },
    });
    // Health probes are not counted or limited.
    expect((await request(`${g.gw.url}/healthz`)).statusCode).toBe(200);
    await new Promise((r) => setTimeout(r, 1000 * Number(over.headers['retry-after']) + 50));
    expect((await post(jwt)).status).toBe(200);
  });

  it('counts extracts and GraphQL requests in one bucket per client, whatever the credential', async () => {
    const jwt = await token({ client_id: 'slow-limited' }, { kid: 'b' });
    for (let i = 0; i < 3; i++) expect((await post(jwt)).status).toBe(200);
    const r = await request(`${g.gw.url}/extracts/people.csv`, { headers: { authorization: `Bearer ${jwt}` } });
    const body = JSON.parse(await r.body.text());
    expect(r.statusCode).toBe(429);
    const wait = Number(r.headers['retry-after']);
    expect(wait).toBeGreaterThan(0);
    expect(wait).toBeLessThanOrEqual(60);
    expect(body).toMatchObject({ error: expect.stringMatching(/^client slow-limited is over its rate limit of 3 requests per minute/), errors: [{ extensions: { code: 'RATE_LIMITED' } }] });
    // Other clients keep their own buckets.
    expect((await post(await token({ client_id: 'analytics-demo' }, { kid: 'b' }))).status).toBe(200);
  });
});
