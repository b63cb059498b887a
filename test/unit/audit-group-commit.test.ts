/**
 * Group commit of audit entries (src/privacy/group-commit.ts through AuditLog), on SQLite and
 * PostgreSQL: a request's wait ends only once its entry is committed (so an answer never precedes
 * its audit, whatever kills the process); entries queued meanwhile share one transaction and keep
 * one valid chain; a failed commit fails exactly its waiters, writes nothing, and the next entry
 * commits; drain waits for the queue. The store is real; only its `transaction` is gated or made
 * to fail from outside, the way a slow disk or a lost connection would.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { AuditLog, type AuditInput } from '../../src/privacy/audit.ts';
import { KeyRing } from '../../src/privacy/pseudonym.ts';
import type { Store, StoreTx, TransactionOptions } from '../../src/store/types.ts';
import { SqliteStore } from '../../src/store/sqlite.ts';
import { openTestStore, storeKinds } from '../support/stores.ts';

const key = new KeyRing(Buffer.alloc(32, 9), 'gc').auditKey();
const entry = (i: number, client = 'c'): AuditInput => ({
  at: new Date(Date.UTC(2026, 11, 4, 10, 0, i)).toISOString(), client, purpose: 'p', kind: 'query', operation: `Op${i}`, operationHash: null, categories: {}, fields: [], people: 1,
});

/** The store with its `transaction` under the test's control: counted, held before its COMMIT, or failing there. */
function controlled(store: Store) {
  let gate: Promise<void> | undefined;
  let open: () => void = () => undefined;
  const c = {
    transactions: 0,
    failWith: undefined as Error | undefined,
    hold() {
      gate = new Promise((r) => (open = r));
    },
    release() {
      gate = undefined;
      open();
    },
    store: new Proxy(store, {
      get(target, prop) {
        if (prop === 'transaction') {
          return async <T>(fn: (tx: StoreTx) => Promise<T>, opts?: TransactionOptions) => {
            c.transactions++;
            return target.transaction(async (tx) => {
              const out = await fn(tx);
              // After the statements, before COMMIT: held there (a slow commit), or rolled back (a lost connection).
              if (gate) await gate;
              if (c.failWith) throw c.failWith;
              return out;
            }, opts);
          };
        }
        const v = Reflect.get(target, prop, target) as unknown;
        return typeof v === 'function' ? v.bind(target) : v;
      },
    }),
  };
  return c;
}

const tick = () => new Promise((r) => setTimeout(r, 20));

describe.each(storeKinds())('audit group commit on %s', (kind) => {
  let store: Store;
  afterEach(async () => store?.close());

  it('resolves only after the commit, and the entry is then visible to another connection', async () => {
    store = await openTestStore(kind);
    const c = controlled(store);
    const log = new AuditLog(c.store, key);
    c.hold();
    let settled = false;
    const p = log.record(entry(1), ['per_a']).then((seq) => ((settled = true), seq));
    await tick();
    // Written but not committed: no answer may go out yet, and no other reader sees the entry.
    expect(settled).toBe(false);
    expect(await store.auditEntries({})).toHaveLength(0);
    c.release();
    const seq = await p;
    // Another connection (a new process's view of the file, or the pool's) sees it committed.
    // (The SQLite store's file path is private; the test store is a fresh file of its own.)
    const other = kind === 'sqlite' ? SqliteStore.open((store as unknown as { path: string }).path) : store;
    expect((await other.auditEntries({})).map((e) => e.seq)).toEqual([seq]);
    expect(await other.disclosuresOf('per_a')).toEqual([expect.objectContaining({ client: 'c' })]);
    if (other !== store) await other.close();
  });

  it('entries queued during a commit share the next transaction, in order, and the chain verifies', async () => {
    store = await openTestStore(kind);
    const c = controlled(store);
    const log = new AuditLog(c.store, key);
    c.hold();
    const first = log.record(entry(0), ['per_0']);
    await tick();
    const rest = Array.from({ length: 49 }, (_, i) => log.record(entry(i + 1, (i + 1) % 2 === 0 ? 'c' : 'd'), [`per_${i + 1}`]));
    c.release();
    const seqs = await Promise.all([first, ...rest]);
    expect(c.transactions).toBe(2);
    expect(seqs).toEqual([...seqs].sort((a, b) => a - b));
    expect(new Set(seqs).size).toBe(50);
    const entries = await store.auditEntries({});
    expect(entries.map((e) => e.operation)).toEqual(Array.from({ length: 50 }, (_, i) => `Op${i}`));
    expect(await log.verify()).toMatchObject({ ok: true, entries: 50 });
    // Entry n went to client c when n is even, d when odd: its person is ledgered for exactly that client.
    for (let n = 0; n < 50; n++) expect((await store.disclosuresOf(`per_${n}`)).map((d) => d.client)).toEqual([n % 2 === 0 ? 'c' : 'd']);
  });

  it('a failed commit fails every waiter of its batch with the error and writes nothing; the next entry commits', async () => {
    store = await openTestStore(kind);
    const c = controlled(store);
    const log = new AuditLog(c.store, key);
    await log.record(entry(0), ['per_0']);
    c.failWith = new Error('the disk went away');
    c.hold();
    const failing = [log.record(entry(1), ['per_1']), log.record(entry(2), ['per_2'])];
    c.release();
    for (const p of failing) await expect(p).rejects.toThrow('the disk went away');
    expect(await store.auditEntries({})).toHaveLength(1);
    expect(await store.disclosuresOf('per_1')).toEqual([]);
    c.failWith = undefined;
    await log.record(entry(3), ['per_1']);
    expect(await log.verify()).toMatchObject({ ok: true, entries: 2 });
    // The failed entry's people were not remembered as recorded: they are in the ledger now.
    expect(await store.disclosuresOf('per_1')).toHaveLength(1);
  });

  it('drain waits for everything queued', async () => {
    store = await openTestStore(kind);
    const c = controlled(store);
    const log = new AuditLog(c.store, key);
    c.hold();
    const all = Promise.all(Array.from({ length: 10 }, (_, i) => log.record(entry(i))));
    let drained = false;
    const d = log.drain().then(() => (drained = true));
    await tick();
    expect(drained).toBe(false);
    c.release();
    await d;
    expect(await store.auditEntries({})).toHaveLength(10);
    await all;
  });
});
