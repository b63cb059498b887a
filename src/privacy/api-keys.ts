/**
 * API keys: 256 random bits, shown once, stored only as a SHA-256 hash (a plain hash is right for
 * high-entropy secrets: there is nothing to guess). A request names no client; the key does.
 */
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';

export function newApiKey(): string {
  return `rgk_${randomBytes(32).toString('base64url')}`;
}

export function hashApiKey(key: string): string {
  return createHash('sha256').update(key, 'utf8').digest('hex');
}

export function sameHash(a: string, b: string): boolean {
  return a.length === b.length && timingSafeEqual(Buffer.from(a), Buffer.from(b));
}

/** The key from `x-api-key` or `Authorization: Bearer` (the scheme name is case-insensitive, RFC 9110 §11.1). */
export function keyFromHeaders(headers: Record<string, string | string[] | undefined>): string | undefined {
  const x = headers['x-api-key'];
  if (typeof x === 'string' && x.trim()) return x.trim();
  const auth = headers.authorization;
  const m = typeof auth === 'string' ? /^Bearer +(\S+)\s*$/i.exec(auth) : null;
  return m?.[1];
}
