/** `rostergate tenants …` and `sync --tenant` as an operator runs them, on SQLite and PostgreSQL. */
import { describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { RosterDataset } from '../../src/demo/dataset.ts';
import { writeOneRosterDrop } from '../../connectors/oneroster-csv/index.ts';
import { DEMO_CLIENTS, DEMO_PURPOSES } from '../../src/demo/demo-policy.ts';
import { newPostgresDatabase, storeKinds, tempDir } from '../support/stores.ts';
import { TEST_MASTER_KEY } from '../support/privacy.ts';
import { CLI_BIN } from '../support/cli-bin.ts';

const bin = CLI_BIN;

function runner(config: string) {
  const env: NodeJS.ProcessEnv = { ...process.env, ROSTERGATE_LOG_LEVEL: 'silent', ROSTERGATE_MASTER_KEY: TEST_MASTER_KEY.toString('hex') };
  delete env.NODE_ENV;
  return (...args: string[]) => spawnSync(process.execPath, [bin, ...args, '--config', config], { encoding: 'utf8', env, timeout: 60_000 });
}

describe.each(storeKinds())('rostergate tenants on %s', { timeout: 600_000 }, (kind) => {
  it('adds, shows, syncs, pauses, resumes and removes a tenant', async () => {
    const dir = tempDir();
    const db = kind === 'postgres' ? await newPostgresDatabase() : undefined;
    try {
      const config = join(dir, 'rostergate.json');
      writeFileSync(config, JSON.stringify({ store: db?.url ?? './rg.db', privacy: { tenant: 'home' }, purposes: DEMO_PURPOSES, clients: DEMO_CLIENTS }));
      mkdirSync(join(dir, 'drop'));
      writeOneRosterDrop(RosterDataset.generate({ seed: 4, students: 15, teachers: 2, classes: 2, schools: 1 }), join(dir, 'drop'));
      // Relative to the sources file, like paths in the config file.
      writeFileSync(join(dir, 'north.yaml'), 'sources:\n  - id: sis\n    type: oneroster-csv\n    path: ./drop\n');
      writeFileSync(join(dir, 'literal.yaml'), '- id: api\n  type: clever\n  token: sk_live_literal\n');
      const run = runner(config);

      let r = run('tenants', 'add', 'north', '--name', 'North District', '--sources', join(dir, 'literal.yaml'));
      expect(r.status).toBe(2);
      expect(r.stderr).toMatch(/sources\[0\] \(api\): token: a secret given literally/);
      expect(r.stderr).not.toContain('sk_live_literal');

      r = run('tenants', 'add', 'north', '--name', 'North District', '--sources', join(dir, 'north.yaml'));
      expect(r.stderr).toBe('');
      expect(r.status).toBe(0);
      r = run('tenants', 'list');
      expect(r.stdout).toMatch(/^home .*\n^north\s+active\s+1 source\(s\)\s+North District$/m);
      r = run('tenants', 'show', 'north');
      const shown = JSON.parse(r.stdout);
      expect(shown).toMatchObject({ id: 'north', status: 'active', sources: [{ id: 'sis', type: 'oneroster-csv', path: join(dir, 'drop') }] });
      expect(shown.storage).toBe(kind === 'sqlite' ? join(dir, 'tenants', 'north.db') : 'schema tenant_north in the configured database');

      r = run('sync', '--tenant', 'north');
      expect(r.status, r.stderr).toBe(0);
      expect(r.stdout).toMatch(/sis/);
      if (kind === 'sqlite') expect(existsSync(join(dir, 'tenants', 'north.db'))).toBe(true);

      expect(run('tenants', 'pause', 'north').status).toBe(0);
      r = run('sync', '--tenant', 'north');
      expect(r.status).toBe(5);
      expect(r.stderr).toBe('rostergate: tenant north is paused: nothing was synced (rostergate tenants resume north to sync it again)\n');
      r = run('sync', '--all-tenants');
      expect(r.stderr).toContain('tenant north is paused: skipped');
      expect(run('tenants', 'resume', 'north').status).toBe(0);
      expect(run('sync', '--all-tenants').status).toBe(0);

      r = run('tenants', 'set-sources', 'north', join(dir, 'literal.yaml'));
      expect(r.status).toBe(2);
      expect(JSON.parse(run('tenants', 'show', 'north').stdout).sources[0].id).toBe('sis');

      r = run('tenants', 'remove', 'north');
      expect(r.status).toBe(2);
      expect(r.stderr).toMatch(/pass --yes/);
      r = run('tenants', 'remove', 'north', '--yes');
      expect(r.status, r.stderr).toBe(0);
      if (kind === 'sqlite') for (const f of ['north.db', 'north.db-wal', 'north.db-shm']) expect(existsSync(join(dir, 'tenants', f))).toBe(false);
      expect(run('tenants', 'list').stdout).not.toMatch(/^north/m);
      expect(run('tenants', 'list', '--removed').stdout).toMatch(/^north\s+removed \S+ by cli .*North District$/m);
      expect(run('sync', '--tenant', 'north').status).toBe(2);
      expect(run('tenants', 'show', 'nobody').status).toBe(2);
    } finally {
      await db?.drop();
    }
  });
});
