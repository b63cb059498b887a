/**
 * OneRoster authentication. 1.1 (ClassLink): every request signed with OAuth 1.0a, HMAC-SHA256,
 * no token. 1.2: OAuth 2 client credentials, a bearer token cached until shortly before expiry.
 */
import { createHmac, randomBytes } from 'node:crypto';
import { RostergateError } from '../../src/errors.ts';
import { bearerTokenAuth, type AuthProvider, type HttpClient } from '../http.ts';

/** RFC 3986 percent-encoding (encodeURIComponent leaves !'()* alone; OAuth does not). */
export function pct(s: string): string {
  return encodeURIComponent(s).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
}

/** The OAuth 1.0a signature base string: METHOD & url-without-query & sorted, encoded parameters. */
export function signatureBase(method: string, url: URL, oauth: Record<string, string>): string {
  const params: [string, string][] = [...url.searchParams.entries(), ...Object.entries(oauth)];
  const normalized = params
    .map(([k, v]) => [pct(k), pct(v)] as const)
    .sort(([ak, av], [bk, bv]) => (ak < bk ? -1 : ak > bk ? 1 : av < bv ? -1 : av > bv ? 1 : 0))
    .map(([k, v]) => `${k}=${v}`)
    .join('&');
  return `${method.toUpperCase()}&${pct(`${url.origin}${url.pathname}`)}&${pct(normalized)}`;
}

export function hmacSignature(base: string, secret: string): string {
  return createHmac('sha256', `${pct(secret)}&`).update(base).digest('base64');
}

export function oauth1(clientId: string, clientSecret: string, now: () => number = Date.now): AuthProvider {
  return {
    async authorize({ method, url, headers }) {
      const oauth: Record<string, string> = {
        oauth_consumer_key: clientId,
        oauth_signature_method: 'HMAC-SHA256',
        oauth_timestamp: String(Math.floor(now() / 1000)),
        oauth_nonce: randomBytes(12).toString('hex'),
        oauth_version: '1.0',
      };
      const signature = hmacSignature(signatureBase(method, url, oauth), clientSecret);
      headers.authorization = `OAuth ${Object.entries({ ...oauth, oauth_signature: signature }).map(([k, v]) => `${k}="${pct(v)}"`).join(',')}`;
    },
  };
}

export function oauth2ClientCredentials(http: HttpClient, o: { source: string; tokenUrl: string; clientId: string; clientSecret: string; scope: string }): AuthProvider {
  return bearerTokenAuth(async () => {
    const res = await http.jsonResponse<{ access_token?: string; expires_in?: number; error?: string }>({
      method: 'POST', url: o.tokenUrl, resource: 'token', noAuth: true, acceptStatuses: [400, 401],
      headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: `Basic ${Buffer.from(`${pct(o.clientId)}:${pct(o.clientSecret)}`).toString('base64')}` },
      body: new URLSearchParams({ grant_type: 'client_credentials', scope: o.scope }).toString(),
    });
    if (res.status !== 200 || !res.body.access_token) {
      const code = typeof res.body?.error === 'string' ? res.body.error.replace(/[^a-z_]/gi, '') : '';
      throw new RostergateError('SOURCE_AUTH', `token request refused (${res.status}${code ? ` ${code}` : ''}): check clientId, clientSecret and tokenUrl`, {
        source: o.source, resource: 'token', status: res.status,
      });
    }
    return { token: res.body.access_token, expiresInSeconds: res.body.expires_in };
  });
}
