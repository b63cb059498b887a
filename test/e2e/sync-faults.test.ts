/**
 * Bad input through the whole pipeline — real connectors over HTTP against the sandboxes, the sync
 * engine, a real store: 429 storms, 5xx, timeouts, dropped connections, truncated pages, pages that
 * repeat or skip, a CSV drop with a broken row. Each gives an error naming source and resource
 * (and record or line where there is one), loses nothing already stored, and the next run
 * recovers to exactly the district.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { join } from 'node:path';
import { readFileSync, writeFileSync } from 'node:fs';
import { RosterDataset } from '../../src/demo/dataset.ts';
import { startSandboxServer, type Fault, type RunningSandbox } from '../../connectors/sandbox-kit.ts';
import { cleverDefinition, cleverSandbox, sandboxSourceConfig as cleverSource } from '../../connectors/clever/index.ts';
import { oneRosterDefinition, oneRosterSandbox, sandboxSourceConfig as orSource, V11, V12 } from '../../connectors/oneroster/index.ts';
import { oneRosterCsvDefinition, writeOneRosterDrop } from '../../connectors/oneroster-csv/index.ts';
import type { CleverSandboxOptions } from '../../connectors/clever/sandbox.ts';
import type { OneRosterSandboxOptions } from '../../connectors/oneroster/sandbox.ts';
import type { Connector } from '../../connectors/types.ts';
import { createLogger } from '../../src/log.ts';
import { RostergateError } from '../../src/errors.ts';
import { SqliteStore } from '../../src/store/sqlite.ts';
import type { Store } from '../../src/store/types.ts';
import { syncSource } from '../../src/sync/runner.ts';
import { parseConfig } from '../../src/config/config.ts';
import { syncAll } from '../../src/runtime.ts';
import { testHttp } from '../support/connector-suite.ts';
import { tempDir } from '../support/stores.ts';
import { expectedRoster, rosterViaGraphQL } from '../support/roster.ts';

const log = createLogger({ level: 'silent' });
const TYPES = ['org', 'person', 'demographics', 'class', 'enrollment', 'guardianship'] as const;

/** Store counts of the types every connector here carries, as the dataset has them. */
async function expectDistrict(store: Store, ds: RosterDataset) {
  const counts = await store.counts();
  for (const t of TYPES) expect(counts[t] ?? 0, t).toBe(ds.list(t).length);
  expect(await rosterViaGraphQL(store)).toEqual(expectedRoster(ds));
}

/** Small limits, so a trickle or an oversized page fails in seconds (normal sandbox pages are far below both). */
const LIMITS = { maxRetries: 2, timeoutMs: 400, requestDeadlineMs: 2_000, maxBodyBytes: 512 * 1024 };

const fail = (p: Promise<unknown>) => p.then(() => { throw new Error('the sync should have failed'); }, (e: unknown) => e as RostergateError);

describe('bad input over HTTP: the sync fails clearly, keeps everything, and the next run recovers', () => {
  let ds: RosterDataset;
  let sandbox: RunningSandbox;
  const cleverOpts: CleverSandboxOptions = {};
  const orOpts: OneRosterSandboxOptions = {};
  beforeAll(async () => {
    ds = RosterDataset.generate({ students: 60, teachers: 4, classes: 6, schools: 2 });
    sandbox = await startSandboxServer({ dataset: ds, apps: [cleverSandbox(cleverOpts), oneRosterSandbox(orOpts)] });
  });
  afterAll(() => sandbox?.close());

  const sources = [
    {
      id: 'clever', users: '/clever/v3.1/users',
      make: (extra = {}) => cleverDefinition.create(cleverDefinition.configSchema.parse({ id: 'clever', ...cleverSource(sandbox.urlOf('/clever')), pageSize: 20, ...extra }), { http: testHttp('clever', LIMITS), log }),
    },
    ...(['1.1', '1.2'] as const).map((v) => ({
      id: `oneroster-${v}`, users: `/oneroster${v === '1.1' ? V11 : V12}/users`,
      make: (extra = {}) => oneRosterDefinition.create(
        oneRosterDefinition.configSchema.parse({ id: `oneroster-${v}`, ...orSource(sandbox.urlOf('/oneroster'), v), pageSize: 20, ...extra }),
        { http: testHttp(`oneroster-${v}`, LIMITS), log },
      ),
    })),
  ];

  const faults: { name: string; fault: Fault; code: string; reason: RegExp }[] = [
    // Each byte comes well within the idle timeout (400 ms): only the overall deadline ends it.
    { name: 'a body trickled a byte every 200 ms', fault: { kind: 'trickle', intervalMs: 200 }, code: 'SOURCE_TIMEOUT', reason: /no complete answer within 2 s \(limit http\.requestDeadlineMs\) after 3 attempts$/ },
    // Valid JSON (the page plus whitespace), so only the size limit refuses it.
    { name: 'an oversized page', fault: { kind: 'pad', bytes: 600 * 1024 }, code: 'SOURCE_TOO_LARGE', reason: /response body exceeded 512 KiB \(limit http\.maxBodyBytes\) after 3 attempts$/ },
    { name: 'a 503 storm', fault: { kind: 'status', status: 503 }, code: 'SOURCE_HTTP', reason: /server error \(503\) after 3 attempts/ },
    { name: 'a 429 storm', fault: { kind: 'status', status: 429, retryAfter: '0' }, code: 'SOURCE_RATE_LIMITED', reason: /rate limited \(429\) after 3 attempts/ },
    { name: 'a server that stops answering', fault: { kind: 'hang', ms: 5_000 }, code: 'SOURCE_TIMEOUT', reason: /timed out after 3 attempts/ },
    { name: 'dropped connections', fault: { kind: 'reset' }, code: 'SOURCE_HTTP', reason: /connection failed \(\w+\) after 3 attempts/ },
    { name: 'truncated JSON pages', fault: { kind: 'truncate' }, code: 'SOURCE_BAD_PAGE', reason: /malformed JSON page \(\d+ bytes, not shown/ },
  ];

  for (const src of sources) {
    describe(src.id, () => {
      let store: SqliteStore;
      beforeAll(async () => {
        store = SqliteStore.open(join(tempDir(), 'rg.db'));
        expect((await syncSource(store, src.make())).status).toBe('complete');
      });
      afterAll(() => store?.close());

      for (const f of faults) {
        it(`${f.name} in the middle of users`, async () => {
          const before = await store.counts();
          sandbox.faults.inject(f.fault, { match: new RegExp(`^${src.users}$`), after: 1, times: 100 });
          const e = await fail(syncSource(store, src.make(), { full: true }));
          sandbox.faults.clear();
          expect(e).toBeInstanceOf(RostergateError);
          expect(e.code).toBe(f.code);
          expect(e.message).toMatch(new RegExp(`^source ${src.id}, resource users(, HTTP \\d+)?: `));
          expect(e.message).toMatch(f.reason);
          // Nothing already stored is lost: a failed full run deletes nothing.
          expect(await store.counts()).toEqual(before);
          expect((await store.getSyncState(src.id))?.runStatus).toBe('failed');
          const next = await syncSource(store, src.make());
          expect([next.mode, next.status]).toEqual(['resumed', 'complete']);
          await expectDistrict(store, ds);
        });
      }
    });
  }

  it('clever: a next link that leads back to the same page is a paging loop, not an endless sync', async () => {
    const store = SqliteStore.open(':memory:');
    try {
      cleverOpts.ignoreStartingAfter = true;
      const e = await fail(syncSource(store, sources[0]!.make()));
      cleverOpts.ignoreStartingAfter = false;
      expect(e.code).toBe('SOURCE_PAGING_LOOP');
      expect(e.message).toMatch(/^source clever, resource users: paging returned a cursor already followed/);
      const next = await syncSource(store, sources[0]!.make());
      expect([next.mode, next.status]).toEqual(['resumed', 'complete']);
      await expectDistrict(store, ds);
    } finally {
      cleverOpts.ignoreStartingAfter = false;
      await store.close();
    }
  });

  it('oneroster: a server that ignores offset is a paging loop; the next run recovers', async () => {
    const store = SqliteStore.open(':memory:');
    try {
      orOpts.ignoreOffset = true;
      const e = await fail(syncSource(store, sources[2]!.make()));
      orOpts.ignoreOffset = false;
      expect(e.code).toBe('SOURCE_PAGING_LOOP');
      expect(e.message).toMatch(/^source oneroster-1.2, resource users: offset 20 returned the same page as offset 0/);
      const next = await syncSource(store, sources[2]!.make());
      expect([next.mode, next.status]).toEqual(['resumed', 'complete']);
      await expectDistrict(store, ds);
    } finally {
      orOpts.ignoreOffset = false;
      await store.close();
    }
  });

  it('oneroster: pages that skip records delete nothing, and the next run reads what they skipped', async () => {
    const store = SqliteStore.open(':memory:');
    // No overlap: only the connector's own bookkeeping can bring the skipped records back.
    const make = () => sources[2]!.make({ deltaOverlapSeconds: 0 });
    try {
      // A full run over a skipping server: short of X-Total-Count, so it completes nothing...
      orOpts.skipOne = true;
      const first = await syncSource(store, make());
      expect(first.status).toBe('complete');
      expect((await store.counts()).person).toBeLessThan(ds.list('person').length);
      // ...and the next run reads everything again.
      orOpts.skipOne = false;
      await syncSource(store, make());
      await expectDistrict(store, ds);

      // A delta over a skipping server misses one of three renamed students; the window stays open.
      const renamed = ds.list('person').filter((p) => p.data.roles.includes('student')).slice(0, 3);
      for (const p of renamed) ds.upsert('person', p.key, { givenName: `${p.data.givenName}-Neu` });
      orOpts.skipOne = true;
      const delta = await syncSource(store, make());
      expect([delta.mode, delta.status]).toEqual(['incremental', 'complete']);
      expect(await rosterViaGraphQL(store)).not.toEqual(expectedRoster(ds));
      orOpts.skipOne = false;
      const again = await syncSource(store, make());
      expect(again.mode).toBe('incremental');
      await expectDistrict(store, ds);
    } finally {
      orOpts.skipOne = false;
      await store.close();
    }
  });

  it('clever: a sandbox enforcing its rate limit (429 with X-RateLimit-Reset) slows the sync down but loses nothing', async () => {
    const limited = await startSandboxServer({ dataset: ds, apps: [cleverSandbox()], rateLimit: { requests: 6, windowMs: 1_000 } });
    const store = SqliteStore.open(':memory:');
    try {
      const c = cleverDefinition.create(
        cleverDefinition.configSchema.parse({ id: 'clever', ...cleverSource(limited.urlOf('/clever')), pageSize: 20 }),
        { http: testHttp('clever', { maxRetries: 2 }), log },
      );
      const s = await syncSource(store, c);
      expect(s.status).toBe('complete');
      // Some requests were answered 429 and asked again (one request per page, plus the events anchor).
      expect(limited.faults.hits.length).toBeGreaterThan(s.pages + 1);
      await expectDistrict(store, ds);
    } finally {
      await store.close();
      await limited.close();
    }
  });
});

describe('a per-source request budget from the config', () => {
  it('caps each run at http.budget requests, names source and resource when spent, and the runs that follow resume to the whole district', async () => {
    const ds = RosterDataset.generate({ students: 60, teachers: 4, classes: 6, schools: 2 });
    const sandbox = await startSandboxServer({ dataset: ds, apps: [cleverSandbox()] });
    const store = SqliteStore.open(':memory:');
    try {
      const cfg = parseConfig({
        store: ':memory:',
        sources: [{ id: 'district-clever', ...cleverSource(sandbox.urlOf('/clever')), pageSize: 20, http: { budget: 5 } }],
      });
      const first = (await syncAll(store, cfg, log, { keepGoing: true }))[0]!;
      expect(first.status).toBe('failed');
      expect(first.error).toMatch(/^source district-clever, resource \w+: request budget of 5 exhausted$/);
      expect(sandbox.faults.hits.length).toBe(5);
      const stored = await store.counts();
      let runs = 1;
      for (let last = first; last.status !== 'complete'; runs++) {
        if (runs > 20) throw new Error('the budgeted runs never completed');
        const before = sandbox.faults.hits.length;
        last = (await syncAll(store, cfg, log, { keepGoing: true }))[0]!;
        expect(sandbox.faults.hits.length - before, `run ${runs + 1}`).toBeLessThanOrEqual(5);
        expect(last.mode).toBe('resumed');
        // Nothing stored earlier is lost while the budget stops runs part-way.
        const now = await store.counts();
        for (const [t, n] of Object.entries(stored) as [keyof typeof stored, number][]) expect(now[t] ?? 0, t).toBeGreaterThanOrEqual(n);
      }
      expect(runs).toBeGreaterThan(2);
      await expectDistrict(store, ds);
    } finally {
      await store.close();
      await sandbox.close();
    }
  });
});

describe('bad input in a CSV drop: the broken drop applies nothing, the next drop recovers', () => {
  it('a delta drop with a broken row names file and line, keeps the store, and a corrected drop lands', async () => {
    const ds = RosterDataset.generate({ students: 60, teachers: 4, classes: 6, schools: 2 });
    const dir = tempDir();
    const path = join(dir, 'drop');
    const make = (): Connector => oneRosterCsvDefinition.create(
      oneRosterCsvDefinition.configSchema.parse({ id: 'nightly-drop', type: 'oneroster-csv', path, mode: 'tolerant' }), { http: testHttp('nightly-drop'), log },
    );
    const store = SqliteStore.open(join(dir, 'rg.db'));
    try {
      writeOneRosterDrop(ds, path, { version: '1.2' });
      const seq = ds.headSeq;
      expect((await syncSource(store, make())).status).toBe('complete');
      const before = await store.counts();
      const p = ds.list('person').find((x) => x.data.roles.includes('student'))!;
      ds.upsert('person', p.key, { familyName: 'Neuer-Name' });
      ds.remove('enrollment', ds.list('enrollment')[0]!.key);
      writeOneRosterDrop(ds, path, { mode: 'delta', sinceSeq: seq, version: '1.2' });
      const good = readFileSync(join(path, 'users.csv'), 'utf8');
      const lines = good.split('\n');
      lines[1] = `${lines[1]},"an extra field`;
      writeFileSync(join(path, 'users.csv'), lines.join('\n'));
      const e = await fail(syncSource(store, make()));
      expect(e.code).toBe('CSV_INVALID');
      expect(e.message).toMatch(/^source nightly-drop, resource users\.csv, record line 2: /);
      expect(e.message).not.toContain('Neuer-Name');
      expect(await store.counts()).toEqual(before);
      writeFileSync(join(path, 'users.csv'), good);
      const next = await syncSource(store, make());
      expect(next.status).toBe('complete');
      await expectDistrict(store, ds);
    } finally {
      await store.close();
    }
  });

  it('a row over maxRowBytes or a file over maxFileBytes is refused naming file (and line); nothing is applied and the corrected drop lands without --full', async () => {
    const ds = RosterDataset.generate({ students: 30, teachers: 2, classes: 3, schools: 1 });
    const dir = tempDir();
    const path = join(dir, 'drop');
    const make = (limits: object = {}): Connector => oneRosterCsvDefinition.create(
      oneRosterCsvDefinition.configSchema.parse({ id: 'nightly-drop', type: 'oneroster-csv', path, mode: 'tolerant', maxRowBytes: 4096, ...limits }), { http: testHttp('nightly-drop'), log },
    );
    const store = SqliteStore.open(join(dir, 'rg.db'));
    try {
      writeOneRosterDrop(ds, path, { version: '1.2' });
      const good = readFileSync(join(path, 'users.csv'), 'utf8');
      // A synthetic giant record: one user row whose given name runs to 64 KiB.
      const lines = good.split('\n');
      const cols = lines[1]!.split(',');
      cols[cols.length - 1] = 'x'.repeat(64 * 1024);
      lines[1] = cols.join(',');
      writeFileSync(join(path, 'users.csv'), lines.join('\n'));
      const row = await fail(syncSource(store, make()));
      expect(row.code).toBe('CSV_INVALID');
      expect(row.message).toMatch(/^source nightly-drop, resource users\.csv, record line 2: the row is larger than the limit \(maxRowBytes\)/);
      expect((await store.counts()).person ?? 0).toBe(0);

      const big = await fail(syncSource(store, make({ maxFileBytes: 32 * 1024 })));
      expect(big.code).toBe('SOURCE_TOO_LARGE');
      expect(big.message).toMatch(/^source nightly-drop, resource users\.csv: the file is \d+ bytes, over the limit of 32 KiB \(limit maxFileBytes\)/);

      writeFileSync(join(path, 'users.csv'), good);
      const next = await syncSource(store, make());
      expect(next.status).toBe('complete');
      await expectDistrict(store, ds);
    } finally {
      await store.close();
    }
  });
});
