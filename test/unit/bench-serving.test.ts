/**
 * The serving benchmark runs at a tiny size and prints a rate for every mode (a mode with a failed
 * or unanswered request stops it, naming the mode), and `--store` keeps the synced district for
 * the next run, which serves it without syncing again. Never asserts speed: the targets live in the
 * bench's output.
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';

const run = promisify(execFile);
const dir = mkdtempSync(join(tmpdir(), 'rostergate-bench-serving-test-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const env = { ...process.env };
delete env.ROSTERGATE_BENCH_POSTGRES;
delete env.ROSTERGATE_TEST_POSTGRES;
const serving = async (...args: string[]) =>
  (await run(process.execPath, ['bin/run-ts.mjs', 'bench/run.ts', 'serving', '--students', '40', '--seconds', '0.3', '--rounds', '1', '--clients', '2', ...args], { env, timeout: 120_000 })).stdout;

const rate = (stdout: string, label: string) => {
  const m = new RegExp(`${label}\\s+([\\d,]+) req/s`).exec(stdout);
  expect(m, `${label} in:\n${stdout}`).not.toBeNull();
  return Number(m![1]!.replace(/,/g, ''));
};

describe('npm run bench serving', () => {
  it('prints every mode with a rate, the floor included, and keeps the district with --store', async () => {
    const store = join(dir, 'kept.db');
    const first = await serving('--store', store);
    expect(first).toContain('serving on sqlite — 40 students');
    for (const label of ['floor: plain Apollo \\+ DataLoader', 'open access \\(no key, no audit\\)', 'keyed lms \\(roster-sync\\)', 'keyed analytics', 'keyed admin \\(unrestricted\\)']) {
      expect(rate(first, label)).toBeGreaterThan(0);
    }
    expect(first).toMatch(/audit chain: verifies/);
    // Each round's ratio, paired with open access in the same round: one round, so min = median = max.
    const paired = /each round's ratio, median of 1 rounds: lms (\d+\.\d+)× \((\d+\.\d+)–(\d+\.\d+)\)/.exec(first);
    expect(paired, first).not.toBeNull();
    expect(new Set(paired!.slice(1)).size).toBe(1);
    expect(first).toContain('PostgreSQL skipped');
    const size = statSync(store).size;
    expect(size).toBeGreaterThan(0);

    // The second run serves the kept district: no sync, the same file.
    const second = await serving('--store', store, '--only', 'open,lms');
    expect(second).toContain(`serving on sqlite — the district kept in ${store}`);
    expect(rate(second, 'keyed lms \\(roster-sync\\)')).toBeGreaterThan(0);
    // With only some modes, the ratios of absent ones print as absent.
    expect(second).toMatch(/each round's ratio, median of 1 rounds: lms \d+\.\d+× \(.*\), analytics -,/);
  }, 240_000);
});
