/**
 * What `rostergate sync` shows a person at a terminal: a bar per resource with pages and records,
 * filled against the listing's size where the vendor tells it (OneRoster's X-Total-Count) and a
 * plain counter where it does not (Clever); periodic log lines when stderr is not a terminal.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RosterDataset } from '../../src/demo/dataset.ts';
import { startSandboxServer, type RunningSandbox } from '../../connectors/sandbox-kit.ts';
import { cleverDefinition, cleverSandbox, sandboxSourceConfig as cleverSource } from '../../connectors/clever/index.ts';
import { oneRosterDefinition, oneRosterSandbox, sandboxSourceConfig as orSource } from '../../connectors/oneroster/index.ts';
import { createLogger } from '../../src/log.ts';
import { SqliteStore } from '../../src/store/sqlite.ts';
import { syncSource } from '../../src/sync/runner.ts';
import { formatSummary, progressHooks } from '../../src/sync/progress.ts';
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

  it('on a terminal: bars against X-Total-Count for OneRoster, counters for Clever, pages and records per resource', async () => {
    const term = fakeTerminal();
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
      // OneRoster users (and their guardianships) against X-Total-Count: a full bar at the end.
      expect(screen).toMatch(new RegExp(`or\\s+users\\s+\\S*█+\\S* 100% \\| ${pages} pages \\| (\\d+)/\\1 records`));
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
