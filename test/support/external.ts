/**
 * Third-party specs and samples live outside the repository, in ../shared/external (see its
 * README): they are read by contract tests, never copied in. A missing folder is a clear failure.
 */
import { existsSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

// ROSTERGATE_SHARED_EXTERNAL points elsewhere when the checkout does not sit beside shared/.
const root = process.env.ROSTERGATE_SHARED_EXTERNAL ?? resolve(dirname(fileURLToPath(import.meta.url)), '../../../shared/external');

export function externalPath(...parts: string[]): string {
  const p = resolve(root, ...parts);
  if (!existsSync(p)) {
    throw new Error(`third-party reference material not found at ${p}: contract tests need ../shared/external beside the repository`);
  }
  return p;
}
