/**
 * `rostergate sandbox` as a user runs it: the process serves the vendor emulators and prints a
 * config that reads them; `rostergate sync` with that config, unedited, syncs every source.
 */
import { describe, expect, it } from 'vitest';
import { spawn, spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { parse } from 'yaml';
import { tempDir } from '../support/stores.ts';
import { CLI_BIN } from '../support/cli-bin.ts';

const bin = CLI_BIN;

async function freePort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', () => r()));
  const port = (s.address() as { port: number }).port;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

describe('rostergate sandbox', () => {
  it('serves the emulators and prints a config that `rostergate sync` runs as is', async () => {
    const dir = tempDir();
    const port = await freePort();
    // Its CSV drops go to the temporary folder: a private one, so no other process shares them.
    const child = spawn(process.execPath, [bin, 'sandbox', '--port', String(port), '--students', '40'], {
      env: { ...process.env, ROSTERGATE_LOG_LEVEL: 'silent', TMPDIR: dir }, stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    child.stdout.on('data', (d) => (stdout += d));
    try {
      // The config is the last thing printed, in one write: wait until it parses with its sources.
      const printedConfig = () => {
        try {
          return (parse(stdout.split('for the real thing):')[1] ?? '') as { sources?: unknown[] } | null)?.sources?.length ?? 0;
        } catch {
          return 0;
        }
      };
      const end = Date.now() + 90_000;
      while (printedConfig() < 5) {
        if (Date.now() > end || child.exitCode !== null) throw new Error(`the sandbox printed no config: ${JSON.stringify(stdout)}`);
        await new Promise((r) => setTimeout(r, 100));
      }
      for (const prefix of ['/clever', '/oneroster', '/msgraph', '/google']) expect(stdout).toContain(`http://127.0.0.1:${port}${prefix}`);
      const printed = stdout.split('for the real thing):')[1]!;
      const config = parse(printed) as { sources: { id: string; type: string }[] };
      expect(config.sources.map((s) => s.type)).toEqual(expect.arrayContaining(['clever', 'oneroster', 'oneroster-csv']));
      const file = join(dir, 'rostergate.yaml');
      writeFileSync(file, printed);
      const r = spawnSync(process.execPath, [bin, 'sync', '--config', file], {
        encoding: 'utf8', env: { ...process.env, ROSTERGATE_LOG_LEVEL: 'silent' }, timeout: 120_000,
      });
      expect(r.stderr).toBe('');
      expect(r.status).toBe(0);
      for (const s of config.sources) expect(r.stdout).toMatch(new RegExp(`^${s.id}: complete \\(full, run 1\\)`, 'm'));
    } finally {
      child.kill('SIGTERM');
      await new Promise((r) => (child.exitCode !== null ? r(null) : child.on('exit', r)));
    }
  }, 180_000);
});
