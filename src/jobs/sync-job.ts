/**
 * Running one scheduled job: the sync of one source of one tenant, through `Tenants` (open the
 * tenant → its store, key ring and sources). The queue (src/jobs/queue.ts) and `serve`'s
 * in-process schedule (src/jobs/in-process.ts) both run jobs through here; the registry of tenants
 * is the caller's (FixedTenants with the home tenant today, the catalog later).
 *
 * A job whose tenant is gone or paused, or whose source was removed, is skipped, not failed: there
 * is nothing to retry. A failing sync throws, so the queue retries it with backoff. A source
 * another run holds (SYNC_BUSY: a manual `rostergate sync`, or a worker still running a job the
 * queue presumed lost) is being synced right now: the job ends as `busy` rather than syncing the
 * same slot twice.
 */
import type { GraphQLSchema } from 'graphql';
import type { Config } from '../config/config.ts';
import { isRostergateError } from '../errors.ts';
import type { Logger } from '../log.ts';
import { privacyForSync, setupPrivacy, type Privacy } from '../graphql/privacy.ts';
import { buildUnifiedSchema } from '../graphql/schema.ts';
import { syncAll } from '../runtime.ts';
import type { Tenant, Tenants } from '../tenants/tenants.ts';

export interface SyncJob {
  tenant: string;
  source: string;
  /** The schedule slot (ISO instant) the job was enqueued for. */
  slot: string;
}

export type JobOutcome =
  | { outcome: 'synced'; status: 'complete' | 'guarded'; runId: number; records: number }
  | { outcome: 'skipped'; reason: 'no-tenant' | 'paused' | 'no-source' }
  | { outcome: 'busy' };

export type RunSyncJob = (job: SyncJob, signal?: AbortSignal) => Promise<JobOutcome>;

/**
 * The ingest privacy of a tenant: the config's purposes under the tenant's own key ring (each
 * tenant's pseudonyms and match keys are its own), made once per tenant.
 */
export function privacyPerTenant(cfg: Config, base: GraphQLSchema = buildUnifiedSchema()): (t: Tenant) => Privacy | undefined {
  const made = new Map<string, Privacy | undefined>();
  return (t) => {
    if (!made.has(t.id)) made.set(t.id, Object.keys(cfg.purposes).length ? setupPrivacy(cfg, base, { keyring: t.keyring }) : privacyForSync(cfg, base));
    return made.get(t.id);
  };
}

export function syncJobRunner(deps: { cfg: Config; tenants: Tenants; log: Logger; privacyFor?: (t: Tenant) => Privacy | undefined }): RunSyncJob {
  const privacyFor = deps.privacyFor ?? privacyPerTenant(deps.cfg);
  return async (job, signal) => {
    const log = deps.log.child({ tenant: job.tenant, source: job.source, slot: job.slot });
    const tenant = await deps.tenants.open(job.tenant);
    const skipped = (reason: 'no-tenant' | 'paused' | 'no-source'): JobOutcome => {
      log.info({ reason }, 'scheduled sync skipped');
      return { outcome: 'skipped', reason };
    };
    if (!tenant) return skipped('no-tenant');
    if (tenant.status !== 'active') return skipped('paused');
    if (!tenant.sources.some((s) => s.id === job.source)) return skipped('no-source');
    try {
      const [summary] = await syncAll(tenant.store, { ...deps.cfg, sources: tenant.sources }, log, {
        only: job.source,
        privacy: privacyFor(tenant),
        signal,
      });
      if (!summary) throw new Error(`source ${job.source}: the sync returned no summary`);
      if (summary.status === 'guarded') log.warn({ runId: summary.runId }, `scheduled sync stopped by the mass-deletion guard: ${summary.error ?? ''}`);
      else log.info({ runId: summary.runId, records: summary.records }, 'scheduled sync complete');
      return { outcome: 'synced', status: summary.status === 'guarded' ? 'guarded' : 'complete', runId: summary.runId, records: summary.records };
    } catch (e) {
      if (isRostergateError(e, 'SYNC_BUSY')) {
        log.info('source busy with another run: this slot is served by it');
        return { outcome: 'busy' };
      }
      throw e;
    }
  };
}
