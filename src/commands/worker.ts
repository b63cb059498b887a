/**
 * `rostergate worker`: takes scheduled syncs from the job queue in the store's PostgreSQL database
 * and runs them (src/jobs/worker.ts), until SIGTERM or SIGINT. Any number of workers, on any
 * number of machines, share the work. Exit codes (src/exit-codes.ts): 0 after a graceful shutdown;
 * 2 a config it cannot run with (a SQLite store: `serve` runs the schedule there); 1 anything
 * else (the database unreachable at start). A failing sync does not end the worker: its job is retried.
 */
import { RostergateError } from '../errors.ts';
import { log } from '../log.ts';
import { lowerCpuPriority } from '../kernel/cpu-priority.ts';
import { isPostgresUrl, openStore } from '../store/open.ts';
import { SyncQueue } from '../jobs/queue.ts';
import { syncJobRunner } from '../jobs/sync-job.ts';
import { startWorker } from '../jobs/worker.ts';
import { onQueueDepth } from '../kernel/metrics.ts';
import { startMetricsServer } from '../server/metrics-endpoint.ts';
import { loadConfig } from '../config/config.ts';
import { onShutdown, servedTenants } from './serve.ts';

export async function workerCommand(opts: { config?: string; concurrency?: number }): Promise<void> {
  const cfg = loadConfig(opts.config, 'worker');
  if (!isPostgresUrl(cfg.store)) {
    throw new RostergateError('CONFIG_INVALID', `${cfg.file}: worker needs a PostgreSQL store (store: postgres://…), which holds the job queue; with a SQLite store, \`rostergate serve\` runs the schedule itself (docs/scheduling.md)`);
  }
  log.debug({ nice: lowerCpuPriority(cfg.sync.nice, (m) => log.warn(m)) }, 'CPU priority of this sync process (sync.nice)');
  const store = await openStore(cfg);
  // Every tenant of the deployment: the config's own and the catalog's, seen as they are added,
  // paused and removed (`rostergate tenants …`) without a restart.
  const tenants = servedTenants(cfg, store);
  const queue = await SyncQueue.open(cfg.store, cfg.worker, log);
  // The queue's depth on every scrape; /metrics on its own listener when server.metrics.port is set
  // (a worker has no API port to share).
  const stopDepth = onQueueDepth(async () => ({ sync: (await queue.depth()).waiting }));
  const m = cfg.server.metrics;
  const metrics = m?.port !== undefined ? await startMetricsServer({ port: m.port, host: m.host, token: m.token }, log) : undefined;
  const worker = startWorker({ queue, tenants, run: syncJobRunner({ cfg, tenants, log }), cfg: cfg.worker, log, concurrency: opts.concurrency });
  const infos = await tenants.list();
  const scheduled = infos.reduce((n, t) => n + t.sources.filter((s) => s.schedule).length, 0);
  if (!scheduled) log.warn('no source of any tenant has a schedule: this worker only runs jobs other processes enqueue');
  process.stdout.write(`rostergate worker: ${opts.concurrency ?? cfg.worker.concurrency} at a time, ${scheduled} scheduled source(s) in ${infos.length} tenant(s)\n`);
  if (metrics) process.stdout.write(`  metrics: ${metrics.url}/metrics\n`);
  onShutdown(async () => {
    await worker.stop();
    stopDepth();
    await metrics?.close();
    await queue.close();
    await tenants.close();
    await store.close();
  });
}
