/**
 * JWT verification without a gateway: static keys (PEM file, inline PEM, JWK), the config checks
 * on auth.jwt, an unreachable JWKS (503, not 401), and the rate limiter's arithmetic.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { parse as parseYaml } from 'yaml';
import { join } from 'node:path';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { describe, expect, it } from 'vitest';
import { exportJWK, exportSPKI, generateKeyPair, SignJWT } from 'jose';
import { createJwtVerifier, jwtConfigSchema, looksLikeJwt, TokenRefused } from '../../src/privacy/jwt.ts';
import { parseConfig } from '../../src/config/config.ts';
import { isRostergateError, RateLimitedError, refusalAnswer, AuthenticationError } from '../../src/errors.ts';
import { clientRateLimits, RateLimiter } from '../../src/server/rate-limit.ts';
import { tempDir } from '../support/stores.ts';
import { demoPrivacyConfig, TEST_MASTER_KEY } from '../support/privacy.ts';
import { setupPrivacy } from '../../src/graphql/privacy.ts';
import { buildUnifiedSchema } from '../../src/graphql/schema.ts';
import { KeyRing } from '../../src/privacy/pseudonym.ts';
import type { Store } from '../../src/store/types.ts';

const ISS = 'https://idp.example.org';
const AUD = 'rostergate';

async function sign(key: CryptoKey, alg: string, claims: Record<string, unknown>, kid?: string) {
  return new SignJWT(claims).setProtectedHeader({ alg, ...(kid ? { kid } : {}) }).setIssuer(ISS).setAudience(AUD).setIssuedAt().setExpirationTime('5m').sign(key);
}

describe('static keys', () => {
  it('verifies tokens against a PEM file, an inline PEM and a JWK, each by its own kid', async () => {
    const rsa = await generateKeyPair('RS256');
    const ec = await generateKeyPair('ES256');
    const ed = await generateKeyPair('EdDSA');
    const dir = tempDir();
    writeFileSync(join(dir, 'idp.pem'), await exportSPKI(rsa.publicKey));
    const cfg = parseConfig({
      auth: { jwt: { issuer: ISS, audience: AUD, keys: [{ kid: 'rsa', file: './idp.pem' }, { kid: 'ec', pem: await exportSPKI(ec.publicKey) }, { jwk: { ...(await exportJWK(ed.publicKey)), kid: 'ed' } }] } },
    });
    // loadConfigFile makes file paths relative to the config file; parseConfig alone leaves them as given.
    cfg.auth.jwt!.keys![0]!.file = join(dir, 'idp.pem');
    const verify = createJwtVerifier(cfg.auth.jwt!);
    expect(await verify(await sign(rsa.privateKey, 'RS256', { client_id: 'lms' }, 'rsa'))).toEqual({ client: 'lms' });
    expect(await verify(await sign(ec.privateKey, 'ES256', { azp: 'data-team', purpose: 'analytics' }, 'ec'))).toEqual({ client: 'data-team', purpose: 'analytics' });
    expect(await verify(await sign(ed.privateKey, 'EdDSA', { client_id: 'x' }, 'ed'))).toEqual({ client: 'x' });
    // Without a kid, the key is found by its type; a token signed by a key not configured does not verify.
    expect(await verify(await sign(rsa.privateKey, 'RS256', { client_id: 'lms' }))).toEqual({ client: 'lms' });
    const stranger = await generateKeyPair('RS256');
    await expect(verify(await sign(stranger.privateKey, 'RS256', { client_id: 'lms' }))).rejects.toMatchObject({ reason: 'bad_signature' });
  });

  it('tries each configured key that fits a token without a kid', async () => {
    const a = await generateKeyPair('ES256');
    const b = await generateKeyPair('ES256');
    const verify = createJwtVerifier(jwtConfigSchema.parse({ issuer: ISS, audience: AUD, keys: [{ jwk: await exportJWK(a.publicKey) }, { jwk: await exportJWK(b.publicKey) }] }));
    expect(await verify(await sign(b.privateKey, 'ES256', { client_id: 'lms' }))).toEqual({ client: 'lms' });
  });

  it('refuses tokens without exp, without a client claim, and anything that is not a JWT', async () => {
    const k = await generateKeyPair('ES256');
    const verify = createJwtVerifier(jwtConfigSchema.parse({ issuer: ISS, audience: AUD, keys: [{ jwk: await exportJWK(k.publicKey) }], clientClaim: 'client_id' }));
    const noExp = await new SignJWT({ client_id: 'lms' }).setProtectedHeader({ alg: 'ES256' }).setIssuer(ISS).setAudience(AUD).sign(k.privateKey);
    await expect(verify(noExp)).rejects.toMatchObject({ reason: 'no_expiry' });
    await expect(verify(await sign(k.privateKey, 'ES256', { azp: 'lms' }))).rejects.toMatchObject({ reason: 'no_client_claim', message: expect.stringMatching(/none of the claims client_id/) });
    await expect(verify('a.b.c')).rejects.toBeInstanceOf(TokenRefused);
    expect(looksLikeJwt(noExp)).toBe(true);
    expect(looksLikeJwt('rgk_abcDEF-_123')).toBe(false);
  });

  it('refuses a private or symmetric key in the config', async () => {
    const k = await generateKeyPair('ES256', { extractable: true });
    expect(() => createJwtVerifier(jwtConfigSchema.parse({ issuer: ISS, audience: AUD, keys: [{ jwk: { kty: 'oct', k: 'c2VjcmV0' } }] }), 'rg.yaml')).toThrow(
      /rg\.yaml: auth\.jwt\.keys\[0\]: a private or symmetric key/,
    );
    const priv = await exportJWK(k.privateKey);
    expect(() => createJwtVerifier(jwtConfigSchema.parse({ issuer: ISS, audience: AUD, keys: [{ jwk: priv }] }))).toThrow(/a private or symmetric key/);
    expect(() => createJwtVerifier(jwtConfigSchema.parse({ issuer: ISS, audience: AUD, keys: [{ file: '/nonexistent/idp.pem' }] }))).toThrow(/cannot read a public key from \/nonexistent\/idp\.pem: ENOENT/);
  });
});

describe('authenticate', () => {
  // JWTs never reach the store (API keys do): a store that fails any use proves it.
  const noStore = new Proxy({}, { get: () => { throw new Error('the store was used'); } }) as Store;
  const bearer = (t: string) => ({ headers: { authorization: `Bearer ${t}` } });

  it('refuses a JWT when auth.jwt is not configured, saying so', async () => {
    const privacy = setupPrivacy(demoPrivacyConfig(':memory:'), buildUnifiedSchema(), { keyring: new KeyRing(TEST_MASTER_KEY, 'test') });
    const k = await generateKeyPair('ES256');
    await expect(privacy.authenticate(noStore, bearer(await sign(k.privateKey, 'ES256', { client_id: 'lms-demo' })))).rejects.toMatchObject({
      reason: 'jwt_not_configured', message: 'invalid bearer token: this gateway accepts no JWTs (auth.jwt is not configured): use an API key',
    });
    await expect(privacy.authenticate(noStore, { headers: {} })).rejects.toMatchObject({ reason: 'missing_credentials', scheme: 'none' });
  });

  it('maps the client claim to a configured client and its purpose; a purpose claim must match it', async () => {
    const k = await generateKeyPair('ES256');
    const cfg = demoPrivacyConfig(':memory:', { auth: { jwt: { issuer: ISS, audience: AUD, keys: [{ jwk: await exportJWK(k.publicKey) }] } } });
    const privacy = setupPrivacy(cfg, buildUnifiedSchema(), { keyring: new KeyRing(TEST_MASTER_KEY, 'test') });
    const who = await privacy.authenticate(noStore, bearer(await sign(k.privateKey, 'ES256', { client_id: 'analytics-demo' })));
    expect({ client: who.client, purpose: who.purpose.id }).toEqual({ client: 'analytics-demo', purpose: 'analytics' });
    for (const purpose of ['admin', ['analytics'], 7]) {
      await expect(privacy.authenticate(noStore, bearer(await sign(k.privateKey, 'ES256', { client_id: 'analytics-demo', purpose })))).rejects.toMatchObject({ reason: 'purpose_mismatch' });
    }
    // A claim value that is no client id is not repeated.
    await expect(privacy.authenticate(noStore, bearer(await sign(k.privateKey, 'ES256', { client_id: 'Jane Doe <jane@example.org>' })))).rejects.toMatchObject({
      reason: 'unknown_client', message: 'invalid bearer token: the client it names is not configured (clients[].id)',
    });
  });
});

describe('auth.jwt config', () => {
  const base = { issuer: ISS, audience: AUD };
  const bad = (jwt: Record<string, unknown>) => () => parseConfig({ auth: { jwt: { ...base, ...jwt } } }, 'rg.yaml');
  it('needs exactly one of jwksUrl or keys', () => {
    expect(bad({})).toThrow(/rg\.yaml: auth\.jwt: give either jwksUrl or keys/);
    expect(bad({ jwksUrl: 'https://idp.example.org/jwks', keys: [{ pem: 'x' }] })).toThrow(/give either jwksUrl or keys/);
  });
  it('wants https, except http on a loopback host with allowHttp', () => {
    expect(bad({ jwksUrl: 'http://idp.example.org/jwks' })).toThrow(/auth\.jwt\.jwksUrl: must be https:\/\//);
    expect(bad({ jwksUrl: 'http://idp.example.org/jwks', allowHttp: true })).toThrow(/must be https/);
    expect(bad({ jwksUrl: 'http://127.0.0.1:9/jwks' })).toThrow(/must be https/);
    expect(parseConfig({ auth: { jwt: { ...base, jwksUrl: 'http://127.0.0.1:9/jwks', allowHttp: true } } }).auth.jwt!.algorithms).toEqual(['RS256', 'ES256', 'EdDSA']);
  });
  it('accepts no shared-secret algorithms, no "none", and no unknown keys', () => {
    expect(bad({ jwksUrl: 'https://idp.example.org/jwks', algorithms: ['HS256'] })).toThrow(/auth\.jwt\.algorithms\.0/);
    expect(bad({ jwksUrl: 'https://idp.example.org/jwks', algorithms: ['none'] })).toThrow(/auth\.jwt\.algorithms\.0/);
    expect(bad({ jwksUrl: 'https://idp.example.org/jwks', secret: 'x' })).toThrow(/unknown key\(s\) secret/);
  });
  it('the auth.jwt example in docs/operations.md is a valid config, with the defaults it states', () => {
    const doc = readFileSync(join(import.meta.dirname, '../../docs/operations.md'), 'utf8');
    const section = doc.slice(doc.indexOf('## Client authentication'));
    const jwt = parseConfig(parseYaml(/```yaml\n([\s\S]*?)```/.exec(section)![1]!)).auth.jwt!;
    const defaults = jwtConfigSchema.parse({ issuer: ISS, audience: AUD, jwksUrl: 'https://idp.example.org/jwks' });
    for (const k of ['algorithms', 'clockToleranceSec', 'clientClaim', 'purposeClaim', 'jwksCacheSec', 'jwksCooldownSec'] as const) expect(jwt[k], k).toEqual(defaults[k]);
  });
  it('rate limits: per client and a server default; burst defaults to a minute\'s worth', () => {
    const cfg = parseConfig({
      server: { rateLimit: { requestsPerMinute: 120 } },
      purposes: { p: { legalBasis: 'test', categories: { NONE: 'allow' } } },
      clients: [{ id: 'a', purpose: 'p', rateLimit: { requestsPerMinute: 3, burst: 2 } }, { id: 'b', purpose: 'p', rateLimit: false }, { id: 'c', purpose: 'p' }],
    });
    const limitOf = clientRateLimits(cfg.clients, cfg.server.rateLimit);
    expect(limitOf('a')).toEqual({ requestsPerMinute: 3, burst: 2 });
    expect(limitOf('b')).toBeUndefined();
    expect(limitOf('c')).toEqual({ requestsPerMinute: 120, burst: 120 });
    expect(() => parseConfig({ server: { rateLimit: { requestsPerMinute: 0 } } })).toThrow(/server\.rateLimit\.requestsPerMinute/);
  });
});

describe('an unreachable JWKS', () => {
  it('is AUTH_UNAVAILABLE (503), not the client\'s fault', async () => {
    // A port that was just free: nothing listens there.
    const probe = createServer();
    await new Promise<void>((r) => probe.listen(0, '127.0.0.1', () => r()));
    const port = (probe.address() as AddressInfo).port;
    await new Promise<void>((r) => probe.close(() => r()));
    const verify = createJwtVerifier(jwtConfigSchema.parse({ issuer: ISS, audience: AUD, jwksUrl: `http://127.0.0.1:${port}/jwks.json`, allowHttp: true }));
    const k = await generateKeyPair('RS256');
    const e = await verify(await sign(k.privateKey, 'RS256', { client_id: 'lms' }, 'k1')).catch((x: unknown) => x);
    expect(isRostergateError(e, 'AUTH_UNAVAILABLE')).toBe(true);
    expect(refusalAnswer(e)).toMatchObject({ status: 503, body: { errors: [{ extensions: { code: 'AUTH_UNAVAILABLE' } }] } });
  });
});

describe('rate limiter', () => {
  it('lets a burst through, refuses the next with Retry-After, and refills at the rate', () => {
    let now = 1_000_000;
    const limiter = new RateLimiter(() => ({ requestsPerMinute: 3, burst: 3 }), () => now);
    for (let i = 0; i < 3; i++) limiter.take('lms');
    const e = (() => {
      try {
        limiter.take('lms');
      } catch (x) {
        return x;
      }
    })();
    expect(e).toBeInstanceOf(RateLimitedError);
    const r = e as RateLimitedError;
    // One token per 20 s.
    expect(r.retryAfterSec).toBe(20);
    expect(r.message).toBe('client lms is over its rate limit of 3 requests per minute (burst 3): retry after 20 s');
    expect(refusalAnswer(r)).toMatchObject({ status: 429, headers: { 'retry-after': '20' }, body: { errors: [{ extensions: { code: 'RATE_LIMITED', client: 'lms' } }] } });
    // Another client has its own bucket.
    limiter.take('other');
    now += 19_000;
    expect(() => limiter.take('lms')).toThrow(/retry after 1 s/);
    now += 1_000;
    limiter.take('lms');
    // A quiet spell refills to the burst, no further.
    now += 3_600_000;
    for (let i = 0; i < 3; i++) limiter.take('lms');
    expect(() => limiter.take('lms')).toThrow(RateLimitedError);
  });

  it('leaves unlimited clients alone', () => {
    const limiter = new RateLimiter(() => undefined);
    for (let i = 0; i < 1000; i++) limiter.take('admin');
  });

  it('refusal answers: a bearer challenge with the reason, quotes made safe', () => {
    const a = refusalAnswer(new AuthenticationError('unknown_client', 'invalid bearer token: no client "x" is configured', 'Bearer'))!;
    expect(a.status).toBe(401);
    expect(a.headers['www-authenticate']).toEqual(['ApiKey header="x-api-key"', `Bearer error="invalid_token", error_description="invalid bearer token: no client 'x' is configured"`]);
    expect(a.body.errors[0]!.extensions).toEqual({ code: 'UNAUTHENTICATED', reason: 'unknown_client' });
  });
});
