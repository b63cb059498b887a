/**
 * The compiled build (`npm run build`, scripts/build.mjs) as the container image runs it: plain
 * `node dist/src/cli.js`, no TypeScript loader. Built once for this file, without type checking
 * (CI typechecks separately), into a folder inside the repository so node_modules is found from it.
 * Then: every module loads, `--help` and the demo work, a real query is answered, the console's
 * files (GraphiQL and React from node_modules, the console's own copied beside the code) are served,
 * and `serve` takes its port and host from the environment, its health answering the image's HEALTHCHECK.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawn, spawnSync, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { pathToFileURL } from 'node:url';
import { createServer } from 'node:net';
import { SqliteStore } from '../../src/store/sqlite.ts';
import { newPostgresDatabase, storeKinds, tempDir } from '../support/stores.ts';
import { healthcheckCommand, readDockerfile } from '../support/deploy-files.ts';

const root = join(import.meta.dirname, '../..');
let out = '';
let cli = '';

/** The environment a user's shell gives the command (vitest's NODE_ENV=test changes libraries' behaviour). */
function userEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env, ROSTERGATE_LOG_LEVEL: 'silent', ...extra };
  delete env.NODE_ENV;
  // Whatever loader vitest or the shell put in NODE_OPTIONS must not be what makes this work.
  delete env.NODE_OPTIONS;
  return env;
}

/** Every TypeScript module of src/ and connectors/, as the path of its compiled JavaScript. */
function compiledModules(): string[] {
  const files: string[] = [];
  const walk = (dir: string) => {
    for (const e of readdirSync(join(root, dir), { withFileTypes: true })) {
      const p = `${dir}/${e.name}`;
      if (e.isDirectory()) walk(p);
      else if (p.endsWith('.ts') && p !== 'src/cli.ts') files.push(join(out, p.replace(/\.ts$/, '.js')));
    }
  };
  walk('src');
  walk('connectors');
  return files;
}

async function freePort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const port = (s.address() as { port: number }).port;
  await new Promise((r) => s.close(r));
  return port;
}

/** Starts the compiled CLI and waits until its standard output holds `until`. */
async function start(args: string[], until: RegExp, env: Record<string, string> = {}): Promise<{ child: ChildProcessWithoutNullStreams; stdout: () => string }> {
  const child = spawn(process.execPath, [cli, ...args], { env: userEnv(env) });
  let stdout = '';
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  await new Promise<void>((resolve, reject) => {
    child.stdout.on('data', (d: Buffer) => {
      stdout += d.toString();
      if (until.test(stdout)) resolve();
    });
    child.on('exit', (code) => reject(new Error(`${args[0]} exited ${code} before printing ${until}: ${stderr}`)));
  });
  return { child, stdout: () => stdout };
}

async function stop(child: ChildProcessWithoutNullStreams): Promise<number | null> {
  const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
  child.kill('SIGTERM');
  return exited;
}

beforeAll(() => {
  out = mkdtempSync(join(root, '.dist-test-'));
  const r = spawnSync(process.execPath, [join(root, 'scripts/build.mjs'), '--out', relative(root, out), '--no-check'], { encoding: 'utf8', cwd: root, timeout: 170_000 });
  expect(r.status, r.stderr + r.stdout).toBe(0);
  cli = join(out, 'src/cli.js');
}, 180_000);
afterAll(() => {
  if (out) rmSync(out, { recursive: true, force: true });
});

describe('the compiled build', { timeout: 120_000 }, () => {
  it('loads every module of src/ and connectors/ with plain node', () => {
    const files = compiledModules();
    expect(files.length).toBeGreaterThan(100);
    const script = `for (const f of JSON.parse(process.argv[1])) await import(require('node:url').pathToFileURL(f).href); console.log('loaded');`;
    // --input-type=module for top-level await; `require` is given by createRequire below.
    const r = spawnSync(process.execPath, ['--input-type=module', '-e', `import { createRequire } from 'node:module'; const require = createRequire(import.meta.url); ${script}`, JSON.stringify(files)], { encoding: 'utf8', env: userEnv(), timeout: 60_000 });
    expect(r.stderr).toBe('');
    expect(r.stdout.trim()).toBe('loaded');
  });

  it('runs a parallel extract on worker threads started from the compiled code, writing what one thread writes', () => {
    // The threads load dist/src/extract/extract-worker.js: no TypeScript loader anywhere.
    const dir = tempDir();
    const m = (p: string) => JSON.stringify(pathToFileURL(join(out, p)).href);
    const script = `
      import { Writable } from 'node:stream';
      import { createHash } from 'node:crypto';
      const { RosterDataset } = await import(${m('src/demo/dataset.js')});
      const { directConnector } = await import(${m('src/demo/direct-connector.js')});
      const { DEMO_CLIENTS, DEMO_PURPOSES } = await import(${m('src/demo/demo-policy.js')});
      const { parseConfig } = await import(${m('src/config/config.js')});
      const { buildUnifiedSchema } = await import(${m('src/graphql/schema.js')});
      const { KeyRing } = await import(${m('src/privacy/pseudonym.js')});
      const { setupPrivacy } = await import(${m('src/graphql/privacy.js')});
      const { SqliteStore } = await import(${m('src/store/sqlite.js')});
      const { syncSource } = await import(${m('src/sync/runner.js')});
      const { runExtract } = await import(${m('src/extract/extract.js')});
      const { closeExtractThreads } = await import(${m('src/extract/parallel.js')});
      const cfg = parseConfig({ store: ${JSON.stringify(join(dir, 'rg.db'))}, privacy: { tenant: 't' }, purposes: DEMO_PURPOSES, clients: DEMO_CLIENTS });
      const store = SqliteStore.open(cfg.store);
      const privacy = setupPrivacy(cfg, buildUnifiedSchema(), { keyring: new KeyRing(Buffer.alloc(32, 7), 't') });
      await syncSource(store, directConnector('demo', RosterDataset.generate({ students: 60, teachers: 4, classes: 6, schools: 1 })), { ...(await privacy.ingest(store)) });
      let cut = 0;
      const { leadBoundaries } = store;
      store.leadBoundaries = (q) => (cut++, leadBoundaries.call(store, q));
      const hashes = [];
      for (const threads of [1, 2]) {
        const h = createHash('sha256');
        const out = new Writable({ write(c, _e, done) { h.update(c); done(); } });
        const r = await runExtract({ store, privacy, sourceTypes: new Map(), client: 'analytics-demo', dataset: 'enrollments', format: 'csv', out, threads, parallelFrom: 0, pageSize: 9 });
        hashes.push(h.digest('hex') + ' ' + r.written);
      }
      await closeExtractThreads();
      await store.close();
      console.log(JSON.stringify({ hashes, cut }));`;
    const r = spawnSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8', env: userEnv(), timeout: 90_000 });
    expect(r.stderr).toBe('');
    const { hashes, cut } = JSON.parse(r.stdout.trim()) as { hashes: string[]; cut: number };
    expect(cut).toBe(1);
    expect(Number(hashes[0]!.split(' ')[1])).toBeGreaterThan(0);
    expect(hashes[1]).toBe(hashes[0]);
  });

  it('answers --help and a command\'s own --help', () => {
    const help = spawnSync(process.execPath, [cli, '--help'], { encoding: 'utf8', env: userEnv() });
    expect(help.status).toBe(0);
    for (const command of ['serve', 'sync', 'demo', 'keys', 'privacy-report']) expect(help.stdout).toMatch(new RegExp(`^  ${command}\\b`, 'm'));
    const serve = spawnSync(process.execPath, [cli, 'serve', '--help'], { encoding: 'utf8', env: userEnv() });
    expect(serve.status).toBe(0);
    expect(serve.stdout).toContain('--config <file>');
    // A usage error is the same one line as from the sources.
    const bad = spawnSync(process.execPath, [cli, 'serve', '--bogus'], { encoding: 'utf8', env: userEnv() });
    expect([bad.status, bad.stderr]).toEqual([2, "error: unknown option '--bogus' (see `rostergate serve --help`)\n"]);
  });

  it('runs a command that reads the schema files copied beside the code', () => {
    const r = spawnSync(process.execPath, [cli, 'schema', '--demo', '--client', 'analytics-demo'], { encoding: 'utf8', env: userEnv() });
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/^type Query\b/m);
  });

  it('runs the demo: where to point a browser, a real query, and the console\'s files', async () => {
    const data = join(tempDir(), 'demo');
    const { child, stdout } = await start(['demo', '--port', '0', '--data', data, '--students', '40'], /Ctrl\+C stops/);
    try {
      const url = /Open the console: +(http:\/\/127\.0\.0\.1:\d+)\//.exec(stdout())?.[1];
      expect(url).toBeDefined();
      const key = /lms-demo +purpose \S+ +(rgk_\S+)/.exec(stdout())?.[1];
      expect(key).toBeDefined();
      const res = await fetch(`${url}/graphql`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'x-api-key': key! },
        body: JSON.stringify({ query: '{ schools(first: 5) { totalCount edges { node { name } } } }' }),
      });
      expect(res.status).toBe(200);
      const body = (await res.json()) as { data?: { schools: { totalCount: number; edges: { node: { name: string } }[] } }; errors?: unknown };
      expect(body.errors).toBeUndefined();
      expect(body.data!.schools.totalCount).toBeGreaterThan(0);
      expect(body.data!.schools.edges[0]!.node.name).toMatch(/\S/);

      const page = await (await fetch(`${url}/`, { headers: { accept: 'text/html' } })).text();
      const assets = [...page.matchAll(/"(\/console\/[^"]+)"/g)].map((m) => m[1]!);
      expect(assets.map((a) => a.split('/').pop()).sort()).toEqual(['console.css', 'console.js', 'graphiql.css', 'graphiql.js', 'react-dom.js', 'react.js']);
      for (const a of assets) {
        const r = await fetch(`${url}${a}`);
        expect(r.status, a).toBe(200);
        const size = (await r.arrayBuffer()).byteLength;
        expect(size, a).toBeGreaterThan(a.endsWith('graphiql.js') ? 1_000_000 : 500);
      }
    } finally {
      expect(await stop(child)).toBe(0);
    }
  });

  it('serves a store with port and host from the environment, as the container does', async () => {
    const dir = tempDir();
    SqliteStore.open(join(dir, 'rg.db')).close();
    writeFileSync(join(dir, 'rostergate.yaml'), 'store: ./rg.db\nserver: { port: 1, host: 127.0.0.2, openAccess: true }\n');
    const port = await freePort();
    const { child, stdout } = await start(['serve', '--config', join(dir, 'rostergate.yaml')], /console: /, { ROSTERGATE_PORT: String(port), ROSTERGATE_HOST: '127.0.0.1' });
    try {
      expect(stdout()).toContain(`GraphQL: http://127.0.0.1:${port}/graphql`);
      expect((await fetch(`http://127.0.0.1:${port}/readyz`)).status).toBe(200);
      const res = await fetch(`http://127.0.0.1:${port}/graphql`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ query: '{ schools { totalCount } }' }),
      });
      expect(await res.json()).toEqual({ data: { schools: { totalCount: 0 } } });
      // The image's HEALTHCHECK, run as Docker would (with the port from the same variable).
      const [node, ...hcArgs] = healthcheckCommand(readDockerfile().at(-1)!);
      expect(node).toBe('node');
      const healthy = spawnSync(process.execPath, hcArgs, { env: userEnv({ ROSTERGATE_PORT: String(port) }), timeout: 10_000 });
      expect(healthy.status).toBe(0);
      const nobody = spawnSync(process.execPath, hcArgs, { env: userEnv({ ROSTERGATE_PORT: String(await freePort()) }), timeout: 10_000 });
      expect(nobody.status).toBe(1);
    } finally {
      expect(await stop(child)).toBe(0);
    }
  });

  // As compose.yaml runs it: the store URL from ROSTERGATE_STORE, replicas on one database.
  for (const kind of storeKinds().filter((k) => k === 'postgres')) {
    it('serves PostgreSQL named by ROSTERGATE_STORE from two replicas starting together, printing the URL without its password', async () => {
      const db = await newPostgresDatabase();
      const dir = tempDir();
      writeFileSync(join(dir, 'rostergate.yaml'), 'store: ./never-used.db\nserver: { openAccess: true }\n');
      const env = (port: number) => ({ ROSTERGATE_STORE: db.url, ROSTERGATE_PORT: String(port), ROSTERGATE_HOST: '127.0.0.1' });
      const ports = [await freePort(), await freePort()];
      const replicas = await Promise.all(ports.map((p) => start(['serve', '--config', join(dir, 'rostergate.yaml')], /console: /, env(p))));
      try {
        for (const [i, r] of replicas.entries()) {
          expect(r.stdout(), kind).toContain('rostergate serving postgres');
          const password = new URL(db.url).password;
          if (password) expect(r.stdout()).not.toContain(password);
          expect((await fetch(`http://127.0.0.1:${ports[i]}/readyz`)).status).toBe(200);
          const res = await fetch(`http://127.0.0.1:${ports[i]}/graphql`, {
            method: 'POST',
            headers: { 'content-type': 'application/json' },
            body: JSON.stringify({ query: '{ schools { totalCount } }' }),
          });
          expect(await res.json()).toEqual({ data: { schools: { totalCount: 0 } } });
        }
      } finally {
        for (const r of replicas) expect(await stop(r.child)).toBe(0);
        await db.drop();
      }
    });
  }
});
