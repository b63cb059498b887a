import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createHash } from 'node:crypto';
import { chmodSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { KeyRing, versionOf } from '../../src/privacy/pseudonym.ts';
import { privateGateway, type PrivateGateway } from '../support/privacy.ts';
import { tempDir } from '../support/stores.ts';

const ring = new KeyRing(Buffer.alloc(32, 1), 'tenant-a');

describe('keyed, domain-bound, versioned pseudonyms', () => {
  it('are deterministic per (tenant, domain, version, id) and differ when any of them changes', () => {
    const p = ring.pseudonym('analytics', 1, 'per_abc');
    expect(p).toMatch(/^p1_[A-Za-z0-9_-]{22}$/);
    expect(ring.pseudonym('analytics', 1, 'per_abc')).toBe(p);
    expect(ring.pseudonym('research', 1, 'per_abc')).not.toBe(p);
    expect(ring.pseudonym('analytics', 2, 'per_abc')).not.toBe(p);
    expect(new KeyRing(Buffer.alloc(32, 1), 'tenant-b').pseudonym('analytics', 1, 'per_abc')).not.toBe(p);
    expect(new KeyRing(Buffer.alloc(32, 2), 'tenant-a').pseudonym('analytics', 1, 'per_abc')).not.toBe(p);
    expect(versionOf(ring.pseudonym('analytics', 7, 'x'))).toBe(7);
  });

  it('are not a plain hash of the input', () => {
    const p = ring.pseudonym('analytics', 1, 'per_abc').slice(3);
    for (const alg of ['md5', 'sha1', 'sha256']) {
      const h = createHash(alg).update('per_abc');
      expect(h.copy().digest('base64url')).not.toContain(p);
      expect(h.digest('hex')).not.toContain(p);
    }
  });

  it('are the documented construction: HMAC-SHA256 under HKDF-SHA256(master, salt = tenant, info = domain and version)', async () => {
    // An independent implementation (WebCrypto) of what the README and the module header promise.
    const master = await crypto.subtle.importKey('raw', Buffer.alloc(32, 1), 'HKDF', false, ['deriveBits']);
    const bits = await crypto.subtle.deriveBits(
      { name: 'HKDF', hash: 'SHA-256', salt: Buffer.from('tenant-a'), info: Buffer.from('rostergate pseudonym|analytics|v3') }, master, 256,
    );
    const key = await crypto.subtle.importKey('raw', bits, { name: 'HMAC', hash: 'SHA-256' }, false, ['sign']);
    const mac = Buffer.from(await crypto.subtle.sign('HMAC', key, Buffer.from('per_abc'))).toString('base64url');
    expect(ring.pseudonym('analytics', 3, 'per_abc')).toBe(`p3_${mac.slice(0, 22)}`);
  });

  it('read the master key from the environment, or from a file only its owner can read', () => {
    const dir = tempDir();
    const f = join(dir, 'master.key');
    writeFileSync(f, Buffer.alloc(32, 1).toString('hex') + '\n', { mode: 0o600 });
    const fromFile = KeyRing.load({ tenant: 'tenant-a', env: {}, file: f });
    expect(fromFile.pseudonym('analytics', 1, 'per_abc')).toBe(ring.pseudonym('analytics', 1, 'per_abc'));
    for (const m of [0o640, 0o604, 0o644]) {
      chmodSync(f, m);
      expect(() => KeyRing.load({ tenant: 'tenant-a', env: {}, file: f })).toThrow(/privacy\.masterKeyFile: .* is readable by group or others/);
    }
    expect(() => KeyRing.load({ tenant: 't', env: {}, file: join(dir, 'missing.key') })).toThrow(/privacy\.masterKeyFile: .*cannot be read/);
    // The environment wins: a deployment can keep the key out of the filesystem altogether.
    const env = { ROSTERGATE_MASTER_KEY: Buffer.alloc(32, 2).toString('base64url') };
    expect(KeyRing.load({ tenant: 'tenant-a', env, file: f }).pseudonym('analytics', 1, 'per_abc')).not.toBe(ring.pseudonym('analytics', 1, 'per_abc'));
  });

  it('refuses short master keys and explains how to provide one', () => {
    expect(() => new KeyRing(Buffer.alloc(16), 't')).toThrow(/at least 32 bytes/);
    expect(() => KeyRing.load({ tenant: 't', env: {} })).toThrow(/no master key: set ROSTERGATE_MASTER_KEY/);
    expect(KeyRing.load({ tenant: 't', env: { ROSTERGATE_MASTER_KEY: KeyRing.generateText() } })).toBeInstanceOf(KeyRing);
  });

  it('sealed cursors open only in their own domain', () => {
    const c = ring.sealCursor('analytics', 'c1:per_x');
    expect(ring.openCursor('analytics', c)).toBe('c1:per_x');
    expect(ring.openCursor('roster-sync', c)).toBeUndefined();
    expect(ring.openCursor('analytics', c.slice(0, -2) + 'AA')).toBeUndefined();
  });
});

describe('rotation of a domain', () => {
  let g: PrivateGateway;
  beforeAll(async () => {
    g = await privateGateway({ students: 40, teachers: 4, classes: 4, schools: 1 });
  });
  afterAll(() => g?.close());

  it('moves every person to a new pseudonym and can hand over an old → new table', async () => {
    const q = `{ people(first: 500) { edges { node { id } } } }`;
    const before = (await g.gql('analytics-demo', q)).body.data.people.edges.map((e: any) => e.node.id) as string[];
    const table: [string, string][] = [];
    const r = await g.privacy.pseudonymiser.rotate(g.store, 'analytics', (o, n) => table.push([o, n]));
    expect(r).toMatchObject({ from: 1, to: 2 });
    expect(table).toHaveLength(before.length);
    const after = (await g.gql('analytics-demo', q)).body.data.people.edges.map((e: any) => e.node.id) as string[];
    expect(after.every((p) => p.startsWith('p2_'))).toBe(true);
    const map = new Map(table);
    expect(new Set(before.map((p) => map.get(p)))).toEqual(new Set(after));
  });

  it('the CLI refuses to overwrite a re-keying table', async () => {
    const dir = tempDir();
    const f = join(dir, 't.csv');
    (await import('node:fs')).writeFileSync(f, 'x');
    const { keysRotate } = await import('../../src/commands/keys.ts');
    await expect(keysRotate({ domain: 'analytics', rekeyTable: f })).rejects.toThrow(/exists: refusing to overwrite/);
    expect(readFileSync(f, 'utf8')).toBe('x');
  });
});
