/** Test helpers: a synced store from a generated district, through the engine (no vendor format). */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { RosterDataset } from '../../src/demo/dataset.ts';
import { directConnector } from '../../src/demo/direct-connector.ts';
import type { DistrictOptions } from '../../src/demo/generator.ts';
import { SqliteStore } from '../../src/store/sqlite.ts';
import { PostgresStore } from '../../src/store/postgres.ts';
import type { Store } from '../../src/store/types.ts';
import { syncSource } from '../../src/sync/runner.ts';
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { sql, type Kysely } from 'kysely';

export type StoreKind = 'sqlite' | 'postgres';

/**
 * The store kinds a suite runs on: SQLite always; PostgreSQL when ROSTERGATE_TEST_POSTGRES names a
 * server (.ci/run starts one). In CI a missing server is an error, not a silent skip.
 */
export function storeKinds(): StoreKind[] {
  if (process.env.ROSTERGATE_TEST_POSTGRES) return ['sqlite', 'postgres'];
  if (process.env.CI) throw new Error('CI runs the store suites on PostgreSQL too: set ROSTERGATE_TEST_POSTGRES (see .ci/postgres.sh)');
  return ['sqlite'];
}

/** A fresh, empty store of a kind: a new SQLite file, or a new PostgreSQL database dropped on close. */
export async function openTestStore(kind: StoreKind): Promise<Store & { readCount: number }> {
  if (kind === 'sqlite') return SqliteStore.open(join(tempDir(), 'rg.db'));
  const db = await newPostgresDatabase();
  const store = await PostgresStore.open(db.url);
  const close = store.close.bind(store);
  store.close = async () => {
    await close();
    await db.drop();
  };
  return store;
}

/** A new, empty PostgreSQL database on the test server (for a store, or a URL another process opens). */
export async function newPostgresDatabase(): Promise<{ url: string; drop(): Promise<void> }> {
  const admin = process.env.ROSTERGATE_TEST_POSTGRES!;
  const name = `rg_test_${randomBytes(6).toString('hex')}`;
  const c = new pg.Client({ connectionString: admin });
  await c.connect();
  await c.query(`CREATE DATABASE ${name}`);
  await c.end();
  const url = new URL(admin);
  url.pathname = `/${name}`;
  return {
    url: url.toString(),
    async drop() {
      const d = new pg.Client({ connectionString: admin });
      await d.connect();
      await d.query(`DROP DATABASE IF EXISTS ${name}`);
      await d.end();
    },
  };
}

export function tempDir(prefix = 'rostergate-test-'): string {
  return mkdtempSync(join(tmpdir(), prefix));
}

export async function syncedStore(district: DistrictOptions = {}, path = ':memory:', kind: StoreKind = 'sqlite') {
  const dataset = RosterDataset.generate(district);
  const store = kind === 'postgres' ? await openTestStore('postgres') : SqliteStore.open(path);
  await syncSource(store, directConnector('demo', dataset));
  return { store, dataset };
}

/**
 * The per-purpose view-time rows as stored (`view id seq`, sorted), each with its entity's own seq:
 * what the store holds beneath `viewTimes`, which fills the gaps with the entities' own times.
 */
export async function storedViewRows(store: Store): Promise<{ row: string; own: number }[]> {
  const db = (store as unknown as { rdb: Kysely<unknown> }).rdb;
  const r = await sql<{ view: string; id: string; seq: number | string; own: number | string }>`
    SELECT v.view, e.id, v.updated_seq AS seq, e.updated_seq AS own FROM entity_views v JOIN entities e ON e.k = v.entity_k`.execute(db);
  return r.rows.map((x) => ({ row: `${x.view} ${x.id} ${Number(x.seq)}`, own: Number(x.own) })).sort((a, b) => (a.row < b.row ? -1 : 1));
}
