/**
 * Syncing processes lower their CPU priority (sync.nice) so a gateway beside them serves first:
 * src/kernel/cpu-priority.ts, applied by `rostergate sync` and `rostergate worker`.
 */
import { describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { CLI_BIN } from '../support/cli-bin.ts';

const root = fileURLToPath(new URL('../..', import.meta.url));
const bin = CLI_BIN;
const module = join(root, 'src/kernel/cpu-priority.ts');

/** Runs lowerCpuPriority(asked) in a fresh process started at nice `start`; prints what it returned and the process's priority. */
function inChild(start: number, asked: number): { returned: number; now: number; warnings: string[] } {
  const script = `
    import { getPriority, setPriority } from 'node:os';
    setPriority(${start});
    const { lowerCpuPriority } = await import(${JSON.stringify(module)});
    const warnings = [];
    const returned = lowerCpuPriority(${asked}, (m) => warnings.push(m));
    console.log(JSON.stringify({ returned, now: getPriority(), warnings }));`;
  const file = join(mkdtempSync(join(tmpdir(), 'rostergate-nice-')), 'child.mjs');
  writeFileSync(file, script);
  const r = spawnSync(process.execPath, [join(root, 'bin/run-ts.mjs'), file], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(r.stderr);
  return JSON.parse(r.stdout.trim().split('\n').pop()!);
}

describe('CPU priority of syncing processes', { timeout: 60_000 }, () => {
  it('lowers the priority to the nice value asked, and never raises it', () => {
    expect(inChild(0, 10)).toEqual({ returned: 10, now: 10, warnings: [] });
    // A process started nicer keeps its own value.
    expect(inChild(15, 10)).toEqual({ returned: 15, now: 15, warnings: [] });
    // 0 leaves it as it is.
    expect(inChild(3, 0)).toEqual({ returned: 3, now: 3, warnings: [] });
  });

  it('`rostergate sync` applies sync.nice before it syncs', () => {
    const dir = mkdtempSync(join(tmpdir(), 'rostergate-nice-'));
    writeFileSync(join(dir, 'c.yaml'), `store: ${join(dir, 'x.db')}\nsync:\n  nice: 13\n`);
    const env: NodeJS.ProcessEnv = { ...process.env, ROSTERGATE_LOG_LEVEL: 'debug' };
    delete env.NODE_ENV;
    const r = spawnSync(process.execPath, [bin, 'sync', '--config', join(dir, 'c.yaml')], { encoding: 'utf8', env });
    // No sources: it stops there (exit 2), after lowering its priority.
    expect(r.status).toBe(2);
    const line = (r.stdout + r.stderr).split('\n').find((l) => l.includes('sync.nice'));
    expect(JSON.parse(line!)).toMatchObject({ nice: 13 });
  });
});
