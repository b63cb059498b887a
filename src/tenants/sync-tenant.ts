/**
 * Syncing one tenant: its sources into its store, with its key ring (src/tenants/tenants.ts). The
 * home tenant syncs the config file's sources as ever; a catalog tenant syncs its catalog sources,
 * their secret references resolved now, in this process. Purposes, identity rules, the mass-deletion
 * guard and retention are the deployment's (the config file's) for every tenant.
 */
import type { Config } from '../config/config.ts';
import { RostergateError } from '../errors.ts';
import { privacyForSync } from '../graphql/privacy.ts';
import { buildUnifiedSchema } from '../graphql/schema.ts';
import type { Logger } from '../log.ts';
import { syncAll } from '../runtime.ts';
import type { SyncSummary } from '../sync/runner.ts';
import { resolvedTenantSources } from './catalog.ts';
import type { Tenant } from './tenants.ts';

/** The config as the tenant's sync sees it: its sources, its id as privacy.tenant. */
export function tenantConfig(cfg: Config, tenant: Tenant, home: string): Config {
  if (tenant.id === home) return cfg;
  return { ...cfg, sources: resolvedTenantSources(tenant), privacy: { ...cfg.privacy, tenant: tenant.id } };
}

export function assertActive(tenant: Pick<Tenant, 'id' | 'status'>): void {
  if (tenant.status === 'paused') {
    throw new RostergateError('TENANT_PAUSED', `tenant ${tenant.id} is paused: nothing was synced (rostergate tenants resume ${tenant.id} to sync it again)`);
  }
}

export async function syncTenant(
  tenant: Tenant,
  home: string,
  cfg: Config,
  log: Logger,
  opts: Omit<NonNullable<Parameters<typeof syncAll>[3]>, 'privacy'> = {},
): Promise<SyncSummary[]> {
  assertActive(tenant);
  const tcfg = tenantConfig(cfg, tenant, home);
  if (tcfg.sources.length === 0) return [];
  const privacy = privacyForSync(tcfg, buildUnifiedSchema(), { keyring: tenant.keyring });
  return syncAll(tenant.store, tcfg, log, { ...opts, privacy });
}
