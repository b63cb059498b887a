/**
 * `rostergate worker`'s engine: a scheduler tick (every `worker.tickSeconds`, any number of
 * processes may run it: the queue takes each slot once) and `concurrency` loops that take a job,
 * run it through `Tenants` and report it done, failed (to be retried with backoff) or skipped.
 *
 * Shutting down (`stop`): no more ticks or jobs are taken; a running sync has
 * `worker.shutdownGraceSeconds` to finish, then it is aborted between pages (its pages so far are
 * committed; the next run resumes) and its job handed back to the queue for another worker.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { errorForLog, type Logger } from '../log.ts';
import type { Tenants } from '../tenants/tenants.ts';
import type { WorkerConfig } from './config.ts';
import { dueSyncs } from './due.ts';
import type { SyncQueue } from './queue.ts';
import type { RunSyncJob } from './sync-job.ts';

export interface RunningWorker {
  /** One scheduler tick now: enqueues what is due at `now()`; returns how many were enqueued. */
  tick(): Promise<number>;
  /** Stops taking work and waits for running jobs (up to the grace period, then aborts and hands them back). */
  stop(): Promise<void>;
}

export function startWorker(opts: {
  queue: SyncQueue;
  tenants: Tenants;
  run: RunSyncJob;
  cfg: WorkerConfig;
  log: Logger;
  concurrency?: number;
  /** The scheduler's clock (tests pass a fake one). */
  now?: () => Date;
  /** false: no periodic tick (tests call tick()). */
  ticking?: boolean;
}): RunningWorker {
  const { queue, cfg, log } = opts;
  const now = opts.now ?? (() => new Date());
  const stopping = new AbortController();
  const abortRuns = new AbortController();

  const tick = async () => {
    const enqueued = await queue.enqueueDue(await dueSyncs(opts.tenants, now()));
    if (enqueued.length) log.info({ enqueued: enqueued.length }, 'scheduled syncs enqueued');
    return enqueued.length;
  };

  async function ticker() {
    while (!stopping.signal.aborted) {
      await tick().catch((e: unknown) => log.error(errorForLog(e), 'scheduler tick failed (tried again at the next)'));
      await sleep(cfg.tickSeconds * 1000, undefined, { signal: stopping.signal }).catch(() => undefined);
    }
  }

  async function taker(n: number) {
    while (!stopping.signal.aborted) {
      let job;
      try {
        job = await queue.take();
      } catch (e) {
        log.error(errorForLog(e), 'could not take a job (trying again)');
      }
      if (!job) {
        await sleep(cfg.pollSeconds * 1000, undefined, { signal: stopping.signal }).catch(() => undefined);
        continue;
      }
      const renewal = queue.renew(job.id);
      try {
        const outcome = await opts.run(job.data, abortRuns.signal);
        await renewal.stop();
        await queue.complete(job.id, outcome);
      } catch (e) {
        await renewal.stop();
        const handedBack = abortRuns.signal.aborted;
        log.warn({ ...errorForLog(e), taker: n, tenant: job.data.tenant, source: job.data.source }, handedBack ? 'scheduled sync stopped by shutdown: job handed back' : 'scheduled sync failed: retried after its backoff');
        await queue.fail(job.id, e instanceof Error ? e.message : String(e)).catch((f: unknown) => log.error(errorForLog(f), 'could not report the failed job (it is retried once its timeout passes)'));
      }
    }
  }

  const loops = [
    ...(opts.ticking === false ? [] : [ticker()]),
    ...Array.from({ length: opts.concurrency ?? cfg.concurrency }, (_, i) => taker(i)),
  ];

  return {
    tick,
    async stop() {
      stopping.abort();
      const done = Promise.all(loops);
      const grace = setTimeout(() => abortRuns.abort(), cfg.shutdownGraceSeconds * 1000);
      try {
        await done;
      } finally {
        clearTimeout(grace);
      }
    },
  };
}
