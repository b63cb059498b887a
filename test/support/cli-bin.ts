/**
 * The `rostergate` the suites start as a process: the CLI compiled once for the test run
 * (./global-build.ts), or the sources through tsx (bin/rostergate.mjs) where no build was made.
 */
import { join } from 'node:path';

export const DEV_BIN = join(import.meta.dirname, '../../bin/rostergate.mjs');
export const CLI_BIN = process.env.ROSTERGATE_TEST_CLI ?? DEV_BIN;
