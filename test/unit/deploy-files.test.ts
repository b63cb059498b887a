/**
 * The Dockerfile, compose.yaml, .dockerignore and deploy/rostergate.yaml, checked without a Docker
 * engine (there is none in CI): every command they run is one the CLI has, with options it takes;
 * the files they copy or mount exist and reach the build context; the image runs compiled
 * JavaScript as a user other than root; ports, variables and secrets agree with the config's
 * environment overrides and with each other; the example config is valid. What this cannot show —
 * that the image builds and starts — scripts/compose-smoke.sh shows, with a Docker engine
 * (docs/deployment.md#compose-smoke-test; not in CI).
 */
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import type { Command } from 'commander';
import { parse as parseYaml } from 'yaml';
import { buildProgram } from '../../src/cli-program.ts';
import { loadConfigFile } from '../../src/config/config.ts';
import { ENV_OVERRIDES } from '../../src/config/env-overrides.ts';
import { all, execForm, healthcheckCommand, interpolate, last, readCompose, readDockerfile, ROOT } from '../support/deploy-files.ts';

/** What is wrong with running `rostergate ARGS`: an unknown command or option, a missing value. */
function problemsOf(args: string[]): string[] {
  let cmd: Command = buildProgram();
  const path: string[] = [];
  let i = 0;
  for (; i < args.length && !args[i]!.startsWith('-'); i++) {
    const sub = cmd.commands.find((c) => c.name() === args[i] || c.aliases().includes(args[i]!));
    if (!sub) break;
    cmd = sub;
    path.push(args[i]!);
  }
  let options: { flags: string[]; takesValue: boolean; mandatory: boolean }[];
  if (path.length && !cmd.commands.length) {
    options = cmd.options.map((o) => ({ flags: [o.long, o.short].filter((f): f is string => !!f), takesValue: o.required || o.optional, mandatory: o.mandatory }));
  } else {
    return [`no command "${args.slice(0, i + 1).join(' ')}"`];
  }
  const problems: string[] = [];
  const given = new Set<string>();
  for (; i < args.length; i++) {
    const o = options.find((x) => x.flags.includes(args[i]!));
    if (!o) {
      problems.push(`${path.join(' ')}: no option ${args[i]}`);
      continue;
    }
    o.flags.forEach((f) => given.add(f));
    if (o.takesValue && (i + 1 >= args.length || args[i + 1]!.startsWith('-'))) problems.push(`${path.join(' ')}: ${args[i]} needs a value`);
    if (o.takesValue) i++;
  }
  for (const o of options) if (o.mandatory && !o.flags.some((f) => given.has(f))) problems.push(`${path.join(' ')}: ${o.flags[0]} is required`);
  return problems;
}

/** The value an option has in an argument list. */
const optionValue = (args: string[], flag: string) => args[args.indexOf(flag) + 1];

/** Every source file's text: a variable the deployment sets must be one the code reads. */
const code = (() => {
  const texts: string[] = [];
  const walk = (dir: string) => {
    for (const e of readdirSync(join(ROOT, dir), { withFileTypes: true })) {
      if (e.isDirectory()) walk(`${dir}/${e.name}`);
      else if (e.name.endsWith('.ts')) texts.push(readFileSync(join(ROOT, dir, e.name), 'utf8'));
    }
  };
  walk('src');
  walk('connectors');
  return texts.join('\n');
})();
const configDoc = readFileSync(join(ROOT, 'docs/configuration.md'), 'utf8');
const envSection = configDoc.slice(configDoc.indexOf('\n## Environment variables\n'), configDoc.indexOf('\n## Top level\n'));
const documentedVariables = new Set([...envSection.matchAll(/^\| `(ROSTERGATE_[A-Z_]+)` \|/gm)].map((m) => m[1]!));

/** Variables deploy/rostergate.yaml takes a value from (`env:NAME`): compose must set them, the code need not name them. */
const configReferences = (() => {
  const names = new Set<string>();
  const walk = (v: unknown): void => {
    if (typeof v === 'string' && v.startsWith('env:')) names.add(v.slice(4));
    else if (v && typeof v === 'object') Object.values(v).forEach(walk);
  };
  walk(parseYaml(readFileSync(join(ROOT, 'deploy/rostergate.yaml'), 'utf8')));
  return names;
})();

function checkVariables(names: string[], where: string) {
  for (const name of names.filter((n) => n.startsWith('ROSTERGATE_') && !configReferences.has(n))) {
    expect(documentedVariables.has(name), `${where}: ${name} is not in docs/configuration.md#environment-variables`).toBe(true);
    expect(code.includes(`'${name}'`) || code.includes(`.${name}`), `${where}: ${name} is read nowhere in src/`).toBe(true);
  }
}

const stages = readDockerfile();
const runtime = stages.at(-1)!;
const build = stages.find((s) => s.name === 'build')!;
/** ENV of the runtime stage: `A=1 B=2`. */
const imageEnv = Object.fromEntries(all(runtime, 'ENV').flatMap((i) => [...i.args.matchAll(/(\w+)=(\S+)/g)].map((m) => [m[1]!, m[2]!])));
const compose = readCompose();
const dockerignore = readFileSync(join(ROOT, '.dockerignore'), 'utf8').split('\n').map((l) => l.trim()).filter((l) => l && !l.startsWith('#'));
/** .dockerignore's patterns as Docker reads them (Go's filepath.Match from the context's root, `**` any folders); a matched folder takes its contents. */
const ignorePatterns = dockerignore.map((p) => new RegExp(`^${p.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*\*\//g, '\u0000').replace(/\*/g, '[^/]*').replace(/\?/g, '[^/]').replace(/\u0000/g, '(?:.*/)?')}(?:/.*)?$`));
const ignored = (path: string) => ignorePatterns.some((r) => r.test(path));

describe('the checker itself', () => {
  it('finds unknown commands and options, missing values and required options', () => {
    expect(problemsOf(['serve', '--config', '/x.yaml', '--port', '4000'])).toEqual([]);
    expect(problemsOf(['serv'])).toEqual(['no command "serv"']);
    expect(problemsOf(['serve', '--bogus'])).toEqual(['serve: no option --bogus']);
    expect(problemsOf(['serve', '--config'])).toEqual(['serve: --config needs a value']);
    expect(problemsOf(['keys', 'create', '-c', 'x'])).toEqual(['keys create: --client is required']);
    expect(problemsOf(['keys'])).toEqual(['no command "keys"']);
  });
});

describe('Dockerfile', () => {
  it('builds in one stage and runs from a slim Node 20 image in another', () => {
    expect(stages.map((s) => s.name)).toEqual(['build', 'runtime']);
    for (const s of stages) expect(s.from).toMatch(/^node:20-[a-z]+-slim$/);
    const runs = all(build, 'RUN').map((r) => r.args).join('\n');
    expect(runs).toContain('npm ci');
    expect(runs).toContain('npm run build');
    expect(runs).toContain('npm prune --omit=dev');
    expect(JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')).scripts.build).toBe('node scripts/build.mjs');
  });

  it('copies into the build what exists, what the build reads, and nothing the context leaves out', () => {
    const copied = all(build, 'COPY').flatMap((c) => c.args.split(/\s+/).slice(0, -1)).map((p) => p.replace(/\/$/, ''));
    for (const p of copied) {
      expect(existsSync(join(ROOT, p)), `${p} exists`).toBe(true);
      expect(ignored(p), `${p} is not in .dockerignore`).toBe(false);
    }
    // What tsconfig.build.json compiles, what it extends, and what scripts/build.mjs copies beside the code.
    const buildConfig = JSON.parse(readFileSync(join(ROOT, 'tsconfig.build.json'), 'utf8')) as { extends: string; include: string[] };
    const needed = [...buildConfig.include, buildConfig.extends.replace(/^\.\//, ''), 'tsconfig.build.json', 'scripts', 'schema', 'package-lock.json'];
    for (const p of needed) expect(copied, p).toContain(p);
  });

  it('runs compiled JavaScript with plain node, and a command the CLI has, with the config compose mounts', () => {
    const entry = execForm(last(runtime, 'ENTRYPOINT')!.args);
    expect(entry).toEqual(['node', '/app/dist/src/cli.js']);
    expect(existsSync(join(ROOT, 'src/cli.ts'))).toBe(true);
    const cmd = execForm(last(runtime, 'CMD')!.args);
    expect(problemsOf(cmd)).toEqual([]);
    expect(cmd[0]).toBe('serve');
    expect(optionValue(cmd, '--config')).toBe('/etc/rostergate/rostergate.yaml');
    const fromBuild = all(runtime, 'COPY').filter((c) => c.args.startsWith('--from=build')).map((c) => c.args.split(/\s+/)[1]!.replace(/\/$/, ''));
    expect(fromBuild.sort()).toEqual(['/app/dist', '/app/node_modules', '/app/package.json']);
    // Nothing but what the build stage made: no sources, no TypeScript, no tests in the image.
    expect(all(runtime, 'COPY').filter((c) => !c.args.startsWith('--from='))).toEqual([]);
  });

  it('runs as a numeric user other than root, owning the data volume', () => {
    const user = last(runtime, 'USER')!.args;
    expect(user).toMatch(/^\d+(:\d+)?$/);
    expect(user.split(':')[0]).not.toBe('0');
    const volumes = execForm(last(runtime, 'VOLUME')!.args);
    expect(volumes).toEqual(['/data']);
    const run = all(runtime, 'RUN').map((r) => r.args).join('\n');
    expect(run).toContain(`chown ${user} /data`);
    // USER comes after the RUN that needs root.
    const at = (op: string) => runtime.instructions.findIndex((i) => i.op === op);
    expect(at('USER')).toBeGreaterThan(at('RUN'));
  });

  it('gives Node the young generation docs/deployment.md asks for, as npm start and the bench do', () => {
    expect(imageEnv.NODE_OPTIONS).toBe('--max-semi-space-size=32');
    const scripts = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')).scripts as Record<string, string>;
    for (const name of ['start', 'bench']) expect(scripts[name], name).toMatch(/^node (--expose-gc )?--max-semi-space-size=32 /);
    expect(readFileSync(join(ROOT, 'docs/deployment.md'), 'utf8')).toContain('NODE_OPTIONS=--max-semi-space-size=32');
  });

  it('listens where its health check looks, as the environment overrides say; stops on SIGTERM', () => {
    expect(imageEnv.ROSTERGATE_HOST).toBe('0.0.0.0');
    expect(last(runtime, 'EXPOSE')!.args).toBe(imageEnv.ROSTERGATE_PORT);
    checkVariables(Object.keys(imageEnv), 'Dockerfile ENV');
    const hc = healthcheckCommand(runtime);
    expect(hc[0]).toBe('node');
    expect(hc.join(' ')).toContain('process.env.ROSTERGATE_PORT');
    expect(hc.join(' ')).toMatch(/\/healthz'/);
    expect(last(runtime, 'STOPSIGNAL')!.args).toBe('SIGTERM');
  });
});

describe('.dockerignore', () => {
  it('keeps dependencies, git, local data and secrets out of the build context', () => {
    for (const p of ['node_modules', '.git', 'dist', 'data/x.db', '.env', 'deploy/secrets/master.key', 'x.db', 'a/b/x.db-wal', '.dist-test-abc/src/cli.js']) expect(ignored(p), p).toBe(true);
    for (const p of ['src/cli.ts', 'schema/roster.graphql', 'package.json', 'deploy/rostergate.yaml']) expect(ignored(p), p).toBe(false);
  });
});

describe('compose.yaml', () => {
  const vars = { POSTGRES_PASSWORD: 'example-only', ROSTERGATE_METRICS_TOKEN: 'example-token' };
  // The config checks at load that every env: reference is set: as compose sets it in the containers.
  beforeEach(() => vi.stubEnv('ROSTERGATE_METRICS_TOKEN', vars.ROSTERGATE_METRICS_TOKEN));
  afterEach(() => vi.unstubAllEnvs());
  const env = (service: string) => Object.fromEntries(Object.entries(compose.services[service]!.environment ?? {}).map(([k, v]) => [k, interpolate(String(v), vars)]));

  it('has PostgreSQL, a gateway serving and a worker, both from this image', () => {
    expect(Object.keys(compose.services).sort()).toEqual(['gateway', 'postgres', 'worker']);
    for (const name of ['gateway', 'worker']) {
      const s = compose.services[name]!;
      expect(s.build, name).toBe('.');
      expect(s.depends_on, name).toHaveProperty('postgres');
    }
    expect(compose.services.gateway!.command![0]).toBe('serve');
    expect(compose.services.worker!.command![0]).toBe('worker');
    // The worker listens on no port: the image's HTTP health check would mark it unhealthy.
    expect(compose.services.worker!.healthcheck?.disable).toBe(true);
    expect(compose.services.postgres!.healthcheck?.test?.join(' ')).toContain('pg_isready');
  });

  it('runs commands the CLI has, with options they take', () => {
    for (const name of ['gateway', 'worker']) expect(problemsOf(compose.services[name]!.command!), name).toEqual([]);
  });

  it('mounts the config file each command names, and the example config is valid with the environment compose gives', () => {
    for (const name of ['gateway', 'worker']) {
      const s = compose.services[name]!;
      const config = optionValue(s.command!, '--config');
      const mount = s.volumes!.map((v) => v.split(':')).find(([, target]) => target === config);
      expect(mount, `${name} mounts ${config}`).toBeDefined();
      expect(mount![2]).toBe('ro');
      const file = join(ROOT, mount![0]!);
      expect(existsSync(file), mount![0]).toBe(true);
      const cfg = loadConfigFile(file, env(name));
      expect(cfg.store).toBe('postgres://rostergate:example-only@postgres:5432/rostergate');
      expect(cfg.server).toMatchObject({ host: '0.0.0.0', port: Number(imageEnv.ROSTERGATE_PORT), drainSeconds: 5 });
      expect(cfg.privacy.masterKeyFile).toBe('/run/secrets/master_key');
      expect(cfg.clients.length).toBeGreaterThan(0);
    }
  });

  it('sets only variables the gateway reads, and points the store at the database service', () => {
    const pg = compose.services.postgres!.environment!;
    for (const name of ['gateway', 'worker']) {
      checkVariables(Object.keys(compose.services[name]!.environment!), `compose ${name}`);
      const url = new URL(env(name).ROSTERGATE_STORE!);
      expect(url.hostname).toBe('postgres');
      expect(url.username).toBe(pg.POSTGRES_USER);
      expect(url.pathname).toBe(`/${pg.POSTGRES_DB}`);
      expect(decodeURIComponent(url.password)).toBe(interpolate(pg.POSTGRES_PASSWORD!, vars));
    }
    expect(() => interpolate(compose.services.gateway!.environment!.ROSTERGATE_STORE!, {})).toThrow(/POSTGRES_PASSWORD: set POSTGRES_PASSWORD in \.env/);
    expect(ENV_OVERRIDES.some((o) => o.name === 'ROSTERGATE_STORE')).toBe(true);
  });

  it('publishes the port the gateway listens on, on a host port .env may choose', () => {
    const port = compose.services.gateway!.ports![0]!;
    const [host, container] = interpolate(port, vars).split(':');
    expect(container).toBe(env('gateway').ROSTERGATE_PORT);
    expect(host).toBe('4000');
    expect(interpolate(port, { ...vars, ROSTERGATE_PUBLISHED_PORT: '14000' })).toBe(`14000:${container}`);
  });

  it('reads with docker-compose v1 too: no top-level name (v1 refuses it; scripts/compose-smoke.sh runs v1 where v2 is missing)', () => {
    expect(Object.keys(compose).sort()).toEqual(['secrets', 'services', 'volumes', 'x-rostergate']);
  });

  it('gives every variable deploy/rostergate.yaml reads by env: to both services, from .env', () => {
    expect([...configReferences]).toContain('ROSTERGATE_METRICS_TOKEN');
    for (const name of ['gateway', 'worker']) {
      for (const v of configReferences) {
        expect(compose.services[name]!.environment, `${name} sets ${v}`).toHaveProperty(v);
        expect(() => interpolate(compose.services[name]!.environment![v]!, {}), `${name}: ${v} must be set in .env`).toThrow(new RegExp(`set ${v} in \\.env`));
      }
    }
  });

  it('serves /metrics with a token on the API port, and on its own port for the worker (which has no other)', () => {
    const cfg = loadConfigFile(join(ROOT, 'deploy/rostergate.yaml'), env('worker'));
    expect(cfg.server.metrics).toMatchObject({ port: 9464, host: '0.0.0.0' });
    expect(cfg.server.metrics?.token).toBeDefined();
  });

  it('gives the master key as a Docker secret, from a folder kept out of git', () => {
    for (const name of ['gateway', 'worker']) {
      const keyFile = env(name).ROSTERGATE_MASTER_KEY_FILE!;
      expect(keyFile).toMatch(/^\/run\/secrets\//);
      const secret = keyFile.slice('/run/secrets/'.length);
      expect(compose.services[name]!.secrets).toContain(secret);
      const source = compose.secrets![secret]!.file!;
      expect(statSync(join(ROOT, dirname(source))).isDirectory()).toBe(true);
      expect(readFileSync(join(ROOT, dirname(source), '.gitignore'), 'utf8')).toMatch(/^\*$/m);
    }
  });
});
