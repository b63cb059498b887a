/**
 * Scheduled sync on PostgreSQL (src/jobs/): two workers, each with its own queue connection pool
 * and its own connections to every tenant's store, over three tenants of two sources each, sync
 * every due (tenant, source) exactly once per slot however often both tick; a failing source is
 * retried after its backoff; a worker process killed with SIGKILL mid-sync has its job completed
 * by another worker; SIGTERM hands a running job back. Clocks are fake where the schedule is
 * concerned; the queue's own timeouts are set short instead of waited out.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import pg from 'pg';
import { stringify } from 'yaml';
import { RosterDataset } from '../../src/demo/dataset.ts';
import { startSandboxServer, type RunningSandbox } from '../../connectors/sandbox-kit.ts';
import { cleverSandbox, sandboxSourceConfig as cleverSource } from '../../connectors/clever/index.ts';
import { oneRosterSandbox, sandboxSourceConfig as orSource, V11 } from '../../connectors/oneroster/index.ts';
import { parseConfig, type Config } from '../../src/config/config.ts';
import { PostgresStore } from '../../src/store/postgres.ts';
import type { Store } from '../../src/store/types.ts';
import { FixedTenants } from '../../src/tenants/fixed-tenants.ts';
import type { Tenant } from '../../src/tenants/tenants.ts';
import { homeTenants } from '../../src/tenants/home-tenant.ts';
import { SyncQueue, QUEUE_SCHEMA, SYNC_QUEUE } from '../../src/jobs/queue.ts';
import { syncJobRunner } from '../../src/jobs/sync-job.ts';
import { startWorker, type RunningWorker } from '../../src/jobs/worker.ts';
import { createLogger } from '../../src/log.ts';
import { onQueueDepth, registry } from '../../src/kernel/metrics.ts';
import { newPostgresDatabase, storeKinds, tempDir } from '../support/stores.ts';
import { startCli } from '../support/cli-process.ts';

const log = createLogger({ level: 'silent' });
const CLEVER_USERS = '/clever/v3.1/users';

async function until(what: string, cond: () => Promise<boolean> | boolean, ms = 60_000): Promise<void> {
  const end = Date.now() + ms;
  while (!(await cond())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

interface JobRow { id: string; state: string; retry_count: number; singleton_key: string; data: { tenant: string; source: string; slot: string }; output: Record<string, unknown> | null; started_on: Date; start_after: Date }

/** The queue's jobs, read straight from pg-boss's table. */
async function jobs(db: pg.Pool): Promise<JobRow[]> {
  return (await db.query<JobRow>(`SELECT id, state::text, retry_count, singleton_key, data, output, started_on, start_after FROM ${QUEUE_SCHEMA}.job WHERE name = $1 ORDER BY created_on`, [SYNC_QUEUE])).rows;
}
const unfinished = async (db: pg.Pool) => (await jobs(db)).filter((j) => ['created', 'retry', 'active'].includes(j.state)).length;

describe.skipIf(!storeKinds().includes('postgres'))('scheduled sync on PostgreSQL workers', () => {
  let ds: RosterDataset;
  let sandbox: RunningSandbox;
  const cleanup: (() => Promise<void>)[] = [];
  beforeAll(async () => {
    ds = RosterDataset.generate({ students: 30, teachers: 3, classes: 4, schools: 1 });
    sandbox = await startSandboxServer({ dataset: ds, apps: [cleverSandbox(), oneRosterSandbox()] });
  });
  afterAll(async () => {
    for (const c of cleanup.reverse()) await c().catch(() => undefined);
    await sandbox?.close();
  });

  async function database() {
    const db = await newPostgresDatabase();
    cleanup.push(db.drop);
    return db.url;
  }
  function pool(url: string) {
    const p = new pg.Pool({ connectionString: url, max: 2 });
    cleanup.push(() => p.end());
    return p;
  }

  const workerCfg = { tickSeconds: 3600, pollSeconds: 0.5, jobTimeoutSeconds: 3, maintenanceSeconds: 1, retryLimit: 3, retryDelaySeconds: 1, shutdownGraceSeconds: 1 };
  function config(sources: unknown[], store = ':memory:'): Config {
    // openAccess without purposes: no master key needed, every field stored.
    return parseConfig({ store, server: { openAccess: true }, sources, worker: workerCfg });
  }

  /** A worker as its own process would be: its own queue pool, its own store connections per tenant. */
  async function worker(queueUrl: string, cfg: Config, tenantStores: Map<string, { url: string; sources: Config['sources'] }>, clock: () => Date, opts: { concurrency?: number } = {}) {
    const stores: Store[] = [];
    const list: Tenant[] = [];
    for (const [id, t] of tenantStores) {
      const store = await PostgresStore.open(t.url);
      stores.push(store);
      list.push({ id, name: id, status: 'active', sources: t.sources, createdAt: '', updatedAt: '', store, keyring: undefined as never });
    }
    const tenants = new FixedTenants(list[0]!.id, list);
    const queue = await SyncQueue.open(queueUrl, cfg.worker, log);
    const w = startWorker({ queue, tenants, run: syncJobRunner({ cfg, tenants, log }), cfg: cfg.worker, log, now: clock, ticking: false, concurrency: opts.concurrency ?? 2 });
    let stopped = false;
    const stop = async () => {
      if (stopped) return;
      stopped = true;
      await w.stop();
      await queue.close();
      for (const s of stores) await s.close();
    };
    cleanup.push(stop);
    return { w, stop, stores: new Map(list.map((t) => [t.id, t.store])) };
  }

  it('processes opening the queue together on a fresh database all start (its tables are created once, under a lock)', async () => {
    const url = await database();
    const queues = await Promise.all([1, 2, 3, 4].map(() => SyncQueue.open(url, config([]).worker, log)));
    for (const q of queues) cleanup.push(() => q.close());
    await queues[0]!.enqueueDue([{ tenant: 'north', source: 'sis', slot: '2026-01-05T08:00:00.000Z' }]);
    expect(await queues[3]!.depth()).toEqual({ waiting: 1, running: 0 });
  });

  it('reports the jobs waiting as the queue-depth metric, read at each scrape', async () => {
    const url = await database();
    const queue = await SyncQueue.open(url, config([]).worker, log);
    cleanup.push(() => queue.close());
    const stop = onQueueDepth(async () => ({ sync: (await queue.depth()).waiting }));
    cleanup.push(async () => stop());
    const depthOf = async () => Number(/rostergate_job_queue_depth\{queue="sync"\} (\d+)/.exec(await registry.metrics())?.[1]);
    expect(await depthOf()).toBe(0);
    const slot = '2026-01-05T08:00:00.000Z';
    await queue.enqueueDue([{ tenant: 'north', source: 'sis', slot }, { tenant: 'south', source: 'sis', slot }]);
    expect(await depthOf()).toBe(2);
    const taken = await queue.take();
    expect(await queue.depth()).toEqual({ waiting: 1, running: 1 });
    await queue.complete(taken!.id, { outcome: 'busy' });
    expect(await depthOf()).toBe(1);
  });

  it('two workers ticking over three tenants sync every due source exactly once per slot', async () => {
    const queueUrl = await database();
    const db = pool(queueUrl);
    const sources = config([
      { id: 'sis-clever', ...cleverSource(sandbox.urlOf('/clever')), schedule: { every: '15m' } },
      { id: 'sis-or', ...orSource(sandbox.urlOf('/oneroster'), '1.1'), schedule: { cron: '0 * * * *', timezone: 'America/Chicago' } },
    ]).sources;
    const tenantStores = new Map<string, { url: string; sources: Config['sources'] }>();
    for (const id of ['north', 'south', 'east']) tenantStores.set(id, { url: await database(), sources });
    let now = new Date('2026-01-05T10:07:00Z');
    const clock = () => now;
    const cfg = config([]);
    const a = await worker(queueUrl, cfg, tenantStores, clock);
    const b = await worker(queueUrl, cfg, tenantStores, clock);

    // Both tick, again and again, at once: each slot is enqueued once.
    const enqueued = (await Promise.all([a.w.tick(), b.w.tick(), a.w.tick(), b.w.tick(), a.w.tick(), b.w.tick()])).reduce((x, y) => x + y, 0);
    expect(enqueued).toBe(6);
    await until('every job done', async () => (await jobs(db)).length === 6 && (await unfinished(db)) === 0);
    expect(await a.w.tick() + await b.w.tick()).toBe(0);
    const first = await jobs(db);
    expect(first.map((j) => j.state)).toEqual(Array(6).fill('completed'));
    expect(first.map((j) => j.output?.outcome)).toEqual(Array(6).fill('synced'));
    expect(new Set(first.map((j) => j.singleton_key)).size).toBe(6);
    for (const id of tenantStores.keys()) {
      const store = a.stores.get(id)!;
      for (const source of ['sis-clever', 'sis-or']) {
        const state = (await store.getSyncState(source))!;
        expect({ tenant: id, source, run: state.runId, status: state.runStatus }).toEqual({ tenant: id, source, run: 1, status: 'complete' });
      }
      expect((await store.counts()).person).toBeGreaterThanOrEqual(ds.list('person').length);
    }

    // 15 minutes on: the interval's next slot (10:15) is due, the hourly cron's is not.
    now = new Date('2026-01-05T10:22:00Z');
    expect((await Promise.all([a.w.tick(), b.w.tick(), a.w.tick(), b.w.tick()])).reduce((x, y) => x + y, 0)).toBe(3);
    await until('the second slot done', async () => (await jobs(db)).length === 9 && (await unfinished(db)) === 0);
    for (const id of tenantStores.keys()) {
      expect((await a.stores.get(id)!.getSyncState('sis-clever'))!.runId).toBe(2);
      expect((await a.stores.get(id)!.getSyncState('sis-or'))!.runId).toBe(1);
    }
    const second = (await jobs(db)).slice(6);
    expect(second.map((j) => [j.data.source, j.data.slot])).toEqual(Array(3).fill(['sis-clever', '2026-01-05T10:15:00.000Z']));

    await a.stop();
    await b.stop();
  }, 120_000);

  it('a failing source is retried after its backoff and then synced', async () => {
    const queueUrl = await database();
    const db = pool(queueUrl);
    const tenantStores = new Map([['west', { url: await database(), sources: config([{ id: 'sis', ...cleverSource(sandbox.urlOf('/clever')), http: { maxRetries: 0 }, schedule: { every: '1h' } }]).sources }]]);
    const w = await worker(queueUrl, config([]), tenantStores, () => new Date('2026-01-05T10:07:00Z'), { concurrency: 1 });
    sandbox.faults.inject({ kind: 'status', status: 503 }, { match: new RegExp(`^${CLEVER_USERS}$`), times: 1 });
    // The retry's users page is slow: the job stays unfinished well past the next tick below.
    sandbox.faults.inject({ kind: 'hang', ms: 4_000 }, { match: new RegExp(`^${CLEVER_USERS}$`), times: 1 });
    const later = await worker(queueUrl, config([]), tenantStores, () => new Date('2026-01-05T11:07:00Z'), { concurrency: 1 });
    expect(await w.w.tick()).toBe(1);
    await until('the first attempt failed', async () => (await jobs(db))[0]?.state === 'retry');
    const failed = (await jobs(db))[0]!;
    // Backoff: the retry waits at least the first delay after the failed attempt began.
    expect(failed.start_after.getTime() - failed.started_on.getTime()).toBeGreaterThanOrEqual(workerCfg.retryDelaySeconds * 1000);
    // Another worker, an hour on: the next slot is due, but the source still has a job, so it waits for it.
    expect(await later.w.tick()).toBe(0);
    await until('the retry done', async () => (await jobs(db))[0]?.state === 'completed');
    expect(await later.w.tick()).toBe(1);
    await until('the next slot done', async () => (await jobs(db))[1]?.state === 'completed');
    expect((await jobs(db))[1]!.data.slot).toBe('2026-01-05T11:00:00.000Z');
    await later.stop();
    const done = (await jobs(db))[0]!;
    expect(done.retry_count).toBe(1);
    expect(done.output?.outcome).toBe('synced');
    const state = (await w.stores.get('west')!.getSyncState('sis'))!;
    expect(state.runStatus).toBe('complete');
    // The slot of the retried job is not enqueued again.
    expect(await w.w.tick()).toBe(0);
    expect((await jobs(db)).length).toBe(2);
    await w.stop();
  }, 120_000);

  it('a live worker keeps its job through a sync longer than the job timeout: no other worker takes it', async () => {
    const queueUrl = await database();
    const db = pool(queueUrl);
    const tenantStores = new Map([['west', { url: await database(), sources: config([{ id: 'sis', ...cleverSource(sandbox.urlOf('/clever')), pageSize: 10, schedule: { every: '1h' } }]).sources }]]);
    const clock = () => new Date('2026-01-05T10:07:00Z');
    const a = await worker(queueUrl, config([]), tenantStores, clock, { concurrency: 1 });
    const b = await worker(queueUrl, config([]), tenantStores, clock, { concurrency: 1 });
    // A page that takes more than twice the job timeout (3 s), while both workers poll and maintenance runs every second.
    sandbox.faults.inject({ kind: 'hang', ms: 7_000 }, { match: new RegExp(`^${CLEVER_USERS}$`), after: 1 });
    expect(await a.w.tick()).toBe(1);
    const hits = () => sandbox.faults.hits.filter((h) => h === CLEVER_USERS).length;
    const before = hits();
    await until('the job done', async () => (await jobs(db))[0]?.state === 'completed');
    expect(hits() - before).toBeGreaterThanOrEqual(2);
    const [job] = await jobs(db);
    // Renewed, never expired: one attempt, and it synced (a takeover would have retried it and found the source busy).
    expect({ retries: job!.retry_count, outcome: job!.output?.outcome }).toEqual({ retries: 0, outcome: 'synced' });
    expect((await a.stores.get('west')!.getSyncState('sis'))!.runId).toBe(1);
    await a.stop();
    await b.stop();
  }, 120_000);

  it('a worker process killed with SIGKILL mid-sync has its job completed by another worker', async () => {
    const storeUrl = await database();
    const db = pool(storeUrl);
    const file = join(tempDir(), 'rostergate.yaml');
    const cfgRaw = { store: storeUrl, server: { openAccess: true }, sources: [{ id: 'sis', ...cleverSource(sandbox.urlOf('/clever')), pageSize: 10, schedule: { every: '1h' } }], worker: { ...workerCfg, tickSeconds: 1 } };
    writeFileSync(file, stringify(cfgRaw));
    const hits = () => sandbox.faults.hits.filter((h) => h === CLEVER_USERS).length;
    const before = hits();
    // The third page of users hangs: two are committed when the worker is killed.
    sandbox.faults.inject({ kind: 'hang', ms: 120_000 }, { match: new RegExp(`^${CLEVER_USERS}$`), after: 2 });
    const killed = startCli(['worker', '--config', file]);
    await until('the third users request', () => hits() >= before + 3);
    killed.child.kill('SIGKILL');
    expect((await killed.done).signal).toBe('SIGKILL');
    sandbox.faults.clear();
    const [job] = await jobs(db);
    expect(job!.state).toBe('active');

    // Another worker (no ticking of its own: only the killed worker's job is in the queue).
    const cfg = parseConfig(cfgRaw);
    const store = await PostgresStore.open(storeUrl);
    cleanup.push(() => store.close());
    const tenants = homeTenants(cfg, store);
    const queue = await SyncQueue.open(storeUrl, cfg.worker, log);
    const other = startWorker({ queue, tenants, run: syncJobRunner({ cfg, tenants, log }), cfg: cfg.worker, log, ticking: false });
    cleanup.push(async () => (await other.stop(), await queue.close()));
    await until('the killed worker\'s job completed', async () => (await jobs(db))[0]?.state === 'completed');
    const done = (await jobs(db))[0]!;
    expect(done.id).toBe(job!.id);
    expect(done.retry_count).toBe(1);
    expect(done.output?.outcome).toBe('synced');
    expect((await jobs(db)).length).toBe(1);
    const state = (await store.getSyncState('sis'))!;
    expect(state.runStatus).toBe('complete');
    expect((await store.counts()).person).toBeGreaterThanOrEqual(ds.list('person').length);
    await other.stop();
  }, 120_000);

  it('SIGTERM stops a worker gracefully, handing its running job back to the queue', async () => {
    const storeUrl = await database();
    const db = pool(storeUrl);
    const file = join(tempDir(), 'rostergate.yaml');
    // A request in flight is not cut by the shutdown (the run stops between pages): the hung one ends at its 3 s idle timeout.
    writeFileSync(file, stringify({ store: storeUrl, server: { openAccess: true }, sources: [{ id: 'sis', ...cleverSource(sandbox.urlOf('/clever')), pageSize: 10, http: { timeoutMs: 3000 }, schedule: { every: '1h' } }], worker: { ...workerCfg, tickSeconds: 1, retryDelaySeconds: 3600 } }));
    const hits = () => sandbox.faults.hits.filter((h) => h === CLEVER_USERS).length;
    const before = hits();
    sandbox.faults.inject({ kind: 'hang', ms: 120_000 }, { match: new RegExp(`^${CLEVER_USERS}$`), after: 1 });
    const w = startCli(['worker', '--config', file]);
    await until('the second users request', () => hits() >= before + 2);
    w.child.kill('SIGTERM');
    const exit = await w.done;
    sandbox.faults.clear();
    expect({ code: exit.code, stderr: exit.stderr }).toEqual({ code: 0, stderr: '' });
    // Handed back: waiting for a retry (not left active until its timeout).
    const [job] = await jobs(db);
    expect(job!.state).toBe('retry');
  }, 120_000);
});
