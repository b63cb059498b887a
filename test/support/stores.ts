/** Test helpers: a synced store from a generated district, through the engine (no vendor format). */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { RosterDataset } from '../../src/demo/dataset.ts';
import { directConnector } from '../../src/demo/direct-connector.ts';
import type { DistrictOptions } from '../../src/demo/generator.ts';
import { SqliteStore } from '../../src/store/sqlite.ts';
import { syncSource } from '../../src/sync/runner.ts';

export function tempDir(prefix = 'rostergate-test-'): string {
  return mkdtempSync(join(tmpdir(), prefix));
}

export async function syncedStore(district: DistrictOptions = {}, path = ':memory:') {
  const dataset = RosterDataset.generate(district);
  const store = SqliteStore.open(path);
  await syncSource(store, directConnector('demo', dataset));
  return { store, dataset };
}
