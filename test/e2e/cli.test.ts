/** The command line as a user runs it: one clear line and an exit code for bad input. */
import { describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { writeFileSync, chmodSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { createServer } from 'node:net';
import { tempDir } from '../support/stores.ts';
import { readmeExample, shapeOf } from '../support/readme.ts';

const bin = join(import.meta.dirname, '../../bin/rostergate.mjs');
const run = (args: string[], env: Record<string, string> = {}) =>
  spawnSync(process.execPath, [bin, ...args], { encoding: 'utf8', env: { ...process.env, ROSTERGATE_LOG_LEVEL: 'silent', ...env }, timeout: 60_000 });

describe('rostergate CLI', () => {
  it('rejects an unknown flag with one line and a non-zero exit', () => {
    const r = run(['serve', '--bogus']);
    expect(r.status).not.toBe(0);
    expect(r.stderr).toMatch(/unknown option '--bogus'/);
  });

  it('rejects a bad option value before doing anything, naming the option', () => {
    const dir = tempDir();
    const cases: [string[], string, string][] = [
      [['serve', '--port', 'abc'], '--port', 'abc'],
      [['serve', '--port', '70000'], '--port', '70000'],
      [['demo', '--students', 'many', '--data', join(dir, 'd')], '--students', 'many'],
      [['sandbox', '--seed', 'x'], '--seed', 'x'],
    ];
    for (const [args, option, value] of cases) {
      const r = run(args);
      expect(r.status, args.join(' ')).toBe(2);
      expect(r.stderr.split('\n')[0]).toMatch(new RegExp(`^error: option '.*${option} <.*>' argument '${value}' is invalid\\. Not a`));
    }
    expect(existsSync(join(dir, 'd'))).toBe(false);
  });

  it('refuses to serve a missing store, naming it', () => {
    const dir = tempDir();
    const cfg = join(dir, 'c.yaml');
    writeFileSync(cfg, `store: ./nothing/here.db\n`);
    const r = run(['serve', '--config', cfg]);
    expect(r.status).toBe(2);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    expect(r.stderr).toMatch(/no store at .*here\.db/);
    expect(existsSync(join(dir, 'nothing/here.db'))).toBe(false);
  });

  it('reports config errors with the file and key path', () => {
    const dir = tempDir();
    const cfg = join(dir, 'c.yaml');
    writeFileSync(cfg, `store: ./x.db\nsources:\n  - id: a\n    type: fax-machine\n`);
    const r = run(['sync', '--config', cfg]);
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/c\.yaml: sources\[0\] \(a\)\.type: unknown source type "fax-machine"/);
    writeFileSync(cfg, `store: ./x.db\nstorage: oops\n`);
    expect(run(['serve', '--config', cfg]).stderr).toMatch(/unknown key\(s\) storage/);
    expect(run(['serve', '--config', join(dir, 'missing.yaml')]).stderr).toMatch(/cannot read config file .*missing\.yaml: ENOENT/);
  });

  it('an unusable data folder is one clear line and exit 2', () => {
    const dir = tempDir();
    const file = join(dir, 'not-a-folder');
    writeFileSync(file, 'a file, not a folder');
    chmodSync(file, 0o444);
    const r = run(['demo', '--data', join(file, 'sub'), '--students', '30', '--port', '0']);
    expect(r.status).toBe(2);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    expect(r.stderr).toMatch(/cannot create the data folder .*not-a-folder\/sub: ENOTDIR/);
  });

  it('a port in use is one clear line and exit 2', async () => {
    const blocker = createServer();
    await new Promise<void>((r) => blocker.listen(0, '127.0.0.1', () => r()));
    const port = (blocker.address() as { port: number }).port;
    const dir = tempDir();
    const r = run(['demo', '--port', String(port), '--data', dir, '--students', '30']);
    const sandbox = run(['sandbox', '--port', String(port)]);
    blocker.close();
    expect(r.stderr.trim()).toBe(`rostergate: port ${port} is already in use: stop the other process or pass --port`);
    expect(r.status).toBe(2);
    // Checked before the demo syncs: nothing was synced, no store written.
    expect(r.stdout).toBe('');
    expect(existsSync(join(dir, 'demo.db'))).toBe(false);
    expect(sandbox.status).toBe(2);
    expect(sandbox.stderr.trim()).toBe(`rostergate: port ${port} is already in use: stop the other process or pass --port`);
  });
});

describe('rostergate identity conflicts', () => {
  it('lists conflicts from the store with source, key and reason', async () => {
    const { SqliteStore } = await import('../../src/store/sqlite.ts');
    const dir = tempDir();
    const store = SqliteStore.open(join(dir, 'rg.db'));
    await store.transaction((tx) => tx.addConflict({ at: '2026-11-25T10:00:00Z', source: 'classroom', type: 'person', key: '123', reason: 'sisId and email point at different people', candidates: ['per_a', 'per_b'] }));
    await store.close();
    const cfg = join(dir, 'c.yaml');
    writeFileSync(cfg, `store: ./rg.db\n`);
    const r = run(['identity', 'conflicts', '--config', cfg]);
    expect(r.status).toBe(0);
    expect(r.stdout).toMatch(/source classroom, person 123: sisId and email point at different people; kept apart from per_a, per_b/);
    expect(JSON.parse(run(['identity', 'conflicts', '--config', cfg, '--json']).stdout)).toHaveLength(1);
  });
});

describe('rostergate process lifecycle and failures', () => {
  it('the demo serves the README example, then shuts down gracefully on SIGTERM with exit 0', async () => {
    const { spawn } = await import('node:child_process');
    const dir = tempDir();
    const child = spawn(process.execPath, [bin, 'demo', '--port', '0', '--data', dir, '--students', '30'], {
      env: { ...process.env, ROSTERGATE_LOG_LEVEL: 'silent' }, stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    child.stdout.on('data', (d) => (out += d));
    const url = await new Promise<string>((resolve, reject) => {
      const t = setTimeout(() => reject(new Error(`no URL in time: ${out}`)), 60_000);
      child.stdout.on('data', () => {
        // The last line printed: everything above it (URL, keys) is there.
        const m = /Ctrl\+C/.test(out) ? /GraphQL endpoint:\s+(\S+)/.exec(out) : null;
        if (m) {
          clearTimeout(t);
          resolve(m[1]!);
        }
      });
    });
    const key = /lms-demo\s+purpose roster-sync\s+(\S+)/.exec(out)![1]!;
    const analyticsKey = /analytics-demo\s+purpose analytics\s+(\S+)/.exec(out)![1]!;
    const { request } = await import('undici');
    const ask = async (apiKey: string, query: string) => {
      const r = await request(url, { method: 'POST', headers: { 'content-type': 'application/json', 'x-api-key': apiKey }, body: JSON.stringify({ query }) });
      return (await r.body.json()) as any;
    };
    expect((await ask(key, '{ schools { totalCount } }')).data.schools.totalCount).toBeGreaterThan(0);
    // The README's example: a nested school → class → students query, answered in the README's shape
    // (its values come from the default district: test/unit/readme-example.test.ts checks those).
    const ex = readmeExample();
    const lms = await ask(key, ex.query);
    expect(lms.errors).toBeUndefined();
    expect(shapeOf(lms)).toEqual(shapeOf(ex.answer));
    const analytics = await ask(analyticsKey, ex.analyticsQuery);
    expect(analytics.errors).toBeUndefined();
    expect(shapeOf(analytics.data.schools.edges[0].node.classes.edges[0].node.enrollments.edges[0])).toEqual(shapeOf(ex.analyticsNode));
    expect(await ask(analyticsKey, ex.refusedQuery)).toEqual(ex.refusal);
    child.kill('SIGTERM');
    const code = await new Promise<number | null>((resolve) => child.on('exit', (c) => resolve(c)));
    expect(code).toBe(0);
  }, 90_000);

  it('sync exits non-zero naming the failing source, resource and reason', () => {
    const dir = tempDir();
    const cfg = join(dir, 'c.yaml');
    writeFileSync(cfg, `store: ./rg.db\nserver: { openAccess: true }\nsources:\n  - id: district-clever\n    type: clever\n    baseUrl: http://127.0.0.1:9\n    token: t\n    http: { maxRetries: 0, timeoutMs: 2000 }\n`);
    const r = run(['sync', '--config', cfg]);
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/rostergate: source district-clever, resource events: connection failed \(ECONNREFUSED\)/);
  });

  it('sync with no purposes configured refuses in one line, exit 2, writing nothing; server.openAccess opts out', () => {
    const dir = tempDir();
    const cfg = join(dir, 'c.yaml');
    const source = `sources:\n  - id: district-clever\n    type: clever\n    baseUrl: http://127.0.0.1:9\n    token: t\n    http: { maxRetries: 0, timeoutMs: 2000 }\n`;
    writeFileSync(cfg, `store: ./rg.db\n${source}`);
    const r = run(['sync', '--config', cfg]);
    expect(r.status).toBe(2);
    expect(r.stdout).toBe('');
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    expect(r.stderr).toMatch(/^rostergate: .*c\.yaml: no purposes configured, .*configure at least one purpose .*server\.openAccess/);
    // Refused before the store is opened, and before any source is asked.
    expect(existsSync(join(dir, 'rg.db'))).toBe(false);
    // The explicit opt-out: the same config with openAccess goes on to the source (which is not there).
    writeFileSync(cfg, `store: ./rg.db\nserver: { openAccess: true }\n${source}`);
    const open = run(['sync', '--config', cfg]);
    expect(open.status).toBe(1);
    expect(open.stderr).toMatch(/source district-clever, resource events: connection failed/);
    expect(existsSync(join(dir, 'rg.db'))).toBe(true);
  });

  it('with purposes configured, the gateway refuses to start without a master key, and so do sync and rotation', { timeout: 150_000 }, () => {
    const dir = tempDir();
    const cfg = join(dir, 'c.yaml');
    const source = `sources:\n  - id: district-clever\n    type: clever\n    baseUrl: http://127.0.0.1:9\n    token: t\n`;
    writeFileSync(cfg, `store: ./rg.db\n${source}purposes:\n  lms:\n    legalBasis: contract\n    categories: { NONE: allow, IDENTIFIER: pseudonymise }\nclients:\n  - { id: l, purpose: lms }\n`);
    const env = { ...process.env } as Record<string, string>;
    delete env.ROSTERGATE_MASTER_KEY;
    const cli = (args: string[]) => spawnSync(process.execPath, [bin, ...args, '--config', cfg], { encoding: 'utf8', env: { ...env, ROSTERGATE_LOG_LEVEL: 'silent' }, timeout: 30_000 });
    // Refused before the store is opened or a source is asked: no key, no pseudonyms, no sync.
    for (const args of [['sync'], ['keys', 'rotate', '--domain', 'lms']]) {
      const r = cli(args);
      expect(r.status, args.join(' ')).toBe(2);
      expect(r.stderr, args.join(' ')).toMatch(/no master key: set ROSTERGATE_MASTER_KEY or privacy.masterKeyFile/);
      expect(existsSync(join(dir, 'rg.db')), args.join(' ')).toBe(false);
    }
    writeFileSync(join(dir, 'rg.db'), '');
    for (const args of [['serve', '--port', '0'], ['audit', 'verify']]) {
      const r = cli(args);
      expect(r.status, args.join(' ')).toBe(2);
      expect(r.stderr, args.join(' ')).toMatch(/no master key: set ROSTERGATE_MASTER_KEY or privacy.masterKeyFile/);
    }
  });
});
