/**
 * Client authentication by JWT bearer token (OIDC client credentials, workload identity), beside
 * API keys. The token is verified with jose against the issuer's keys — a remote JWKS (cached, and
 * re-fetched when a token names a key id it has not seen: key rotation) or public keys in the
 * config — for signature, issuer, audience, expiry and not-before. One claim names the client; the
 * client must be configured in `clients`, and its purpose comes from there, never from the token.
 *
 * Only asymmetric algorithms: a shared secret (HS256 …) would let anyone who verifies tokens also
 * mint them, so the gateway, its logs and its config would become a way to impersonate any client.
 * `none` is never accepted.
 */
import { createPublicKey } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createLocalJWKSet, createRemoteJWKSet, jwtVerify, type JWK, type JWTPayload, type JWTVerifyGetKey, type JWTVerifyOptions } from 'jose';
import { z } from 'zod';
import { RostergateError } from '../errors.ts';

export const JWT_ALGORITHMS = ['RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512', 'ES256', 'ES384', 'ES512', 'EdDSA', 'Ed25519'] as const;

const LOOPBACK_HOSTS = new Set(['127.0.0.1', '[::1]', 'localhost']);

/** A public key in the config: a PEM (SPKI) inline or in a file, or a JWK. `kid` is matched against the token's header. */
const staticKeySchema = z
  .object({
    kid: z.string().min(1).optional(),
    /** PEM text ("-----BEGIN PUBLIC KEY-----…"). */
    pem: z.string().min(1).optional(),
    /** A file holding a PEM public key (relative to the config file). */
    file: z.string().min(1).optional(),
    /** A public JWK as the issuer publishes it. */
    jwk: z.record(z.string(), z.unknown()).optional(),
  })
  .strict()
  .refine((k) => [k.pem, k.file, k.jwk].filter((x) => x !== undefined).length === 1, 'give exactly one of pem, file or jwk');

export const jwtConfigSchema = z
  .object({
    /** The `iss` every token must carry (one, or a list of accepted issuers). */
    issuer: z.union([z.string().min(1), z.array(z.string().min(1)).min(1)]),
    /** The `aud` every token must carry (one of these). */
    audience: z.union([z.string().min(1), z.array(z.string().min(1)).min(1)]),
    /** The issuer's JSON Web Key Set, e.g. https://login.example.org/.well-known/jwks.json. */
    jwksUrl: z.string().url().optional(),
    /** Public keys given here instead of a JWKS URL. */
    keys: z.array(staticKeySchema).min(1).optional(),
    /** Signature algorithms accepted. Asymmetric only (see the comment at the top of src/privacy/jwt.ts). */
    algorithms: z.array(z.enum(JWT_ALGORITHMS)).min(1).default(['RS256', 'ES256', 'EdDSA']),
    /** Seconds of clock difference tolerated for exp / nbf / iat. */
    clockToleranceSec: z.number().int().min(0).max(300).default(30),
    /** The claims that name the client, tried in order (first present wins); its value is a `clients[].id`. */
    clientClaim: z.union([z.string().min(1), z.array(z.string().min(1)).min(1)]).default(['client_id', 'azp']),
    /** A claim that, when the token carries it, must equal the client's configured purpose. */
    purposeClaim: z.string().min(1).default('purpose'),
    /** How long fetched keys are used before the JWKS is fetched again. */
    jwksCacheSec: z.number().int().min(0).default(600),
    /** After a fetch, how long a token with an unknown key id is refused before the JWKS is fetched again. */
    jwksCooldownSec: z.number().int().min(0).default(30),
    /** Allow an http:// JWKS URL on a loopback host (tests, a local identity provider). */
    allowHttp: z.boolean().default(false),
  })
  .strict()
  .superRefine((c, ctx) => {
    if ((c.jwksUrl === undefined) === (c.keys === undefined)) ctx.addIssue({ code: 'custom', message: 'give either jwksUrl or keys (exactly one)' });
    if (c.jwksUrl) {
      const u = new URL(c.jwksUrl);
      if (u.protocol !== 'https:' && !(u.protocol === 'http:' && c.allowHttp && LOOPBACK_HOSTS.has(u.hostname))) {
        ctx.addIssue({ code: 'custom', path: ['jwksUrl'], message: 'must be https:// (http:// only on a loopback host with allowHttp: true)' });
      }
    }
  });
export type JwtConfig = z.infer<typeof jwtConfigSchema>;

/** Why a token was refused: a stable reason code and a sentence for the client (never the token itself). */
export interface TokenRefusal {
  reason: string;
  message: string;
}

export interface VerifiedToken {
  client: string;
  /** The purpose claim, when the token carries one (a non-string value as JSON, so it matches no purpose). */
  purpose?: string;
}

/** Three base64url parts separated by dots (the last empty for alg "none"): the shape of a compact JWS. */
export function looksLikeJwt(credential: string): boolean {
  return /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*$/.test(credential);
}

export type JwtVerifier = (token: string) => Promise<VerifiedToken>;

/** Builds the verifier once at start-up: bad keys or files are config errors then, not 401s later. */
export function createJwtVerifier(cfg: JwtConfig, where = 'config'): JwtVerifier {
  const keys = cfg.jwksUrl
    ? createRemoteJWKSet(new URL(cfg.jwksUrl), { cacheMaxAge: cfg.jwksCacheSec * 1000, cooldownDuration: cfg.jwksCooldownSec * 1000, timeoutDuration: 5000 })
    : createLocalJWKSet({ keys: cfg.keys!.map((k, i) => staticJwk(k, `${where}: auth.jwt.keys[${i}]`)) });
  const options: JWTVerifyOptions = {
    issuer: cfg.issuer,
    audience: cfg.audience,
    algorithms: [...cfg.algorithms],
    clockTolerance: cfg.clockToleranceSec,
    requiredClaims: ['exp'],
  };
  const claims = Array.isArray(cfg.clientClaim) ? cfg.clientClaim : [cfg.clientClaim];
  return async (token) => {
    const payload = await verifyWith(token, keys, options, cfg);
    const name = claims.find((c) => typeof payload[c] === 'string' && payload[c] !== '');
    if (!name) throw refusal('no_client_claim', `the token names no client: it has none of the claims ${claims.join(', ')}`);
    // Any value other than the client's purpose name is a mismatch (setup.ts), not a claim to ignore.
    const purpose = payload[cfg.purposeClaim];
    return { client: payload[name] as string, ...(purpose !== undefined ? { purpose: typeof purpose === 'string' ? purpose : JSON.stringify(purpose) } : {}) };
  };
}

/** Raised for a token that does not pass; setup.ts turns it into a 401 with the reason. */
export class TokenRefused extends Error implements TokenRefusal {
  constructor(readonly reason: string, message: string) {
    super(message);
  }
}

function refusal(reason: string, message: string): TokenRefused {
  return new TokenRefused(reason, message);
}

async function verifyWith(token: string, keys: JWTVerifyGetKey, options: JWTVerifyOptions, cfg: JwtConfig): Promise<JWTPayload> {
  try {
    try {
      return (await jwtVerify(token, keys, options)).payload;
    } catch (e) {
      // Several configured keys fit a token without a key id: jose hands them over to try in turn.
      if ((e as { code?: string }).code !== 'ERR_JWKS_MULTIPLE_MATCHING_KEYS') throw e;
      let last: unknown = e;
      for await (const key of e as AsyncIterable<CryptoKey>) {
        try {
          return (await jwtVerify(token, key, options)).payload;
        } catch (err) {
          last = err;
          if ((err as { code?: string }).code !== 'ERR_JWS_SIGNATURE_VERIFICATION_FAILED') throw err;
        }
      }
      throw last;
    }
  } catch (e) {
    throw explain(e, cfg);
  }
}

/** jose's error, as a reason a client can act on. The token's own claim values are not repeated. */
function explain(e: unknown, cfg: JwtConfig): Error {
  const code = (e as { code?: string }).code;
  const claim = (e as { claim?: string }).claim;
  const list = (v: string | string[]) => (Array.isArray(v) ? v.join(' or ') : v);
  switch (code) {
    case 'ERR_JWT_EXPIRED':
      return refusal('token_expired', 'the token has expired (exp is past): get a new one from the issuer');
    case 'ERR_JWT_CLAIM_VALIDATION_FAILED':
      if (claim === 'iss') return refusal('wrong_issuer', `the token's issuer (iss) is not ${list(cfg.issuer)}`);
      if (claim === 'aud') return refusal('wrong_audience', `the token's audience (aud) does not include ${list(cfg.audience)}`);
      if (claim === 'nbf') return refusal('token_not_yet_valid', 'the token is not valid yet (nbf is in the future)');
      if (claim === 'exp') return refusal('no_expiry', 'the token has no expiry (exp): tokens without one are refused');
      if (claim === 'iat') return refusal('bad_issued_at', 'the token was issued in the future (iat)');
      return refusal('bad_claim', `the token's ${claim ?? 'claims'} claim is not valid`);
    case 'ERR_JOSE_ALG_NOT_ALLOWED':
      return refusal('algorithm_not_allowed', `the token's signature algorithm is not accepted (accepted: ${cfg.algorithms.join(', ')})`);
    case 'ERR_JWS_SIGNATURE_VERIFICATION_FAILED':
      return refusal('bad_signature', 'the token\'s signature does not verify with the issuer\'s keys');
    case 'ERR_JWKS_NO_MATCHING_KEY':
      return refusal('unknown_key', 'no key of the issuer matches the token (kid and algorithm): if keys were rotated, retry shortly');
    case 'ERR_JOSE_NOT_SUPPORTED':
      return refusal('algorithm_not_allowed', `the token's signature algorithm is not supported (accepted: ${cfg.algorithms.join(', ')})`);
    case 'ERR_JWS_INVALID':
    case 'ERR_JWT_INVALID':
      return refusal('malformed_token', 'the token is not a well-formed signed JWT');
    case 'ERR_JWKS_TIMEOUT':
    case 'ERR_JWKS_INVALID':
    case 'ERR_JOSE_GENERIC':
    default:
      // Not the client's fault: the issuer's keys could not be had. The gateway answers 503.
      return new RostergateError('AUTH_UNAVAILABLE', "cannot verify JWTs now: the issuer's key set (auth.jwt.jwksUrl) could not be fetched; try again later", {}, { retryable: true, cause: e });
  }
}

function staticJwk(k: z.infer<typeof staticKeySchema>, where: string): JWK {
  let jwk: JWK;
  try {
    if (k.jwk) jwk = { ...(k.jwk as JWK) };
    else {
      const pem = k.pem ?? readFileSync(k.file!, 'utf8');
      jwk = createPublicKey(pem).export({ format: 'jwk' }) as JWK;
    }
  } catch (e) {
    const what = k.file ? `cannot read a public key from ${k.file}` : 'not a public key';
    throw new RostergateError('CONFIG_INVALID', `${where}: ${what}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message.split('\n')[0]}`);
  }
  if (jwk.d !== undefined || jwk.kty === 'oct') throw new RostergateError('CONFIG_INVALID', `${where}: a private or symmetric key; give the issuer's public key`);
  return k.kid ? { ...jwk, kid: k.kid } : jwk;
}
