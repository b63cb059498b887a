/**
 * Subject access export, on SQLite and PostgreSQL: a student delivered by two sources, seen by two
 * clients, exported through the command as an operator runs it — complete (both sources' records,
 * the unified record, a pseudonym per pseudonymising domain, the disclosures and the audit entries
 * that may concern them), owner-only, naming no other person, and audited without naming them.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { request } from 'undici';
import { RosterDataset } from '../../src/demo/dataset.ts';
import { directConnector } from '../../src/demo/direct-connector.ts';
import { DEMO_CLIENTS, DEMO_PURPOSES } from '../../src/demo/demo-policy.ts';
import { parseConfig } from '../../src/config/config.ts';
import { buildUnifiedSchema } from '../../src/graphql/schema.ts';
import { createLogger } from '../../src/log.ts';
import { hashApiKey, newApiKey } from '../../src/privacy/api-keys.ts';
import { KeyRing } from '../../src/privacy/pseudonym.ts';
import { auditLogFor, setupPrivacy } from '../../src/graphql/privacy.ts';
import { subjectRef, type SubjectExport } from '../../src/privacy/subject-export.ts';
import { serveStore } from '../../src/runtime.ts';
import { openStore } from '../../src/store/open.ts';
import type { RunningGateway } from '../../src/server/gateway.ts';
import type { Store } from '../../src/store/types.ts';
import { syncSource } from '../../src/sync/runner.ts';
import { newPostgresDatabase, storeKinds, tempDir, type StoreKind } from '../support/stores.ts';
import { CLI_BIN } from '../support/cli-bin.ts';

const bin = CLI_BIN;
const MASTER = Buffer.alloc(32, 9);
const TENANT = 'subject-test';
const run = (args: string[]) => {
  const env = { ...process.env, ROSTERGATE_LOG_LEVEL: 'silent', ROSTERGATE_MASTER_KEY: MASTER.toString('hex') } as Record<string, string>;
  delete env.ROSTERGATE_CONFIG;
  return spawnSync(process.execPath, [bin, ...args], { encoding: 'utf8', env, timeout: 60_000 });
};
const mode = (f: string) => statSync(f).mode & 0o777;

/** A store URL the spawned command can open too: a SQLite file, or a fresh PostgreSQL database. */
async function storeUrl(kind: StoreKind, dir: string): Promise<{ url: string; drop(): Promise<void> }> {
  if (kind === 'sqlite') return { url: join(dir, 'rg.db'), drop: async () => {} };
  return newPostgresDatabase();
}

describe.each(storeKinds())('subject-export on %s', (kind) => {
  const dir = tempDir();
  const dataset = RosterDataset.generate({ students: 24, teachers: 3, classes: 4, schools: 1 });
  const keyring = new KeyRing(MASTER, TENANT);
  let db: { url: string; drop(): Promise<void> };
  let store: Store;
  let gw: RunningGateway;
  let cfgFile: string;
  let studentKey: string;
  let personId: string;
  let exported: SubjectExport;
  let summary: string;
  const out = join(dir, 'subject.json');

  beforeAll(async () => {
    db = await storeUrl(kind, dir);
    const raw = { store: db.url, privacy: { tenant: TENANT }, purposes: DEMO_PURPOSES, clients: DEMO_CLIENTS };
    cfgFile = join(dir, 'rostergate.json');
    writeFileSync(cfgFile, JSON.stringify(raw));
    const config = parseConfig(raw);
    store = await openStore(config);
    const privacy = setupPrivacy(config, buildUnifiedSchema(), { keyring, versionCacheMs: 0 });
    // Two sources delivering the same district: every person arrives twice and is linked by SIS id / email.
    for (const source of ['district-sis', 'district-lms']) {
      await syncSource(store, directConnector(source, dataset), { ...(await privacy.ingest(store)), matchRules: config.identity.match });
    }
    const keys: Record<string, string> = {};
    for (const c of config.clients) {
      keys[c.id] = newApiKey();
      await store.addApiKey(hashApiKey(keys[c.id]!), c.id, new Date().toISOString());
    }
    gw = await serveStore(store, config, createLogger({ level: 'silent' }), { port: 0, privacy, webhooks: false });
    const gql = async (client: string, query: string) => {
      const r = await request(`${gw.url}/graphql`, { method: 'POST', headers: { 'content-type': 'application/json', 'x-api-key': keys[client]! }, body: JSON.stringify({ query }) });
      const body = (await r.body.json()) as { data?: any; errors?: { message: string }[] };
      if (body.errors) throw new Error(body.errors[0]!.message);
      return body.data;
    };
    // The LMS and the data team fetch everyone; the operator's client fetches nothing.
    await gql('lms-demo', '{ people(first: 1000) { edges { node { id givenName } } } }');
    await gql('analytics-demo', '{ people(first: 1000) { edges { node { id } } } }');

    // A student with a guardian, so the export has another person to (not) name.
    studentKey = dataset.list('guardianship')[0]!.data.studentKey;
    personId = (await store.entityOfRecord({ source: 'district-sis', type: 'person', key: studentKey }))!;
    expect(personId).toMatch(/^per_/);

    const r = run(['subject-export', '--config', cfgFile, '--person', personId, '--out', out]);
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    exported = JSON.parse(readFileSync(out, 'utf8'));
    summary = readFileSync(`${out}.md`, 'utf8');
  }, 120_000);

  afterAll(async () => {
    await gw?.close();
    await store?.close();
    await db?.drop();
  });

  it('holds both sources\' records of the person and of their enrollments, as stored', () => {
    const person = dataset.get('person', studentKey)!;
    const own = exported.sourceRecords.filter((r) => r.type === 'person');
    expect(own.map((r) => [r.source, r.key])).toEqual([['district-lms', studentKey], ['district-sis', studentKey]]);
    for (const r of own) {
      expect(r.entityId).toBe(personId);
      expect((r.data as { givenName: string }).givenName).toBe(person.data.givenName);
      expect(r.lastModified).toBe(person.lastModified ?? null);
    }
    const enrollments = dataset.list('enrollment').filter((e) => e.data.personKey === studentKey);
    expect(enrollments.length).toBeGreaterThan(0);
    for (const source of ['district-sis', 'district-lms']) {
      expect(exported.sourceRecords.filter((r) => r.source === source && r.type === 'enrollment').map((r) => r.key).sort()).toEqual(enrollments.map((e) => e.key).sort());
    }
    // Special categories are dropped at ingest (no demo purpose receives them): not held, so not exported.
    for (const r of exported.sourceRecords.filter((x) => x.type === 'demographics')) expect(r.data).not.toHaveProperty('iep');
  });

  it('holds the unified record: person, classes by title, schools, guardianships by relation and id', async () => {
    const person = dataset.get('person', studentKey)!;
    expect(exported.person.id).toBe(personId);
    expect(exported.unified.person.givenName).toBe(person.data.givenName);
    expect(exported.unified.person.familyName).toBe(person.data.familyName);
    const enrollments = dataset.list('enrollment').filter((e) => e.data.personKey === studentKey);
    // Classes are not matched across sources: each source's class, and the enrollment in it, is its own record.
    expect(exported.unified.enrollments).toHaveLength(2 * enrollments.length);
    expect(exported.unified.enrollments.map((e) => e.sources.join()).sort()).toEqual([...enrollments.map(() => 'district-lms'), ...enrollments.map(() => 'district-sis')]);
    expect([...new Set(exported.unified.enrollments.map((e) => e.class?.title))].sort()).toEqual(
      [...new Set(enrollments.map((e) => dataset.get('class', e.data.classKey)!.data.title))].sort(),
    );
    expect(exported.unified.organisations.length).toBeGreaterThan(0);
    const guardianships = dataset.list('guardianship').filter((g) => g.data.studentKey === studentKey);
    // Like enrollments, each source's guardianship is its own record; both name the one linked guardian.
    expect(exported.unified.guardianships).toHaveLength(2 * guardianships.length);
    for (const g of guardianships) {
      const guardianId = await store.entityOfRecord({ source: 'district-sis', type: 'person', key: g.data.guardianKey });
      expect(exported.unified.guardianships).toContainEqual(expect.objectContaining({ personIs: 'student', relation: g.data.relation, otherPersonId: guardianId }));
    }
  });

  it('holds a pseudonym per pseudonymising domain, match keys as keyed hashes, and no identity decisions', () => {
    // analytics is the demo's only pseudonymising purpose.
    expect(exported.pseudonyms).toEqual([{ domain: 'analytics', version: 1, value: keyring.pseudonym('analytics', 1, personId), current: true, purposes: ['analytics'] }]);
    const person = dataset.get('person', studentKey)!;
    expect(exported.matchKeys.map((k) => k.kind).sort()).toEqual(['email', 'sisId']);
    const json = JSON.stringify(exported.matchKeys);
    expect(json).not.toContain(person.data.sisId!);
    expect(json).not.toContain(person.data.email!);
    expect(exported.identity).toEqual({ overrides: [], conflicts: [] });
  });

  it('lists the clients that received the person, what their purpose receives, and the audit entries that may concern them', () => {
    expect(exported.disclosures.map((d) => d.client)).toEqual(['analytics-demo', 'lms-demo']);
    const analytics = exported.disclosures[0]!;
    expect(analytics.purpose).toBe('analytics');
    expect(analytics.legalBasis).toBe(DEMO_PURPOSES.analytics.legalBasis);
    expect(analytics.receives.IDENTIFIER).toContainEqual({ field: 'Person.id', as: 'pseudonymised' });
    expect(analytics.receives.DIRECT).toBeUndefined();
    expect(analytics.receives.QUASI?.map((f) => f.as)).not.toContain('allowed');
    const lms = exported.disclosures[1]!;
    expect(lms.receives.DIRECT).toContainEqual({ field: 'Person.givenName', as: 'allowed' });
    expect(lms.receives.SPECIAL).toBeUndefined();
    const audited = exported.audit.entries.map((e) => [e.client, e.kind]);
    expect(audited).toContainEqual(['lms-demo', 'query']);
    expect(audited).toContainEqual(['analytics-demo', 'query']);
    expect(audited.map(([c]) => c)).not.toContain('admin-demo');
    expect(exported.audit.note).toMatch(/not who they were/);
  });

  it('writes both files owner-only; the summary names the person and no other person', () => {
    expect(mode(out)).toBe(0o600);
    expect(mode(`${out}.md`)).toBe(0o600);
    const person = dataset.get('person', studentKey)!;
    expect(summary).toContain(`# What rostergate holds about person ${personId}`);
    expect(summary).toContain(person.data.givenName);
    expect(summary).toContain('## Who received data about this person');
    expect(summary).toContain('### lms-demo');
    for (const other of dataset.list('person').filter((p) => p.key !== studentKey)) {
      expect(summary, other.key).not.toContain(`${other.data.givenName} ${other.data.familyName}`);
      if (other.data.email) expect(summary, other.key).not.toContain(other.data.email);
      if (other.data.sisId) expect(summary, other.key).not.toContain(other.data.sisId);
    }
  });

  it('is audited as a subject-export by a keyed hash of the person, never the person in clear, and the chain verifies', async () => {
    const entries = await store.auditEntries({});
    const last = entries.at(-1)!;
    expect(last).toMatchObject({ kind: 'subject-export', client: 'operator', purpose: 'subject-access', people: 1, operationHash: subjectRef(keyring.auditKey(), personId) });
    expect(last.operation).toMatch(/^subject-export \(run by .+\)$/);
    expect(last.categories.DIRECT).toBeGreaterThan(0);
    const person = dataset.get('person', studentKey)!;
    const text = JSON.stringify(entries);
    for (const v of [personId, studentKey, person.data.givenName, person.data.email!]) expect(text).not.toContain(v);
    expect((await auditLogFor(store, keyring).verify()).ok).toBe(true);
  });

  it('finds the person by a source\'s key and by a pseudonym too', () => {
    const bySource = join(dir, 'by-source.json');
    expect(run(['subject-export', '--config', cfgFile, '--source', 'district-lms', '--key', studentKey, '--out', bySource]).status).toBe(0);
    expect(JSON.parse(readFileSync(bySource, 'utf8')).person.id).toBe(personId);
    const byPseudonym = join(dir, 'by-pseudonym.json');
    const p = keyring.pseudonym('analytics', 1, personId);
    expect(run(['subject-export', '--config', cfgFile, '--pseudonym', p, '--domain', 'analytics', '--out', byPseudonym, '--summary', join(dir, 'p.md')]).status).toBe(0);
    expect(JSON.parse(readFileSync(byPseudonym, 'utf8')).person.id).toBe(personId);
    expect(existsSync(join(dir, 'p.md'))).toBe(true);
  }, 120_000);

  it('refuses an unknown person, an existing file, and an ambiguous choice in one line with exit 2, writing nothing', () => {
    const none = join(dir, 'none.json');
    const unknown = run(['subject-export', '--config', cfgFile, '--person', 'per_doesnotexist', '--out', none]);
    expect(unknown.status).toBe(2);
    expect(unknown.stderr).toBe('rostergate: no person per_doesnotexist in the store (gateway ids look like per_…); nothing was written\n');
    const unknownKey = run(['subject-export', '--config', cfgFile, '--source', 'district-sis', '--key', 'no-such-key', '--out', none]);
    expect(unknownKey.status).toBe(2);
    expect(unknownKey.stderr).toMatch(/source district-sis has delivered no person with that key/);
    expect(existsSync(none)).toBe(false);
    expect(existsSync(`${none}.md`)).toBe(false);

    const again = run(['subject-export', '--config', cfgFile, '--person', personId, '--out', out]);
    expect(again.status).toBe(2);
    expect(again.stderr).toBe(`rostergate: ${out} exists: refusing to overwrite (pass --force)\n`);
    const both = run(['subject-export', '--config', cfgFile, '--person', personId, '--source', 'district-sis', '--key', studentKey, '--out', none]);
    expect(both.status).toBe(2);
    expect(both.stderr).toMatch(/name the person one way/);
    expect(existsSync(none)).toBe(false);
  }, 180_000);
});
