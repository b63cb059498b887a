/**
 * A store that cannot write — its disk full, or read-only — on SQLite and PostgreSQL: a sync fails
 * with an error saying so (not "cannot rollback - no transaction is active"), nothing of the page is
 * committed, /readyz is 503 while the condition lasts and 200 once it clears, and the next normal
 * run then completes.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { request } from 'undici';
import pg from 'pg';
import Database from 'better-sqlite3';
import { RosterDataset } from '../../src/demo/dataset.ts';
import { directConnector } from '../../src/demo/direct-connector.ts';
import { createLogger } from '../../src/log.ts';
import { parseConfig } from '../../src/config/config.ts';
import { serveStore } from '../../src/runtime.ts';
import { RostergateError } from '../../src/errors.ts';
import { storeCondition, storeConditionError } from '../../src/store/conditions.ts';
import { SqliteStore } from '../../src/store/sqlite.ts';
import type { PostgresStore } from '../../src/store/postgres.ts';
import type { Store } from '../../src/store/types.ts';
import { syncSource } from '../../src/sync/runner.ts';
import { openTestStore, storeKinds, type StoreKind } from '../support/stores.ts';

const log = createLogger({ level: 'silent' });
const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  while (cleanups.length) await cleanups.pop()!();
});

async function gatewayOver(store: Store) {
  const g = await serveStore(store, parseConfig({ store: ':memory:', server: { openAccess: true } }), log, { port: 0, webhooks: false });
  cleanups.push(() => g.close());
  return async () => (await request(g.url + '/readyz')).statusCode;
}

/** The SQLite writer connection, to impose a condition on it as the disk or the file system would. */
const writerOf = (store: Store) => (store as SqliteStore)['writer'];

/** Puts a PostgreSQL database in (or out of) read-only mode, as a standby or an administrator would; sessions reconnect. */
async function setPostgresReadOnly(store: Store, on: boolean): Promise<void> {
  const d = (await (store as PostgresStore).rows<{ d: string }>('SELECT current_database() AS d'))[0]!.d;
  const admin = new pg.Client({ connectionString: process.env.ROSTERGATE_TEST_POSTGRES });
  await admin.connect();
  try {
    await admin.query(`ALTER DATABASE ${d} ${on ? 'SET default_transaction_read_only = on' : 'RESET default_transaction_read_only'}`);
    await admin.query(`SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()`, [d]);
  } finally {
    await admin.end();
  }
  // Let the pool hear that its idle connections were ended before the next query takes one.
  await new Promise((r) => setTimeout(r, 300));
}

const fail = (p: Promise<unknown>) => p.then(() => { throw new Error('the sync should have failed'); }, (e: unknown) => e as RostergateError);

describe('driver errors that are store conditions', () => {
  it('maps SQLite and PostgreSQL codes, through wrappers, keeping the page\'s source and resource', () => {
    expect(storeCondition({ code: 'SQLITE_FULL' })).toEqual({ condition: 'full', code: 'SQLITE_FULL' });
    expect(storeCondition({ code: '53100' })).toEqual({ condition: 'full', code: '53100' });
    expect(storeCondition({ code: 'SQLITE_READONLY_DBMOVED' })?.condition).toBe('read-only');
    expect(storeCondition({ code: '25006' })?.condition).toBe('read-only');
    expect(storeCondition({ code: 'SQLITE_IOERR_WRITE' })?.condition).toBe('io');
    expect(storeCondition({ code: 'SQLITE_CONSTRAINT' })).toBeUndefined();
    const wrapped = new RostergateError('STORE', 'could not store a person record', { source: 'sis', resource: 'users', record: 'person #3' }, { cause: { code: '53100' } });
    const e = storeConditionError(wrapped, 'the PostgreSQL store')!;
    expect(e.code).toBe('STORE_FULL');
    expect(e.message).toMatch(/^source sis, resource users: the PostgreSQL store is full \(53100\): free space on its disk .*nothing from it .* was committed$/);
  });
});

describe.each(storeKinds())('a store that cannot write (%s)', (kind: StoreKind) => {
  async function synced() {
    const ds = RosterDataset.generate({ students: 20, teachers: 2, classes: 3, schools: 1 });
    const store = await openTestStore(kind);
    cleanups.push(() => store.close());
    expect((await syncSource(store, directConnector('sis', ds))).status).toBe('complete');
    return { store, ds };
  }

  if (kind === 'sqlite') {
    it('a full disk fails the sync as STORE_FULL, commits nothing of the page, turns /readyz 503 until space is freed, and the next run completes', async () => {
      const { store, ds } = await synced();
      const ready = await gatewayOver(store);
      expect(await ready()).toBe(200);
      const before = await store.counts();
      // The database may not grow past its current size: as a full disk, to SQLite.
      const w = writerOf(store);
      w.pragma(`max_page_count = ${Number(w.pragma('page_count', { simple: true }))}`);
      for (let i = 0; i < 200; i++) ds.upsert('person', `new-${i}`, { ...ds.list('person')[0]!.data, sisId: `S-new-${i}`, email: undefined, givenName: 'X'.repeat(2000) });
      const e = await fail(syncSource(store, directConnector('sis', ds)));
      expect(e.code).toBe('STORE_FULL');
      expect(e.message).toMatch(/^source sis, resource \w+: the SQLite store at .*rg\.db is full \(SQLITE_FULL\): free space on its disk/);
      expect(e.message).not.toContain('no transaction is active');
      expect(await store.counts()).toEqual(before);
      expect(await ready()).toBe(503);
      w.pragma('max_page_count = 1073741823');
      expect(await ready()).toBe(200);
      const next = await syncSource(store, directConnector('sis', ds));
      expect(next.status).toBe('complete');
      expect((await store.counts()).person).toBe(ds.list('person').length);
    });
  }

  if (kind === 'sqlite') {
    it('/readyz stays 200 while another process holds the write lock (a sync writing a page): the probe does not wait for it', async () => {
      const { store } = await synced();
      const ready = await gatewayOver(store);
      const other = new Database(writerOf(store).name);
      try {
        other.exec('BEGIN IMMEDIATE');
        const t0 = Date.now();
        expect(await ready()).toBe(200);
        expect(Date.now() - t0).toBeLessThan(1_500);
      } finally {
        if (other.inTransaction) other.exec('ROLLBACK');
        other.close();
      }
    });
  }

  it('a read-only store fails the sync as STORE_READ_ONLY, turns /readyz 503, and 200 again once it takes writes; the next run completes', async () => {
    const { store, ds } = await synced();
    const ready = await gatewayOver(store);
    expect(await ready()).toBe(200);
    const before = await store.counts();
    if (kind === 'sqlite') writerOf(store).pragma('query_only = ON');
    else await setPostgresReadOnly(store, true);
    ds.upsert('person', 'late-arrival', { ...ds.list('person')[0]!.data, sisId: 'S-late', email: undefined });
    const e = await fail(syncSource(store, directConnector('sis', ds)));
    expect(e.code).toBe('STORE_READ_ONLY');
    expect(e.message).toMatch(kind === 'sqlite'
      ? /the SQLite store at .*rg\.db refuses writes \(SQLITE_READONLY\): it is read-only .*nothing from it .* was committed$/
      : /the PostgreSQL store refuses writes \(25006\): it is read-only .*nothing from it .* was committed$/);
    expect(await store.counts()).toEqual(before);
    expect(await ready()).toBe(503);
    if (kind === 'sqlite') writerOf(store).pragma('query_only = OFF');
    else await setPostgresReadOnly(store, false);
    expect(await ready()).toBe(200);
    const next = await syncSource(store, directConnector('sis', ds));
    expect(next.status).toBe('complete');
    expect((await store.counts()).person).toBe(ds.list('person').length);
  });
});
