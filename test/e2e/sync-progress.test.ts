/**
 * What `rostergate sync` shows a person at a terminal: a bar per resource with pages and records,
 * filled against the listing's size where the vendor tells it (OneRoster's X-Total-Count) and a
 * plain counter where it does not (Clever), every line within 80 columns, log lines printed above
 * the bars; periodic log lines when stderr is not a terminal.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RosterDataset } from '../../src/demo/dataset.ts';
import { startSandboxServer, type RunningSandbox } from '../../connectors/sandbox-kit.ts';
import { cleverDefinition, cleverSandbox, sandboxSourceConfig as cleverSource } from '../../connectors/clever/index.ts';
import { oneRosterDefinition, oneRosterSandbox, sandboxSourceConfig as orSource } from '../../connectors/oneroster/index.ts';
import { createLogger } from '../../src/log.ts';
import type { SyncSummary } from '../../src/sync/runner.ts';
import { SqliteStore } from '../../src/store/sqlite.ts';
import { syncSource } from '../../src/sync/runner.ts';
import { formatSummary, progressHooks, progressLabel } from '../../src/sync/progress.ts';
import { testHttp } from '../support/connector-suite.ts';
import { fakeTerminal } from '../support/terminal.ts';
import { Writable } from 'node:stream';

describe('sync progress', () => {
  let ds: RosterDataset;
  let sandbox: RunningSandbox;
  const log = createLogger({ level: 'silent' });
  beforeAll(async () => {
    ds = RosterDataset.generate({ students: 60, teachers: 4, classes: 6, schools: 2 });
    sandbox = await startSandboxServer({ dataset: ds, apps: [cleverSandbox(), oneRosterSandbox()] });
  });
  afterAll(() => sandbox.close());

  it('on a terminal: bars against X-Total-Count for OneRoster, counters for Clever, pages and records per resource, in 80 columns', async () => {
    const term = fakeTerminal(80);
    const hooks = progressHooks(log, term.stream);
    const store = SqliteStore.open(':memory:');
    try {
      const or = oneRosterDefinition.create(oneRosterDefinition.configSchema.parse({ id: 'or', ...orSource(sandbox.urlOf('/oneroster'), '1.2'), pageSize: 25 }), { http: testHttp('or'), log });
      const orSummary = await syncSource(store, or, { hooks });
      const cl = cleverDefinition.create(cleverDefinition.configSchema.parse({ id: 'cl', ...cleverSource(sandbox.urlOf('/clever')), pageSize: 25 }), { http: testHttp('cl'), log });
      await syncSource(store, cl, { hooks });
      const screen = term.text();
      const users = ds.list('person').length;
      const pages = Math.ceil(users / 25);
      expect(orSummary.byResource.users).toEqual({ pages, records: expect.any(Number) });
      // OneRoster users against X-Total-Count: the vendor's users, not the persons and
      // guardianships they map to, so the bar is full on the last page and not before.
      expect(screen).toMatch(new RegExp(`or users\\s+\\S*█+\\S* 100% \\| ${pages} pages \\| ${users}/${users} records`));
      const states = [...screen.matchAll(/or users\s+\S+ (\d+)% \| (\d+) pages \| (\d+)\/(\d+) records/g)].map((m) => m.slice(1).map(Number));
      expect(states.map(([, page]) => page)).toEqual(expect.arrayContaining(Array.from({ length: pages }, (_, i) => i + 1)));
      for (const [percent, page, value, total] of states) {
        expect(total).toBe(users);
        expect(value).toBe(Math.min(page! * 25, users));
        if (page! < pages) expect(percent, `page ${page} of ${pages}`).toBeLessThan(100);
      }
      // Every line a bar draws fits an 80-column terminal, whole (cli-progress would cut a longer one off).
      for (const line of term.segments()) expect(line.length, line).toBeLessThan(80);
      expect(screen).toMatch(/or\s+enrollments\s+\S+ 100% \| \d+ pages \| (\d+)\/\1 records/);
      // Clever sends no totals: pages and records, no percentage.
      expect(screen).toMatch(new RegExp(`cl\\s+users\\s+${pages} pages \\| \\d+ records`));
      expect(screen).not.toMatch(/cl\s+users\s+\S*█/);
      // Counts only: nobody's name reaches the terminal.
      for (const p of ds.list('person').slice(0, 50)) expect(screen).not.toContain(p.data.familyName);
    } finally {
      await store.close();
    }
  });

  it('fits the longest lines in 80 columns: long source ids are shortened, the resource kept whole', () => {
    const term = fakeTerminal(80);
    const hooks = progressHooks(log, term.stream);
    const counters = {} as Parameters<NonNullable<typeof hooks.pageDidStore>>[0]['counters'];
    hooks.pageDidStore!({ source: 'district-oneroster-production', resource: 'academicSessions', records: 999_999, listed: 999_999, total: 999_999, counters });
    hooks.pageDidStore!({ source: 'district-clever-production', resource: 'sections', records: 999_999, listed: 999_999, counters });
    hooks.pageDidStore!({ source: 'sds', resource: 'StudentEnrollment-2025-26.csv', records: 5, listed: 5, total: 10, counters });
    hooks.syncDidEnd!({} as SyncSummary);
    const screen = term.text();
    expect(screen).toContain('dist… academicSessions');
    expect(screen).toMatch(/100% \| 1 pages \| 999999\/999999 records/);
    expect(screen).toContain('district-cle… sections 1 pages | 999999 records');
    for (const line of term.segments()) expect(line.length, line).toBeLessThan(80);
    expect(progressLabel('or', 'users')).toBe('or users'.padEnd(22));
    expect(progressLabel('sds', 'StudentEnrollment-2025-26.csv')).toHaveLength(22);
  });

  it('log lines written while the bars are shown are printed whole, above the bars', () => {
    const term = fakeTerminal(80);
    // A logger writing to standard error, as the CLI's does: while bars are shown, its lines go through them.
    const stderrLog = createLogger({ level: 'info' });
    const hooks = progressHooks(stderrLog, term.stream);
    const counters = {} as Parameters<NonNullable<typeof hooks.pageDidStore>>[0]['counters'];
    hooks.pageDidStore!({ source: 'or', resource: 'users', records: 30, listed: 25, total: 100, counters });
    stderrLog.warn({ source: 'or', resource: 'users', received: 25 }, 'listing came up short of X-Total-Count');
    hooks.pageDidStore!({ source: 'or', resource: 'users', records: 30, listed: 25, total: 100, counters });
    stderrLog.warn({ source: 'or', resource: 'users' }, 'a second warning, printed as the bars stop');
    hooks.syncDidEnd!({} as SyncSummary);
    const logged = term.segments().filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as { msg: string });
    expect(logged.map((l) => l.msg)).toEqual(['listing came up short of X-Total-Count', 'a second warning, printed as the bars stop']);
    // The bars were drawn after each line, and are the last thing on the screen.
    expect(term.text()).toMatch(/a second warning, printed as the bars stop"\}\n[\s\S]*or users\s+\S+ 50% \| 2 pages \| 50\/100 records\s*$/);
  });

  it('the summary lists pages and records per resource', async () => {
    const store = SqliteStore.open(':memory:');
    try {
      const or = oneRosterDefinition.create(oneRosterDefinition.configSchema.parse({ id: 'or', ...orSource(sandbox.urlOf('/oneroster'), '1.1'), pageSize: 25 }), { http: testHttp('or'), log });
      const text = formatSummary(await syncSource(store, or));
      expect(text).toMatch(/^or: complete \(full, run 1\) — \d+ pages, \d+ records; \d+ created/);
      const pages = Math.ceil(ds.list('person').length / 25);
      expect(text).toMatch(new RegExp(`by resource: orgs \\d+ in 1 page, academicSessions \\d+ in 1 page, .*users \\d+ in ${pages} pages`));
    } finally {
      await store.close();
    }
  });

  it('without a terminal: log lines with counts instead of bars', async () => {
    const lines: string[] = [];
    const logged = createLogger({ level: 'info', destination: new Writable({ write: (c, _e, cb) => (lines.push(String(c)), cb()) }) });
    const notTty = new Writable({ write: (_c, _e, cb) => cb() }) as unknown as NodeJS.WriteStream;
    const store = SqliteStore.open(':memory:');
    try {
      const or = oneRosterDefinition.create(oneRosterDefinition.configSchema.parse({ id: 'or', ...orSource(sandbox.urlOf('/oneroster'), '1.2'), pageSize: 25 }), { http: testHttp('or'), log });
      await syncSource(store, or, { hooks: progressHooks(logged, notTty) });
      const entries = lines.map((l) => JSON.parse(l) as Record<string, unknown>);
      expect(entries[0]).toMatchObject({ msg: 'sync started', source: 'or', mode: 'full' });
      expect(entries.find((e) => e.msg === 'sync progress')).toMatchObject({ source: 'or', resource: 'orgs', pages: 1 });
    } finally {
      await store.close();
    }
  });
});
