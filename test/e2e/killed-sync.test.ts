/**
 * `rostergate sync` as a separate process, killed with SIGKILL in the middle of a listing (while
 * it waits for a page, with earlier pages committed), then run again: the second run resumes the
 * same run and lands exactly the district — nothing lost, nothing twice — in the store and in
 * GraphQL. Also: one failing source does not stop the others, and the exit code and last lines
 * name it.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import Database from 'better-sqlite3';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { RosterDataset } from '../../src/demo/dataset.ts';
import { startSandboxServer, type RunningSandbox } from '../../connectors/sandbox-kit.ts';
import { cleverSandbox, sandboxSourceConfig as cleverSource } from '../../connectors/clever/index.ts';
import { oneRosterSandbox, sandboxSourceConfig as orSource, V11, V12 } from '../../connectors/oneroster/index.ts';
import { SqliteStore } from '../../src/store/sqlite.ts';
import { tempDir } from '../support/stores.ts';
import { expectedRoster, rosterViaGraphQL } from '../support/roster.ts';
import { CLI_BIN } from '../support/cli-bin.ts';

const bin = CLI_BIN;

/** People committed to the store so far, read beside the syncing process (WAL: a reader does not block it). */
function committedPeople(file: string): number {
  try {
    const db = new Database(file, { readonly: true, fileMustExist: true });
    try {
      return (db.prepare("SELECT count(*) AS n FROM entities WHERE type = 'person'").get() as { n: number }).n;
    } finally {
      db.close();
    }
  } catch {
    return 0; // not created (or not migrated) yet
  }
}
const TYPES = ['org', 'person', 'demographics', 'class', 'enrollment', 'guardianship'] as const;

interface Child {
  kill(): void;
  done: Promise<{ code: number | null; signal: NodeJS.Signals | null; stdout: string; stderr: string }>;
}

function rostergate(args: string[]): Child {
  const child = spawn(process.execPath, [bin, ...args], { env: { ...process.env, ROSTERGATE_LOG_LEVEL: 'silent' }, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d) => (stdout += d));
  child.stderr.on('data', (d) => (stderr += d));
  return {
    kill: () => child.kill('SIGKILL'),
    done: new Promise((resolve) => child.on('exit', (code, signal) => resolve({ code, signal, stdout, stderr }))),
  };
}

async function until(what: string, cond: () => boolean, ms = 60_000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

describe('a sync process killed mid-listing resumes without loss or duplicates', () => {
  let ds: RosterDataset;
  let sandbox: RunningSandbox;
  beforeAll(async () => {
    ds = RosterDataset.generate({ students: 80, teachers: 6, classes: 8, schools: 2 });
    sandbox = await startSandboxServer({ dataset: ds, apps: [cleverSandbox(), oneRosterSandbox()] });
  });
  afterAll(() => sandbox?.close());

  const cases = [
    { id: 'clever', block: () => cleverSource(sandbox.urlOf('/clever')), usersPath: '/clever/v3.1/users' },
    { id: 'oneroster-11', block: () => orSource(sandbox.urlOf('/oneroster'), '1.1'), usersPath: `/oneroster${V11}/users` },
    { id: 'oneroster-12', block: () => orSource(sandbox.urlOf('/oneroster'), '1.2'), usersPath: `/oneroster${V12}/users` },
  ];

  for (const c of cases) {
    it(`${c.id}: SIGKILL while the third page of users is in flight, then a second run`, async () => {
      const dir = tempDir();
      const cfg = join(dir, 'rostergate.yaml');
      // openAccess: no purposes, so the store keeps every field the roster comparison below checks.
      writeFileSync(cfg, stringify({ store: './rg.db', server: { openAccess: true }, sources: [{ id: c.id, ...c.block(), pageSize: 20 }] }));
      const usersHits = () => sandbox.faults.hits.filter((h) => h === c.usersPath).length;
      const before = usersHits();
      // The third users request hangs: the two pages of users before it are committed (once the
      // group has waited its short grace for the next page, NEXT_PAGE_GRACE_MS), and the process
      // is killed while that request is still in flight.
      sandbox.faults.inject({ kind: 'hang', ms: 120_000 }, { match: new RegExp(`^${c.usersPath}$`), after: 2 });
      const first = rostergate(['sync', '--config', cfg]);
      await until('the third users request', () => usersHits() >= before + 3);
      await until('the users read before it committed', () => committedPeople(join(dir, 'rg.db')) > 0);
      first.kill();
      const killed = await first.done;
      expect(killed.signal).toBe('SIGKILL');
      sandbox.faults.clear();

      // What the killed process left: a running run, stopped inside the users listing.
      const mid = SqliteStore.open(join(dir, 'rg.db'));
      const state = await mid.getSyncState(c.id);
      const partial = await mid.counts();
      await mid.close();
      expect(state?.runStatus).toBe('running');
      expect(partial.person ?? 0).toBeGreaterThan(0);
      expect(partial.person).toBeLessThan(ds.list('person').length);

      const second = await rostergate(['sync', '--config', cfg]).done;
      expect(second.stderr).toBe('');
      expect(second.code).toBe(0);
      expect(second.stdout).toMatch(new RegExp(`^${c.id}: complete \\(resumed, run ${state!.runId}\\)`));

      const store = SqliteStore.open(join(dir, 'rg.db'));
      try {
        const counts = await store.counts();
        for (const t of TYPES) expect(counts[t] ?? 0, t).toBe(ds.list(t).length);
        expect(await rosterViaGraphQL(store)).toEqual(expectedRoster(ds));
        // Each entity was created once and nothing was deleted on the way.
        const changes = await store.changes({ afterSeq: 0, limit: 1e6 });
        const created = changes.filter((x) => x.op === 'created').map((x) => x.entityId);
        expect(new Set(created).size).toBe(created.length);
        expect(changes.filter((x) => x.op === 'deleted')).toEqual([]);
        expect((await store.getSyncState(c.id))?.runStatus).toBe('complete');
      } finally {
        await store.close();
      }
    }, 120_000);
  }

  it('a failing source does not stop the others: every summary is printed, the failure named last, exit 1', async () => {
    const dir = tempDir();
    const cfg = join(dir, 'rostergate.yaml');
    writeFileSync(cfg, stringify({
      store: './rg.db',
      server: { openAccess: true },
      sources: [
        { id: 'district-clever', ...cleverSource(sandbox.urlOf('/clever')), token: 'revoked-token' },
        { id: 'classlink', ...orSource(sandbox.urlOf('/oneroster'), '1.2') },
      ],
    }));
    const r = await rostergate(['sync', '--config', cfg]).done;
    expect(r.code).toBe(1);
    expect(r.stdout).toMatch(/^district-clever: failed \(full, run 1\)/m);
    expect(r.stdout).toMatch(/^classlink: complete \(full, run 1\)/m);
    expect(r.stderr.trim()).toMatch(/^rostergate: source district-clever, resource events, HTTP 401: credentials rejected \(401\): check the token/);
    const store = SqliteStore.open(join(dir, 'rg.db'));
    try {
      expect((await store.counts()).person).toBe(ds.list('person').length);
    } finally {
      await store.close();
    }
  }, 60_000);
});
