/**
 * Google's JWT bearer grant for a service account with domain-wide delegation: a JWT signed RS256
 * with the account's private key (iss = client_email, sub = the impersonated admin, aud = token URL,
 * exp ≤ iat + 1 h) exchanged for an access token, cached until shortly before it expires.
 */
import { readFileSync } from 'node:fs';
import { importPKCS8, SignJWT } from 'jose';
import { assertSecretFile } from '../../src/secret.ts';
import { RostergateError } from '../../src/errors.ts';
import { bearerTokenAuth, type AuthProvider, type HttpClient } from '../http.ts';
import type { GoogleConfig, ServiceAccountKey } from './config.ts';

export const SCOPES = [
  'https://www.googleapis.com/auth/classroom.courses.readonly',
  'https://www.googleapis.com/auth/classroom.rosters.readonly',
  'https://www.googleapis.com/auth/classroom.profile.emails',
  'https://www.googleapis.com/auth/classroom.guardianlinks.students.readonly',
];

export function loadServiceAccountKey(cfg: GoogleConfig): ServiceAccountKey {
  let text: string;
  if (cfg.serviceAccountKeyFile) {
    try {
      assertSecretFile(cfg.serviceAccountKeyFile);
    } catch (e) {
      throw new RostergateError('CONFIG_INVALID', (e as Error).message, { source: cfg.id });
    }
    text = readFileSync(cfg.serviceAccountKeyFile, 'utf8');
  } else text = cfg.serviceAccountKey!;
  try {
    const key = JSON.parse(text) as ServiceAccountKey;
    if (!key.client_email || !key.private_key) throw new Error('missing client_email or private_key');
    return key;
  } catch (e) {
    throw new RostergateError('CONFIG_INVALID', `the service account key is not a Google JSON key (${(e as Error).message.split('\n')[0]})`, { source: cfg.id });
  }
}

const TOKEN_ERRORS: Record<string, string> = {
  unauthorized_client: 'domain-wide delegation or the Classroom scopes are not granted to this service account\'s client id (Admin console › Security › API controls)',
  invalid_grant: 'check subject (the admin to impersonate), that the key is not revoked, and the machine clock',
  invalid_client: 'the service account or its key was deleted or disabled: create a new key',
};

export function jwtBearer(http: HttpClient, cfg: GoogleConfig, key: ServiceAccountKey): AuthProvider {
  const tokenUrl = cfg.tokenUrl ?? key.token_uri ?? 'https://oauth2.googleapis.com/token';
  return bearerTokenAuth(async () => {
    let assertion: string;
    try {
      const pk = await importPKCS8(key.private_key, 'RS256');
      // Both times from one reading of the clock: Google refuses an assertion whose exp is more than
      // an hour after its iat, and jose's setIssuedAt() and setExpirationTime('1h') each read the
      // clock, so a second boundary between them made it 3,601 s (invalid_grant, now and then).
      const now = Math.floor(Date.now() / 1000);
      assertion = await new SignJWT({ scope: SCOPES.join(' ') })
        .setProtectedHeader({ alg: 'RS256', typ: 'JWT', ...(key.private_key_id ? { kid: key.private_key_id } : {}) })
        .setIssuer(key.client_email).setSubject(cfg.subject).setAudience(tokenUrl).setIssuedAt(now).setExpirationTime(now + 3600)
        .sign(pk);
    } catch (e) {
      throw new RostergateError('CONFIG_INVALID', `cannot sign with the service account key (${(e as Error).message.split('\n')[0]})`, { source: cfg.id });
    }
    const res = await http.jsonResponse<{ access_token?: string; expires_in?: number; error?: string }>({
      method: 'POST', url: tokenUrl, resource: 'token', noAuth: true, acceptStatuses: [400, 401, 403],
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ grant_type: 'urn:ietf:params:oauth:grant-type:jwt-bearer', assertion }).toString(),
    });
    if (res.status !== 200 || !res.body.access_token) {
      const code = String(res.body?.error ?? '').replace(/[^a-z_]/gi, '');
      throw new RostergateError('SOURCE_AUTH', `token request refused (${code || res.status}): ${TOKEN_ERRORS[code] ?? 'check the service account key and subject'}`, {
        source: cfg.id, resource: 'token', status: res.status,
      });
    }
    return { token: res.body.access_token, expiresInSeconds: res.body.expires_in };
  });
}

/** What to do about the access sub-codes (Classroom "Access Errors" reference) a reading connector can meet. */
const SUB_CODES: Record<string, string> = {
  ClassroomApiDisabled: 'Classroom data access (the API) is off for the impersonated user: turn it on in the Admin console (Apps › Google Workspace › Classroom › Data access), or check subject',
  ClassroomDisabled: 'the impersonated user has no access to Classroom: turn Classroom on for their organisational unit, or check subject',
};

/**
 * Google's error body: {error:{code, message, status, errors?: [{domain, reason, message}], details?:
 * [{"@type", reason, domain, metadata}]}} — `errors` in the older format, `details` (google.rpc.ErrorInfo)
 * in the newer one. Only codes are read from it, never the messages, which may quote personal data.
 */
interface GoogleError { status?: unknown; message?: unknown; errors?: { reason?: unknown }[]; details?: { '@type'?: unknown; reason?: unknown }[] }

function googleError(body: string): GoogleError | undefined {
  try {
    const e = (JSON.parse(body) as { error?: unknown }).error;
    return e && typeof e === 'object' ? (e as GoogleError) : undefined;
  } catch {
    return undefined;
  }
}

const safeCode = (v: unknown) => (typeof v === 'string' && /^[A-Za-z_]{1,64}$/.test(v) ? v : undefined);

/** The reason codes of a Google error: `errors[].reason` and the ErrorInfo `details[].reason`. */
function reasonsOf(e: GoogleError): string[] {
  const legacy = Array.isArray(e.errors) ? e.errors.map((x) => safeCode(x?.reason)) : [];
  const info = Array.isArray(e.details) ? e.details.filter((d) => String(d?.['@type']).endsWith('google.rpc.ErrorInfo')).map((d) => safeCode(d.reason)) : [];
  return [...new Set([...legacy, ...info].filter((x): x is string => x !== undefined))];
}

/** Reasons Google gives for a per-minute (rate) quota: waiting helps. */
const RATE_REASONS = new Set(['rateLimitExceeded', 'userRateLimitExceeded', 'RATE_LIMIT_EXCEEDED']);
/** Reasons for a daily or allocation quota: waiting minutes does not help, so they fail at once. */
const EXHAUSTED_REASONS = new Set(['dailyLimitExceeded', 'RESOURCE_QUOTA_EXCEEDED']);

/**
 * Google answers some rate limits as 403 (Classroom's "Usage limits": retry RESOURCE_EXHAUSTED with
 * exponential backoff; the older APIs' 403 rateLimitExceeded / userRateLimitExceeded): those are
 * retried like a 429. Any other 403 (a permission, a disabled API, a daily quota) fails at once.
 */
export function isGoogleRateLimit(status: number, body: string): boolean {
  if (status !== 403) return false;
  const e = googleError(body);
  if (!e) return false;
  const reasons = reasonsOf(e);
  if (reasons.some((r) => EXHAUSTED_REASONS.has(r))) return false;
  return reasons.some((r) => RATE_REASONS.has(r)) || e.status === 'RESOURCE_EXHAUSTED';
}

/**
 * A Google error body in a few words: the status, the reason codes, the "@Code " sub-code with
 * which Classroom starts the message, and what to do about a known one — never the rest of the message.
 */
export function describeGoogleError(_status: number, body: string): string | undefined {
  const e = googleError(body);
  if (!e) return undefined;
  const sub = typeof e.message === 'string' ? /^@(\w+) /.exec(e.message)?.[1] : undefined;
  const status = typeof e.status === 'string' ? e.status.replace(/[^A-Z_]/g, '') : undefined;
  const text = [status, ...reasonsOf(e), sub && `@${sub}`].filter(Boolean).join(' ');
  const hint = sub ? SUB_CODES[sub] : undefined;
  return (hint ? `${text}: ${hint}` : text) || undefined;
}
