/**
 * The tenants benchmark's flags, and its registration in `npm run bench`: without a PostgreSQL
 * server it says it was skipped (it never asserts speed: the targets live in its output).
 */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { parseTenantsArgs } from '../../bench/tenants.ts';

const run = promisify(execFile);

describe('bench tenants', () => {
  it('reads its flags, with defaults small enough for a shared machine', () => {
    expect(parseTenantsArgs([], {})).toEqual({ tenants: 20, students: 100, postgres: undefined, seconds: 3, rounds: 3, clients: 8, workShare: 1, syncStudents: 2000 });
    expect(parseTenantsArgs(['--work-share', '0.25'], {}).workShare).toBe(0.25);
    expect(() => parseTenantsArgs(['--work-share', '0'], {})).toThrow(/--work-share: more than 0 and at most 1/);
    expect(parseTenantsArgs(['tenants', '--tenants', '200', '--students', '500', '--postgres', 'postgres://x/y', '--clients', '4'], {}))
      .toMatchObject({ tenants: 200, students: 500, postgres: 'postgres://x/y', clients: 4 });
    // The server from the environment when no flag names one; the flag wins.
    expect(parseTenantsArgs([], { ROSTERGATE_TEST_POSTGRES: 'postgres://t/db' }).postgres).toBe('postgres://t/db');
    expect(parseTenantsArgs(['--postgres', 'postgres://f/db'], { ROSTERGATE_BENCH_POSTGRES: 'postgres://b/db' }).postgres).toBe('postgres://f/db');
    expect(() => parseTenantsArgs(['--tenants', '7'], {})).toThrow(/even number/);
    expect(() => parseTenantsArgs(['--students', 'many'], {})).toThrow(/--students: a number/);
  });

  it('is registered in npm run bench and is skipped, saying why, without PostgreSQL', async () => {
    const env = { ...process.env };
    delete env.ROSTERGATE_BENCH_POSTGRES;
    delete env.ROSTERGATE_TEST_POSTGRES;
    const { stdout } = await run(process.execPath, ['bin/run-ts.mjs', 'bench/run.ts', 'tenants', '--tenants', '4'], { env, timeout: 60_000 });
    expect(stdout).toMatch(/^tenants — SKIPPED: needs PostgreSQL/m);
  }, 90_000);
});
