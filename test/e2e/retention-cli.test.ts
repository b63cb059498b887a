/**
 * `rostergate retention run` as an operator runs it: the dry run removes nothing, the run prints
 * per kind what it removed, `audit verify` passes afterwards, and a too-short period is refused.
 */
import { describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { KeyRing } from '../../src/privacy/pseudonym.ts';
import { auditLogFor } from '../../src/graphql/privacy.ts';
import { SqliteStore } from '../../src/store/sqlite.ts';
import { tempDir } from '../support/stores.ts';
import { CLI_BIN } from '../support/cli-bin.ts';

const bin = CLI_BIN;
const MASTER = Buffer.alloc(32, 8);
const env = () => {
  const e = { ...process.env, ROSTERGATE_LOG_LEVEL: 'silent', ROSTERGATE_MASTER_KEY: MASTER.toString('hex') } as Record<string, string>;
  delete e.ROSTERGATE_CONFIG;
  return e;
};
const run = (args: string[]) => spawnSync(process.execPath, [bin, ...args], { encoding: 'utf8', env: env(), timeout: 60_000 });

describe('rostergate retention run', () => {
  it('dry run, then run: prints per kind what was removed, audits it, and the chain verifies', async () => {
    const dir = tempDir();
    const cfgFile = join(dir, 'rostergate.json');
    writeFileSync(cfgFile, JSON.stringify({ store: './rg.db', privacy: { tenant: 'cli-ret' }, retention: { auditMonths: 6, changeLogDays: 10 } }));
    const store = SqliteStore.open(join(dir, 'rg.db'));
    const log = auditLogFor(store, new KeyRing(MASTER, 'cli-ret'));
    const old = new Date(Date.now() - 400 * 86_400_000).toISOString();
    for (const at of [old, old, new Date().toISOString()]) {
      await log.record({ at, client: 'c', purpose: 'p', kind: 'query', operation: 'Op', operationHash: 'h', categories: {}, fields: [], people: 0 });
    }
    await store.transaction(async (tx) => {
      await tx.appendChange({ at: new Date(Date.now() - 20 * 86_400_000).toISOString(), entityId: 'per_1', type: 'person', op: 'created', fields: [], source: 's' });
    });
    await store.close();

    const dry = run(['retention', 'run', '--config', cfgFile, '--dry-run']);
    expect(dry.stderr).toBe('');
    expect(dry.status).toBe(0);
    expect(dry.stdout).toMatch(/change log and tombstones older than 10 days \(before .*\): would remove 1/);
    expect(dry.stdout).toMatch(/audit log entries older than 6 months \(before .*\): would remove 2/);
    expect(dry.stdout).toContain('nothing was removed (dry run)');

    const r = run(['retention', 'run', '--config', cfgFile]);
    expect(r.status).toBe(0);
    expect(r.stdout).toMatch(/change log and tombstones older than 10 days .*: removed 1\n/);
    expect(r.stdout).toMatch(/audit log entries older than 6 months .*: removed 2 \(a checkpoint entry keeps the chain verifiable\)/);
    expect(r.stdout).toMatch(/webhook deliveries, delivered or dead, older than 30 days .*: removed 0/);
    expect(r.stdout).toContain('recorded in the audit log (kind retention)');

    const v = run(['audit', 'verify', '--config', cfgFile]);
    expect(v.stdout).toContain('audit log intact: 3 entries verified');
    expect(v.status).toBe(0);
  }, 60_000);

  it('refuses a period below its minimum, naming the key, the minimum and the reason (exit 2)', () => {
    const dir = tempDir();
    const cfgFile = join(dir, 'rostergate.json');
    writeFileSync(cfgFile, JSON.stringify({ store: './rg.db', retention: { auditMonths: 2 } }));
    const r = run(['retention', 'run', '--config', cfgFile]);
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/retention\.auditMonths: shorter than the minimum of 6 months/);
  }, 60_000);
});
