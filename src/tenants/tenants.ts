/**
 * Tenants: the schools or districts one deployment serves (issue 15). The contract the gateway,
 * `sync`, the scheduler and the worker are written against; the catalog of run-time tenants
 * (src/tenants/catalog*.ts) and the config file's own tenant both implement it.
 *
 * The design, and why:
 * - **A store per tenant.** Each tenant's entities, change log, audit log, ledger, webhooks and
 *   sync state live in a store of their own: a SQLite file, or a PostgreSQL schema in the one
 *   database. Isolation then holds by construction — no query of tenant A can name a row of B,
 *   not even in a count — and removing a tenant is dropping its store. A tenant column on every
 *   table would make every query of the store a place to forget it.
 * - **The home tenant.** The config file's own `sources` and `privacy.tenant` are one tenant whose
 *   data is the configured store itself, so a single-district deployment is unchanged.
 * - **Keys per tenant.** Pseudonym and match keys are derived from the one master key with the
 *   tenant id as HKDF salt (src/privacy/pseudonym.ts): the same pupil in two tenants gets unrelated
 *   pseudonyms, and identity resolution never meets across tenants.
 * - **Writes per tenant.** A store's write lock is its own, so syncs of different tenants run in
 *   parallel on PostgreSQL; within a tenant the change feed stays in commit order.
 */
import type { SourceConfig } from '../config/config.ts';
import type { KeyRing } from '../privacy/pseudonym.ts';
import type { Store } from '../store/types.ts';

/** Tenant ids: lower-case letters, digits and "-", as in URLs, file names and schema names. */
export const TENANT_ID = /^[a-z0-9][a-z0-9-]{0,62}$/;

/** `paused`: kept, but neither synced nor served until resumed. */
export type TenantStatus = 'active' | 'paused';

export interface TenantInfo {
  id: string;
  /** A label for operators (the district's name); never shown to clients of another tenant. */
  name: string;
  status: TenantStatus;
  /** Validated source configs; secrets in them only by reference (env:NAME, file:PATH). */
  sources: SourceConfig[];
  createdAt: string;
  updatedAt: string;
}

/** A tenant opened for work: its store migrated and its key ring derived. */
export interface Tenant extends TenantInfo {
  store: Store;
  keyring: KeyRing;
}

export interface Tenants {
  /** The config file's own tenant (`privacy.tenant`), whose store is the configured one. */
  readonly home: string;
  list(): Promise<TenantInfo[]>;
  /** The tenant opened (stores are opened once and kept), or undefined when there is none by that id. */
  open(id: string): Promise<Tenant | undefined>;
  /** Closes every store this registry opened. */
  close(): Promise<void>;
}

/** Every active tenant (with `all`, paused ones too), opened; a tenant removed between listing and opening is skipped. */
export async function activeTenants(tenants: Tenants, all = false): Promise<Tenant[]> {
  const out: Tenant[] = [];
  for (const info of await tenants.list()) {
    if (!all && info.status !== 'active') continue;
    const t = await tenants.open(info.id);
    if (t) out.push(t);
  }
  return out;
}
