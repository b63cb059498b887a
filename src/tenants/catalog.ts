/**
 * The tenant catalog: which tenants a deployment serves besides the config file's own, kept in the
 * home store (tables `tenants` and `tenant_removals`, src/store/queries/tenant-catalog.ts) so every
 * process on the deployment — serve, sync, workers, the operator's CLI — reads the same list, and
 * changes need no restart.
 *
 * A tenant's sources are validated by the same per-type schemas as the config file's `sources`
 * (src/config/config.ts parseSources), with one difference: secrets only by reference (env:NAME,
 * file:/path). A literal would sit in the store and in every backup of it; and the process that
 * validates the sources (the operator's CLI) is not necessarily the one that has the environment
 * they name (a worker), so references are kept as written and resolved when a sync runs.
 */
import { parseSources, type SourceConfig } from '../config/config.ts';
import { RostergateError } from '../errors.ts';
import type { Store, TenantRemovalRow, TenantRow } from '../store/types.ts';
import { TENANT_ID, type TenantInfo, type TenantStatus } from './tenants.ts';

/**
 * Ids up to 56 characters: a tenant's PostgreSQL schema is `tenant_<id>`, and PostgreSQL cuts
 * identifiers at 63 bytes (two long ids with one prefix would otherwise share a schema).
 */
export const MAX_TENANT_ID_LENGTH = 56;

export function checkTenantId(id: string, home: string): void {
  if (!TENANT_ID.test(id) || id.length > MAX_TENANT_ID_LENGTH) {
    throw new RostergateError('CONFIG_INVALID', `tenant id "${id}": lower-case letters, digits and "-", starting with a letter or digit, at most ${MAX_TENANT_ID_LENGTH} characters`);
  }
  if (id === home) throw new RostergateError('CONFIG_INVALID', `tenant id "${id}" is the config file's own tenant (privacy.tenant): choose another id`);
}

/** A tenant's sources as kept: validated, secrets by reference only (refused, naming the key, if literal). */
export function tenantSources(raw: unknown, where: string): SourceConfig[] {
  return parseSources(raw ?? [], where, { secrets: 'references' });
}

/** A tenant's sources ready to sync: their secret references resolved (from this process's environment and files). */
export function resolvedTenantSources(t: Pick<TenantInfo, 'id' | 'sources'>): SourceConfig[] {
  return parseSources(t.sources, `tenant ${t.id}`);
}

export const toTenantInfo = (r: TenantRow): TenantInfo => ({
  id: r.id, name: r.name, status: r.status, sources: r.sources as SourceConfig[], createdAt: r.createdAt, updatedAt: r.updatedAt,
});

const notFound = (id: string) => new RostergateError('NOT_FOUND', `no tenant "${id}" in the catalog (rostergate tenants list)`);

/** Catalog operations with their checks, on the home store. Removal, which also erases a store, is CatalogTenants.remove. */
export class TenantCatalog {
  constructor(
    private readonly store: Store,
    /** The config file's own tenant: not in the catalog, and no catalog tenant may take its id. */
    readonly home: string,
  ) {}

  async list(): Promise<TenantInfo[]> {
    return (await this.store.tenantCatalog.list()).map(toTenantInfo);
  }

  async get(id: string): Promise<TenantInfo | undefined> {
    const r = await this.store.tenantCatalog.get(id);
    return r && toTenantInfo(r);
  }

  async require(id: string): Promise<TenantInfo> {
    const t = await this.get(id);
    if (!t) throw notFound(id);
    return t;
  }

  /** Adds an active tenant. `beforeInsert` runs once the input is checked (CatalogTenants clears leftover storage there). */
  async add(t: { id: string; name: string; sources?: unknown }, beforeInsert?: () => Promise<void>): Promise<TenantInfo> {
    checkTenantId(t.id, this.home);
    const name = checkName(t.name);
    const sources = tenantSources(t.sources ?? [], `tenant ${t.id}`);
    if (await this.store.tenantCatalog.get(t.id)) throw new RostergateError('CONFIG_INVALID', `tenant "${t.id}" exists already (rostergate tenants show ${t.id})`);
    await beforeInsert?.();
    const at = new Date().toISOString();
    const row: TenantRow = { id: t.id, name, status: 'active', sources, createdAt: at, updatedAt: at };
    if (!(await this.store.tenantCatalog.add(row))) throw new RostergateError('CONFIG_INVALID', `tenant "${t.id}" exists already (rostergate tenants show ${t.id})`);
    return toTenantInfo(row);
  }

  async update(id: string, patch: { name?: string; status?: TenantStatus; sources?: unknown }): Promise<TenantInfo> {
    const p: Partial<Pick<TenantRow, 'name' | 'status' | 'sources'>> = {};
    if (patch.name !== undefined) p.name = checkName(patch.name);
    if (patch.status !== undefined) p.status = patch.status;
    if (patch.sources !== undefined) p.sources = tenantSources(patch.sources, `tenant ${id}`);
    if (!(await this.store.tenantCatalog.update(id, { ...p, updatedAt: new Date().toISOString() }))) throw notFound(id);
    return this.require(id);
  }

  /** Deletes the catalog row and records the removal (CatalogTenants.remove erases the store first). */
  async recordRemoval(id: string, by: string): Promise<void> {
    if (!(await this.store.tenantCatalog.remove(id, { removedAt: new Date().toISOString(), removedBy: by }))) throw notFound(id);
  }

  removals(): Promise<TenantRemovalRow[]> {
    return this.store.tenantCatalog.removals();
  }
}

function checkName(name: string): string {
  const n = name.trim();
  if (!n || n.length > 200) throw new RostergateError('CONFIG_INVALID', 'a tenant name: 1 to 200 characters');
  return n;
}
