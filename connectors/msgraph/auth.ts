/**
 * Microsoft identity platform client credentials (app-only): POST {authority}/{tenant}/oauth2/v2.0/token
 * with scope https://graph.microsoft.com/.default. Token errors carry AADSTS codes; the common ones
 * become messages that say what to fix. Neither the secret nor Microsoft's description text is kept.
 */
import { RostergateError } from '../../src/errors.ts';
import { bearerTokenAuth, type AuthProvider, type HttpClient } from '../http.ts';
import type { MsGraphConfig } from './config.ts';

const AADSTS: Record<string, string> = {
  '7000215': 'client secret rejected: check clientSecret (the secret value, not its id)',
  '7000222': 'client secret expired: create a new one in the app registration and update clientSecret',
  '700016': 'application not found in the tenant: check clientId and that the app is consented in this tenant',
  '90002': 'tenant not found: check tenantId',
  '900023': 'tenant not found: check tenantId',
  '50034': 'account not found',
  '65001': 'admin consent missing: grant the EduRoster application permissions',
};

export function clientCredentials(http: HttpClient, cfg: MsGraphConfig): AuthProvider {
  return bearerTokenAuth(async () => {
    const res = await http.jsonResponse<{ access_token?: string; expires_in?: number; error?: string; error_codes?: number[] }>({
      method: 'POST', url: `${cfg.authorityUrl.replace(/\/$/, '')}/${encodeURIComponent(cfg.tenantId)}/oauth2/v2.0/token`, resource: 'token', noAuth: true,
      acceptStatuses: [400, 401],
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ client_id: cfg.clientId, client_secret: cfg.clientSecret, scope: 'https://graph.microsoft.com/.default', grant_type: 'client_credentials' }).toString(),
    });
    if (res.status !== 200 || !res.body.access_token) {
      const code = String(res.body?.error_codes?.[0] ?? '');
      const what = AADSTS[code] ?? `check tenantId, clientId and clientSecret${res.body?.error ? ` (${String(res.body.error).replace(/[^a-z_]/gi, '')})` : ''}`;
      throw new RostergateError('SOURCE_AUTH', `token request refused${code ? ` (AADSTS${code})` : ''}: ${what}`, { source: cfg.id, resource: 'token', status: res.status });
    }
    return { token: res.body.access_token, expiresInSeconds: res.body.expires_in };
  });
}

/**
 * A 403 to an app token means the token carries no EduRoster role: the permission was never
 * granted, or an admin revoked its consent (the token endpoint still issues tokens then).
 */
const FORBIDDEN_HINT = 'grant the app registration the application permission EduRoster.Read.All, with admin consent in this tenant (it may have been revoked)';

/** Graph error bodies: {error:{code, message, innerError}} — only the code is shown, and for a 403 what to grant. */
export function describeGraphError(status: number, body: string): string | undefined {
  let code: unknown;
  try {
    code = (JSON.parse(body) as { error?: { code?: unknown } }).error?.code;
  } catch {
    code = undefined;
  }
  const text = typeof code === 'string' ? `Graph error ${code.replace(/[^A-Za-z_.]/g, '')}` : undefined;
  if (status === 403) return text ? `${text}: ${FORBIDDEN_HINT}` : FORBIDDEN_HINT;
  return text;
}
