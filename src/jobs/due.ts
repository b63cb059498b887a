/**
 * Which (tenant, source) syncs are due now: every active tenant's sources that have a schedule,
 * each with the latest slot of its schedule (connectors/schedule.ts). Whether that slot was taken
 * already is the caller's to decide — the job queue's slot claims on PostgreSQL
 * (src/jobs/queue.ts), the last run of the source on SQLite (src/jobs/in-process.ts) — so both
 * follow the same schedule semantics.
 */
import { latestSlot } from '../../connectors/schedule.ts';
import type { Tenants } from '../tenants/tenants.ts';

export interface DueSync {
  tenant: string;
  source: string;
  /** The slot (ISO instant) this sync is for. */
  slot: string;
}

export async function dueSyncs(tenants: Tenants, now: Date): Promise<DueSync[]> {
  const due: DueSync[] = [];
  for (const t of await tenants.list()) {
    // A paused tenant is neither synced nor served: nothing of it is enqueued.
    if (t.status !== 'active') continue;
    for (const s of t.sources) {
      if (!s.schedule) continue;
      const slot = latestSlot(s.schedule, now);
      if (slot) due.push({ tenant: t.id, source: s.id, slot: slot.toISOString() });
    }
  }
  return due;
}

/** The key of a source's jobs and schedule state: its tenant and id. */
export function sourceKey(tenant: string, source: string): string {
  return `${tenant}/${source}`;
}
