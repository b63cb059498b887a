/**
 * Syncing one tenant: its sources into its store, with its key ring (src/tenants/tenants.ts). The
 * home tenant syncs the config file's sources as ever; a catalog tenant syncs its catalog sources,
 * their secret references resolved now, in this process. Purposes, identity rules, the mass-deletion
 * guard and retention are the deployment's (the config file's) for every tenant.
 */
import type { Config } from '../config/config.ts';
import { RostergateError } from '../errors.ts';
import { privacyForSync, type Privacy } from '../graphql/privacy.ts';
import { buildUnifiedSchema } from '../graphql/schema.ts';
import type { Logger } from '../log.ts';
import { syncAll, type SyncAllOptions } from '../runtime.ts';
import type { SyncSummary } from '../sync/runner.ts';
import { resolvedTenantSources } from './catalog.ts';
import type { Tenant } from './tenants.ts';

/** The config as the tenant's sync sees it: its sources, its id as privacy.tenant. */
export function tenantConfig(cfg: Config, tenant: Tenant, home: string): Config {
  // The home tenant's sources are the config file's, already resolved when it was read.
  if (tenant.id === home) return tenant.sources === cfg.sources ? cfg : { ...cfg, sources: tenant.sources };
  return { ...cfg, sources: resolvedTenantSources(tenant), privacy: { ...cfg.privacy, tenant: tenant.id } };
}

export function assertActive(tenant: Pick<Tenant, 'id' | 'status'>): void {
  if (tenant.status === 'paused') {
    throw new RostergateError('TENANT_PAUSED', `tenant ${tenant.id} is paused: nothing was synced (rostergate tenants resume ${tenant.id} to sync it again)`);
  }
}

/**
 * The ingest privacy of each tenant: the deployment's purposes under the tenant's own key ring (its
 * pseudonyms and match keys are its own). The purpose schemas are built once, by the first call,
 * and bound to each tenant's key ring after (Privacy.forTenant): a worker may sync hundreds.
 */
export function privacyPerTenant(cfg: Config): (t: Tenant) => Privacy | undefined {
  let root: { privacy: Privacy | undefined } | undefined;
  return (t) => {
    root ??= { privacy: privacyForSync(cfg, buildUnifiedSchema(), { keyring: t.keyring }) };
    return root.privacy?.forTenant(t.id, t.keyring);
  };
}

/**
 * Syncs a tenant's sources (or `opts.only`) into its store. `privacyFor` shares the purpose
 * schemas between the tenants a process syncs (privacyPerTenant); left out, they are built here.
 */
export async function syncTenant(
  tenant: Tenant,
  home: string,
  cfg: Config,
  log: Logger,
  opts: Omit<SyncAllOptions, 'privacy'> & { privacyFor?: (t: Tenant) => Privacy | undefined } = {},
): Promise<SyncSummary[]> {
  assertActive(tenant);
  const { privacyFor = privacyPerTenant(cfg), ...rest } = opts;
  const tcfg = tenantConfig(cfg, tenant, home);
  if (tcfg.sources.length === 0) return [];
  return syncAll(tenant.store, tcfg, log, { ...rest, privacy: privacyFor(tenant) });
}
