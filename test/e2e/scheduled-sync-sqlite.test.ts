/**
 * The schedule inside `serve` on SQLite (src/jobs/in-process.ts), and what every scheduled job
 * skips (src/jobs/sync-job.ts): a due sync runs once per slot, also across a restart (the store's
 * last run says the slot was taken); a failed one is retried after its backoff; a paused tenant,
 * a removed source and an unknown tenant are skipped, not synced and not failed.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { join } from 'node:path';
import { RosterDataset } from '../../src/demo/dataset.ts';
import { startSandboxServer, type RunningSandbox } from '../../connectors/sandbox-kit.ts';
import { cleverSandbox, sandboxSourceConfig as cleverSource } from '../../connectors/clever/index.ts';
import { parseConfig, type Config } from '../../src/config/config.ts';
import { SqliteStore } from '../../src/store/sqlite.ts';
import { FixedTenants } from '../../src/tenants/fixed-tenants.ts';
import { homeTenant, homeTenants } from '../../src/tenants/home-tenant.ts';
import { startInProcessSchedule, type InProcessSchedule } from '../../src/jobs/in-process.ts';
import { syncJobRunner } from '../../src/jobs/sync-job.ts';
import { createLogger } from '../../src/log.ts';
import { tempDir } from '../support/stores.ts';
import { until } from '../support/until.ts';
import { TEST_MASTER_KEY } from '../support/privacy.ts';
import { startCli } from '../support/cli-process.ts';
import { DEMO_CLIENTS, DEMO_PURPOSES } from '../../src/demo/demo-policy.ts';
import { KeyRing } from '../../src/privacy/pseudonym.ts';
import { assertStoreKey } from '../../src/privacy/store-key.ts';
import { writeFileSync } from 'node:fs';
import { stringify } from 'yaml';
import { request } from 'undici';

const log = createLogger({ level: 'silent' });

const CLEVER_USERS = '/clever/v3.1/users';

describe('the in-process schedule on SQLite', () => {
  let ds: RosterDataset;
  let sandbox: RunningSandbox;
  beforeAll(async () => {
    ds = RosterDataset.generate({ students: 20, teachers: 2, classes: 3, schools: 1 });
    sandbox = await startSandboxServer({ dataset: ds, apps: [cleverSandbox()] });
  });
  afterAll(() => sandbox?.close());

  function config(extra: Record<string, unknown> = {}): Config {
    return parseConfig({
      store: join(tempDir(), 'rg.db'),
      server: { openAccess: true },
      sources: [{ id: 'sis', ...cleverSource(sandbox.urlOf('/clever')), http: { maxRetries: 0 }, schedule: { every: '15m' } }],
      worker: { retryDelaySeconds: 60, retryLimit: 2 },
      ...extra,
    });
  }

  /**
   * A test over a new store of the home tenant alone (`config()`), closed after it. `schedule()`
   * makes an in-process schedule that ticks only when told, on a clock `advance` moves on by hand
   * from real time (the store records when a run started).
   */
  async function withHomeSchedule(test: (h: { cfg: Config; store: SqliteStore; schedule(): InProcessSchedule; advance(ms: number): void }) => Promise<void>): Promise<void> {
    const cfg = config();
    const store = SqliteStore.open(cfg.store);
    // Within a few minutes of the next 15-minute slot the clock starts five minutes back, so the
    // tests' moves of up to 2.5 minutes stay in the slot they began in (else a new slot falls due,
    // and "not yet" finds a run). Runs still start after the slot they serve, as the schedule expects.
    const slot = 15 * 60_000;
    const start = Date.now() % slot > slot - 4 * 60_000 ? -5 * 60_000 : 0;
    let offset = start;
    const tenants = homeTenants(cfg, store);
    const schedule = () => startInProcessSchedule({ tenants, run: syncJobRunner({ cfg, tenants, log }), cfg: cfg.worker, log, now: () => new Date(Date.now() + offset), ticking: false });
    try {
      await test({ cfg, store, schedule, advance: (ms) => (offset = start + ms) });
    } finally {
      await store.close();
    }
  }

  it('runs a due sync once per slot, and not again after a restart in the same slot', () => withHomeSchedule(async ({ store, schedule, advance }) => {
    const s = schedule();
    const [first] = await s.tick();
    expect(first!.outcome).toMatchObject({ outcome: 'synced', status: 'complete' });
    expect((await store.counts()).person).toBeGreaterThanOrEqual(ds.list('person').length);
    expect(await s.tick()).toEqual([]);
    await s.stop();
    // A restart in the same slot: the store's last run took it.
    const restarted = schedule();
    expect(await restarted.tick()).toEqual([]);
    // The next slot.
    advance(15 * 60_000);
    expect((await restarted.tick()).map((r) => r.outcome.outcome)).toEqual(['synced']);
    expect((await store.getSyncState('sis'))!.runId).toBe(2);
    expect(await restarted.tick()).toEqual([]);
    await restarted.stop();
  }), 60_000);

  it('retries a failed sync after its backoff, within the slot', () => withHomeSchedule(async ({ store, schedule, advance }) => {
    const s = schedule();
    sandbox.faults.inject({ kind: 'status', status: 503 }, { match: new RegExp(`^${CLEVER_USERS}$`), times: 1 });
    expect((await s.tick()).map((r) => r.outcome.outcome)).toEqual(['failed']);
    // Within the first delay (60 s): not yet.
    advance(30_000);
    expect(await s.tick()).toEqual([]);
    // Past twice the delay (the most the jitter gives): retried, and synced, in the same 15-minute slot.
    advance(121_000);
    expect((await s.tick()).map((r) => r.outcome.outcome)).toEqual(['synced']);
    expect((await store.getSyncState('sis'))!.runStatus).toBe('complete');
    await s.stop();
  }), 60_000);

  it('with purposes, syncs each tenant under its own key ring (the home tenant\'s read from the master key file when first used)', async () => {
    const dir = tempDir();
    const keyFile = join(dir, 'master.key');
    writeFileSync(keyFile, KeyRing.generateText() + '\n', { mode: 0o600 });
    const cfg = parseConfig({
      store: join(dir, 'rg.db'),
      privacy: { tenant: 'north', masterKeyFile: keyFile },
      purposes: DEMO_PURPOSES,
      clients: DEMO_CLIENTS,
      sources: [{ id: 'sis', ...cleverSource(sandbox.urlOf('/clever')), schedule: { every: '1h' } }],
    });
    const north = SqliteStore.open(cfg.store);
    const south = SqliteStore.open(join(dir, 'south.db'));
    try {
      const tenants = new FixedTenants('north', [homeTenant(cfg, north), { ...homeTenant(cfg, south), id: 'south', keyring: new KeyRing(TEST_MASTER_KEY, 'south') }]);
      const s = startInProcessSchedule({ tenants, run: syncJobRunner({ cfg, tenants, log }), cfg: cfg.worker, log, ticking: false });
      const results = await s.tick();
      expect(results.map((r) => [r.due.tenant, r.outcome])).toEqual([
        ['north', expect.objectContaining({ outcome: 'synced', status: 'complete' })],
        ['south', expect.objectContaining({ outcome: 'synced', status: 'complete' })],
      ]);
      await s.stop();
      // Each store was keyed by the master key its tenant's ring came from: another one is refused.
      await expect(assertStoreKey(south, new KeyRing(Buffer.alloc(32, 9), 'south'))).rejects.toThrow(/master key/);
      await assertStoreKey(south, new KeyRing(TEST_MASTER_KEY, 'south'));
    } finally {
      await north.close();
      await south.close();
    }
  }, 60_000);

  it('`serve` on a SQLite store runs the schedule itself, starting from no store; `worker` refuses SQLite', async () => {
    const dir = tempDir();
    const file = join(dir, 'rostergate.yaml');
    writeFileSync(file, stringify({ store: './rg.db', server: { openAccess: true, port: 0 }, sources: [{ id: 'sis', ...cleverSource(sandbox.urlOf('/clever')), schedule: { every: '1h' } }], worker: { tickSeconds: 1 } }));
    const worker = startCli(['worker', '--config', file]);
    const refused = await worker.done;
    expect(refused.code).toBe(2);
    expect(refused.stderr).toMatch(/worker needs a PostgreSQL store .*`rostergate serve` runs the schedule itself/);

    const serve = startCli(['serve', '--config', file]);
    try {
      await until('serving', () => serve.out().includes('GraphQL: '));
      const url = /GraphQL: (\S+)/.exec(serve.out())![1]!;
      const people = async () => {
        const res = await request(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ query: '{ people(first: 1) { totalCount } }' }) });
        const body = (await res.body.json()) as { data?: { people: { totalCount: number } } };
        return body.data?.people.totalCount ?? 0;
      };
      await until('the scheduled sync served', async () => (await people()) >= ds.list('person').length);
    } finally {
      serve.child.kill('SIGTERM');
    }
    expect((await serve.done).code).toBe(0);
  }, 60_000);

  it('skips the job of a paused tenant, a removed source and an unknown tenant', () => withHomeSchedule(async ({ cfg, store }) => {
    const home = homeTenant(cfg, store);
    const paused = { ...homeTenant(cfg, store), id: 'paused-district', status: 'paused' as const };
    const tenants = new FixedTenants(home.id, [home, paused]);
    const run = syncJobRunner({ cfg, tenants, log });
    const slot = new Date().toISOString();
    expect(await run({ tenant: 'paused-district', source: 'sis', slot })).toEqual({ outcome: 'skipped', reason: 'paused' });
    expect(await run({ tenant: home.id, source: 'gone', slot })).toEqual({ outcome: 'skipped', reason: 'no-source' });
    expect(await run({ tenant: 'nobody', source: 'sis', slot })).toEqual({ outcome: 'skipped', reason: 'no-tenant' });
    expect(await store.getSyncState('sis')).toBeUndefined();
    // A paused tenant's sources are never due.
    const s = startInProcessSchedule({ tenants: new FixedTenants(paused.id, [paused]), run, cfg: cfg.worker, log, ticking: false });
    expect(await s.tick()).toEqual([]);
    await s.stop();
  }), 60_000);
});
