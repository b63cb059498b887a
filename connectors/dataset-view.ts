/**
 * What vendor sandboxes and drop writers read: a roster dataset with a journal of its changes.
 * The demo's live district (src/demo/dataset.ts) implements it; the connectors only know this shape.
 */
import type { EntityData, EntityType } from '../src/model/records.ts';

export interface DatasetRow<T extends EntityType = EntityType> {
  type: T;
  key: string;
  data: EntityData[T];
  created: string;
  lastModified: string;
  /** Set when the record was removed; the row stays so sources can report the deletion. */
  deletedAt?: string;
}

export interface JournalEntry {
  seq: number;
  at: string;
  type: EntityType;
  key: string;
  op: 'created' | 'updated' | 'deleted';
  /** The record's data before an update (Clever's previous_attributes are derived from it). */
  previous?: unknown;
}

/**
 * What vendor sandboxes and drop writers read: the whole dataset, or a slice of it. Listings are
 * shared, read-only arrays kept in key order until the next change (`headSeq` moves with every
 * change, so it versions the data): a sandbox pages through them without re-sorting the district
 * for each page.
 */
export interface DatasetView {
  list<T extends EntityType>(type: T): readonly DatasetRow<T>[];
  listWithDeleted<T extends EntityType>(type: T): readonly DatasetRow<T>[];
  get<T extends EntityType>(type: T, key: string): DatasetRow<T> | undefined;
  /** A row by key even when it was deleted (sources that report deletions look the old record up). */
  getWithDeleted<T extends EntityType>(type: T, key: string): DatasetRow<T> | undefined;
  changesSince(seq: number): readonly JournalEntry[];
  readonly headSeq: number;
  now(): Date;
}
