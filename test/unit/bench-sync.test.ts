/**
 * The sync benchmark's quick mode runs (on SQLite, a tiny district) and prints every figure it
 * promises, each a positive number. Never asserts speed: the targets live in the bench's output.
 */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';

const run = promisify(execFile);

describe('npm run bench sync -- --quick', () => {
  it('prints the floor, direct, unchanged re-sync, statement-floor, end-to-end and incremental figures on SQLite, and says PostgreSQL was skipped', async () => {
    const env = { ...process.env };
    delete env.ROSTERGATE_BENCH_POSTGRES;
    delete env.ROSTERGATE_TEST_POSTGRES;
    const { stdout } = await run(process.execPath, ['bin/run-ts.mjs', 'bench/run.ts', 'sync', '--quick', '--students', '120'], { env, timeout: 150_000 });
    const figure = (re: RegExp) => {
      const m = re.exec(stdout);
      expect(m, `${re} in:\n${stdout}`).not.toBeNull();
      return Number(m![1]!.replace(/,/g, ''));
    };
    expect(figure(/sync — ([\d,]+) students/)).toBe(120);
    expect(figure(/sandbox feed alone[^:]*: ([\d,]+) rec\/s/)).toBeGreaterThan(0);
    expect(figure(/floor \([^)]*\): ([\d,]+) rec\/s/)).toBeGreaterThan(0);
    expect(figure(/direct connector, full sync: ([\d,]+) rec\/s/)).toBeGreaterThan(0);
    expect(figure(/direct connector, full sync: [\d,]+ rec\/s, ([\d.]+)× floor/)).toBeGreaterThan(0);
    // The same district synced again with nothing changed (a nightly full drop).
    expect(figure(/full sync again, nothing changed: ([\d,]+) rec\/s/)).toBeGreaterThan(0);
    expect(figure(/full sync again, nothing changed: [\d,]+ rec\/s, ([\d.]+)× floor/)).toBeGreaterThan(0);
    expect(figure(/SQL statements per record \(direct sync\): ([\d.]+)/)).toBeGreaterThan(0);
    // The same statements replayed without the engine (bench/statement-floor.ts), with the sync's share of them.
    expect(figure(/statement floor \([^)]*\): ([\d,]+) rec\/s/)).toBeGreaterThan(0);
    expect(figure(/the sync runs at ([\d.]+)× its own statements/)).toBeGreaterThan(0);
    expect(figure(/end to end, OneRoster[^:]*: ([\d,]+) rec\/s/)).toBeGreaterThan(0);
    expect(figure(/incremental sync, 1 % of students changed \(([\d,]+);/)).toBeGreaterThan(0);
    expect(figure(/incremental sync, 1 % of students changed [^:]*: ([\d.]+) s/)).toBeGreaterThan(0);
    // Each target is printed beside its figure with a verdict.
    expect(stdout.match(/(PASS|BELOW)/g)?.length).toBeGreaterThanOrEqual(4);
    expect(stdout).toContain('PostgreSQL: SKIPPED');
  }, 180_000);
});
