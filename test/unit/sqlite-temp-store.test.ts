/**
 * The SQLite writer keeps its temporary files in memory (src/store/sqlite.ts, writerSettings). A
 * multi-row write that may stop half-way keeps a statement journal; past 64 KiB SQLite used to move
 * it into a file in /var/tmp (`etilqs_…`, deleted at once and held open until the transaction ends),
 * one per statement of a page's flush. Seen through /proc: Linux only, which is where CI runs.
 */
import { mkdtempSync, readdirSync, readlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { RosterDataset } from '../../src/demo/dataset.ts';
import { directConnector } from '../../src/demo/direct-connector.ts';
import { SqliteStore } from '../../src/store/sqlite.ts';
import { syncSource } from '../../src/sync/runner.ts';

/** The temporary files SQLite has open in this process now. */
function openTempFiles(): string[] {
  const out: string[] = [];
  for (const fd of readdirSync('/proc/self/fd')) {
    try {
      const target = readlinkSync(`/proc/self/fd/${fd}`);
      if (target.includes('etilqs_')) out.push(target);
    } catch {
      // closed between the listing and the read
    }
  }
  return out;
}

let store: SqliteStore | undefined;
afterEach(async () => {
  await store?.close();
  store = undefined;
});

describe.runIf(process.platform === 'linux')('the SQLite writer\'s temporary files', () => {
  it('a sync large enough for its statements\' journals to pass 64 KiB opens no temporary file', async () => {
    store = SqliteStore.open(join(mkdtempSync(join(tmpdir(), 'rg-temp-store-')), 'rg.db'));
    // Sampled while the sync's transactions are open: a write transaction hands the event loop back
    // every 20 ms (src/kernel/yield-turn.ts), and a statement journal's file stays open until COMMIT.
    const seen = new Set<string>();
    const sample = setInterval(() => openTempFiles().forEach((f) => seen.add(f)), 2);
    let records = 0;
    try {
      const dataset = RosterDataset.generate({ students: 3000 });
      await syncSource(store, directConnector('demo', dataset), { hooks: { pageDidStore: (e) => void (records += e.records) } });
    } finally {
      clearInterval(sample);
    }
    expect(records).toBeGreaterThan(25_000);
    expect([...seen]).toEqual([]);
  }, 120_000);
});
