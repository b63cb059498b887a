/**
 * The district the read benches (extract, serving, consumers) sync and read: one shape, one place.
 * Staff, classes and schools scale with the students as in a real district (19 students a teacher,
 * 4.5 students a class, 500 a school), so a figure at 50,000 students means the same in each bench.
 */
import { RosterDataset } from '../src/demo/dataset.ts';
import { directConnector } from '../src/demo/direct-connector.ts';
import type { Privacy } from '../src/graphql/privacy.ts';
import type { Store } from '../src/store/types.ts';
import { syncSource } from '../src/sync/runner.ts';

export function benchDistrict(students: number): RosterDataset {
  return RosterDataset.generate({ students, teachers: Math.round(students / 19), classes: Math.round(students / 4.5), schools: Math.max(3, Math.round(students / 500)) });
}

/** Syncs the district into `store` straight from the generator (no HTTP), with the purposes' privacy work. */
export async function syncDistrict(store: Store, privacy: Privacy, students: number): Promise<{ records: number; seconds: number }> {
  const district = benchDistrict(students);
  const ingest = await privacy.ingest(store);
  const t = Date.now();
  const s = await syncSource(store, directConnector('bench', district, { pageSize: 2000 }), { ...ingest });
  return { records: s.records, seconds: (Date.now() - t) / 1000 };
}

/**
 * Whether a kept store (`--store`, `--pg-store`) already holds a district. One that does is read as
 * it is; an empty one is synced first and then kept, so a 50,000-student district is synced once for
 * any number of runs, on either database.
 */
export async function holdsDistrict(store: Store): Promise<boolean> {
  return (await store.counts(['person']))['person'] > 0;
}
