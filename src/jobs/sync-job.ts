/**
 * Running one scheduled job: the sync of one source of one tenant, through `Tenants` (open the
 * tenant → its store, key ring and sources). The queue (src/jobs/queue.ts) and `serve`'s
 * in-process schedule (src/jobs/in-process.ts) both run jobs through here; the registry of tenants
 * is the caller's (the catalog's in `worker` and `serve`).
 *
 * A job whose tenant is gone or paused, or whose source was removed, is skipped, not failed: there
 * is nothing to retry. A failing sync throws, so the queue retries it with backoff. A source
 * another run holds (SYNC_BUSY: a manual `rostergate sync`, or a worker still running a job the
 * queue presumed lost) is being synced right now: the job ends as `busy` rather than syncing the
 * same slot twice.
 */
import type { Config } from '../config/config.ts';
import { isRostergateError } from '../errors.ts';
import type { Logger } from '../log.ts';
import type { Privacy } from '../graphql/privacy.ts';
import { privacyPerTenant, syncTenant } from '../tenants/sync-tenant.ts';
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
      // The catalog tenant's sources with their secret references resolved, its key ring, its store.
      const [summary] = await syncTenant(tenant, deps.tenants.home, deps.cfg, log, { only: job.source, privacyFor, signal });
      if (!summary) throw new Error(`source ${job.source}: the sync returned no summary`);
      if (summary.status === 'guarded') log.warn({ runId: summary.runId }, `scheduled sync stopped by the mass-deletion guard: ${summary.error ?? ''}`);
      else log.info({ runId: summary.runId, records: summary.records, timesMs: summary.times }, 'scheduled sync complete');
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
