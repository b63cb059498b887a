/**
 * The sync bench's statement floor (bench/statement-floor.ts) is only a floor of the sync if its
 * replay runs the very statements the sync ran: replayed into a fresh store, they must leave every
 * table exactly as the sync left its own store. Never asserts speed.
 */
import { join } from 'node:path';
import Database from 'better-sqlite3';
import pg from 'pg';
import { describe, expect, it } from 'vitest';
import { probeStatements, replayPostgres, replaySqlite, type Recording } from '../../bench/statement-floor.ts';
import { parseConfig } from '../../src/config/config.ts';
import { RosterDataset } from '../../src/demo/dataset.ts';
import { DEMO_CLIENTS, DEMO_PURPOSES } from '../../src/demo/demo-policy.ts';
import { directConnector } from '../../src/demo/direct-connector.ts';
import { setupPrivacy } from '../../src/graphql/privacy.ts';
import { buildUnifiedSchema } from '../../src/graphql/schema.ts';
import { KeyRing } from '../../src/privacy/pseudonym.ts';
import { PostgresStore } from '../../src/store/postgres.ts';
import { SqliteStore } from '../../src/store/sqlite.ts';
import type { Store } from '../../src/store/types.ts';
import { syncSource } from '../../src/sync/runner.ts';
import { newPostgresDatabase, storeKinds, tempDir } from '../support/stores.ts';

/** Written before the sync, not by it: when a store opens, and when privacy sets up its pseudonym domains. */
const OPENING_TABLES = new Set(['schema_migrations', 'meta', 'pseudonym_domains']);

type Dump = Map<string, string[]>;

function dumpSqlite(path: string): Dump {
  const db = new Database(path, { readonly: true });
  try {
    const tables = (db.prepare(`SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name`).all() as { name: string }[]).map((t) => t.name);
    return new Map(tables.filter((t) => !OPENING_TABLES.has(t)).map((t) => [t, (db.prepare(`SELECT * FROM "${t}"`).all() as unknown[]).map((r) => JSON.stringify(r)).sort()]));
  } finally {
    db.close();
  }
}

async function dumpPostgres(url: string): Promise<Dump> {
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  try {
    const tables = (await c.query(`SELECT table_name AS name FROM information_schema.tables WHERE table_schema = 'public' ORDER BY 1`)).rows.map((r) => r.name as string);
    const out: Dump = new Map();
    for (const t of tables.filter((x) => !OPENING_TABLES.has(x))) out.set(t, (await c.query(`SELECT * FROM "${t}"`)).rows.map((r) => JSON.stringify(r)).sort());
    return out;
  } finally {
    await c.end();
  }
}

describe.each(storeKinds())('the sync bench\'s statement floor on %s', (kind) => {
  it('replays the statements a sync ran into a store left exactly as the sync left its own', async () => {
    const probe = probeStatements();
    const dataset = RosterDataset.generate({ students: 60 });
    const dir = tempDir();
    const pgDbs = kind === 'postgres' ? [await newPostgresDatabase(), await newPostgresDatabase()] : [];
    try {
      const synced = kind === 'sqlite' ? join(dir, 'synced.db') : pgDbs[0]!.url;
      const store: Store = kind === 'sqlite' ? SqliteStore.open(synced) : await PostgresStore.open(synced);
      const config = parseConfig({ store: ':memory:', sources: [], privacy: { tenant: 'test' }, purposes: DEMO_PURPOSES, clients: DEMO_CLIENTS }, 'test config');
      const privacy = setupPrivacy(config, buildUnifiedSchema(), { keyring: new KeyRing(Buffer.alloc(32, 3), 'test') });
      const ingest = await privacy.ingest(store);
      const recording: Recording = { sqlite: [], postgres: [] };
      let records = 0;
      probe.record(recording);
      await syncSource(store, directConnector('demo', dataset), { ...ingest, hooks: { pageDidStore: (e) => void (records += e.records) } });
      probe.record(undefined);
      await store.close();
      const calls = kind === 'sqlite' ? recording.sqlite : recording.postgres;
      expect(calls.length).toBeGreaterThan(10);

      const replay = kind === 'sqlite'
        ? await replaySqlite(recording.sqlite, records, dir)
        : await replayPostgres(recording.postgres, records, pgDbs[1]!.url);
      expect(replay.recordsPerSecond).toBeGreaterThan(0);

      const [want, got] = kind === 'sqlite'
        ? [dumpSqlite(synced), dumpSqlite(join(dir, 'replay.db'))]
        : [await dumpPostgres(synced), await dumpPostgres(pgDbs[1]!.url)];
      // The tables a sync writes hold rows, so the comparison below compares something.
      for (const t of ['entities', 'source_records', 'change_log', 'links', 'entity_views', 'pseudonyms', 'match_keys']) expect(want.get(t)?.length, t).toBeGreaterThan(0);
      expect([...got.keys()]).toEqual([...want.keys()]);
      for (const [t, rows] of want) expect(got.get(t), t).toEqual(rows);
    } finally {
      for (const d of pgDbs) await d.drop();
    }
  }, 120_000);
});
