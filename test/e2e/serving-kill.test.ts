/**
 * `rostergate serve` as a separate process, killed with SIGKILL while 8 clients keep sending keyed
 * requests: every answer a client received has its audit entry in the store afterwards (group
 * commit answers only after the commit), and the chain verifies. On SQLite and PostgreSQL.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { request } from 'undici';
import { RosterDataset } from '../../src/demo/dataset.ts';
import { directConnector } from '../../src/demo/direct-connector.ts';
import { DEMO_CLIENTS, DEMO_PURPOSES } from '../../src/demo/demo-policy.ts';
import { parseConfig } from '../../src/config/config.ts';
import { buildUnifiedSchema } from '../../src/graphql/schema.ts';
import { hashApiKey, newApiKey } from '../../src/privacy/api-keys.ts';
import { KeyRing } from '../../src/privacy/pseudonym.ts';
import { auditLogFor, setupPrivacy } from '../../src/graphql/privacy.ts';
import { openStore } from '../../src/store/open.ts';
import { syncSource } from '../../src/sync/runner.ts';
import { newPostgresDatabase, storeKinds, tempDir } from '../support/stores.ts';
import { CLI_BIN } from '../support/cli-bin.ts';

const bin = CLI_BIN;
const MASTER = Buffer.alloc(32, 13);
const TENANT = 'kill-test';

describe.each(storeKinds())('serve killed with SIGKILL on %s', { timeout: 180_000 }, (kind) => {
  const dir = tempDir();
  let db: { url: string; drop(): Promise<void> };
  let cfgFile: string;
  let key: string;

  beforeAll(async () => {
    db = kind === 'sqlite' ? { url: join(dir, 'rg.db'), drop: async () => {} } : await newPostgresDatabase();
    const raw = { store: db.url, privacy: { tenant: TENANT }, purposes: DEMO_PURPOSES, clients: DEMO_CLIENTS };
    cfgFile = join(dir, 'rostergate.json');
    writeFileSync(cfgFile, JSON.stringify(raw));
    const config = parseConfig(raw);
    const store = await openStore(config);
    const privacy = setupPrivacy(config, buildUnifiedSchema(), { keyring: new KeyRing(MASTER, TENANT) });
    await syncSource(store, directConnector('demo', RosterDataset.generate({ students: 30, teachers: 3, classes: 4, schools: 1 })), { ...(await privacy.ingest(store)) });
    key = newApiKey();
    await store.addApiKey(hashApiKey(key), 'lms-demo', new Date().toISOString());
    await store.close();
  }, 120_000);
  afterAll(async () => db?.drop());

  it('every answer received has its audit entry committed', async () => {
    const child = spawn(process.execPath, [bin, 'serve', '--config', cfgFile, '--port', '0'], {
      env: { ...process.env, ROSTERGATE_LOG_LEVEL: 'silent', ROSTERGATE_MASTER_KEY: MASTER.toString('hex') },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const exited = new Promise<NodeJS.Signals | null>((r) => child.on('exit', (_code, signal) => r(signal)));
    const url = await new Promise<string>((resolve, reject) => {
      let out = '';
      child.stdout.on('data', (d) => {
        out += d;
        const m = /GraphQL: (\S+)/.exec(out);
        if (m) resolve(m[1]!);
      });
      child.on('exit', () => reject(new Error(`serve exited before listening: ${out}`)));
    });
    let answered = 0;
    let killed = false;
    const client = async () => {
      while (!killed) {
        try {
          const r = await request(url, { method: 'POST', headers: { 'content-type': 'application/json', 'x-api-key': key }, body: JSON.stringify({ query: '{ people(first: 5) { edges { node { id givenName } } } }' }) });
          const body = (await r.body.json()) as { data?: unknown };
          if (r.statusCode === 200 && body.data) answered++;
        } catch {
          return; // the connection died with the process
        }
      }
    };
    const clients = Array.from({ length: 8 }, client);
    while (answered < 60) await new Promise((r) => setTimeout(r, 10));
    child.kill('SIGKILL');
    killed = true;
    expect(await exited).toBe('SIGKILL');
    await Promise.all(clients);

    const store = await openStore({ store: db.url });
    try {
      const entries = (await store.auditEntries({})).filter((e) => e.client === 'lms-demo');
      expect(entries.length).toBeGreaterThanOrEqual(answered);
      expect(await auditLogFor(store, new KeyRing(MASTER, TENANT)).verify()).toMatchObject({ ok: true });
    } finally {
      await store.close();
    }
  });
});
