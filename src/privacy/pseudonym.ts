/**
 * Keyed, domain-bound, versioned pseudonyms (EDPB "pseudonymisation domains"; the keyed-hash
 * approach of Google DLP's CryptoHashConfig rather than Presidio's plain hashes).
 *
 *   key(tenant, domain, version) = HKDF-SHA256(master secret, salt = tenant, info = domain|version)
 *   pseudonym = "p<version>_" + base64url(HMAC-SHA256(key, gateway id))[0..22)   (132 bits)
 *
 * The input is the person's random gateway id, never an email or student number, so even a leaked
 * key gives no dictionary to test guesses against. Different domains use unrelated keys, so their
 * pseudonyms cannot be linked; a new version re-keys a domain.
 */
import { createHmac, hkdfSync, randomBytes, createCipheriv, createDecipheriv } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { assertSecretFile } from '../secret.ts';
import { RostergateError } from '../errors.ts';

export const MASTER_KEY_ENV = 'ROSTERGATE_MASTER_KEY';
const PSEUDONYM_CHARS = 22;

export class KeyRing {
  private readonly master: Buffer;
  private readonly tenant: string;
  private cache = new Map<string, Buffer>();

  constructor(master: Buffer, tenant: string) {
    if (master.length < 32) throw new RostergateError('CONFIG_INVALID', 'the master key must be at least 32 bytes (64 hex characters or 44 base64 characters)');
    this.master = master;
    this.tenant = tenant;
  }

  /**
   * The master key and tenant, to build the same key ring on another thread of this process (a
   * parallel extract's workers, src/extract/parallel.ts): handed over in memory, never written.
   */
  material(): { master: Buffer; tenant: string } {
    return { master: this.master, tenant: this.tenant };
  }

  /** The key ring of another tenant under the same master key (src/tenants/tenants.ts: keys per tenant). */
  forTenant(tenant: string): KeyRing {
    return new KeyRing(this.master, tenant);
  }

  /** A fresh random master key, as text to put in ROSTERGATE_MASTER_KEY or a 0600 file. */
  static generateText(): string {
    return randomBytes(32).toString('base64url');
  }

  /** Parses hex (64+ chars) or base64/base64url text into key bytes. */
  static parse(text: string): Buffer {
    const t = text.trim();
    if (/^[0-9a-f]{64,}$/i.test(t)) return Buffer.from(t, 'hex');
    return Buffer.from(t, 'base64url');
  }

  /** Loads the master key from the environment or a secret file (owner-only, or a mounted secret), or fails with what to do. */
  static load(opts: { tenant: string; env?: NodeJS.ProcessEnv; file?: string }): KeyRing {
    const env = opts.env ?? process.env;
    let text = env[MASTER_KEY_ENV];
    if (!text && opts.file) {
      try {
        assertSecretFile(opts.file, env);
        text = readFileSync(opts.file, 'utf8');
      } catch (e) {
        throw new RostergateError('CONFIG_INVALID', `privacy.masterKeyFile: ${(e as Error).message}`);
      }
    }
    if (!text) {
      throw new RostergateError(
        'CONFIG_INVALID',
        `no master key: set ${MASTER_KEY_ENV} or privacy.masterKeyFile (a file readable only by its owner). Create one with \`rostergate keys master\`.`,
      );
    }
    return new KeyRing(KeyRing.parse(text), opts.tenant);
  }

  /**
   * Identifies the master key without revealing it: HKDF of the key under a fixed salt and label
   * of its own (no other derivation uses them), so it says nothing about the key or the keys
   * derived from it. Independent of the tenant. Stores record it to refuse a different key.
   */
  fingerprint(): string {
    const fp = hkdfSync('sha256', this.master, Buffer.from('rostergate key fingerprint', 'utf8'), Buffer.from('rostergate master key fingerprint v1', 'utf8'), 16);
    return `kf1_${Buffer.from(fp).toString('base64url')}`;
  }

  private derive(purpose: string, label: string): Buffer {
    const id = `${purpose}|${label}`;
    let k = this.cache.get(id);
    if (!k) {
      k = Buffer.from(hkdfSync('sha256', this.master, Buffer.from(this.tenant, 'utf8'), Buffer.from(`rostergate ${id}`, 'utf8'), 32));
      this.cache.set(id, k);
    }
    return k;
  }

  pseudonym(domain: string, version: number, entityId: string): string {
    const mac = createHmac('sha256', this.derive('pseudonym', `${domain}|v${version}`)).update(entityId, 'utf8').digest('base64url');
    return `p${version}_${mac.slice(0, PSEUDONYM_CHARS)}`;
  }

  /** Keyed hash for identity match keys, so SIS ids and emails need not be stored to match people. */
  matchKey(kind: string, normalised: string): string {
    return createHmac('sha256', this.derive('match', kind)).update(normalised, 'utf8').digest('base64url').slice(0, 32);
  }

  /** Encrypts pagination cursors so they reveal no gateway ids to pseudonymised clients. */
  sealCursor(domain: string, plain: string): string {
    const iv = randomBytes(12);
    const c = createCipheriv('aes-256-gcm', this.derive('cursor', domain), iv);
    const body = Buffer.concat([c.update(plain, 'utf8'), c.final()]);
    return Buffer.concat([iv, c.getAuthTag(), body]).toString('base64url');
  }

  openCursor(domain: string, sealed: string): string | undefined {
    try {
      const buf = Buffer.from(sealed, 'base64url');
      const d = createDecipheriv('aes-256-gcm', this.derive('cursor', domain), buf.subarray(0, 12));
      d.setAuthTag(buf.subarray(12, 28));
      return Buffer.concat([d.update(buf.subarray(28)), d.final()]).toString('utf8');
    } catch {
      return undefined;
    }
  }

  /** HMAC key for signing things the gateway sends (webhooks use per-subscription secrets instead). */
  /** Keyed hash of a suppressed source record's key (erasure): the key itself is never stored. */
  suppressionKey(source: string, type: string, key: string): string {
    return createHmac('sha256', this.derive('suppression', `${source}|${type}`)).update(key, 'utf8').digest('base64url').slice(0, 32);
  }

  auditKey(): Buffer {
    return this.derive('audit', 'chain');
  }
}

export function versionOf(pseudonym: string): number | undefined {
  const m = /^p(\d+)_/.exec(pseudonym);
  return m ? Number(m[1]) : undefined;
}
