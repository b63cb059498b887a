/**
 * The live state behind the vendor sandboxes: the demo district as records that can be changed,
 * with a journal of every change. Each sandbox renders this state in its own vendor's wire
 * format — Clever's Events API, OneRoster's dateLastModified and tobedeleted, Graph's delta links
 * all read the same journal — so tests can change the district and watch an incremental sync.
 */
import type { EntityData, EntityType } from '../model/records.ts';
import { ENTITY_TYPES } from '../model/records.ts';
import { generateDistrict, type District, type DistrictOptions } from './generator.ts';
import type { DatasetRow, DatasetView, JournalEntry } from '../../connectors/dataset-view.ts';

export class RosterDataset implements DatasetView {
  private rows = new Map<EntityType, Map<string, DatasetRow>>();
  private journal: JournalEntry[] = [];
  private clock: () => Date;

  constructor(district: District, opts: { now?: () => Date } = {}) {
    this.clock = opts.now ?? (() => new Date());
    for (const t of ENTITY_TYPES) this.rows.set(t, new Map());
    for (const t of ENTITY_TYPES) {
      for (const r of district[t]) {
        const at = r.lastModified ?? this.clock().toISOString();
        this.rows.get(t)!.set(r.key, { type: t, key: r.key, data: r.data, created: at, lastModified: at });
      }
    }
  }

  static generate(opts: DistrictOptions = {}, clock?: { now?: () => Date }): RosterDataset {
    return new RosterDataset(generateDistrict(opts), clock);
  }

  /** Live (not deleted) rows of a type, in key order (stable paging). Sorted once per version. */
  list<T extends EntityType>(type: T): readonly DatasetRow<T>[] {
    return this.sorted(type).live as readonly DatasetRow<T>[];
  }

  /** All rows including deleted ones, in key order (for sources that report tobedeleted). */
  listWithDeleted<T extends EntityType>(type: T): readonly DatasetRow<T>[] {
    return this.sorted(type).all as readonly DatasetRow<T>[];
  }

  get<T extends EntityType>(type: T, key: string): DatasetRow<T> | undefined {
    const r = this.rows.get(type)!.get(key);
    return r && !r.deletedAt ? (r as DatasetRow<T>) : undefined;
  }

  getWithDeleted<T extends EntityType>(type: T, key: string): DatasetRow<T> | undefined {
    return this.rows.get(type)!.get(key) as DatasetRow<T> | undefined;
  }

  /** Each type's rows in key order as of `seq`; frozen, since every caller shares them. */
  private listings = new Map<EntityType, { seq: number; all: readonly DatasetRow[]; live: readonly DatasetRow[] }>();
  private sorted(type: EntityType) {
    let l = this.listings.get(type);
    if (l?.seq !== this.headSeq) {
      const all = Object.freeze([...this.rows.get(type)!.values()].sort(byKey));
      l = { seq: this.headSeq, all, live: Object.freeze(all.filter((r) => !r.deletedAt)) };
      this.listings.set(type, l);
    }
    return l;
  }

  /** Creates or replaces a record (a partial patch merges into an existing one). */
  upsert<T extends EntityType>(type: T, key: string, patch: Partial<EntityData[T]>): DatasetRow<T> {
    const at = this.tick();
    const existing = this.rows.get(type)!.get(key);
    if (existing && !existing.deletedAt) {
      const previous = existing.data;
      const row = { ...existing, data: { ...existing.data, ...patch } as EntityData[T], lastModified: at };
      this.rows.get(type)!.set(key, row);
      this.record(type, key, 'updated', at, previous);
      return row as DatasetRow<T>;
    }
    const row: DatasetRow<T> = { type, key, data: patch as EntityData[T], created: at, lastModified: at };
    this.rows.get(type)!.set(key, row);
    this.record(type, key, 'created', at);
    return row;
  }

  remove(type: EntityType, key: string): void {
    const existing = this.rows.get(type)!.get(key);
    if (!existing || existing.deletedAt) throw new Error(`no live ${type} ${key} in the dataset`);
    const at = this.tick();
    this.rows.get(type)!.set(key, { ...existing, deletedAt: at, lastModified: at });
    this.record(type, key, 'deleted', at);
  }

  /** Journal entries after `seq` (0 = from the beginning). */
  changesSince(seq: number): readonly JournalEntry[] {
    // Entry i has seq i + 1, so the entries after `seq` start at index `seq`.
    return Number.isInteger(seq) ? this.journal.slice(Math.max(0, seq)) : this.journal.filter((e) => e.seq > seq);
  }

  get headSeq(): number {
    return this.journal.length;
  }

  now(): Date {
    return this.clock();
  }

  private record(type: EntityType, key: string, op: JournalEntry['op'], at: string, previous?: unknown) {
    this.journal.push({ seq: this.journal.length + 1, at, type, key, op, previous });
  }

  /** Strictly increasing timestamps, so `dateLastModified > x` filters never miss a change. */
  private lastTick = 0;
  private tick(): string {
    const t = Math.max(this.clock().getTime(), this.lastTick + 1);
    this.lastTick = t;
    return new Date(t).toISOString();
  }
}

function byKey(a: DatasetRow, b: DatasetRow): number {
  return a.key < b.key ? -1 : a.key > b.key ? 1 : 0;
}
