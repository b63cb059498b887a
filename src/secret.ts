/**
 * Secrets in configuration are written as a literal or as `env:NAME` (read from the environment)
 * or `file:PATH` (read from a file that only its owner may read). Resolution happens while the
 * config is validated, so a missing variable is a clear config error at start-up, not a 401 later.
 */
import { readFileSync, statSync } from 'node:fs';
import { z } from 'zod';

export function resolveSecret(value: string, env: NodeJS.ProcessEnv = process.env): string {
  if (value.startsWith('env:')) {
    const name = value.slice(4);
    const v = env[name];
    if (v === undefined || v === '') throw new Error(`environment variable ${name} is not set`);
    return v;
  }
  if (value.startsWith('file:')) {
    const path = value.slice(5);
    assertOwnerOnly(path);
    return readFileSync(path, 'utf8').trim();
  }
  return value;
}

/** Refuses secret files that group or others can read (like ssh does for private keys). */
export function assertOwnerOnly(path: string): void {
  let mode: number;
  try {
    mode = statSync(path).mode;
  } catch {
    throw new Error(`secret file ${path} cannot be read`);
  }
  if (process.platform !== 'win32' && (mode & 0o077) !== 0) {
    throw new Error(`secret file ${path} is readable by group or others (mode ${(mode & 0o777).toString(8)}); chmod 600 it`);
  }
}

/** A zod string that resolves `env:`/`file:` references while parsing. */
export const secret = z.string().min(1).transform((v, ctx) => {
  try {
    return resolveSecret(v);
  } catch (e) {
    ctx.addIssue({ code: 'custom', message: (e as Error).message });
    return z.NEVER;
  }
});
