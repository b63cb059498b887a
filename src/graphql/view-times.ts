/**
 * When each record last changed as each purpose sees it: what `updatedAt` and `updatedSince` show
 * a purpose. A record's own last change would tell an analytics client that a name, an email or a
 * grade within the same band changed at that time, and would make an LMS re-read records whose
 * visible data did not change; so each purpose gets the time of the last change its change feed
 * would show — decided by `toEvent`, the feed's own function, so the two cannot disagree (a
 * visible demographics change moves its person, a created record counts for every purpose that
 * sees its type, a deleted record leaves every view with it).
 *
 * Stored only where a view's time differs from the record's own (docs/data-engine.md, "View times
 * only where they differ"): most changes are seen by every purpose that sees the record (a created
 * record always is), so a first sync writes a row only per person whose demographics a purpose sees.
 * An update a purpose does not see holds that purpose's time where it was (a row with the record's
 * time before the change, unless one is stored); a seen change where it is the record's last drops
 * the row.
 *
 * Maintained at sync time, in the transaction that logs the change (`changeLogged`, applied by the
 * page unit of work's flush); computed from the retained change log for purposes whose policy is
 * new or changed (`backfill`, at start-up). A view is read only once computed: its fingerprint is
 * stored (the store's `viewTimes` and `list` answer nothing for it before), so the records' own
 * times never stand in for a view that was never built.
 * Sync reaches it only through the `changeLogged` hook it is given, so it sits with `updatedAt`.
 */
import { createHash } from 'node:crypto';
import { ENTITY_TYPES, type EntityType } from '../model/records.ts';
import type { PurposeView } from './context.ts';
import type { ChangeRow, Store, ViewTime, ViewTimeEffect, ViewTimeRow } from '../store/types.ts';
import { demographicsIdFor } from '../sync/ids.ts';
import { toEvent } from './changes.ts';
import { ENTITY_OF_RECORD_TYPE } from '../model/names.ts';

const BATCH = 1000;
/** Bumped when what counts as visible changes in code, so stored views are recomputed. */
const VISIBILITY_VERSION = 1;

/** A purpose's view, named by the purpose id. */
export type NamedView = PurposeView & { name: string; received: Set<string> };

/** The record whose view time a change moves (a demographics change moves its person), or undefined when the purpose does not see the change. */
function movedBy(view: NamedView, row: ChangeRow): { entityId: string; type: EntityType } | undefined {
  const ev = toEvent(row, view.feeds, view.received, view.typeVisible);
  if (!ev || ev.op === 'DELETED') return undefined;
  return { entityId: ev.entityId, type: ENTITY_OF_RECORD_TYPE[ev.type]! };
}

/**
 * What a view's times depend on: which stored fields feed which received schema fields (and
 * whether generalised). Two purposes, or two versions of one policy, with the same fingerprint
 * see the same changes.
 */
export function viewFingerprint(view: NamedView): string {
  const parts: string[] = [];
  for (const [type, byField] of view.feeds) {
    for (const [stored, fed] of byField) {
      for (const f of fed) if (view.received.has(f.coordinate)) parts.push(`${type}.${stored}>${f.coordinate}${f.generalised ? '~' : ''}`);
    }
  }
  return createHash('sha256').update(`v${VISIBILITY_VERSION}\n${parts.sort().join('\n')}`).digest('base64url').slice(0, 22);
}

/** Record types with times in a view: those the purpose sees (demographics count for their person). */
function viewTypes(view: NamedView): EntityType[] {
  return ENTITY_TYPES.filter((t) => t !== 'demographics' && view.typeVisible(t));
}

export class ViewTimes {
  constructor(readonly views: readonly NamedView[]) {}

  /**
   * Ingest policy part (src/store/ingest-policy.ts): what a page's logged changes do to each view's
   * times, in change order: a change the view sees moves its time (a demographics change, its
   * person's); an update of a record it has times of but does not see holds its time while the
   * record's own moves. A deletion removes the record's times with it. The page unit of work turns
   * these into rows, held rows and dropped rows, in the transaction that logs the changes.
   */
  readonly changeLogged = (changes: readonly ChangeRow[]): ViewTimeEffect[] => {
    const out: ViewTimeEffect[] = [];
    for (const row of changes) {
      for (const v of this.views) {
        const moved = movedBy(v, row);
        if (moved) out.push({ view: v.name, ...moved, updatedAt: row.at, updatedSeq: row.seq, seen: true });
        else if (row.op === 'updated' && row.type !== 'demographics' && v.typeVisible(row.type)) {
          out.push({ view: v.name, entityId: row.entityId, type: row.type, updatedAt: row.at, updatedSeq: row.seq, seen: false });
        }
      }
    }
    return out;
  };

  /**
   * Brings every view up to date with the store: a view whose policy changed (or that is new) is
   * recomputed for all its records, and one that matches is left as the syncs kept it; views of
   * purposes no longer configured are dropped, since nothing maintains them. Batched, one
   * transaction per batch; the fingerprint is stored last, so a view is read only once built.
   */
  async backfill(store: Store, now = () => new Date().toISOString()): Promise<{ view: string; rebuilt: boolean; records: number }[]> {
    const stored = await store.viewFingerprints();
    for (const name of stored.keys()) {
      if (!this.views.some((v) => v.name === name)) await store.transaction((tx) => tx.dropView(name));
    }
    const plans = this.views.map((v) => {
      const fingerprint = viewFingerprint(v);
      return { v, fingerprint, types: viewTypes(v), rebuilt: stored.get(v.name) !== fingerprint, records: 0 };
    });
    const rebuilding = plans.filter((p) => p.rebuilt);
    // Every view to rebuild in one walk of the entities, each batch's change log read once for all
    // of them (a first start after a sync from the command line rebuilds every view). A type at a
    // time, in id order: the walk of one type is a range of its index, where a walk of several in
    // one id order made PostgreSQL sort every remaining entity of them for each batch.
    for (const type of ENTITY_TYPES) {
      const views = rebuilding.filter((p) => p.types.includes(type));
      for (let afterId: string | undefined; views.length; ) {
        const n = await store.transaction(async (tx) => {
          const batch = await tx.entitiesForView(type, { afterId, limit: BATCH });
          if (batch.length === 0) return 0;
          const changes = await tx.changesOf(batch.flatMap((e) => (e.type === 'person' ? [e.id, demographicsIdFor(e.id)] : [e.id])));
          let horizon: Promise<ViewTime | undefined> | undefined;
          const horizonOnce = () => (horizon ??= tx.changeHorizon());
          const byId = new Map(batch.map((e) => [e.id, e]));
          for (const p of views) {
            // Rows only where the view's time is not the entity's own, and a stored row goes where it
            // is; nothing is written where the store holds it already (what a sync kept before the
            // view's fingerprint was stored).
            const put: ViewTimeRow[] = [];
            const drop: ViewTimeRow[] = [];
            for (const t of await timesOf(p.v, batch, changes, horizonOnce)) {
              const e = byId.get(t.entityId)!;
              const stored = e.stored?.get(p.v.name);
              if (t.updatedSeq === e.updatedSeq) {
                if (stored !== undefined) drop.push(t);
              } else if (stored !== t.updatedSeq) put.push(t);
            }
            await tx.putViewTimes(put);
            await tx.deleteViewTimes(drop);
            p.records += batch.length;
          }
          afterId = batch[batch.length - 1]!.id;
          return batch.length;
        });
        if (n === 0) break;
      }
    }
    for (const p of rebuilding) {
      await store.transaction(async (tx) => {
        await tx.deleteViewTimesExcept(p.v.name, p.types);
        await tx.setViewFingerprint(p.v.name, p.fingerprint, now());
      });
    }
    return plans.map((p) => ({ view: p.v.name, rebuilt: p.rebuilt, records: p.records }));
  }
}

/**
 * View times of a batch of records from the retained change log: the last change the view sees.
 * Where the log no longer holds one — the record's creation was purged and no visible change is
 * retained, so its last visible change was purged too — the horizon of the log (its oldest
 * retained change): later than the true time, and the same for every such record, so it reveals
 * nothing about changes the purpose does not see (the record's own time would). Never earlier than
 * the true time, so a client polling `updatedSince` may see a record again but misses none.
 */
async function timesOf(view: NamedView, batch: { id: string; type: EntityType }[], changes: readonly ChangeRow[], horizon: () => Promise<ViewTime | undefined>): Promise<ViewTimeRow[]> {
  const found = new Map<string, ViewTime>();
  for (const row of changes) {
    const moved = movedBy(view, row);
    if (moved) found.set(moved.entityId, { updatedAt: row.at, updatedSeq: row.seq });
  }
  const missing = batch.some((e) => !found.has(e.id));
  const bound = missing ? await horizon() : undefined;
  return batch.map((e) => ({ view: view.name, entityId: e.id, type: e.type, ...(found.get(e.id) ?? bound!) }));
}
