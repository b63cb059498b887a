/** The configuration contract users and scripts rely on: names, defaults, and messages that point at the key. */
import { afterEach, describe, expect, it } from 'vitest';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { configPath, loadConfigFile, parseConfig } from '../../src/config/config.ts';
import { tempDir } from '../support/stores.ts';

// The example of the configuration contract, as a user writes it.
const EXAMPLE = `
store: ./data/rostergate.db
sources:
  - id: district-clever
    type: clever
    baseUrl: https://api.clever.com
    token: env:RG_TEST_CLEVER_TOKEN
  - id: classlink
    type: oneroster
    version: "1.1"
    baseUrl: https://tenant-st-v2.rosterserver.com/ims/oneroster/v1p1
    clientId: env:RG_TEST_OR_KEY
    clientSecret: env:RG_TEST_OR_SECRET
  - id: nightly-drop
    type: oneroster-csv
    path: ./drops/oneroster.zip
`;

const ENV = { RG_TEST_CLEVER_TOKEN: 'tok', RG_TEST_OR_KEY: 'key', RG_TEST_OR_SECRET: 'secret' };
afterEach(() => {
  for (const k of [...Object.keys(ENV), 'ROSTERGATE_CONFIG']) delete process.env[k];
});

function write(name: string, text: string): string {
  const dir = tempDir();
  writeFileSync(join(dir, name), text);
  return join(dir, name);
}

describe('configuration', () => {
  it('reads the documented example: secrets from the environment, paths relative to the file, vendor defaults', () => {
    Object.assign(process.env, ENV);
    const path = write('rostergate.yaml', EXAMPLE);
    const cfg = loadConfigFile(path);
    expect(cfg.store).toBe(join(path, '..', 'data/rostergate.db'));
    const [clever, classlink, drop] = cfg.sources as Record<string, unknown>[];
    expect(clever).toMatchObject({ id: 'district-clever', type: 'clever', token: 'tok', apiVersion: '3.1', pageSize: 10_000 });
    expect(classlink).toMatchObject({ id: 'classlink', type: 'oneroster', version: '1.1', clientId: 'key', clientSecret: 'secret', pageSize: 1000 });
    expect(drop).toMatchObject({ id: 'nightly-drop', type: 'oneroster-csv', path: join(path, '..', 'drops/oneroster.zip'), mode: 'tolerant' });
    expect(cfg.sync.maxDeleteShare).toBe(0.2);
  });

  it('JSON works the same, and ROSTERGATE_CONFIG is the fallback for --config', () => {
    Object.assign(process.env, ENV);
    const path = write('rostergate.json', JSON.stringify({ sources: [{ id: 'c', type: 'clever', token: 'env:RG_TEST_CLEVER_TOKEN' }] }));
    expect(loadConfigFile(path).sources[0]).toMatchObject({ id: 'c', baseUrl: 'https://api.clever.com' });
    process.env.ROSTERGATE_CONFIG = path;
    expect(configPath()).toBe(path);
    expect(configPath('other.yaml')).toBe('other.yaml');
  });

  it('names the file and the key path of every mistake', () => {
    const path = write('c.yaml', EXAMPLE);
    expect(() => loadConfigFile(path)).toThrow(/c\.yaml: sources\[0\] \(district-clever\): token: environment variable RG_TEST_CLEVER_TOKEN is not set/);
    Object.assign(process.env, ENV);
    const bad = (sources: unknown[]) => () => parseConfig({ sources }, 'cfg.yaml');
    expect(bad([{ id: 'a', type: 'oneroster', version: '1.3', baseUrl: 'https://x', clientId: 'k', clientSecret: 's' }]))
      .toThrow(/cfg\.yaml: sources\[0\] \(a\): version: .*"1\.1".*"1\.2"/);
    expect(bad([{ id: 'a', type: 'clever', token: 't', pageSize: 20_000 }])).toThrow(/sources\[0\] \(a\): pageSize: .*10000/);
    expect(bad([{ id: 'a', type: 'clever', token: 't', tokn: 'x' }])).toThrow(/sources\[0\] \(a\): unknown key\(s\) tokn/);
    expect(bad([{ id: 'a', type: 'clever', token: 't' }, { id: 'a', type: 'clever', token: 't' }])).toThrow(/sources\[1\] \(a\): duplicate source id "a"/);
    expect(bad([{ id: 'a', type: 'oneroster', baseUrl: 'not a url', clientId: 'k', clientSecret: 's' }])).toThrow(/sources\[0\] \(a\): baseUrl: /);
    expect(() => parseConfig({ sync: { maxDeleteShare: 2 } }, 'cfg.yaml')).toThrow(/cfg\.yaml: sync\.maxDeleteShare: /);
  });
});
