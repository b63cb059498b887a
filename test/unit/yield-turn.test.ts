/**
 * Long synchronous work hands the event loop back (src/kernel/yield-turn.ts): a sync's group of
 * pages is planned, written and committed in one transaction, synchronously on SQLite, and the
 * pages read ahead or a gateway in the same process must get their turn meanwhile. A store whose
 * reads would see the open transaction's writes (in-memory SQLite: one connection) never yields.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { RosterDataset } from '../../src/demo/dataset.ts';
import { directConnector } from '../../src/demo/direct-connector.ts';
import { YIELD_EVERY_MS, yieldIfBusy } from '../../src/kernel/yield-turn.ts';
import { SqliteStore } from '../../src/store/sqlite.ts';
import type { Store } from '../../src/store/types.ts';
import { syncSource } from '../../src/sync/runner.ts';
import { openTestStore, storeKinds } from '../support/stores.ts';

const busy = (ms: number) => {
  const end = performance.now() + ms;
  while (performance.now() < end);
};

describe('yieldIfBusy', () => {
  it('hands the turn back only after YIELD_EVERY_MS of work that kept the loop', async () => {
    let ran = 0;
    await new Promise((r) => setImmediate(r));
    await yieldIfBusy(); // starts the clock (the loop just had its turn)
    setImmediate(() => ran++);
    await yieldIfBusy(); // no time has passed: no hand-back, the callback has not run
    expect(ran).toBe(0);
    busy(YIELD_EVERY_MS + 5);
    await yieldIfBusy();
    expect(ran).toBe(1);
  });

  it('restarts the clock, without a hand-back, when the loop has had a turn since', async () => {
    await yieldIfBusy();
    busy(YIELD_EVERY_MS + 5);
    await new Promise((r) => setTimeout(r, 5)); // the loop turned (as awaiting I/O does)
    let ran = 0;
    setImmediate(() => ran++);
    await yieldIfBusy();
    expect(ran).toBe(0);
  });
});

/**
 * Syncs a district in one group (one transaction) and counts the turns of a probe on the event
 * loop that ran while that transaction was open.
 */
async function turnsDuringSync(store: Store): Promise<number> {
  const ds = RosterDataset.generate({ students: 400 });
  let open = false;
  const tx = store.transaction.bind(store);
  store.transaction = ((fn: Parameters<Store['transaction']>[0]) => tx(async (t) => {
    open = true;
    try {
      return await fn(t);
    } finally {
      open = false;
    }
  })) as Store['transaction'];
  let turns = 0;
  let probing = true;
  const probe = () => {
    if (open) turns++;
    if (probing) setImmediate(probe);
  };
  setImmediate(probe);
  try {
    const r = await syncSource(store, directConnector('demo', ds), { groupRecords: 1_000_000 });
    expect(r.status).toBe('complete');
  } finally {
    probing = false;
  }
  return turns;
}

let stores: Store[] = [];
afterEach(async () => {
  for (const s of stores) await s.close();
  stores = [];
});

describe.each(storeKinds())('a sync hands the event loop back while it applies a group (%s)', (kind) => {
  it('lets other work in the process run during its transaction', async () => {
    const store = await openTestStore(kind);
    stores.push(store);
    expect(await turnsDuringSync(store)).toBeGreaterThan(0);
  });
});

describe('an in-memory SQLite store', () => {
  it('does not hand the loop back inside a transaction: its one connection would show the writes early', async () => {
    const store = SqliteStore.open(':memory:');
    stores.push(store);
    expect(await turnsDuringSync(store)).toBe(0);
  });
});
