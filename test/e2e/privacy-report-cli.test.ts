/**
 * `rostergate privacy-report` as an operator runs it: Markdown on stdout from a config file (no
 * master key needed, no store touched), HTML to a file, and one-line refusals with exit 2.
 */
import { describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { DEMO_CLIENTS, DEMO_PURPOSES } from '../../src/demo/demo-policy.ts';
import { tempDir } from '../support/stores.ts';
import { CLI_BIN } from '../support/cli-bin.ts';

const bin = CLI_BIN;
const run = (args: string[]) => {
  const env = { ...process.env, ROSTERGATE_LOG_LEVEL: 'silent' } as Record<string, string>;
  delete env.ROSTERGATE_MASTER_KEY;
  delete env.ROSTERGATE_CONFIG;
  return spawnSync(process.execPath, [bin, ...args], { encoding: 'utf8', env, timeout: 60_000 });
};

function configFile(): { dir: string; file: string } {
  const dir = tempDir();
  const file = join(dir, 'rostergate.json');
  writeFileSync(file, JSON.stringify({
    store: './never-opened.db',
    privacy: { tenant: 'cli-report', controller: { name: 'Test Board', contact: 'privacy@board.example.org' }, processingLocations: ['Utrecht, Netherlands'] },
    sources: [{ id: 'drop', type: 'oneroster-csv', path: './drop.zip' }],
    purposes: DEMO_PURPOSES,
    clients: DEMO_CLIENTS,
  }));
  return { dir, file };
}

describe('rostergate privacy-report', () => {
  it('prints the Markdown report of a config to stdout, without a master key and without opening the store', () => {
    const { dir, file } = configFile();
    const r = run(['privacy-report', '--config', file]);
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    expect(r.stdout).toMatch(/^# Privacy leaflet and record of processing — rostergate \(cli-report\)\n/);
    expect(r.stdout).toContain('- Responsible for your data (controller): Test Board, privacy@board.example.org');
    expect(r.stdout).toContain('#### Source drop (oneroster-csv)');
    expect(r.stdout).toContain('Processing locations: Utrecht, Netherlands.');
    expect(existsSync(join(dir, 'never-opened.db'))).toBe(false);
  });

  it('writes a standalone HTML page with --format html --out', () => {
    const { dir, file } = configFile();
    const out = join(dir, 'report.html');
    const r = run(['privacy-report', '--config', file, '--format', 'html', '--out', out]);
    expect(r.status).toBe(0);
    expect(r.stdout).toBe(`wrote the privacy report (html) to ${out}\n`);
    const html = readFileSync(out, 'utf8');
    expect(html.startsWith('<!DOCTYPE html>')).toBe(true);
    expect(html).toContain('<h4>Purpose <code>analytics</code></h4>');
  });

  it('--demo prints the committed demo report', () => {
    const r = run(['privacy-report', '--demo']);
    expect(r.status).toBe(0);
    expect(r.stdout).toBe(readFileSync(join(import.meta.dirname, '../../docs/privacy-report-demo.md'), 'utf8'));
  });

  it('an unknown --format is a one-line error naming the choices, exit 2', () => {
    const r = run(['privacy-report', '--demo', '--format', 'pdf']);
    expect(r.status).toBe(2);
    expect(r.stdout).toBe('');
    expect(r.stderr.trimEnd().split('\n')).toHaveLength(1);
    expect(r.stderr).toMatch(/argument 'pdf' is invalid\. Allowed choices are md, html\. \(see `rostergate privacy-report --help`\)/);
  });

  it('--demo with --config, and a config without purposes, are one-line refusals with exit 2', () => {
    const { dir, file } = configFile();
    const both = run(['privacy-report', '--demo', '--config', file]);
    expect(both.status).toBe(2);
    expect(both.stderr).toBe('rostergate: pass either --demo or --config, not both\n');
    const empty = join(dir, 'empty.json');
    writeFileSync(empty, '{}');
    const none = run(['privacy-report', '--config', empty]);
    expect(none.status).toBe(2);
    expect(none.stderr).toMatch(/^rostergate: .*empty\.json: no purposes configured, so there is nothing to report on/);
    expect(none.stderr.trimEnd().split('\n')).toHaveLength(1);
  });
});
