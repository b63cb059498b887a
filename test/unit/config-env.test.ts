/**
 * Environment overrides (src/config/env-overrides.ts): a container sets port, host and store by
 * variable while the config file stays shared; the values pass the file's own rules, and a bad one
 * is refused naming the variable, never echoing its value (a store URL may carry a password).
 */
import { describe, expect, it } from 'vitest';
import { writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { loadConfigFile } from '../../src/config/config.ts';
import { ENV_OVERRIDES, applyEnvOverrides } from '../../src/config/env-overrides.ts';
import { storeForDisplay } from '../../src/commands/serve.ts';
import { tempDir } from '../support/stores.ts';
import { message } from '../support/refusals.ts';

const FILE = `
store: ./data/rostergate.db
server: { port: 4000, host: 127.0.0.1, drainSeconds: 2 }
privacy: { tenant: district-7, masterKeyFile: ./master.key }
`;

function configFile(text = FILE): string {
  const path = join(tempDir(), 'rostergate.yaml');
  writeFileSync(path, text);
  return path;
}

describe('environment overrides of the config file', () => {
  it('without the variables (or with them empty) the file decides; relative paths are the file\'s', () => {
    const path = configFile();
    for (const env of [{}, { ROSTERGATE_PORT: '', ROSTERGATE_HOST: ' ', ROSTERGATE_STORE: '' }]) {
      const cfg = loadConfigFile(path, env);
      expect(cfg.server).toMatchObject({ port: 4000, host: '127.0.0.1', drainSeconds: 2 });
      expect(cfg.store).toBe(join(path, '../data/rostergate.db'));
      expect(cfg.privacy.masterKeyFile).toBe(join(path, '../master.key'));
    }
  });

  it('the variables win over the file, as numbers where the key is one; their relative paths are the working directory\'s', () => {
    const path = configFile();
    const cfg = loadConfigFile(path, {
      ROSTERGATE_PORT: '8080',
      ROSTERGATE_HOST: '0.0.0.0',
      ROSTERGATE_STORE: 'elsewhere/rg.db',
      ROSTERGATE_DRAIN_SECONDS: '7.5',
      ROSTERGATE_MASTER_KEY_FILE: 'keys/master.key',
    });
    expect(cfg.server).toMatchObject({ port: 8080, host: '0.0.0.0', drainSeconds: 7.5 });
    expect(cfg.store).toBe(resolve('elsewhere/rg.db'));
    expect(cfg.privacy.masterKeyFile).toBe(resolve('keys/master.key'));
    // What the environment does not name stays the file's.
    expect(cfg.privacy.tenant).toBe('district-7');
  });

  it('sets keys whose section the file leaves out, and takes a PostgreSQL URL as it is', () => {
    const path = configFile('{}\n');
    const url = 'postgres://rg:s3cret@db.internal:5432/rostergate';
    const cfg = loadConfigFile(path, { ROSTERGATE_PORT: '9000', ROSTERGATE_STORE: url });
    expect(cfg.server.port).toBe(9000);
    expect(cfg.server.host).toBe('127.0.0.1');
    expect(cfg.store).toBe(url);
  });

  it('refuses a bad value by the file\'s own rules, naming the variable and the key it overrides, not the value', () => {
    const path = configFile();
    const cases: [Record<string, string>, RegExp][] = [
      [{ ROSTERGATE_PORT: 'http' }, /ROSTERGATE_PORT \(overrides server\.port\): not a number/],
      [{ ROSTERGATE_PORT: '0x50' }, /ROSTERGATE_PORT \(overrides server\.port\): not a number/],
      [{ ROSTERGATE_PORT: '70000' }, /ROSTERGATE_PORT \(overrides server\.port\): .*65535/],
      [{ ROSTERGATE_PORT: '80.5' }, /ROSTERGATE_PORT \(overrides server\.port\): .*int/i],
      [{ ROSTERGATE_DRAIN_SECONDS: '301' }, /ROSTERGATE_DRAIN_SECONDS \(overrides server\.drainSeconds\): .*300/],
      [{ ROSTERGATE_STORE: 'env:RG_TEST_NO_SUCH_VARIABLE' }, /ROSTERGATE_STORE \(overrides store\): environment variable RG_TEST_NO_SUCH_VARIABLE is not set/],
    ];
    for (const [env, expected] of cases) {
      const m = message(() => loadConfigFile(path, env));
      expect(m).toMatch(expected);
      expect(m.startsWith(`${path}: `), m).toBe(true);
      const value = Object.values(env)[0]!;
      if (!value.startsWith('env:')) expect(m).not.toContain(`"${value}"`);
    }
  });

  it('a section the file gives as something else is the file\'s error, not silently replaced', () => {
    const path = configFile('server: 8080\n');
    expect(message(() => loadConfigFile(path, { ROSTERGATE_PORT: '9000' }))).toMatch(/: server: /);
  });

  it('leaves the parsed file itself unchanged and only touches the listed keys', () => {
    const raw = { server: { port: 1 }, sources: [] };
    const applied = applyEnvOverrides(raw, { ROSTERGATE_PORT: '2', ROSTERGATE_SOMETHING_ELSE: 'x' });
    expect(raw.server.port).toBe(1);
    expect(applied.raw).toEqual({ server: { port: 2 }, sources: [] });
    expect([...applied.from]).toEqual([['server.port', 'ROSTERGATE_PORT']]);
    // Every override names a distinct variable and a distinct key.
    expect(new Set(ENV_OVERRIDES.map((o) => o.name)).size).toBe(ENV_OVERRIDES.length);
    expect(new Set(ENV_OVERRIDES.map((o) => o.key)).size).toBe(ENV_OVERRIDES.length);
  });

  it('serve prints a PostgreSQL store without its password', () => {
    expect(storeForDisplay('postgres://rg:s3cret@db:5432/rostergate')).toBe('postgres://rg:***@db:5432/rostergate');
    expect(storeForDisplay('postgresql://db/rostergate')).toBe('postgresql://db/rostergate');
    expect(storeForDisplay('/data/rostergate.db')).toBe('/data/rostergate.db');
  });
});
