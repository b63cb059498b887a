/**
 * Secrets in configuration are written as a literal or as `env:NAME` (read from the environment)
 * or `file:PATH` (read from a file, checked by assertSecretFile). Resolution happens while the
 * config is validated, so a missing variable is a clear config error at start-up, not a 401 later.
 *
 * The rule for secret files, and why (docs/deployment.md#secrets):
 * - Anywhere, a file only its owner may read (mode 600 or 400), like ssh's private keys.
 * - A secret mounted by an orchestrator may be readable by others (Kubernetes mounts secrets 0644
 *   owned by root unless `defaultMode` says otherwise; Docker Compose bind-mounts the host file
 *   with its host mode and owner, so the container's user often can only read it if others may).
 *   Such a file is accepted when it lies in a secret mount folder — /run/secrets (Docker),
 *   /var/run/secrets (Kubernetes' usual place), or a folder named in ROSTERGATE_SECRET_DIRS —
 *   after following symlinks (Kubernetes' `..data` links), so a link from there to a file elsewhere
 *   does not count. Those folders hold only what the orchestrator put there, for this container.
 * - Never a file that group or others may write, nor one in a folder (up to the mount) they may
 *   write without the sticky bit: whoever can write it can replace the secret with their own.
 * Ownership is not checked: a Compose secret keeps its owner from the host, whose uid means
 * nothing in the container, and the write rule already says only that owner (or root) may change it.
 */
import { readFileSync, realpathSync, statSync } from 'node:fs';
import { delimiter, dirname, isAbsolute, relative, sep } from 'node:path';
import { z } from 'zod';

/** Where Docker (/run/secrets) and Kubernetes (/var/run/secrets/…, by convention) mount secrets. */
export const SECRET_MOUNT_DIRS: readonly string[] = ['/run/secrets', '/var/run/secrets'];
/** More secret mount folders (Kubernetes mounts a secret volume wherever `mountPath` says), `:`-separated. */
export const SECRET_DIRS_ENV = 'ROSTERGATE_SECRET_DIRS';

export function resolveSecret(value: string, env: NodeJS.ProcessEnv = process.env): string {
  if (value.startsWith('env:')) {
    const name = value.slice(4);
    const v = env[name];
    if (v === undefined || v === '') throw new Error(`environment variable ${name} is not set`);
    return v;
  }
  if (value.startsWith('file:')) {
    const path = value.slice(5);
    assertSecretFile(path, env);
    return readFileSync(path, 'utf8').trim();
  }
  return value;
}

/** The secret mount folders: the usual two and those of ROSTERGATE_SECRET_DIRS (absolute paths only). */
export function secretMountDirs(env: NodeJS.ProcessEnv = process.env): string[] {
  const extra = (env[SECRET_DIRS_ENV] ?? '').split(delimiter).map((d) => d.trim()).filter(Boolean);
  const relativeOnes = extra.filter((d) => !isAbsolute(d));
  if (relativeOnes.length) throw new Error(`${SECRET_DIRS_ENV} holds a relative path (${relativeOnes.join(', ')}): give absolute folders`);
  return [...SECRET_MOUNT_DIRS, ...extra];
}

const within = (dir: string, path: string) => {
  const r = relative(dir, path);
  return r !== '' && !r.startsWith(`..${sep}`) && r !== '..' && !isAbsolute(r);
};
const modeText = (mode: number) => (mode & 0o7777).toString(8).padStart(3, '0');

/** Refuses a secret file that others could read or replace; see the rule in this file's header. */
export function assertSecretFile(path: string, env: NodeJS.ProcessEnv = process.env): void {
  let st;
  try {
    st = statSync(path);
  } catch {
    throw new Error(`secret file ${path} cannot be read`);
  }
  if (process.platform === 'win32') return;
  if (!st.isFile()) throw new Error(`secret file ${path} is not a file`);
  const mode = st.mode;
  if ((mode & 0o022) !== 0) {
    throw new Error(`secret file ${path} is writable by group or others (mode ${modeText(mode)}): anyone who can write it can replace the secret; chmod go-w it (600 outside a secret mount)`);
  }
  if ((mode & 0o077) === 0) return;
  const real = realpathSync(path);
  const dirs = secretMountDirs(env);
  const mount = dirs
    .map((d) => {
      try {
        return realpathSync(d);
      } catch {
        return undefined; // not on this machine
      }
    })
    .find((d) => d !== undefined && within(d, real));
  if (!mount) {
    throw new Error(
      `secret file ${path} is readable by group or others (mode ${modeText(mode)}); chmod 600 it — or, if Docker or Kubernetes mounts it, ` +
        `mount it under ${SECRET_MOUNT_DIRS.join(' or ')} or name its folder in ${SECRET_DIRS_ENV} (docs/deployment.md#secrets)`,
    );
  }
  // Every folder from the file's up to the mount's own: one others may write (without the sticky
  // bit, which keeps them from renaming or removing entries they do not own) lets them swap the file.
  for (let d = dirname(real); ; d = dirname(d)) {
    const m = statSync(d).mode;
    if ((m & 0o022) !== 0 && (m & 0o1000) === 0) {
      throw new Error(`secret file ${path}: folder ${d} is writable by group or others (mode ${modeText(m)}), so the secret could be replaced; chmod go-w it`);
    }
    if (d === mount || d === dirname(d)) break;
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

/** The older name of assertSecretFile (from before mounted secrets were accepted), for code written against it. */
export const assertOwnerOnly = (path: string): void => assertSecretFile(path);
