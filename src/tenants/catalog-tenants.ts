/**
 * CatalogTenants: the tenants of a deployment, from the tenant catalog (./catalog.ts) in the home
 * store, each with a store of its own (src/tenants/tenants.ts says why):
 * - the home tenant is the config file's own: its configured store and `sources`;
 * - a catalog tenant on SQLite: the file `<folder of the home store>/tenants/<id>.db`;
 * - a catalog tenant on PostgreSQL: the schema `tenant_<id, - as _>` in the home store's database,
 *   every tenant on ONE shared pg Pool (a connection is pointed at a tenant's schema when checked
 *   out for it), with a write lock and a migration lock of its own (src/store/postgres.ts).
 * Stores are opened on first use and kept until close(). The catalog is re-read at most every
 * `refreshMs` (one cheap query), so tenants added, changed, paused or removed by another process
 * (the CLI while `serve` runs) are seen without a restart; a removed tenant's store is closed.
 * Key rings: KeyRing(master, tenant id), from the one master key.
 */
import { existsSync, rmSync } from 'node:fs';
import { dirname, join } from 'node:path';
import type pg from 'pg';
import { RostergateError } from '../errors.ts';
import type { KeyRing } from '../privacy/pseudonym.ts';
import { acquireSourceLease, type SourceLease } from '../store/lease.ts';
import { openSharedPool, PostgresStore } from '../store/postgres.ts';
import { SqliteStore } from '../store/sqlite.ts';
import type { Store, TenantRow } from '../store/types.ts';
import type { SourceConfig } from '../config/config.ts';
import { isPostgresUrl } from '../store/open.ts';
import { TenantCatalog, toTenantInfo } from './catalog.ts';
import type { Tenant, TenantInfo, Tenants } from './tenants.ts';

/** Where a catalog tenant's data lives. */
export type TenantStorage = { kind: 'sqlite'; path: string } | { kind: 'postgres'; schema: string };

export interface CatalogTenantsOptions {
  /** The configured store (`store:` of the config): a SQLite path or a postgres:// URL. */
  storeLocation: string;
  /** The home store, opened by the caller (who closes it). */
  homeStore: Store;
  /** The home tenant: `privacy.tenant` and the config's sources. */
  home: { id: string; sources: SourceConfig[] };
  /**
   * The home tenant's key ring; every other tenant's is derived from the same master key. Left out
   * by commands that only manage the catalog (`rostergate tenants …`), which open no tenant for work.
   */
  keyring?: KeyRing;
  /** How stale the catalog may be (default 3 s). */
  refreshMs?: number;
  /** PostgreSQL: connections of the pool shared by all tenant stores (default 16). */
  poolSize?: number;
}

/** The storage of tenant `id` next to the configured store (see the file header). */
export function tenantStorage(storeLocation: string, id: string): TenantStorage {
  if (isPostgresUrl(storeLocation)) return { kind: 'postgres', schema: `tenant_${id.replaceAll('-', '_')}` };
  if (storeLocation === ':memory:') throw new RostergateError('CONFIG_INVALID', 'catalog tenants need a store on disk (a SQLite file or PostgreSQL), not :memory:');
  return { kind: 'sqlite', path: join(dirname(storeLocation), 'tenants', `${id}.db`) };
}

export class CatalogTenants implements Tenants {
  readonly home: string;
  readonly catalog: TenantCatalog;
  private readonly homeTenant: TenantInfo & { store: Store };
  private readonly opened = new Map<string, Promise<Store>>();
  private rows: { at: number; byId: Map<string, TenantRow> } | undefined;
  private pool: pg.Pool | undefined;
  private closed = false;

  constructor(private readonly o: CatalogTenantsOptions) {
    this.home = o.home.id;
    this.catalog = new TenantCatalog(o.homeStore, o.home.id);
    const at = new Date().toISOString();
    // The config file's tenant has no catalog row: its name is its id, its times this process's start.
    this.homeTenant = { id: o.home.id, name: o.home.id, status: 'active', sources: o.home.sources, createdAt: at, updatedAt: at, store: o.homeStore };
  }

  storage(id: string): TenantStorage {
    return tenantStorage(this.o.storeLocation, id);
  }

  async list(): Promise<TenantInfo[]> {
    const { store: _s, ...home } = this.homeTenant;
    return [home, ...[...(await this.catalogRows(true)).values()].map(toTenantInfo)];
  }

  async open(id: string): Promise<Tenant | undefined> {
    const keyring = this.o.keyring;
    if (!keyring) throw new RostergateError('CONFIG_INVALID', 'opening a tenant for work needs the master key (ROSTERGATE_MASTER_KEY or privacy.masterKeyFile)');
    if (id === this.home) return { ...this.homeTenant, keyring };
    const row = (await this.catalogRows()).get(id);
    if (!row) return undefined;
    return { ...toTenantInfo(row), store: await this.storeOf(id), keyring: keyring.forTenant(id) };
  }

  /** A catalog tenant's store, opened once and kept. */
  private storeOf(id: string): Promise<Store> {
    let opening = this.opened.get(id);
    if (!opening) {
      opening = this.openStore(id);
      this.opened.set(id, opening);
      opening.catch(() => this.opened.delete(id));
    }
    return opening;
  }

  /**
   * Removes a tenant and erases its data: paused first (no new sync or request starts), then the
   * leases of its sources taken (refused with SYNC_BUSY while a sync holds one, unless `wait`), its
   * store closed and erased (SQLite: the file with its -wal and -shm; PostgreSQL: DROP SCHEMA …
   * CASCADE), the API keys narrowed to it revoked (they live in the home store, and a tenant added
   * again under the same id must not be readable with them), and the removal recorded (who, when) as the catalog row goes.
   * Erasing before the row goes means a crash in between leaves a paused tenant to remove again,
   * never data without a catalog entry.
   */
  async remove(id: string, opts: { by: string; wait?: boolean }): Promise<void> {
    const before = await this.catalog.require(id);
    if (before.status !== 'paused') await this.catalog.update(id, { status: 'paused' });
    this.rows = undefined;
    const store = await this.storeOf(id);
    const leases: SourceLease[] = [];
    try {
      for (const s of before.sources) leases.push(await acquireSourceLease(store, s.id, { wait: opts.wait }));
    } catch (e) {
      for (const l of leases) await l.release();
      // Refused: the tenant stays as it was.
      if (before.status !== 'paused') await this.catalog.update(id, { status: before.status });
      throw e;
    }
    for (const l of leases) await l.release();
    await this.closeStore(id);
    await this.erase(id);
    await this.o.homeStore.revokeTenantApiKeys(id, new Date().toISOString());
    await this.catalog.recordRemoval(id, opts.by);
    this.rows = undefined;
  }

  /** Adds a tenant; storage an earlier tenant of that id left behind (a crash mid-removal) is erased first, so it starts empty. */
  async add(t: { id: string; name: string; sources?: unknown }): Promise<TenantInfo> {
    const info = await this.catalog.add(t, async () => {
      await this.closeStore(t.id);
      await this.erase(t.id);
    });
    this.rows = undefined;
    return info;
  }

  /** Whether anything of a tenant's storage exists (tests: a removed tenant leaves nothing). */
  async storageExists(id: string): Promise<boolean> {
    const where = this.storage(id);
    if (where.kind === 'sqlite') return [where.path, `${where.path}-wal`, `${where.path}-shm`].some((p) => existsSync(p));
    return PostgresStore.schemaExists(this.sharedPool(), where.schema);
  }

  async close(): Promise<void> {
    this.closed = true;
    for (const id of [...this.opened.keys()]) await this.closeStore(id);
    if (this.pool && !this.pool.ended) await this.pool.end();
  }

  /** The catalog, re-read when older than refreshMs (or `fresh`); stores of tenants no longer in it are closed. */
  private async catalogRows(fresh = false): Promise<Map<string, TenantRow>> {
    const now = Date.now();
    if (!fresh && this.rows && now - this.rows.at < (this.o.refreshMs ?? 3000)) return this.rows.byId;
    const byId = new Map((await this.o.homeStore.tenantCatalog.list()).map((r) => [r.id, r]));
    this.rows = { at: now, byId };
    for (const id of [...this.opened.keys()]) if (!byId.has(id)) await this.closeStore(id);
    return byId;
  }

  private async openStore(id: string): Promise<Store> {
    if (this.closed) throw new RostergateError('STORE', 'the tenants registry is closed');
    const where = this.storage(id);
    return where.kind === 'sqlite' ? SqliteStore.open(where.path) : PostgresStore.openInSchema(this.sharedPool(), where.schema);
  }

  private async closeStore(id: string): Promise<void> {
    const opening = this.opened.get(id);
    if (!opening) return;
    this.opened.delete(id);
    await (await opening.catch(() => undefined))?.close();
  }

  private async erase(id: string): Promise<void> {
    const where = this.storage(id);
    if (where.kind === 'postgres') return PostgresStore.dropSchema(this.sharedPool(), where.schema);
    for (const p of [where.path, `${where.path}-wal`, `${where.path}-shm`, `${where.path}-journal`]) {
      try {
        rmSync(p, { force: true });
      } catch (e) {
        throw new RostergateError('DATA_FOLDER', `cannot remove ${p}: ${(e as Error).message}`);
      }
    }
  }

  private sharedPool(): pg.Pool {
    this.pool ??= openSharedPool(this.o.storeLocation, this.o.poolSize);
    return this.pool;
  }
}

