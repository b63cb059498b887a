/**
 * The privacy benchmark runs at a tiny size and prints every figure: the purpose's query must be
 * one the purpose may ask (a policy that denies a field it selects stops the bench with the
 * GraphQL error). Never asserts speed: the target lives in the bench's output.
 */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';

const run = promisify(execFile);

describe('npm run bench privacy', () => {
  it('syncs, recomputes the view times, serves both sides and prints the ratio', async () => {
    const env = { ...process.env };
    delete env.ROSTERGATE_BENCH_POSTGRES;
    const { stdout } = await run(process.execPath, ['bin/run-ts.mjs', 'bench/run.ts', 'privacy', '--students', '40', '--queries', '3'], { env, timeout: 120_000 });
    expect(stdout).toMatch(/privacy — district of \d+ people/);
    const recomputed = /view times recomputed at start-up:\s+(\d+) records over 4 purposes/.exec(stdout);
    expect(recomputed, stdout).not.toBeNull();
    expect(Number(recomputed![1])).toBeGreaterThan(0);
    for (const label of ['nested query, unrestricted schema', 'same query, analytics purpose view']) {
      expect(stdout, label).toMatch(new RegExp(`${label}:\\s+median [\\d.]+ ms over 3`));
    }
    expect(stdout).toMatch(/ratio purpose\/unrestricted:\s+[\d.]+ \(target ≤ 1\.10\)/);
  }, 150_000);
});
