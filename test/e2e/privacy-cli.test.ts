/**
 * The privacy commands as an operator runs them: master key and API keys on disk, rotation with a
 * re-keying table, `audit verify` on an intact and on a tampered log.
 */
import { describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { chmodSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { DEMO_CLIENTS, DEMO_PURPOSES } from '../../src/demo/demo-policy.ts';
import { RosterDataset } from '../../src/demo/dataset.ts';
import { directConnector } from '../../src/demo/direct-connector.ts';
import { buildUnifiedSchema } from '../../src/graphql/schema.ts';
import { KeyRing } from '../../src/privacy/pseudonym.ts';
import { auditLogFor, setupPrivacy } from '../../src/graphql/privacy.ts';
import { parseConfig } from '../../src/config/config.ts';
import { SqliteStore } from '../../src/store/sqlite.ts';
import { syncSource } from '../../src/sync/runner.ts';
import { tempDir } from '../support/stores.ts';
import { CLI_BIN } from '../support/cli-bin.ts';

const bin = CLI_BIN;
const MASTER = Buffer.alloc(32, 5);
const baseEnv = () => {
  const env = { ...process.env, ROSTERGATE_LOG_LEVEL: 'silent' } as Record<string, string>;
  delete env.ROSTERGATE_MASTER_KEY;
  delete env.ROSTERGATE_CONFIG;
  return env;
};
const run = (args: string[], env: Record<string, string> = {}) =>
  spawnSync(process.execPath, [bin, ...args], { encoding: 'utf8', env: { ...baseEnv(), ...env }, timeout: 60_000 });
const withKey = { ROSTERGATE_MASTER_KEY: MASTER.toString('hex') };
const mode = (f: string) => statSync(f).mode & 0o777;

/** A config file with the demo purposes and a store synced from a small district. */
async function syncedStore(dir: string): Promise<{ cfgFile: string; store: string; people: number }> {
  const raw = { store: './rg.db', privacy: { tenant: 'cli-test' }, purposes: DEMO_PURPOSES, clients: DEMO_CLIENTS };
  const cfgFile = join(dir, 'rostergate.json');
  writeFileSync(cfgFile, JSON.stringify(raw));
  const cfg = parseConfig({ ...raw, store: join(dir, 'rg.db') });
  const store = SqliteStore.open(cfg.store);
  const privacy = setupPrivacy(cfg, buildUnifiedSchema(), { keyring: new KeyRing(MASTER, 'cli-test') });
  await syncSource(store, directConnector('demo', RosterDataset.generate({ students: 30, teachers: 2, classes: 2, schools: 1 })), await privacy.ingest(store));
  const people = (await store.counts()).person;
  await store.close();
  return { cfgFile, store: cfg.store, people };
}

describe('master key', () => {
  it('keys master writes an owner-only file, refuses to overwrite it, and --force replaces a wider one with mode 600', () => {
    const dir = tempDir();
    const f = join(dir, 'master.key');
    expect(run(['keys', 'master', '--out', f]).status).toBe(0);
    expect(mode(f)).toBe(0o600);
    const first = readFileSync(f, 'utf8');
    expect(KeyRing.parse(first).length).toBe(32);
    const again = run(['keys', 'master', '--out', f]);
    expect(again.status).toBe(2);
    expect(again.stderr).toMatch(/exists: refusing to overwrite a master key/);
    chmodSync(f, 0o644);
    expect(run(['keys', 'master', '--out', f, '--force']).status).toBe(0);
    expect(mode(f)).toBe(0o600);
    expect(readFileSync(f, 'utf8')).not.toBe(first);
  }, 120_000);

  it('the gateway refuses a master key file that group or others can read', async () => {
    const dir = tempDir();
    const { cfgFile } = await syncedStore(dir);
    const keyFile = join(dir, 'master.key');
    writeFileSync(keyFile, MASTER.toString('hex'), { mode: 0o644 });
    chmodSync(keyFile, 0o644);
    const cfg = JSON.parse(readFileSync(cfgFile, 'utf8'));
    writeFileSync(cfgFile, JSON.stringify({ ...cfg, privacy: { ...cfg.privacy, masterKeyFile: './master.key' } }));
    const r = run(['serve', '--config', cfgFile, '--port', '0']);
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/master\.key is readable by group or others \(mode 644\); chmod 600 it/);
  });
});

describe('API keys', () => {
  it('keys create prints a key once and stores only its hash', async () => {
    const dir = tempDir();
    const { cfgFile, store } = await syncedStore(dir);
    const r = run(['keys', 'create', '--client', 'analytics-demo', '--config', cfgFile]);
    expect(r.status).toBe(0);
    const key = /^(rgk_\S+)$/m.exec(r.stdout)![1]!;
    const db = new Database(store, { readonly: true });
    const rows = db.prepare(`SELECT * FROM api_keys`).all() as { hash: string; client: string }[];
    db.close();
    expect(rows).toHaveLength(1);
    expect(rows[0]!.client).toBe('analytics-demo');
    expect(JSON.stringify(rows)).not.toContain(key);
    expect(readFileSync(store).includes(key)).toBe(false);
    const list = run(['keys', 'list', '--config', cfgFile]);
    expect(list.stdout).toMatch(/analytics-demo/);
    expect(list.stdout).not.toContain(key);
    const revoked = run(['keys', 'revoke', '--client', 'analytics-demo', '--config', cfgFile]);
    expect(revoked.stdout).toMatch(/revoked 1 key\(s\) of client analytics-demo/);
    expect(run(['keys', 'list', '--config', cfgFile]).stdout).toMatch(/analytics-demo.*revoked/);
    const unknown = run(['keys', 'revoke', '--client', 'nobody', '--config', cfgFile]);
    expect(unknown.status).toBe(2);
    expect(unknown.stderr).toMatch(/no client "nobody" in the config/);
    // Six processes, each loading the gateway: slow on a loaded machine (it timed out at 30 s in the full suite).
  }, 120_000);

  it('keys revoke says that keys listed in the config must be removed there', async () => {
    const dir = tempDir();
    const { cfgFile } = await syncedStore(dir);
    const raw = JSON.parse(readFileSync(cfgFile, 'utf8'));
    raw.clients = raw.clients.map((c: { id: string }) => (c.id === 'lms-demo' ? { ...c, keyHashes: ['a'.repeat(64)] } : c));
    writeFileSync(cfgFile, JSON.stringify(raw));
    const r = run(['keys', 'revoke', '--client', 'lms-demo', '--config', cfgFile]);
    expect(r.status).toBe(0);
    expect(r.stdout).toMatch(/revoked 0 key\(s\)/);
    expect(r.stdout).toMatch(/1 key\(s\) listed under keyHashes in the config: remove them there/);
  });
});

describe('rotation and audit on the command line', () => {
  it('keys rotate moves a domain to a new version and writes an owner-only old → new table', async () => {
    const dir = tempDir();
    const { cfgFile, store, people } = await syncedStore(dir);
    const table = join(dir, 'rekey.csv');
    writeFileSync(table, 'stale', { mode: 0o644 });
    chmodSync(table, 0o644);
    expect(run(['keys', 'rotate', '--domain', 'analytics', '--rekey-table', table, '--config', cfgFile], withKey).stderr).toMatch(/exists: refusing to overwrite/);
    const r = run(['keys', 'rotate', '--domain', 'analytics', '--rekey-table', table, '--force', '--config', cfgFile], withKey);
    expect(r.stderr).toBe('');
    expect(r.stdout).toMatch(new RegExp(`domain analytics: version 1 → 2; ${people} people re-keyed`));
    expect(mode(table)).toBe(0o600);
    const lines = readFileSync(table, 'utf8').trim().split('\n');
    expect(lines[0]).toBe('old_pseudonym,new_pseudonym');
    expect(lines).toHaveLength(people + 1);
    for (const l of lines.slice(1)) expect(l).toMatch(/^p1_[A-Za-z0-9_-]{22},p2_[A-Za-z0-9_-]{22}$/);
    // Sorted by old pseudonym: no shared (gateway-id) row order that would pair two domains' tables.
    const olds = lines.slice(1).map((l) => l.split(',')[0]!);
    expect(olds.every((o, i) => i === 0 || olds[i - 1]! < o)).toBe(true);
    const db = new Database(store, { readonly: true });
    expect(db.prepare(`SELECT version FROM pseudonym_domains WHERE domain = 'analytics'`).get()).toEqual({ version: 2 });
    db.close();
  }, 120_000);

  it('audit verify exits 0 on an intact log and 4 naming the entry once one is edited', async () => {
    const dir = tempDir();
    const { cfgFile, store } = await syncedStore(dir);
    const s = SqliteStore.open(store);
    const log = auditLogFor(s, new KeyRing(MASTER, 'cli-test'));
    for (let i = 0; i < 3; i++) {
      await log.record({ at: new Date().toISOString(), client: 'analytics-demo', purpose: 'analytics', kind: 'query', operation: `Q${i}`, operationHash: 'h', categories: { IDENTIFIER: 1 }, fields: ['Person.id'], people: 2 });
    }
    await s.close();
    const ok = run(['audit', 'verify', '--config', cfgFile], withKey);
    expect(ok.status).toBe(0);
    expect(ok.stdout).toMatch(/audit log intact: 3 entries verified/);
    const head = /hash (\S+)/.exec(ok.stdout)![1]!;
    expect(run(['audit', 'verify', '--config', cfgFile, '--anchor', head], withKey).status).toBe(0);
    const db = new Database(store);
    db.exec(`DROP TRIGGER audit_log_no_update`);
    db.prepare(`UPDATE audit_log SET people = 0 WHERE seq = 2`).run();
    db.close();
    const bad = run(['audit', 'verify', '--config', cfgFile], withKey);
    expect(bad.status).toBe(4);
    expect(bad.stdout).toMatch(/audit log TAMPERED at entry 2: content does not match its hash/);
  }, 120_000);
});

describe('identity link and unlink', () => {
  it('an operator links a conflict\'s record by its id, sees it resolved, splits it off again; bad requests are one line and exit 2; both are audited', async () => {
    const dir = tempDir();
    const raw = { store: './rg.db', privacy: { tenant: 'cli-test' }, purposes: DEMO_PURPOSES, clients: DEMO_CLIENTS };
    const cfgFile = join(dir, 'rostergate.json');
    writeFileSync(cfgFile, JSON.stringify(raw));
    const cfg = parseConfig({ ...raw, store: join(dir, 'rg.db') });
    const store = SqliteStore.open(cfg.store);
    const privacy = setupPrivacy(cfg, buildUnifiedSchema(), { keyring: new KeyRing(MASTER, 'cli-test') });
    const ds = RosterDataset.generate({ students: 30, teachers: 2, classes: 2, schools: 1 });
    await syncSource(store, directConnector('demo', ds), await privacy.ingest(store));
    // Another source pairs one student's SIS id with another's email: kept apart.
    const [a, b] = ds.list('person').filter((p) => p.data.roles.includes('student'));
    const lms = { sourceId: 'lms', type: 'sds-csv' as const, async *read() {
      yield { resource: 'users', state: {}, completes: ['person' as const], records: [
        { type: 'person' as const, key: 'x1', data: { givenName: 'Mixed', familyName: 'Record', roles: ['student' as const], sisId: a!.data.sisId, email: b!.data.email } },
      ] };
    } };
    expect((await syncSource(store, lms, await privacy.ingest(store))).counters.conflicts).toBe(1);
    const A = await store.transaction((tx) => tx.resolveKey('demo', 'person', a!.key));
    const M = await store.transaction((tx) => tx.resolveKey('lms', 'person', 'x1'));
    await store.close();

    const listed = run(['identity', 'conflicts', '--config', cfgFile]);
    const id = /^#(\d+) \S+ {2}source lms, person x1: sisId and email point at different people/m.exec(listed.stdout)![1]!;
    expect(listed.stdout).toMatch(/1 open conflict\(s\)\. .*rostergate identity link --conflict ID --into ENTITY/);

    const linked = run(['identity', 'link', '--conflict', id, '--into', A!, '--config', cfgFile], withKey);
    expect(linked.stderr).toBe('');
    expect(linked.status).toBe(0);
    expect(linked.stdout).toContain(`linked source lms, person x1: ${M} merged into ${A} (1 source record(s) moved`);
    const after = run(['identity', 'conflicts', '--config', cfgFile]);
    expect(after.stdout).toMatch(new RegExp(`^#${id} .*\\[resolved \\S+: linked into ${A}\\]$`, 'm'));
    expect(after.stdout).toMatch(/^0 open conflict\(s\), 1 resolved\./m);
    expect(JSON.parse(run(['identity', 'conflicts', '--config', cfgFile, '--json']).stdout)[0]).toMatchObject({ resolution: `linked into ${A}` });

    // Bad requests: one line naming the record, exit 2, nothing changed.
    const refused: [string[], RegExp][] = [
      [['identity', 'link', '--conflict', id, '--into', 'per_nobody'], /^rostergate: source lms, record person x1: there is no entity per_nobody to link it into; nothing was changed$/],
      [['identity', 'unlink', '--source', 'demo', '--key', a!.key, '--type', 'class'], /^rostergate: --type must be person or org, not class$/],
      [['identity', 'unlink', '--source', 'lms', '--key', 'nobody'], /^rostergate: source lms, record person nobody: the store has no such record/],
    ];
    for (const [args, message] of refused) {
      const r = run([...args, '--config', cfgFile], withKey);
      expect(r.status, args.join(' ')).toBe(2);
      expect(r.stderr.trim().split('\n'), args.join(' ')).toHaveLength(1);
      expect(r.stderr.trim(), args.join(' ')).toMatch(message);
    }

    const unlinked = run(['identity', 'unlink', '--source', 'lms', '--key', 'x1', '--json', '--config', cfgFile], withKey);
    expect(unlinked.status).toBe(0);
    const split = JSON.parse(unlinked.stdout) as { from: string; to: string };
    expect(split.from).toBe(A);
    expect(split.to).toMatch(/^per_/);
    expect(split.to).not.toBe(M);

    const verified = run(['audit', 'verify', '--config', cfgFile], withKey);
    expect(verified.status).toBe(0);
    const db = new Database(cfg.store, { readonly: true });
    const ops = db.prepare(`SELECT client, kind, operation FROM audit_log WHERE kind = 'identity' ORDER BY seq`).all();
    db.close();
    expect(ops).toEqual([
      { client: 'operator', kind: 'identity', operation: 'identity link (person)' },
      { client: 'operator', kind: 'identity', operation: 'identity unlink (person)' },
    ]);
    // Nine processes, each loading the gateway: slow on a loaded machine.
  }, 120_000);
});
