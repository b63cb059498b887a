import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createHash } from 'node:crypto';
import { chmodSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { KeyRing, versionOf } from '../../src/privacy/pseudonym.ts';
import { privateGateway, type PrivateGateway } from '../support/privacy.ts';
import { storeKinds, tempDir } from '../support/stores.ts';
import { WebhookDispatcher } from '../../src/feeds/webhooks.ts';
import type { WriteTx } from '../../src/store/queries/write-tx.ts';
import { createLogger } from '../../src/log.ts';

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

describe.each(storeKinds())('rotation and the tombstones of deleted people on %s', (kind) => {
  let g: PrivateGateway;
  beforeAll(async () => {
    g = await privateGateway({ students: 30, teachers: 3, classes: 3, schools: 1 }, undefined, {
      store: kind,
      // Deliveries are only queued here (rendered, then failing to connect): their payloads are what is checked.
      config: { webhooks: { allowHttp: true, allowPrivateNetworks: true, timeoutMs: 200 } },
    });
  });
  afterAll(() => g?.close());

  /** The deleted person's id, and the person ids of deleted enrollments, in the analytics feed after `after`. */
  const deletions = async (after: string) => {
    const r = await g.gql('analytics-demo', `query($after: Cursor) { changes(after: $after, first: 1000) { edges { node { op type record {
      ... on Person { id } ... on Enrollment { person { id } } } } } } }`, { after });
    expect(r.body.errors).toBeUndefined();
    const nodes = r.body.data.changes.edges.map((e: any) => e.node).filter((n: any) => n.op === 'DELETED');
    return {
      person: nodes.filter((n: any) => n.type === 'PERSON').map((n: any) => n.record.id) as string[],
      viaEnrollments: [...new Set(nodes.filter((n: any) => n.type === 'ENROLLMENT').map((n: any) => n.record.person.id))] as string[],
    };
  };

  it('re-keys them, so the feed and webhook replays show deletions under the new version, as the re-keying table maps them', async () => {
    const head = (await g.gql('analytics-demo', `{ changesHead }`)).body.data.changesHead as string;
    const ds = g.dataset;
    const leaver = ds.list('person').find((p) => p.data.roles.includes('student') && ds.list('enrollment').some((e) => e.data.personKey === p.key))!;
    for (const e of ds.list('enrollment').filter((x) => x.data.personKey === leaver.key)) ds.remove('enrollment', e.key);
    for (const gd of ds.list('guardianship').filter((x) => x.data.studentKey === leaver.key)) ds.remove('guardianship', gd.key);
    if (ds.get('demographics', leaver.key)) ds.remove('demographics', leaver.key);
    ds.remove('person', leaver.key);
    await g.resync();
    const v1 = await deletions(head);
    expect(v1.person).toHaveLength(1);
    expect(v1.person[0]).toMatch(/^p1_/);
    expect(v1.viaEnrollments).toEqual(v1.person);

    const table = new Map<string, string>();
    const r = await g.privacy.pseudonymiser.rotate(g.store, 'analytics', (o, n) => table.set(o, n));
    expect(r).toMatchObject({ from: 1, to: 2, tombstones: 1 });
    const v2 = await deletions(head);
    expect(v2.person).toEqual([table.get(v1.person[0]!)]);
    expect(v2.person[0]).toMatch(/^p2_/);
    expect(v2.viaEnrollments).toEqual(v2.person);
    // Everyone else is in version 2 as well: one version throughout the feed.
    const live = await g.gql('analytics-demo', `{ people(first: 500) { edges { node { id } } } }`);
    expect(live.body.data.people.edges.every((e: any) => e.node.id.startsWith('p2_'))).toBe(true);

    // A webhook replay renders the deletion from the re-keyed tombstone too.
    const wh = await g.gql('admin-demo', `mutation { createWebhook(client: "analytics-demo", url: "http://127.0.0.1:9/unreachable", events: ["person.deleted"]) { webhook { id } } }`);
    const id = wh.body.data.createWebhook.webhook.id as string;
    expect((await g.gql('admin-demo', `mutation($id: ID!) { replayWebhook(id: $id) { id } }`, { id })).body.errors).toBeUndefined();
    const dispatcher = new WebhookDispatcher(g.store, g.privacy, new Map(), g.config.webhooks, createLogger({ level: 'silent' }));
    await dispatcher.tick();
    await dispatcher.stop();
    const queued = await g.store.webhooks.deliveries(id, undefined, 100);
    expect(queued.map((d) => JSON.parse(d.payload).data.record.id)).toEqual(v2.person);

    // A second rotation moves them on again, from the version-2 value.
    table.clear();
    await g.privacy.pseudonymiser.rotate(g.store, 'analytics', (o, n) => table.set(o, n));
    const v3 = await deletions(head);
    expect(v3.person).toEqual([table.get(v2.person[0]!)]);
    expect(v3.person[0]).toMatch(/^p3_/);
  });
});

describe.each(storeKinds())('a pseudonym is stored only while its person is, on %s', (kind) => {
  let g: PrivateGateway;
  beforeAll(async () => {
    g = await privateGateway({ students: 20, teachers: 2, classes: 2, schools: 1 }, undefined, { store: kind });
  });
  afterAll(() => g?.close());

  it('a rotation whose backfill races a deletion (an erasure, a sync) stores none for the person deleted', async () => {
    // The person is deleted after the backfill read who lacks the new version's pseudonym and before
    // it writes them, as another writer's transaction could come between the two.
    let gone: string | undefined;
    const racing = Object.create(g.store) as typeof g.store;
    racing.peopleWithoutPseudonym = async (domain, version, limit) => {
      const ids = await g.store.peopleWithoutPseudonym(domain, version, limit);
      if (!gone && ids.length) {
        gone = ids[0]!;
        await g.store.transaction((tx) => tx.deleteEntity(gone!));
      }
      return ids;
    };
    const r = await g.privacy.pseudonymiser.rotate(racing, 'analytics');
    expect(r.to).toBe(2);
    expect(gone).toBeDefined();
    const left = await g.store.transaction((tx) => (tx as WriteTx).db.selectFrom('pseudonyms').select(['domain', 'version'])
      .where('entity_id', '=', gone!).execute());
    expect(left).toEqual([]);
    // Everyone else got one.
    const people = (await g.store.list({ type: 'person', first: 1000 })).rows.map((p) => p.id);
    const v2 = await g.store.transaction((tx) => (tx as WriteTx).db.selectFrom('pseudonyms').select('entity_id')
      .where('domain', '=', 'analytics').where('version', '=', 2).execute());
    expect(new Set(v2.map((x) => x.entity_id))).toEqual(new Set(people));
  });
});
