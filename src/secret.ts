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

/** A secret given as a reference rather than as its value. */
export function isSecretReference(value: string): boolean {
  return /^env:[A-Za-z_][A-Za-z0-9_]*$/.test(value) || /^file:\/./.test(value);
}

/**
 * While set, `secret` fields keep their references unresolved and refuse literal values: how
 * sources kept in a store (a tenant's, src/tenants/catalog.ts) are validated. A literal there would
 * put a credential in every backup of the store, and the process that validates the sources (the
 * operator's CLI) need not be the one that has the environment or file they name (a worker).
 * Parsing is synchronous, so a flag around one parse is enough.
 */
let referencesOnly = false;

export function parsingSecretsAsReferences<T>(fn: () => T): T {
  const before = referencesOnly;
  referencesOnly = true;
  try {
    return fn();
  } finally {
    referencesOnly = before;
  }
}

/** A zod string that resolves `env:`/`file:` references while parsing. */
export const secret = z.string().min(1).transform((v, ctx) => {
  if (referencesOnly) {
    if (isSecretReference(v)) return v;
    ctx.addIssue({ code: 'custom', message: 'a secret given literally: give it by reference, as env:NAME or file:/absolute/path' });
    return z.NEVER;
  }
  try {
    return resolveSecret(v);
  } catch (e) {
    ctx.addIssue({ code: 'custom', message: (e as Error).message });
    return z.NEVER;
  }
});
