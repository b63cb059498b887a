/** The command line as a user runs it: one clear line and an exit code for bad input. */
import { describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { writeFileSync, chmodSync, existsSync, statSync, mkdirSync, readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { createServer } from 'node:net';
import { tempDir } from '../support/stores.ts';
import { readmeExample, shapeOf } from '../support/readme.ts';
import { FILES, writeDrop } from '../support/defective-drop.ts';
import { RosterDataset } from '../../src/demo/dataset.ts';
import { writeOneRosterDrop } from '../../connectors/oneroster-csv/index.ts';
import { SqliteStore } from '../../src/store/sqlite.ts';
import { CLI_BIN, DEV_BIN } from '../support/cli-bin.ts';

const bin = CLI_BIN;
/**
 * The environment a user's shell gives the command: vitest's NODE_ENV=test is not passed on, since
 * libraries behave differently under it (Apollo Server installs its own signal handlers only outside tests).
 */
function userEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env, ROSTERGATE_LOG_LEVEL: 'silent', ...extra };
  delete env.NODE_ENV;
  return env;
}
const run = (args: string[], env: Record<string, string> = {}) =>
  spawnSync(process.execPath, [bin, ...args], { encoding: 'utf8', env: userEnv(env), timeout: 60_000 });

// Each case runs the command in a process of its own that loads the gateway: seconds apiece on a loaded machine.
describe('rostergate CLI', { timeout: 120_000 }, () => {
  it('runs from the sources through tsx (bin/rostergate.mjs, the development entry point) as compiled', () => {
    // The other cases run the CLI the test run compiled (test/support/global-build.ts); npm start runs this one.
    const viaTsx = spawnSync(process.execPath, [DEV_BIN, 'keys', 'create'], { encoding: 'utf8', env: userEnv(), timeout: 60_000 });
    const compiled = run(['keys', 'create']);
    expect(viaTsx.status).toBe(2);
    expect(viaTsx.stderr).toBe("error: required option '--client <id>' not specified (see `rostergate keys create --help`)\n");
    expect([compiled.status, compiled.stderr]).toEqual([viaTsx.status, viaTsx.stderr]);
    const help = spawnSync(process.execPath, [DEV_BIN, '--help'], { encoding: 'utf8', env: userEnv(), timeout: 60_000 });
    expect(help.status).toBe(0);
    expect(help.stdout).toBe(run(['--help']).stdout);
  });

  it('rejects an unknown flag with one line and a non-zero exit', () => {
    const cases: [string[], string][] = [
      [['serve', '--bogus'], "error: unknown option '--bogus' (see `rostergate serve --help`)"],
      [['demo', '--port', '0', '--students', '30', '--bogus'], "error: unknown option '--bogus' (see `rostergate demo --help`)"],
      [['bogus'], "error: unknown command 'bogus' (see `rostergate --help`)"],
      [['keys', 'create'], "error: required option '--client <id>' not specified (see `rostergate keys create --help`)"],
    ];
    for (const [args, line] of cases) {
      const r = run(args);
      expect(r.status, args.join(' ')).toBe(2);
      expect(r.stderr).toBe(`${line}\n`);
      expect(r.stdout).toBe('');
    }
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
      expect(r.stderr.trimEnd().split('\n')).toHaveLength(1);
      expect(r.stderr).toMatch(new RegExp(`^error: option '.*${option} <.*>' argument '${value}' is invalid\\. Not a .*\\(see \`rostergate ${args[0]} --help\`\\)\n$`));
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

  it('refuses an unreadable store — a folder, a file that is not a database — in one line, leaving it as it was', () => {
    const dir = tempDir();
    mkdirSync(join(dir, 'folder.db'));
    const junk = 'not a database, just some text that is long enough to be read as a header\n'.repeat(3);
    writeFileSync(join(dir, 'junk.db'), junk);
    for (const [store, reason] of [['folder.db', 'unable to open database file'], ['junk.db', 'file is not a database']] as const) {
      writeFileSync(join(dir, 'c.yaml'), `store: ./${store}\nserver: { openAccess: true }\n`);
      const r = run(['serve', '--config', join(dir, 'c.yaml'), '--port', '0']);
      expect(r.status, store).toBe(2);
      expect(r.stderr).toBe(`rostergate: cannot open the store at ${join(dir, store)}: ${reason}\n`);
    }
    expect(readFileSync(join(dir, 'junk.db'), 'utf8')).toBe(junk);
    expect(readdirSync(dir).sort()).toEqual(['c.yaml', 'folder.db', 'junk.db']);
    expect(readdirSync(join(dir, 'folder.db'))).toEqual([]);
  });

  it('a command that needs a config and has none says what to pass, exit 2, creating nothing', () => {
    const dir = tempDir();
    const env = userEnv();
    delete env.ROSTERGATE_CONFIG;
    const inDir = (args: string[]) => spawnSync(process.execPath, [bin, ...args], { encoding: 'utf8', env, cwd: dir, timeout: 60_000 });
    const cases: [string[], string][] = [
      [['sync'], 'sync'],
      [['serve'], 'serve'],
      [['keys', 'list'], 'keys list'],
      [['identity', 'conflicts'], 'identity conflicts'],
      [['extract', '--client', 'c', '--dataset', 'people', '--out', 'p.csv'], 'extract'],
    ];
    for (const [args, command] of cases) {
      const r = inDir(args);
      expect(r.status, command).toBe(2);
      expect(r.stderr).toBe(`rostergate: ${command} needs a config file: pass --config FILE, or set ROSTERGATE_CONFIG=FILE (see docs/configuration.md)\n`);
    }
    const report = inDir(['privacy-report']);
    expect(report.status).toBe(2);
    expect(report.stderr).toMatch(/^rostergate: privacy-report needs a config file: .*, or --demo for the demo's configuration /);
    // Without a config nothing is opened: no default store appears (keys list and identity conflicts used to create one).
    expect(readdirSync(dir)).toEqual([]);
  }, 150_000);

  it('a command missing the input that names its subject says how to name it, before asking for a config or key', () => {
    const env = userEnv();
    delete env.ROSTERGATE_CONFIG;
    delete env.ROSTERGATE_MASTER_KEY;
    const cli = (args: string[]) => spawnSync(process.execPath, [bin, ...args], { encoding: 'utf8', env, timeout: 60_000 });
    const cases: [string[], string][] = [
      [['erase'], 'name the person one way: --person ID, or --source ID and --key KEY'],
      [['erase', '--source', 'sis'], '--source and --key go together: the source id and the person\'s key in that source'],
      [['erase', '--lift', '--person', 'per_x'], 'erase --lift names the erased person by --source ID and --key KEY (their key in that source); a gateway id no longer exists after an erasure'],
      [['subject-export', '--out', join(tempDir(), 's.json')], 'name the person one way: --person ID, or --source ID and --key KEY, or --pseudonym P and --domain D'],
      [['subject-export', '--pseudonym', 'p1_x', '--out', join(tempDir(), 's.json')], '--pseudonym and --domain go together: a pseudonym is only meaningful in its domain'],
      [['identity', 'link', '--into', 'per_x'], 'name the record: --conflict ID, or --source ID and --key KEY (and --type person|org)'],
      [['identity', 'unlink', '--conflict', '1', '--source', 'sis'], 'name the record either by --conflict or by --source and --key, not both'],
    ];
    for (const [args, line] of cases) {
      const r = cli(args);
      expect(r.status, args.join(' ')).toBe(2);
      expect(r.stderr, args.join(' ')).toBe(`rostergate: ${line}\n`);
    }
  }, 200_000);

  it('--help marks required options, and shows the ways to name a person or record in the usage line', () => {
    const extract = run(['extract', '--help']);
    expect(extract.status).toBe(0);
    // One block per option: its line and the description's continuation lines.
    const blocks = extract.stdout.split(/\n(?= {2}-)/);
    const block = (flags: string) => blocks.find((b) => b.startsWith(`  ${flags} `))!.replace(/\s+/g, ' ');
    for (const o of ['--client <id>', '--dataset <name>', '--out <file>']) expect(block(o)).toMatch(/\(required\)\s*$/);
    expect(block('--format <format>')).not.toContain('(required)');
    expect(run(['subject-export', '--help']).stdout).toContain('Usage: rostergate subject-export (--person ID | --source ID --key KEY | --pseudonym P --domain D) --out FILE [options]');
    expect(run(['erase', '--help']).stdout).toContain('Usage: rostergate erase (--person ID | --source ID --key KEY | --lift --source ID --key KEY) [options]');
  }, 90_000);

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
    // Three CLI processes: on a loaded machine (the full suite) they outlast the default 30 s.
  }, 90_000);

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
    // serve: refused before the store is opened, so not even its migrations touch it.
    writeFileSync(join(dir, 'empty.db'), '');
    writeFileSync(join(dir, 'c.yaml'), `store: ./empty.db\nserver: { openAccess: true }\n`);
    const serve = run(['serve', '--config', join(dir, 'c.yaml'), '--port', String(port)]);
    blocker.close();
    expect(serve.stderr).toBe(`rostergate: port ${port} is already in use: stop the other process or pass --port\n`);
    expect(serve.status).toBe(2);
    expect(statSync(join(dir, 'empty.db')).size).toBe(0);
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
      env: userEnv(), stdio: ['ignore', 'pipe', 'pipe'],
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
    expect(shapeOf(analytics.data.classes.edges[0].node.enrollments.edges[0])).toEqual(shapeOf(ex.analyticsNode));
    // The LMS's school-side query is refused to analytics, naming the relation it withholds.
    expect((await ask(analyticsKey, ex.query)).errors[0].message).toMatch(/withholds Organization\.classes/);
    expect(await ask(analyticsKey, ex.refusedQuery)).toEqual(ex.refusal);
    // The example the demo prints works as printed: its curl command, with the key it names.
    const curl = /curl -s (\S+) -H 'content-type: application\/json' -H 'x-api-key: (\S+)' \\\n\s+-d '(.*)'\n/.exec(out);
    expect(curl, out).not.toBeNull();
    expect([curl![1], curl![2]]).toEqual([url, key]);
    const printed = await ask(key, JSON.parse(curl![3]!).query);
    expect(printed.errors).toBeUndefined();
    const people = printed.data.schools.edges.flatMap((s: any) => s.node.classes.edges.flatMap((c: any) => c.node.enrollments.edges.map((e: any) => e.node.person)));
    expect(people.length).toBeGreaterThan(0);
    for (const p of people) expect(p.givenName).toEqual(expect.any(String));
    child.kill('SIGTERM');
    const exit = await new Promise<{ code: number | null; signal: string | null }>((resolve) => child.on('exit', (code, signal) => resolve({ code, signal })));
    // Exit 0 by our own handler, not killed by the signal (or by another library's handler re-raising it).
    expect(exit).toEqual({ code: 0, signal: null });
    // The store was closed: SQLite checkpoints and removes the write-ahead log when its last connection closes.
    expect(existsSync(join(dir, 'demo.db'))).toBe(true);
    expect(existsSync(join(dir, 'demo.db-wal'))).toBe(false);
  }, 90_000);

  it('sync exits non-zero naming the failing source, resource and reason', () => {
    const dir = tempDir();
    const cfg = join(dir, 'c.yaml');
    writeFileSync(cfg, `store: ./rg.db\nserver: { openAccess: true }\nsources:\n  - id: district-clever\n    type: clever\n    baseUrl: http://127.0.0.1:9\n    token: t\n    http: { maxRetries: 0, timeoutMs: 2000 }\n`);
    const r = run(['sync', '--config', cfg]);
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/rostergate: source district-clever, resource events: connection failed \(ECONNREFUSED\)/);
  });

  it('sync --report FILE writes every entry of the sync report as JSON; the summary counts by kind', () => {
    const dir = tempDir();
    const drop = writeDrop(FILES);
    const cfg = join(dir, 'c.yaml');
    writeFileSync(cfg, `store: ./rg.db\nserver: { openAccess: true }\nsources:\n  - id: district-csv\n    type: oneroster-csv\n    path: ${drop}\n`);
    const report = join(dir, 'report.json');
    const r = run(['sync', '--config', cfg, '--report', report]);
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    expect(r.stdout).toMatch(/report: \d+ values repaired, 3 invalid values dropped, \d+ dangling references, 2 rows skipped, \d+ drop defects \(every entry in .*report\.json\)/);
    expect(r.stdout).toMatch(/1 records wait for references that never arrived: enrollment enr-5 \(classKey\)/);
    const doc = JSON.parse(readFileSync(report, 'utf8'));
    expect(doc.sources[0]).toMatchObject({ source: 'district-csv', status: 'complete', mode: 'full', counts: { 'dropped-value': 3, 'skipped-row': 2 } });
    expect(doc.sources[0].entries).toContainEqual({ kind: 'dropped-value', resource: 'users.csv', record: 'person usr-2', field: 'email', message: 'not a valid email address: left out' });
    expect(readFileSync(report, 'utf8')).not.toMatch(/hauc|seth_|Onesie/);
    // It names records by source key: owner-only, like every other file rostergate writes about people.
    expect(statSync(report).mode & 0o777).toBe(0o600);
  });

  it('sync skips a source another run holds, naming the holder, exit 4; other sources still sync; --wait waits for the holder', async () => {
    const dir = tempDir();
    writeOneRosterDrop(RosterDataset.generate({ students: 20, teachers: 2, classes: 2, schools: 1 }), join(dir, 'drop'), { version: '1.2' });
    const cfg = join(dir, 'c.yaml');
    const drop = (id: string) => `  - id: ${id}\n    type: oneroster-csv\n    path: ./drop\n`;
    writeFileSync(cfg, `store: ./rg.db\nserver: { openAccess: true }\nsources:\n${drop('nightly-drop')}${drop('second-drop')}`);
    // A run on another machine holds nightly-drop, its lease renewed moments ago.
    const hold = async (expiresInMs: number) => {
      const store = SqliteStore.open(join(dir, 'rg.db'));
      await store.transaction((tx) => tx.putLease({
        key: 'nightly-drop', token: 'other-run', holderHost: 'sync-worker-2', holderPid: 4242,
        acquiredAt: '2026-01-05T02:00:00.000Z', heartbeatAt: new Date().toISOString(), expiresAt: new Date(Date.now() + expiresInMs).toISOString(),
      }));
      await store.close();
    };
    await hold(600_000);
    const r = run(['sync', '--config', cfg]);
    expect(r.status).toBe(4);
    expect(r.stderr).toMatch(/^rostergate: source nightly-drop: another run \(host sync-worker-2, pid 4242, since 2026-01-05T02:00:00\.000Z\) is syncing it; its lease runs to \S+ unless renewed\. Run again later, or pass --wait to wait for it\.\n$/);
    expect(r.stdout).toMatch(/^second-drop: complete/m);
    expect(r.stdout).not.toMatch(/nightly-drop/);
    // A lease that is about to expire (its holder stopped renewing it): --wait takes it over then.
    await hold(3_000);
    const waited = run(['sync', '--config', cfg, '--source', 'nightly-drop', '--wait']);
    expect(waited.stderr).toBe('');
    expect(waited.status).toBe(0);
    expect(waited.stdout).toMatch(/^nightly-drop: complete/m);
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
