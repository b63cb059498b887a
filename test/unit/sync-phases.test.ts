/**
 * Where a sync's time goes (src/sync/phase-clock.ts): the clock is in one phase at a time, so the
 * phases add up to the run; a run that waits on its source, or on another writer's lock, says so;
 * the summary text shows it. Real stores, real waits (timers), lower bounds only.
 */
import { afterEach, describe, expect, it } from 'vitest';
import type { Connector, ConnectorState, Page } from '../../connectors/types.ts';
import { RosterDataset } from '../../src/demo/dataset.ts';
import { directConnector } from '../../src/demo/direct-connector.ts';
import type { Store } from '../../src/store/types.ts';
import { PhaseClock, SYNC_PHASES } from '../../src/sync/phase-clock.ts';
import { formatSummary, timesText } from '../../src/sync/progress.ts';
import { syncSource } from '../../src/sync/runner.ts';
import { openTestStore, storeKinds } from '../support/stores.ts';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const total = (t: Record<string, number>) => SYNC_PHASES.reduce((n, p) => n + t[p]!, 0);

/** The demo district's pages, each delivered `delayMs` after it is asked for (a slow vendor). */
function slowConnector(inner: Connector, delayMs: number): Connector {
  return {
    ...inner,
    async *read(state: ConnectorState | null, opts) {
      for await (const page of inner.read(state, opts) as AsyncIterable<Page>) {
        await sleep(delayMs);
        yield page;
      }
    },
  };
}

describe('PhaseClock', () => {
  it('charges each moment to the phase it was in, and goes back after `during`, even on a failure', async () => {
    let at = 0;
    const c = new PhaseClock('plan', () => at);
    at = 10;
    c.enter('load');
    at = 25;
    await c.during('write', async () => {
      at = 65;
    });
    at = 70;
    await expect(c.during('lock', async () => {
      at = 90;
      throw new Error('boom');
    })).rejects.toThrow('boom');
    at = 100;
    const t = c.totals();
    expect(t).toEqual({ source: 0, check: 0, lock: 20, load: 15 + 5 + 10, plan: 10, write: 40, rest: 0 });
    expect(total(t)).toBe(100);
  });
});

describe.each(storeKinds())('a sync says where its time went (%s)', (kind) => {
  let store: Store | undefined;
  afterEach(async () => {
    await store?.close();
    store = undefined;
  });

  it('adds up to the run, and charges a slow source to `source`', async () => {
    store = await openTestStore(kind);
    const district = RosterDataset.generate({ students: 40, teachers: 3, classes: 6, schools: 2 });
    // A page takes far longer to come than the store takes to write one, even on a busy CI machine
    // (60 ms was not: a slow PostgreSQL worked through most of each wait while the next page came).
    const delayMs = 250;
    const connector = slowConnector(directConnector('slow', district, { pageSize: 100 }), delayMs);
    const t0 = performance.now();
    const s = await syncSource(store, connector);
    const wall = performance.now() - t0;
    expect(s.status).toBe('complete');
    expect(s.pages).toBeGreaterThanOrEqual(3);
    // The clock starts after the lease and the run's state are read, and its whole ms are rounded.
    expect(total(s.times)).toBeLessThanOrEqual(wall + 10);
    expect(total(s.times)).toBeGreaterThan(wall * 0.8);
    // Each page took 250 ms to come, and the store works while the next one is fetched: most of the
    // run is waiting for the source.
    expect(s.times.source).toBeGreaterThan(s.pages * delayMs * 0.5);
    for (const p of SYNC_PHASES) if (p !== 'source') expect(s.times[p]).toBeLessThan(s.times.source);
    expect(formatSummary(s)).toMatch(/\n {2}time \d+\.\d s: source \d+\.\d/);
  });

  it('charges the wait for another writer to `lock`', async () => {
    const st = (store = await openTestStore(kind));
    const district = RosterDataset.generate({ students: 20, teachers: 2, classes: 3, schools: 1 });
    // Another writer takes the lock for 600 ms while the run is under way (as its second page comes).
    let held: Promise<unknown> | undefined;
    const inner = directConnector('waits', district, { pageSize: 40 });
    const connector: Connector = {
      ...inner,
      async *read(state, opts) {
        let n = 0;
        for await (const page of inner.read(state, opts) as AsyncIterable<Page>) {
          if (++n === 2) held = st.transaction(() => sleep(600), { scope: 'roster' });
          yield page;
        }
      },
    };
    const s = await syncSource(st, connector);
    await held;
    expect(s.status).toBe('complete');
    // The run reaches its lock well within the first 200 ms of the other writer's hold.
    expect(s.times.lock).toBeGreaterThanOrEqual(400);
    expect(s.times.lock).toBeGreaterThan(s.times.write);
  });
});

describe('timesText', () => {
  it('shows phases of a tenth of a second or more, and nothing for a run shorter than that', () => {
    expect(timesText({ source: 1234, check: 40, lock: 0, load: 600, plan: 2500, write: 1900, rest: 0 })).toBe('time 6.3 s: source 1.2, load 0.6, plan 2.5, write 1.9');
    expect(timesText({ source: 10, check: 5, lock: 0, load: 20, plan: 30, write: 20, rest: 0 })).toBe('');
  });
});
