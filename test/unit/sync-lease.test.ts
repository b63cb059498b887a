/**
 * One run per source at a time (src/store/lease.ts), on SQLite and PostgreSQL: an overlapping run of
 * the same source is refused naming the holder — nothing it would have deleted is deleted — or
 * waits with `wait`; a live run's heartbeats keep its lease; a crashed holder's lease expires (at
 * once when it was a process on this machine that is gone); other sources run in parallel.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { hostname } from 'node:os';
import { RosterDataset } from '../../src/demo/dataset.ts';
import { directConnector } from '../../src/demo/direct-connector.ts';
import { RostergateError } from '../../src/errors.ts';
import type { LeaseRow, Store } from '../../src/store/types.ts';
import { syncSource } from '../../src/sync/runner.ts';
import type { Connector } from '../../connectors/types.ts';
import { openTestStore, storeKinds, type StoreKind } from '../support/stores.ts';

const stores: Store[] = [];
afterEach(async () => {
  while (stores.length) await stores.pop()!.close();
});

/** A connector that stops before its second page until `open()` is called, and says when it got there. */
function gated(c: Connector) {
  let open!: () => void;
  let reached!: () => void;
  const gate = new Promise<void>((r) => (open = r));
  const waiting = new Promise<void>((r) => (reached = r));
  const connector: Connector = {
    ...c,
    async *read(state, opts) {
      let i = 0;
      for await (const p of c.read(state, opts)) {
        if (i++ === 1) {
          reached();
          await gate;
        }
        yield p;
      }
    },
  };
  return { connector, open, waiting };
}

const refused = (p: Promise<unknown>) => p.then(() => { throw new Error('the run should have been refused'); }, (e: unknown) => e as RostergateError);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe.each(storeKinds())('source leases on %s', (kind: StoreKind) => {
  async function setup() {
    const store = await openTestStore(kind);
    stores.push(store);
    const ds = RosterDataset.generate({ students: 40, teachers: 3, classes: 4, schools: 1 });
    return { store, ds, district: () => directConnector('sis', ds, { pageSize: 20 }) };
  }

  it('a second run of a source while one runs is refused naming source and holder, and deletes nothing even past the guard', async () => {
    const { store, ds, district } = await setup();
    expect((await syncSource(store, district())).status).toBe('complete');
    const before = await store.counts();
    const first = gated(district());
    const running = syncSource(store, first.connector, { full: true });
    await first.waiting;
    // A run that sees only a sliver of the district, allowed to delete: interleaved, it would delete most records.
    const sliver = RosterDataset.generate({ students: 3, teachers: 1, classes: 1, schools: 1 });
    const e = await refused(syncSource(store, directConnector('sis', sliver), { full: true, allowMassDelete: true }));
    expect(e.code).toBe('SYNC_BUSY');
    expect(e.message).toMatch(new RegExp(`^source sis: another run \\(host ${hostname()}, pid ${process.pid}, since \\d{4}-\\d\\d-\\d\\dT[\\d:.]+Z\\) is syncing it; .*pass --wait`));
    first.open();
    expect((await running).status).toBe('complete');
    expect(await store.counts()).toEqual(before);
    expect((await store.counts()).person).toBe(ds.list('person').length);
  });

  it('with wait, the second run starts once the first has ended', async () => {
    const { store, district } = await setup();
    const first = gated(district());
    const order: string[] = [];
    const running = syncSource(store, first.connector, { hooks: { syncDidEnd: () => void order.push('first ended') } });
    await first.waiting;
    const second = syncSource(store, district(), { lease: { wait: true, pollMs: 20 }, hooks: { syncWillStart: () => void order.push('second started') } });
    await sleep(150);
    expect(order).toEqual([]);
    first.open();
    await running;
    expect((await second).status).toBe('complete');
    expect(order).toEqual(['first ended', 'second started']);
  });

  it('heartbeats keep a live run\'s lease past its TTL; runs of other sources proceed meanwhile', { timeout: 60_000 }, async () => {
    const { store, ds, district } = await setup();
    const first = gated(district());
    const running = syncSource(store, first.connector, { lease: { ttlMs: 150, heartbeatMs: 30 } });
    await first.waiting;
    await sleep(400);
    expect((await refused(syncSource(store, district()))).code).toBe('SYNC_BUSY');
    expect((await syncSource(store, directConnector('other-sis', ds, { pageSize: 20 }))).status).toBe('complete');
    first.open();
    expect((await running).status).toBe('complete');
  });

  it('a run whose lease another run took over (it missed its heartbeats) stops at its next page, naming the new holder', async () => {
    const { store, district } = await setup();
    const first = gated(district());
    const running = syncSource(store, first.connector, { full: true, lease: { ttlMs: 60_000, heartbeatMs: 30 } });
    await first.waiting;
    await store.transaction(async (tx) => tx.putLease({ ...(await tx.getLease('sis'))!, token: 'newer-run', holderHost: 'sync-worker-2', holderPid: 77 }));
    await sleep(200);
    first.open();
    const e = await refused(running);
    expect(e.code).toBe('SYNC_BUSY');
    expect(e.message).toMatch(/^source sis: another run \(host sync-worker-2, pid 77, since .*\) took the lease over/);
    // The newer holder's lease, and the sync state it now owns, are left alone.
    expect((await store.transaction((tx) => tx.getLease('sis')))?.token).toBe('newer-run');
    expect((await store.getSyncState('sis'))?.runStatus).toBe('running');
  });

  it('a crashed holder\'s lease expires and is taken over; a holder process on this machine that is gone is taken over at once', async () => {
    const { store, district } = await setup();
    const now = Date.now();
    const lease = (l: Partial<LeaseRow>): LeaseRow => ({
      key: 'sis', token: 'crashed-run', holderHost: 'sync-worker-2', holderPid: 4242,
      acquiredAt: new Date(now - 600_000).toISOString(), heartbeatAt: new Date(now).toISOString(), expiresAt: new Date(now + 400).toISOString(), ...l,
    });
    // Another machine's run, its last heartbeat just now: refused until the lease expires.
    await store.transaction((tx) => tx.putLease(lease({})));
    const e = await refused(syncSource(store, district()));
    expect(e.message).toMatch(/^source sis: another run \(host sync-worker-2, pid 4242, since .*\) is syncing it; its lease runs to /);
    await sleep(Math.max(0, now + 450 - Date.now()));
    expect((await syncSource(store, district())).status).toBe('complete');
    expect(await store.transaction((tx) => tx.getLease('sis'))).toBeUndefined();

    // A process of this machine that has exited, its lease still far from expiry.
    const gone = spawnSync(process.execPath, ['-e', '']).pid!;
    await store.transaction((tx) => tx.putLease(lease({ holderHost: hostname(), holderPid: gone, expiresAt: new Date(Date.now() + 60_000).toISOString() })));
    expect((await syncSource(store, district())).status).toBe('complete');
  });
});
