/**
 * Google's JWT bearer grant for a service account with domain-wide delegation: a JWT signed RS256
 * with the account's private key (iss = client_email, sub = the impersonated admin, aud = token URL,
 * exp ≤ iat + 1 h) exchanged for an access token, cached until shortly before it expires.
 */
import { readFileSync } from 'node:fs';
import { importPKCS8, SignJWT } from 'jose';
import { assertOwnerOnly } from '../../src/config/secret.ts';
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
      assertOwnerOnly(cfg.serviceAccountKeyFile);
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
      assertion = await new SignJWT({ scope: SCOPES.join(' ') })
        .setProtectedHeader({ alg: 'RS256', typ: 'JWT', ...(key.private_key_id ? { kid: key.private_key_id } : {}) })
        .setIssuer(key.client_email).setSubject(cfg.subject).setAudience(tokenUrl).setIssuedAt().setExpirationTime('1h')
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
 * Google error bodies {error:{code,message,status}}: the status, the "@Code " sub-code with which
 * Classroom starts the message, and what to do about a known one — never the rest of the message.
 */
export function describeGoogleError(_status: number, body: string): string | undefined {
  try {
    const e = (JSON.parse(body) as { error?: { status?: unknown; message?: unknown } }).error;
    const sub = typeof e?.message === 'string' ? /^@(\w+) /.exec(e.message)?.[1] : undefined;
    const status = typeof e?.status === 'string' ? e.status.replace(/[^A-Z_]/g, '') : undefined;
    const text = [status, sub && `@${sub}`].filter(Boolean).join(' ');
    const hint = sub ? SUB_CODES[sub] : undefined;
    return (hint ? `${text}: ${hint}` : text) || undefined;
  } catch {
    return undefined;
  }
}
