/**
 * The contention benchmark runs at a tiny size and prints its figures: a keyed client and an open
 * one served while a second source syncs into the same store. Never asserts speed: the figures are
 * the bench's output (docs/benchmarks.md).
 */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';

const run = promisify(execFile);

describe('npm run bench contention', () => {
  it('serves keyed and open requests while a sync writes, and prints their latencies', async () => {
    const env = { ...process.env };
    delete env.ROSTERGATE_BENCH_POSTGRES;
    delete env.ROSTERGATE_TEST_POSTGRES;
    const { stdout } = await run(process.execPath, ['bin/run-ts.mjs', 'bench/run.ts', 'contention', '--students', '40', '--sync-students', '200', '--page', '50'], { env, timeout: 120_000 });
    expect(stdout).toMatch(/contention on sqlite — a gateway over 40 students while a second source syncs [\d,]+ records in pages of 50/);
    for (const mode of ['keyed \\(audited\\)', 'open \\(floor\\)']) {
      expect(stdout, mode).toMatch(new RegExp(`${mode}\\s+\\d+ requests\\s+p50\\s+[\\d,]+ ms\\s+p90\\s+[\\d,]+ ms\\s+p99\\s+[\\d,]+ ms\\s+max\\s+[\\d,]+ ms`));
    }
    expect(stdout).toMatch(/keyed p50 \/ open p50: [\d.]+×/);
  }, 150_000);
});
