/**
 * Vitest globalSetup: compiles the CLI once per test run, as the container image runs it
 * (`scripts/build.mjs --no-check`: the suites typecheck separately), for the suites that start
 * `rostergate` as a process of its own (./cli-bin.ts).
 *
 * Why: through tsx (bin/rostergate.mjs) every process loads each source file and each file of its
 * ESM dependencies through the loader's hooks, about 2 s a command on these two-core machines;
 * compiled, under 1 s. The suites start a few hundred such processes. bin/rostergate.mjs keeps a test
 * of its own (test/e2e/cli.test.ts), and the build one (test/e2e/compiled-build.test.ts).
 * ROSTERGATE_TEST_CLI set beforehand names the CLI to use instead (no build).
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { join, relative } from 'node:path';

const root = join(import.meta.dirname, '../..');

export default function setup(): (() => void) | undefined {
  if (process.env.ROSTERGATE_TEST_CLI) return undefined;
  // Inside the repository, so that node_modules is found from it (as from dist/).
  const out = mkdtempSync(join(root, '.dist-test-'));
  const r = spawnSync(process.execPath, [join(root, 'scripts/build.mjs'), '--out', relative(root, out), '--no-check'], { encoding: 'utf8', cwd: root, timeout: 300_000 });
  if (r.status !== 0) {
    rmSync(out, { recursive: true, force: true });
    throw new Error(`the CLI's build for the tests failed (scripts/build.mjs): ${r.stderr || r.stdout || r.error?.message}`);
  }
  // Inherited by the test workers, which start after this.
  process.env.ROSTERGATE_TEST_CLI = join(out, 'src/cli.js');
  return () => rmSync(out, { recursive: true, force: true });
}
