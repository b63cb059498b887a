/**
 * The schedule inside `serve` on SQLite: one process owns a SQLite store, so there is no queue —
 * the process ticks itself and runs each due sync in turn, with the worker's schedule semantics:
 * one run per source per slot, missed slots caught up by one run, a failed run retried with
 * exponential backoff (`worker.retryLimit`, `worker.retryDelaySeconds`) until the next slot.
 *
 * A slot counts as taken when a run of the source that started at or after it completed (or was
 * stopped by the mass-deletion guard), read from the store's sync state: a restart does not sync
 * everything again, and a manual `rostergate sync` serves the slot it ran in.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { errorForLog, type Logger } from '../log.ts';
import type { Tenants } from '../tenants/tenants.ts';
import type { WorkerConfig } from './config.ts';
import { dueSyncs, sourceKey, type DueSync } from './due.ts';
import type { JobOutcome, RunSyncJob } from './sync-job.ts';

export interface InProcessSchedule {
  /** One tick now: runs what is due at `now()`, in turn; returns what each run came to. */
  tick(): Promise<{ due: DueSync; outcome: JobOutcome | { outcome: 'failed'; error: string } }[]>;
  /** Stops ticking; a running sync has `shutdownGraceSeconds` to finish, then is aborted between pages. */
  stop(): Promise<void>;
}

export function startInProcessSchedule(opts: { tenants: Tenants; run: RunSyncJob; cfg: WorkerConfig; log: Logger; now?: () => Date; ticking?: boolean }): InProcessSchedule {
  const { cfg, log } = opts;
  const now = opts.now ?? (() => new Date());
  const stopping = new AbortController();
  const abortRuns = new AbortController();
  /** Per source: the last slot taken here, and the retries of the current one. */
  const taken = new Map<string, Date>();
  const retries = new Map<string, { slot: string; failures: number; notBefore: number }>();

  async function lastStart(d: DueSync): Promise<Date | undefined> {
    const t = await opts.tenants.open(d.tenant);
    const state = await t?.store.getSyncState(d.source);
    // A failed run, or one left running by a crash, did not serve its slot: it is retried (or resumed).
    return state && (state.runStatus === 'complete' || state.runStatus === 'guarded') && state.startedAt ? new Date(state.startedAt) : undefined;
  }

  let chain: Promise<unknown> = Promise.resolve();
  const tick: InProcessSchedule['tick'] = () => {
    const run = chain.then(async () => {
      const results: Awaited<ReturnType<InProcessSchedule['tick']>> = [];
      for (const d of await dueSyncs(opts.tenants, now())) {
        if (stopping.signal.aborted) break;
        const key = sourceKey(d.tenant, d.source);
        const slot = new Date(d.slot);
        const last = [taken.get(key), await lastStart(d)].filter((x): x is Date => !!x).sort((a, b) => b.getTime() - a.getTime())[0];
        if (last && last.getTime() >= slot.getTime()) continue;
        const retry = retries.get(key);
        if (retry?.slot === d.slot && retry.notBefore > now().getTime()) continue;
        try {
          const outcome = await opts.run(d, abortRuns.signal);
          taken.set(key, slot);
          retries.delete(key);
          results.push({ due: d, outcome });
        } catch (e) {
          const failures = (retry?.slot === d.slot ? retry.failures : 0) + 1;
          const error = e instanceof Error ? e.message : String(e);
          if (failures > cfg.retryLimit) {
            // Given up for this slot; the next slot runs as usual.
            taken.set(key, slot);
            retries.delete(key);
          } else {
            const delay = cfg.retryDelaySeconds * 1000 * 2 ** (failures - 1);
            retries.set(key, { slot: d.slot, failures, notBefore: now().getTime() + delay * (1 + Math.random()) });
          }
          log.warn({ ...errorForLog(e), tenant: d.tenant, source: d.source, failures }, failures > cfg.retryLimit ? 'scheduled sync failed: no retries left for this slot' : 'scheduled sync failed: retried after its backoff');
          results.push({ due: d, outcome: { outcome: 'failed', error } });
        }
      }
      return results;
    });
    chain = run.catch(() => undefined);
    return run;
  };

  const loop = (async () => {
    if (opts.ticking === false) return;
    while (!stopping.signal.aborted) {
      await tick().catch((e: unknown) => log.error(errorForLog(e), 'scheduler tick failed (tried again at the next)'));
      await sleep(cfg.tickSeconds * 1000, undefined, { signal: stopping.signal }).catch(() => undefined);
    }
  })();

  return {
    tick,
    async stop() {
      stopping.abort();
      const grace = setTimeout(() => abortRuns.abort(), cfg.shutdownGraceSeconds * 1000);
      try {
        await loop;
        await chain;
      } finally {
        clearTimeout(grace);
      }
    },
  };
}
