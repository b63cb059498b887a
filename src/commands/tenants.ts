/**
 * `rostergate tenants …`: the tenant catalog from the command line (src/tenants/catalog.ts). Works
 * on the configured (home) store; a running `serve` sees the changes within seconds, no restart.
 * Needs no master key: nothing here reads or writes a tenant's records, except `remove`, which
 * erases them wholesale.
 */
import { readFileSync } from 'node:fs';
import { hostname, userInfo } from 'node:os';
import { dirname, isAbsolute, resolve } from 'node:path';
import { parse as parseYaml } from 'yaml';
import type { Config } from '../config/config.ts';
import { RostergateError } from '../errors.ts';
import { openStore } from '../store/open.ts';
import { CatalogTenants } from '../tenants/catalog-tenants.ts';
import type { TenantInfo } from '../tenants/tenants.ts';
import { loadConfig } from '../config/config.ts';

const out = (s: string) => process.stdout.write(s + '\n');

async function withTenants<T>(configFlag: string | undefined, command: string, fn: (t: CatalogTenants, cfg: Config) => Promise<T>): Promise<T> {
  const cfg = loadConfig(configFlag, `tenants ${command}`);
  const store = await openStore(cfg);
  const tenants = new CatalogTenants({ storeLocation: cfg.store, homeStore: store, home: { id: cfg.privacy.tenant, sources: cfg.sources } });
  try {
    return await fn(tenants, cfg);
  } finally {
    await tenants.close();
    await store.close();
  }
}

/**
 * A sources file: YAML or JSON, either a list of sources or `sources:` with one (the config file's
 * shape). Relative paths in it (CSV drops) are relative to the file, as in the config file.
 */
export function readSourcesFile(path: string): unknown[] {
  let raw: unknown;
  try {
    raw = parseYaml(readFileSync(path, 'utf8'));
  } catch (e) {
    throw new RostergateError('CONFIG_INVALID', `cannot read sources file ${path}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message.split('\n')[0]}`);
  }
  const list = Array.isArray(raw) ? raw : (raw as { sources?: unknown } | null)?.sources;
  if (!Array.isArray(list)) throw new RostergateError('CONFIG_INVALID', `${path}: expected a list of sources, or \`sources:\` with one`);
  const base = dirname(resolve(path));
  return list.map((s) => {
    if (s && typeof s === 'object' && typeof (s as { path?: unknown }).path === 'string' && !isAbsolute((s as { path: string }).path)) {
      return { ...s, path: resolve(base, (s as { path: string }).path) };
    }
    return s;
  });
}

function describe(t: TenantInfo): string {
  return `${t.id.padEnd(24)} ${t.status.padEnd(7)} ${t.sources.length} source(s)  ${t.name}`;
}

export async function tenantsAdd(id: string, opts: { config?: string; name: string; sources?: string }): Promise<void> {
  const sources = opts.sources ? readSourcesFile(opts.sources) : [];
  await withTenants(opts.config, 'add', async (tenants) => {
    const t = await tenants.add({ id, name: opts.name, sources });
    out(`added tenant ${t.id} (${t.sources.length} source(s)); sync it with \`rostergate sync --tenant ${t.id}\``);
  });
}

export async function tenantsList(opts: { config?: string; json?: boolean; removed?: boolean }): Promise<void> {
  await withTenants(opts.config, 'list', async (tenants) => {
    if (opts.removed) {
      const removals = await tenants.catalog.removals();
      if (opts.json) return out(JSON.stringify(removals, null, 2));
      for (const r of removals) out(`${r.tenantId.padEnd(24)} removed ${r.removedAt} by ${r.removedBy}  ${r.name}`);
      return;
    }
    const list = await tenants.list();
    if (opts.json) return out(JSON.stringify(list, null, 2));
    for (const t of list) out(describe(t) + (t.id === tenants.home ? '  (the config file\'s own tenant)' : ''));
  });
}

export async function tenantsShow(id: string, opts: { config?: string }): Promise<void> {
  await withTenants(opts.config, 'show', async (tenants) => {
    const t = id === tenants.home ? (await tenants.list())[0]! : await tenants.catalog.require(id);
    const where = id === tenants.home ? 'the configured store' : (() => {
      const s = tenants.storage(id);
      return s.kind === 'sqlite' ? s.path : `schema ${s.schema} in the configured database`;
    })();
    // Sources as kept: secrets appear only as their references (env:NAME, file:/path).
    out(JSON.stringify({ ...t, storage: where }, null, 2));
  });
}

export async function tenantsPause(id: string, opts: { config?: string }): Promise<void> {
  await withTenants(opts.config, 'pause', async (tenants) => {
    await tenants.catalog.update(id, { status: 'paused' });
    out(`paused tenant ${id}: it is neither synced nor served until \`rostergate tenants resume ${id}\``);
  });
}

export async function tenantsResume(id: string, opts: { config?: string }): Promise<void> {
  await withTenants(opts.config, 'resume', async (tenants) => {
    await tenants.catalog.update(id, { status: 'active' });
    out(`resumed tenant ${id}`);
  });
}

export async function tenantsSetSources(id: string, file: string, opts: { config?: string }): Promise<void> {
  const sources = readSourcesFile(file);
  await withTenants(opts.config, 'set-sources', async (tenants) => {
    const t = await tenants.catalog.update(id, { sources });
    out(`tenant ${id} now has ${t.sources.length} source(s): ${t.sources.map((s) => `${s.id} (${s.type})`).join(', ') || 'none'}`);
  });
}

export async function tenantsRemove(id: string, opts: { config?: string; yes?: boolean; wait?: boolean }): Promise<void> {
  if (!opts.yes) throw new RostergateError('CONFIG_INVALID', `removing tenant ${id} erases all its data (its store, change feed, audit log): pass --yes to confirm`);
  await withTenants(opts.config, 'remove', async (tenants) => {
    await tenants.remove(id, { by: operator(), wait: opts.wait });
    out(`removed tenant ${id}: its store is erased; the removal is recorded (rostergate tenants list --removed)`);
  });
}

/** Who ran the command, for the removal record: the login name and machine (never a secret). */
function operator(): string {
  let user = 'unknown';
  try {
    user = userInfo().username;
  } catch {
    // No passwd entry (some containers): the machine alone.
  }
  return `cli ${user}@${hostname()}`;
}
