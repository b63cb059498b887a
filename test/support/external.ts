/**
 * Third-party specs and samples live outside the repository, in ../shared/external (see its
 * README): they are read by contract tests, never copied in. Where the folder is absent (a clone
 * that does not sit beside shared/), the tests that read it are reported as skipped and one line
 * says where the material was looked for; every other contract test still runs. Set
 * ROSTERGATE_REQUIRE_EXTERNAL=1 to make its absence a failure instead.
 */
import { existsSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, it } from 'vitest';

// ROSTERGATE_SHARED_EXTERNAL points elsewhere when the checkout does not sit beside shared/.
const root = process.env.ROSTERGATE_SHARED_EXTERNAL ?? resolve(dirname(fileURLToPath(import.meta.url)), '../../../shared/external');

export const externalAvailable = existsSync(root);

if (!externalAvailable) {
  const message = `third-party reference material not found at ${root} (set ROSTERGATE_SHARED_EXTERNAL): the tests that read it are skipped`;
  if (process.env.ROSTERGATE_REQUIRE_EXTERNAL === '1') throw new Error(message);
  console.warn(`[contract] ${message}`);
}

/** `it` for a test that reads ../shared/external: skipped, with the warning above, where it is absent. */
export const itExternal = it.skipIf(!externalAvailable);
/** `describe` for a suite whose set-up reads ../shared/external. */
export const describeExternal = describe.skipIf(!externalAvailable);

export function externalPath(...parts: string[]): string {
  const p = resolve(root, ...parts);
  if (!existsSync(p)) {
    throw new Error(`third-party reference material not found at ${p}: contract tests need ../shared/external beside the repository`);
  }
  return p;
}
