/**
 * The process's Prometheus metrics (prom-client), in one registry that every layer records into:
 * the gateway counts requests, connectors/http.ts upstream requests, the sync runner runs and
 * records, the stores their transactions, the webhook dispatcher its deliveries, and the job queue
 * (src/jobs/) reports its depth through `setQueueDepth` or `onQueueDepth`. Kernel-level so that
 * each of them may import it; served by src/server/metrics-endpoint.ts.
 *
 * Labels are chosen so their values stay few and carry no personal data: configured names
 * (source ids, purposes, client ids), outcomes, error codes and HTTP statuses — never a record's
 * id, a query's text or anything a caller can choose freely. `label` below enforces that for
 * values that come from outside (error codes), folding anything unexpected into "other".
 *
 * `tenant`: the tenant a request resolved to, or whose sync or webhooks ran (`tenantLabel`). Only
 * ids of tenants the deployment has: a request refused before it resolved (an unknown or forbidden
 * tenant header, bad credentials) counts under "none", so a caller cannot mint series by sending
 * names. Hundreds of tenants are fine for Prometheus on counters; the latency histograms have no
 * tenant label, since their buckets would multiply by it.
 */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import { currentRequest } from './request-context.ts';
import { currentTenant } from './tenant-scope.ts';

export const registry = new Registry();

const PREFIX = 'rostergate_';

/** A label value that came from outside this process's configuration: short codes pass, the rest is "other". */
export function label(value: string | number | undefined): string {
  if (value === undefined) return 'none';
  const s = String(value);
  return /^[A-Za-z0-9_.-]{1,48}$/.test(s) ? s : 'other';
}

/**
 * The tenant label of what is recorded now: the request's resolved tenant, else the tenant whose
 * background work this is (./tenant-scope.ts), else "none". Not passed through `label`: both come
 * from the deployment's own tenant ids (which may be longer than `label` lets through).
 */
export function tenantLabel(): string {
  return currentRequest()?.tenant ?? currentTenant() ?? 'none';
}

export const requests = new Counter({
  name: `${PREFIX}requests_total`,
  help: 'Requests answered, by surface (graphql, extract), purpose, client, tenant and outcome (ok, error, refused, rejected)',
  labelNames: ['surface', 'purpose', 'client', 'tenant', 'outcome'] as const,
  registers: [registry],
});

export const requestDuration = new Histogram({
  name: `${PREFIX}request_duration_seconds`,
  help: 'Time from a request\'s arrival to the end of its answer, by surface and outcome',
  labelNames: ['surface', 'outcome'] as const,
  // From a cached lookup (a few ms) to a large extract (tens of seconds).
  buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60],
  registers: [registry],
});

export const requestErrors = new Counter({
  name: `${PREFIX}request_errors_total`,
  help: 'Errors in answers, by surface, tenant and code (GraphQL extensions.code, a refusal\'s code, or HTTP_<status>)',
  labelNames: ['surface', 'tenant', 'code'] as const,
  registers: [registry],
});

export const syncRuns = new Counter({
  name: `${PREFIX}sync_runs_total`,
  help: 'Sync runs ended, by tenant, source and status (complete, guarded, failed)',
  labelNames: ['tenant', 'source', 'status'] as const,
  registers: [registry],
});

export const syncRecords = new Counter({
  name: `${PREFIX}sync_records_total`,
  help: 'Records read from a source and stored, by tenant and source',
  labelNames: ['tenant', 'source'] as const,
  registers: [registry],
});

/** Where sync runs' time went (src/sync/phase-clock.ts): a slow vendor, a busy store or a busy gateway. */
export const syncPhaseSeconds = new Counter({
  name: `${PREFIX}sync_phase_seconds_total`,
  help: 'Time sync runs spent per phase (source, check, lock, load, plan, write, rest), by tenant, source and phase',
  labelNames: ['tenant', 'source', 'phase'] as const,
  registers: [registry],
});

export const syncDuration = new Histogram({
  name: `${PREFIX}sync_run_duration_seconds`,
  help: 'Length of sync runs, by source and status',
  labelNames: ['source', 'status'] as const,
  buckets: [1, 5, 15, 60, 300, 900, 3600, 4 * 3600],
  registers: [registry],
});

export const upstreamRequests = new Counter({
  name: `${PREFIX}upstream_requests_total`,
  help: 'Requests to vendor APIs (each attempt), by tenant, source and status (an HTTP status, or timeout, deadline, too_large, network)',
  labelNames: ['tenant', 'source', 'status'] as const,
  registers: [registry],
});

export const upstreamRateLimited = new Counter({
  name: `${PREFIX}upstream_rate_limited_total`,
  help: 'Vendor answers that were a rate limit (429, or a vendor\'s own rate-limit answer), by tenant and source',
  labelNames: ['tenant', 'source'] as const,
  registers: [registry],
});

export const webhookDeliveries = new Counter({
  name: `${PREFIX}webhook_deliveries_total`,
  help: 'Webhook delivery attempts, by tenant and outcome (delivered, retry, failed)',
  labelNames: ['tenant', 'outcome'] as const,
  registers: [registry],
});

export const storeTransactionDuration = new Histogram({
  name: `${PREFIX}store_transaction_seconds`,
  help: 'Time of write transactions (begin to commit or rollback), by store kind and outcome',
  labelNames: ['store', 'outcome'] as const,
  buckets: [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
  registers: [registry],
});

const queueDepths = new Map<string, number>();
let queueDepthReader: (() => Promise<Record<string, number>> | Record<string, number>) | undefined;

/**
 * Jobs waiting in the job queue, by queue. Set by the worker (`setQueueDepth`) or read on each
 * scrape (`onQueueDepth`), whichever the queue finds easier; a scrape that cannot read it keeps the
 * last known values.
 */
export const queueDepth = new Gauge({
  name: `${PREFIX}job_queue_depth`,
  help: 'Jobs waiting in the job queue, by queue',
  labelNames: ['queue'] as const,
  registers: [registry],
  async collect() {
    if (queueDepthReader) {
      try {
        for (const [queue, n] of Object.entries(await queueDepthReader())) queueDepths.set(queue, n);
      } catch {
        // The queue's database is away: keep the last values rather than fail the whole scrape.
      }
    }
    for (const [queue, n] of queueDepths) this.set({ queue: label(queue) }, n);
  },
});

export function setQueueDepth(depth: number, queue = 'sync'): void {
  queueDepths.set(queue, depth);
}

/** Reads the queue's depth at each scrape; returns a function that stops it. */
export function onQueueDepth(read: () => Promise<Record<string, number>> | Record<string, number>): () => void {
  queueDepthReader = read;
  return () => {
    if (queueDepthReader === read) queueDepthReader = undefined;
  };
}

let defaultsOn = false;

/** Node's own metrics (heap, event-loop lag, GC, handles) too: once, when metrics are served. */
export function collectProcessMetrics(): void {
  if (defaultsOn) return;
  defaultsOn = true;
  collectDefaultMetrics({ register: registry, prefix: PREFIX });
}

/** Seconds since `started` (process.hrtime.bigint()). */
export function secondsSince(started: bigint): number {
  return Number(process.hrtime.bigint() - started) / 1e9;
}
