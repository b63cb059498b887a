/**
 * Files holding personal data or secrets are their owner's alone: the SQLite store and its -wal and
 * -shm files 0600 and the folders the gateway creates for them 0700 (under the usual umask 022,
 * which would give 0644 and 0755), the demo's CSV drops likewise, and extract output files 0600
 * even when --force replaces wider ones.
 */
import { describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { chmodSync, existsSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { request } from 'undici';
import { DEMO_CLIENTS, DEMO_PURPOSES } from '../../src/demo/demo-policy.ts';
import { RosterDataset } from '../../src/demo/dataset.ts';
import { directConnector } from '../../src/demo/direct-connector.ts';
import { startDemo } from '../../src/demo/demo.ts';
import { buildUnifiedSchema } from '../../src/graphql/schema.ts';
import { createLogger } from '../../src/log.ts';
import { KeyRing } from '../../src/privacy/pseudonym.ts';
import { setupPrivacy } from '../../src/graphql/privacy.ts';
import { parseConfig } from '../../src/config/config.ts';
import { serveStore } from '../../src/runtime.ts';
import { SqliteStore } from '../../src/store/sqlite.ts';
import { syncSource } from '../../src/sync/runner.ts';
import { tempDir } from '../support/stores.ts';
import { CLI_BIN } from '../support/cli-bin.ts';

const log = createLogger({ level: 'silent' });
const mode = (f: string) => statSync(f).mode & 0o777;
const MASTER = Buffer.alloc(32, 9);
const bin = CLI_BIN;
const run = (args: string[]) => {
  const env = { ...process.env, ROSTERGATE_LOG_LEVEL: 'silent', ROSTERGATE_MASTER_KEY: MASTER.toString('hex') } as Record<string, string>;
  delete env.ROSTERGATE_CONFIG;
  return spawnSync(process.execPath, [bin, ...args], { encoding: 'utf8', env, timeout: 60_000 });
};

/** Every file and folder under `dir`, with its mode. */
function walk(dir: string): { path: string; dir: boolean; mode: number }[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const p = join(dir, e.name);
    return [{ path: p, dir: e.isDirectory(), mode: mode(p) }, ...(e.isDirectory() ? walk(p) : [])];
  });
}

describe('owner-only files', () => {
  it('runs under a umask that would otherwise let group and others read (the case being fixed)', () => {
    expect(process.umask() & 0o077).not.toBe(0o077);
  });

  it('the demo: data folder, store, -wal, -shm and CSV drops are owner-only after sync and while serving', async () => {
    const dataDir = join(tempDir(), 'new', 'data');
    const demo = await startDemo({ dataDir, district: { students: 30, teachers: 3, classes: 3 }, log });
    try {
      const gw = await serveStore(demo.store, demo.config, log, { port: 0, privacy: demo.privacy, webhooks: false });
      const r = await request(`${gw.url}/graphql`, {
        method: 'POST', headers: { 'content-type': 'application/json', 'x-api-key': demo.keys[0]!.key }, body: JSON.stringify({ query: '{ schools { totalCount } }' }),
      });
      expect(r.statusCode).toBe(200);
      await r.body.dump();
      expect(mode(join(dataDir, '..'))).toBe(0o700);
      expect(mode(dataDir)).toBe(0o700);
      for (const f of ['demo.db', 'demo.db-wal', 'demo.db-shm']) expect(mode(join(dataDir, f)), f).toBe(0o600);
      const all = walk(dataDir);
      expect(all.filter((e) => e.path.endsWith('.csv')).length).toBeGreaterThan(0);
      for (const e of all) expect(e.mode, e.path).toBe(e.dir ? 0o700 : 0o600);
      await gw.close();
    } finally {
      await demo.close();
    }
  }, 120_000);

  it('rostergate sync creates its store folders 0700 and the store 0600', () => {
    const dir = tempDir();
    const cfg = join(dir, 'rostergate.json');
    writeFileSync(cfg, JSON.stringify({
      store: './state/db/rg.db', server: { openAccess: true },
      sources: [{ id: 'district-clever', type: 'clever', baseUrl: 'http://127.0.0.1:9', token: 't', http: { maxRetries: 0, timeoutMs: 2000 } }],
    }));
    const r = run(['sync', '--config', cfg]);
    expect(r.status).toBe(1); // the source cannot be reached; the store was created all the same
    expect(mode(join(dir, 'state'))).toBe(0o700);
    expect(mode(join(dir, 'state', 'db'))).toBe(0o700);
    expect(mode(join(dir, 'state', 'db', 'rg.db'))).toBe(0o600);
  }, 120_000);

  it('an existing store keeps the mode its operator gave it', async () => {
    const path = join(tempDir(), 'rg.db');
    (await SqliteStore.open(path)).close();
    chmodSync(path, 0o640);
    const again = SqliteStore.open(path);
    await again.close();
    expect(mode(path)).toBe(0o640);
  });

  it('extract --force replaces a wider output, report and stale partial with owner-only files', async () => {
    const dir = tempDir();
    const raw = { store: './rg.db', privacy: { tenant: 'modes' }, purposes: DEMO_PURPOSES, clients: DEMO_CLIENTS };
    const cfgFile = join(dir, 'rostergate.json');
    writeFileSync(cfgFile, JSON.stringify(raw));
    const cfg = parseConfig({ ...raw, store: join(dir, 'rg.db') });
    const store = SqliteStore.open(cfg.store);
    const privacy = setupPrivacy(cfg, buildUnifiedSchema(), { keyring: new KeyRing(MASTER, 'modes') });
    await syncSource(store, directConnector('demo', RosterDataset.generate({ students: 20, teachers: 2, classes: 2, schools: 1 })), await privacy.ingest(store));
    await store.close();
    const out = join(dir, 'people.csv');
    for (const f of [out, `${out}.report.json`, `${out}.partial`]) {
      writeFileSync(f, 'stale');
      chmodSync(f, 0o644);
    }
    const r = run(['extract', '--client', 'analytics-demo', '--dataset', 'people', '--out', out, '--force', '--config', cfgFile]);
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    expect(mode(out)).toBe(0o600);
    expect(mode(`${out}.report.json`)).toBe(0o600);
    expect(existsSync(`${out}.partial`)).toBe(false);
  }, 120_000);
});
