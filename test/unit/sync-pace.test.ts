/**
 * `sync.workShare` (src/sync/pace.ts): a run rests after each group in proportion to the group's
 * work, so it applies records for at most that share of the wall-clock time; an abort cuts a rest
 * short; the store ends the same as an unpaced run's, and the summary says how long it rested.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { parseConfig } from '../../src/config/config.ts';
import { RosterDataset } from '../../src/demo/dataset.ts';
import { directConnector } from '../../src/demo/direct-connector.ts';
import type { Store } from '../../src/store/types.ts';
import { pacer, type PacerDeps } from '../../src/sync/pace.ts';
import { formatSummary } from '../../src/sync/progress.ts';
import { syncSource } from '../../src/sync/runner.ts';
import { openTestStore } from '../support/stores.ts';

/** A clock that moves only when told to, and a sleep that moves it by what was asked. */
function fakeTime(): PacerDeps & { at: number; slept: number[] } {
  const t = {
    at: 0,
    slept: [] as number[],
    now: () => t.at,
    sleep: async (ms: number) => {
      t.slept.push(ms);
      t.at += ms;
    },
  };
  return t;
}

describe('pacing a sync to a share of the time', () => {
  it('rests (1 / share − 1) times the work since begin, and counts what it rested', async () => {
    const t = fakeTime();
    const p = pacer(0.25, undefined, t);
    p.begin();
    t.at += 100;
    await p.rest();
    p.begin();
    t.at += 40;
    await p.rest();
    expect(t.slept).toEqual([300, 120]);
    expect(p.restedMs).toBe(420);
    // Work over rest plus work: the share asked for.
    expect(140 / (140 + p.restedMs)).toBeCloseTo(0.25);
  });

  it('a share of 1 never rests, nor does a rest without work begun', async () => {
    const t = fakeTime();
    const full = pacer(1, undefined, t);
    full.begin();
    t.at += 500;
    await full.rest();
    const half = pacer(0.5, undefined, t);
    await half.rest();
    expect(t.slept).toEqual([]);
    expect(full.restedMs + half.restedMs).toBe(0);
  });

  it('refuses a share outside (0, 1]', () => {
    for (const s of [0, -0.5, 1.5, Number.NaN]) expect(() => pacer(s)).toThrow(/work share/);
  });

  it('an abort ends a rest at once', async () => {
    const abort = new AbortController();
    const p = pacer(0.001, abort.signal);
    p.begin();
    await new Promise((r) => setTimeout(r, 20));
    // 20 ms of work at a share of 0.001 asks for a rest of about 20 s.
    const t0 = performance.now();
    setTimeout(() => abort.abort(), 30);
    await p.rest();
    expect(performance.now() - t0).toBeLessThan(5_000);
  });

  it('sync.workShare: default 1, more than 0 and at most 1', () => {
    expect(parseConfig({}, 'cfg.yaml').sync.workShare).toBe(1);
    expect(parseConfig({ sync: { workShare: 0.3 } }, 'cfg.yaml').sync.workShare).toBe(0.3);
    expect(() => parseConfig({ sync: { workShare: 0 } }, 'cfg.yaml')).toThrow(/cfg\.yaml: sync\.workShare: /);
    expect(() => parseConfig({ sync: { workShare: 1.5 } }, 'cfg.yaml')).toThrow(/cfg\.yaml: sync\.workShare: /);
  });
});

describe('a paced sync', () => {
  let stores: Store[] = [];
  afterEach(async () => {
    for (const s of stores) await s.close();
    stores = [];
  });

  it('rests between groups and stores what an unpaced run stores', async () => {
    const dataset = RosterDataset.generate({ students: 40 });
    const [paced, unpaced] = [await openTestStore('sqlite'), await openTestStore('sqlite')];
    stores.push(paced, unpaced);
    const started = performance.now();
    const a = await syncSource(paced, directConnector('demo', dataset), { groupRecords: 50, workShare: 0.5 });
    const elapsed = performance.now() - started;
    const b = await syncSource(unpaced, directConnector('demo', dataset), { groupRecords: 50 });
    expect(a.status).toBe('complete');
    expect(a.counters).toEqual(b.counters);
    expect(a.records).toBe(b.records);
    // It rested, for less than the whole run (the rest was work), and says so.
    expect(a.restedMs).toBeGreaterThan(0);
    expect(a.restedMs!).toBeLessThan(elapsed);
    expect(b.restedMs).toBeUndefined();
    expect(formatSummary(a)).toMatch(/rested \d+\.\d s between groups \(sync\.workShare\)/);
    expect(formatSummary(b)).not.toMatch(/rested/);
    const count = async (s: Store, type: 'person' | 'enrollment') => (await s.list({ type, first: 1 })).count();
    for (const type of ['person', 'enrollment'] as const) expect(await count(paced, type)).toBe(await count(unpaced, type));
  });

  it('commits smaller groups, by the same share, so work and rests alternate in short steps', async () => {
    const dataset = RosterDataset.generate({ students: 200 });
    const transactions = async (workShare?: number) => {
      const store = await openTestStore('sqlite');
      stores.push(store);
      let n = 0;
      const tx = store.transaction.bind(store);
      store.transaction = ((fn: Parameters<Store['transaction']>[0]) => (n++, tx(fn))) as Store['transaction'];
      const s = await syncSource(store, directConnector('demo', dataset, { pageSize: 50 }), workShare ? { workShare } : {});
      expect(s.status).toBe('complete');
      return { n, records: s.records };
    };
    const unpaced = await transactions();
    const paced = await transactions(0.05);
    // 5,000 × 0.05 = 250 records a group: at least one commit per 250 records.
    expect(paced.n).toBeGreaterThan(unpaced.n);
    expect(paced.n).toBeGreaterThanOrEqual(Math.floor(paced.records / 250));
  });
});
