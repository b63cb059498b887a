import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
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
