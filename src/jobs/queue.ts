/**
 * The job queue of scheduled syncs on PostgreSQL: pg-boss 10, in schema `rostergate_queue` of the
 * home store's database. Jobs are (tenant, source, slot); workers on any number of machines take
 * them.
 *
 * Why pg-boss (10.x, the last line that runs on Node 20; PostgreSQL 13+) rather than
 * graphile-worker: graphile-worker (0.16, the last Node 20 line) frees the job of a crashed worker
 * only after its lock is 4 hours old, a constant; pg-boss expires an active job after its own
 * `expire_in`, which this module renews while the worker lives (below), so a SIGKILLed worker's job
 * goes back to the queue within `worker.jobTimeoutSeconds` plus one maintenance period — minutes,
 * not hours. pg-boss also gives per-job retry limits with exponential backoff and jitter, taking
 * jobs with FOR UPDATE SKIP LOCKED, a `db` option to insert a job inside our own transaction, and
 * maintenance run by one process at a time. Its cron (`schedule()`) is one schedule per queue
 * and not used: schedules are per source and per tenant, and change with the catalog.
 *
 * One sync per source per slot, however many processes tick: a tick claims a slot in
 * `rostergate_queue.slot_claims` (one row per tenant and source: the last slot taken) and inserts
 * the job in the same transaction, so of two ticks racing for a slot one commits both and the
 * other sees the slot taken; a job is never enqueued without its claim or the claim kept without
 * its job. The claim row is kept, not expired like pg-boss's completed jobs, so a slot is never
 * taken twice even long after its job is gone (a monthly cron, a day-long outage).
 *
 * One worker per source at a time: a slot is not claimed while the source still has a job waiting
 * or running (it is claimed by the first tick after that job ends), so a source has at most one
 * job in the queue. pg-boss's own singleton policies were not used: in 10.x a worker fetching a
 * waiting job whose key is active fails its whole fetch, which would stall every other source
 * behind it. The sync lease in the tenant's store (src/store/lease.ts) stays the backstop against
 * any other run (a manual `rostergate sync`, a job presumed lost whose worker still runs).
 */
import pg from 'pg';
import PgBoss from 'pg-boss';
import { errorForLog, type Logger } from '../log.ts';
import type { WorkerConfig } from './config.ts';
import { sourceKey, type DueSync } from './due.ts';
import type { JobOutcome, SyncJob } from './sync-job.ts';

export const QUEUE_SCHEMA = 'rostergate_queue';
export const SYNC_QUEUE = 'sync';

export interface TakenJob {
  id: string;
  data: SyncJob;
}

export class SyncQueue {
  private constructor(
    private readonly boss: PgBoss,
    private readonly pool: pg.Pool,
    private readonly cfg: WorkerConfig,
    private readonly log: Logger,
  ) {}

  /** Connects, and creates or migrates the queue's schema (any number of processes may at once). */
  static async open(url: string, cfg: WorkerConfig, log: Logger, opts: { poolSize?: number } = {}): Promise<SyncQueue> {
    const boss = new PgBoss({
      connectionString: url,
      schema: QUEUE_SCHEMA,
      max: opts.poolSize ?? 4,
      application_name: 'rostergate-queue',
      schedule: false,
      supervise: true,
      maintenanceIntervalSeconds: cfg.maintenanceSeconds,
    });
    // pg-boss reports what its own timers run into (maintenance, a lost connection) as events.
    boss.on('error', (e) => log.error(errorForLog(e), 'job queue error'));
    await boss.start();
    if (!(await boss.getQueue(SYNC_QUEUE))) {
      // Two workers starting together may both find no queue: the loser's create fails, and the queue is there.
      await boss.createQueue(SYNC_QUEUE, { name: SYNC_QUEUE, policy: 'standard' }).catch(async (e: unknown) => {
        if (!(await boss.getQueue(SYNC_QUEUE))) throw e;
      });
    }
    const pool = new pg.Pool({ connectionString: url, max: 2, application_name: 'rostergate-scheduler' });
    // Processes starting together would race on CREATE TABLE IF NOT EXISTS (it can still fail on the
    // table's row type, "type slot_claims already exists"): one creates it at a time, under a lock.
    const ddl = await pool.connect();
    try {
      await ddl.query('BEGIN');
      await ddl.query(`SELECT pg_advisory_xact_lock(hashtext('rostergate_queue.slot_claims'))`);
      await ddl.query(
        `CREATE TABLE IF NOT EXISTS ${QUEUE_SCHEMA}.slot_claims (tenant text NOT NULL, source text NOT NULL, slot timestamptz NOT NULL, claimed_at timestamptz NOT NULL DEFAULT now(), PRIMARY KEY (tenant, source))`,
      );
      await ddl.query('COMMIT');
    } catch (e) {
      await ddl.query('ROLLBACK').catch(() => {});
      throw e;
    } finally {
      ddl.release();
    }
    return new SyncQueue(boss, pool, cfg, log);
  }

  /**
   * Enqueues each due sync whose slot is later than its source's last claimed one and whose source
   * has no job waiting or running. Returns the syncs enqueued.
   */
  async enqueueDue(due: DueSync[]): Promise<DueSync[]> {
    const enqueued: DueSync[] = [];
    for (const d of due) if (await this.claim(d)) enqueued.push(d);
    return enqueued;
  }

  /** Per source, the latest slot this process knows to be taken: most ticks then ask the database nothing. */
  private readonly known = new Map<string, string>();

  private async claim(d: DueSync): Promise<boolean> {
    const key = sourceKey(d.tenant, d.source);
    // ISO instants of one format compare as strings.
    if ((this.known.get(key) ?? '') >= d.slot) return false;
    const taken = await this.claimInDatabase(d);
    if (taken !== 'open-job') this.known.set(key, d.slot);
    return taken === 'claimed';
  }

  private async claimInDatabase(d: DueSync): Promise<'claimed' | 'taken' | 'open-job'> {
    const client = await this.pool.connect();
    try {
      await client.query('BEGIN');
      await client.query(`INSERT INTO ${QUEUE_SCHEMA}.slot_claims (tenant, source, slot) VALUES ($1, $2, '-infinity') ON CONFLICT DO NOTHING`, [d.tenant, d.source]);
      // The row lock serialises every tick's claim of this source until commit.
      const { rows } = await client.query<{ taken: boolean }>(`SELECT slot >= $3::timestamptz AS taken FROM ${QUEUE_SCHEMA}.slot_claims WHERE tenant = $1 AND source = $2 FOR UPDATE`, [d.tenant, d.source, d.slot]);
      const open = rows[0]!.taken
        ? []
        : (await client.query(`SELECT 1 FROM ${QUEUE_SCHEMA}.job WHERE name = $1 AND singleton_key = $2 AND state < 'completed' LIMIT 1`, [SYNC_QUEUE, sourceKey(d.tenant, d.source)])).rows;
      if (rows[0]!.taken || open.length) {
        await client.query('ROLLBACK');
        return rows[0]!.taken ? 'taken' : 'open-job';
      }
      await client.query(`UPDATE ${QUEUE_SCHEMA}.slot_claims SET slot = $3, claimed_at = now() WHERE tenant = $1 AND source = $2`, [d.tenant, d.source, d.slot]);
      const data: SyncJob = { tenant: d.tenant, source: d.source, slot: d.slot };
      await this.boss.send(SYNC_QUEUE, data, {
        singletonKey: sourceKey(d.tenant, d.source),
        retryLimit: this.cfg.retryLimit,
        retryDelay: this.cfg.retryDelaySeconds,
        retryBackoff: true,
        expireInSeconds: this.cfg.jobTimeoutSeconds,
        db: { executeSql: async (text, values) => client.query(text, values) },
      });
      await client.query('COMMIT');
      return 'claimed';
    } catch (e) {
      await client.query('ROLLBACK').catch(() => undefined);
      throw e;
    } finally {
      client.release();
    }
  }

  /** The next job ready to run, now active and this caller's; undefined when none is. */
  async take(): Promise<TakenJob | undefined> {
    const [job] = await this.boss.fetch<SyncJob>(SYNC_QUEUE, { batchSize: 1 });
    return job ? { id: job.id, data: job.data } : undefined;
  }

  async complete(id: string, outcome: JobOutcome): Promise<void> {
    await this.boss.complete(SYNC_QUEUE, id, outcome);
  }

  /** Back to the queue, to be retried after its backoff (or failed for good past the retry limit). */
  async fail(id: string, error: string): Promise<void> {
    await this.boss.fail(SYNC_QUEUE, id, { error });
  }

  /**
   * Keeps an active job this worker's while it runs: every third of the job timeout its expiry is
   * moved to a full timeout from now. A worker that dies stops renewing, and pg-boss's maintenance
   * hands the job to another worker once the timeout has passed (`expire_in` is pg-boss's column
   * for exactly that; it counts from the job's start).
   */
  renew(id: string): { stop(): Promise<void> } {
    let beat: Promise<unknown> = Promise.resolve();
    const timer = setInterval(() => {
      beat = this.pool
        .query(`UPDATE ${QUEUE_SCHEMA}.job SET expire_in = (now() - started_on) + make_interval(secs => $3) WHERE name = $1 AND id = $2 AND state = 'active'`, [SYNC_QUEUE, id, this.cfg.jobTimeoutSeconds])
        .catch((e: unknown) => this.log.warn(errorForLog(e), 'could not renew the running job (tried again at the next beat)'));
    }, Math.max(1000, (this.cfg.jobTimeoutSeconds * 1000) / 3));
    timer.unref();
    return {
      async stop() {
        clearInterval(timer);
        await beat;
      },
    };
  }

  /**
   * Jobs waiting to run (created, or back for a retry) and running: the queue-depth metric. One
   * indexed count over pg-boss's table, read at each Prometheus scrape (src/kernel/metrics.ts).
   */
  async depth(): Promise<{ waiting: number; running: number }> {
    const r = await this.pool.query<{ waiting: number; running: number }>(
      `SELECT count(*) FILTER (WHERE state IN ('created', 'retry'))::int AS waiting, count(*) FILTER (WHERE state = 'active')::int AS running FROM ${QUEUE_SCHEMA}.job WHERE name = $1`,
      [SYNC_QUEUE],
    );
    return r.rows[0] ?? { waiting: 0, running: 0 };
  }

  /** Runs pg-boss's maintenance now (expires abandoned jobs); tests call it instead of waiting for the period. */
  async maintain(): Promise<void> {
    await this.boss.maintain();
  }

  async close(): Promise<void> {
    await this.boss.stop({ graceful: false, wait: true });
    await this.pool.end();
  }
}
