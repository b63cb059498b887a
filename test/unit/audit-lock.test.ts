/**
 * The audit log's write lock of its own (TransactionOptions in src/store/types.ts): on PostgreSQL a
 * served request's audit entry commits while a sync's group holds the roster's lock, where it used
 * to wait for the group to commit; a roster transaction refuses the audit log and the ledger, so
 * nothing it writes can interleave with a group commit of entries; and two appends from one head
 * cannot both commit, whatever lock each took (an older replica's). On SQLite, with one writer, an
 * entry still waits: that is checked too, so the difference is deliberate, not an accident.
 */
import { afterEach, describe, expect, it } from 'vitest';
import pg from 'pg';
import { AuditLog, type AuditInput } from '../../src/privacy/audit.ts';
import { KeyRing } from '../../src/privacy/pseudonym.ts';
import type { Store, StoreTx, TransactionOptions } from '../../src/store/types.ts';
import { RosterDataset } from '../../src/demo/dataset.ts';
import { directConnector } from '../../src/demo/direct-connector.ts';
import { syncSource } from '../../src/sync/runner.ts';
import { openTestStore, storeKinds } from '../support/stores.ts';

const key = new KeyRing(Buffer.alloc(32, 9), 'lock').auditKey();
const entry = (i: number): AuditInput => ({
  at: new Date(Date.UTC(2026, 11, 6, 10, 0, i)).toISOString(), client: 'c', purpose: 'p', kind: 'query', operation: `Op${i}`, operationHash: null, categories: {}, fields: [], people: 1,
});

/** Whether `p` settles within `ms`. */
const settlesWithin = (p: Promise<unknown>, ms: number) =>
  Promise.race([p.then(() => true, () => true), new Promise<boolean>((r) => setTimeout(() => r(false), ms))]);

/** A write transaction of `scope` held open (after a first write) until `release()`. */
function heldTransaction(store: Store, scope: TransactionOptions['scope']) {
  let release!: () => void;
  const gate = new Promise<void>((r) => (release = r));
  let started!: () => void;
  const begun = new Promise<void>((r) => (started = r));
  const done = store.transaction(async (tx) => {
    await tx.setSyncState({ source: 'held', state: null, runId: 1, runStatus: 'running', runFull: false, startedAt: '', updatedAt: new Date().toISOString(), error: null });
    started();
    await gate;
  }, scope ? { scope } : undefined);
  return { begun, release, done };
}

describe.each(storeKinds())('the audit log\'s write lock on %s', (kind) => {
  let store: Store;
  afterEach(async () => {
    await store?.close();
  });

  it('a roster transaction refuses the audit log and the disclosure ledger, and writes nothing', async () => {
    store = await openTestStore(kind);
    const attempts: ((tx: StoreTx) => Promise<unknown>)[] = [
      (tx) => tx.lastAudit(),
      (tx) => tx.insertAudit({ ...entry(1), prevHash: 'x', hash: 'y' }),
      (tx) => tx.recordDisclosures('c', ['per_1'], entry(1).at),
      (tx) => tx.eraseTraces(['per_1'], []),
    ];
    for (const attempt of attempts) {
      await expect(store.transaction(attempt, { scope: 'roster' })).rejects.toThrow(/roster transaction may not write/);
    }
    // The same operations in a transaction of no scope, and audit entries in one of the audit's own.
    await store.transaction((tx) => tx.recordDisclosures('c', ['per_1'], entry(1).at));
    const log = new AuditLog(store, key);
    await log.record(entry(2));
    const verified = await new AuditLog(store, key).verify();
    expect(verified.ok).toBe(true);
    expect(verified.entries).toBe(1);
  });

  it('a sync applies its pages in roster transactions', async () => {
    store = await openTestStore(kind);
    const scopes: (string | undefined)[] = [];
    const watched = new Proxy(store, {
      get(target, prop) {
        if (prop === 'transaction') {
          return <T>(fn: (tx: StoreTx) => Promise<T>, opts?: TransactionOptions) => {
            // Where an unscoped one comes from, should one appear.
            scopes.push(opts?.scope ?? new Error().stack!.split('\n')[2]);
            return target.transaction(fn, opts);
          };
        }
        const v = Reflect.get(target, prop, target) as unknown;
        return typeof v === 'function' ? v.bind(target) : v;
      },
    });
    const summary = await syncSource(watched, directConnector('lock', RosterDataset.generate({ students: 30 }), { pageSize: 20 }), { groupRecords: 20 });
    expect(summary.status).toBe('complete');
    // The lease, the run's opening state, a transaction per group of pages (a page each here), the
    // last one that resolves what waited: every one a roster transaction.
    expect(scopes.filter((s) => s === 'roster').length).toBeGreaterThanOrEqual(summary.pages + 2);
    expect(scopes.filter((s) => s !== 'roster')).toEqual([]);
  });

  if (kind === 'postgres') {
    it('an audit entry commits while a roster transaction holds the roster lock, not while one of no scope does', async () => {
      store = await openTestStore(kind);
      const log = new AuditLog(store, key);
      const roster = heldTransaction(store, 'roster');
      await roster.begun;
      expect(await settlesWithin(log.record(entry(1)), 5000)).toBe(true);
      roster.release();
      await roster.done;

      const everything = heldTransaction(store, undefined);
      await everything.begun;
      const waiting = log.record(entry(2));
      expect(await settlesWithin(waiting, 500)).toBe(false);
      everything.release();
      await everything.done;
      await waiting;
      const verified = await log.verify();
      expect(verified).toMatchObject({ ok: true, entries: 2 });
    });

    it('two entries linked to one head cannot both be stored (an older replica appending under the roster lock alone)', async () => {
      store = await openTestStore(kind);
      await new AuditLog(store, key).record(entry(1));
      const c = new pg.Client({ connectionString: (store.location() as { url: string }).url });
      await c.connect();
      try {
        const copy = `INSERT INTO audit_log (at, client, purpose, kind, operation, operation_hash, categories, fields, people, prev_hash, hash)
          SELECT at, client, purpose, kind, operation, operation_hash, categories, fields, people, prev_hash, 'other' FROM audit_log ORDER BY seq DESC LIMIT 1`;
        await expect(c.query(copy)).rejects.toMatchObject({ code: '23505' });
      } finally {
        await c.end();
      }
    });
  } else {
    it('an audit entry waits for a roster transaction (one writer)', async () => {
      store = await openTestStore(kind);
      const log = new AuditLog(store, key);
      const roster = heldTransaction(store, 'roster');
      await roster.begun;
      const waiting = log.record(entry(1));
      expect(await settlesWithin(waiting, 300)).toBe(false);
      roster.release();
      await roster.done;
      await waiting;
      expect(await log.verify()).toMatchObject({ ok: true, entries: 1 });
    });
  }
});
