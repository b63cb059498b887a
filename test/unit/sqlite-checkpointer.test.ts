/**
 * WAL checkpoints on a thread of their own (src/store/sqlite-checkpointer.ts): a file store's
 * commits are checkpointed by the thread, everything committed is in the database after it, and a
 * thread that cannot run hands the checkpoints back to the writer.
 */
import { mkdtempSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { BackgroundCheckpointer, checkpointThread } from '../../src/store/sqlite-checkpointer.ts';
import { SqliteStore } from '../../src/store/sqlite.ts';

const stores: SqliteStore[] = [];
afterEach(async () => {
  for (const s of stores.splice(0)) await s.close();
});

function fileStore(): { store: SqliteStore; path: string } {
  const path = join(mkdtempSync(join(tmpdir(), 'rostergate-ckpt-')), 'rg.db');
  const store = SqliteStore.open(path);
  stores.push(store);
  return { store, path };
}

/** Commits `n` transactions of one entity each, with ~8 KiB of data (a few pages per commit). */
async function commit(store: SqliteStore, n: number, from = 0): Promise<void> {
  for (let i = from; i < from + n; i++) {
    await store.transaction((tx) => tx.putEntity({ id: `org_ckpt${i}`, type: 'org', data: { name: `Synthetic school ${i}`, note: 'x'.repeat(8000) }, updatedAt: '2026-12-05T00:00:00.000Z', updatedSeq: i + 1 }));
  }
}

describe('background WAL checkpoints (SQLite file store)', () => {
  it('checkpoints every commit on the thread, so all committed frames reach the database file', async () => {
    const { store, path } = fileStore();
    await commit(store, 40);
    await store.walCheckpoints()!.idle;
    const { stats } = store.walCheckpoints()!;
    expect(stats.error).toBeUndefined();
    expect(stats.runs).toBeGreaterThan(0);
    // Nothing else reads or writes: the last checkpoint copied every frame of the WAL.
    expect(stats.last!.walFrames).toBeGreaterThan(0);
    expect(stats.last!.checkpointedFrames).toBe(stats.last!.walFrames);
    // The pages are in the database file itself, not only in the WAL (the writer's own checkpoint
    // would not have run: 40 commits of a few pages stay far below its backstop).
    expect(statSync(path).size).toBeGreaterThan(40 * 8000);
  });

  it('keeps checkpointing while a sync-sized stream of commits goes on, and loses nothing on close and reopen', async () => {
    const { store, path } = fileStore();
    await commit(store, 30);
    await commit(store, 30, 30);
    await store.close();
    stores.splice(stores.indexOf(store), 1);
    const again = SqliteStore.open(path);
    stores.push(again);
    const rows = await again.getEntities(Array.from({ length: 60 }, (_, i) => `org_ckpt${i}`));
    expect(rows.filter(Boolean)).toHaveLength(60);
  });

  it('one thread serves every file store of the process, the same file opened twice included, and ends with the last', async () => {
    const a = fileStore();
    const b = fileStore();
    const twice = SqliteStore.open(a.path);
    stores.push(twice);
    await commit(a.store, 3);
    await commit(b.store, 3);
    await commit(twice, 3, 100);
    await Promise.all([a.store, b.store, twice].map((s) => s.walCheckpoints()!.idle));
    expect(checkpointThread()).toEqual({ running: true, stores: 3 });
    for (const s of [a.store, b.store, twice]) expect(s.walCheckpoints()!.stats.runs).toBeGreaterThan(0);
    // One store closing leaves the others their checkpoints.
    await a.store.close();
    stores.splice(stores.indexOf(a.store), 1);
    const before = b.store.walCheckpoints()!.stats.runs;
    await commit(b.store, 1, 50);
    await b.store.walCheckpoints()!.idle;
    expect(b.store.walCheckpoints()!.stats.runs).toBe(before + 1);
    expect(checkpointThread()).toEqual({ running: true, stores: 2 });
    for (const s of stores.splice(0)) await s.close();
    expect(checkpointThread()).toEqual({ running: false, stores: 0 });
  });

  it('does not start a thread for a store in memory', async () => {
    const store = SqliteStore.open(':memory:');
    stores.push(store);
    await commit(store, 2);
    expect(store.walCheckpoints()).toBeUndefined();
  });

  it('a thread that cannot open the store gives the checkpoints back to the writer, once', async () => {
    const failures: string[] = [];
    const c = new BackgroundCheckpointer(join(tmpdir(), 'rostergate-no-such-dir', 'x', 'rg.db'), (m) => failures.push(m));
    c.committed();
    await c.idle();
    expect(failures).toHaveLength(1);
    expect(c.snapshot().error).toMatch(/directory|open/i);
    // Later commits do not start the thread again.
    c.committed();
    await c.idle();
    expect(failures).toHaveLength(1);
    await c.stop();
  });
});
