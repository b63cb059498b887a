/**
 * The Store interface: what the sync engine writes and the GraphQL layer, feeds and extracts read.
 * SQLite (embedded, the default) implements it now; PostgreSQL implements the same interface.
 *
 * Two layers of data:
 * - source records: each source's own version of a record, keyed (source, type, key), with its
 *   content hash and the run that last saw it;
 * - entities: the gateway's unified records, one per real-world thing, with references resolved to
 *   gateway ids. One person entity can have source records from several sources (identity resolution).
 * Every change to an entity appends to the change log, in commit order.
 */
import type { EntityData, EntityType } from '../model/records.ts';
import type { PseudonymOrder, PseudonymOrderedType } from './order.ts';
import type { MemberReads } from './partial-data.ts';

type ResolvedName<K> = K extends `${infer P}Keys` ? `${P}Ids` : K extends `${infer P}Key` ? `${P}Id` : K;
/** Entity data as stored: the source's `xxxKey` references become gateway `xxxId`s. */
export type Resolved<D> = { [K in keyof D as ResolvedName<K & string>]: D[K] };
export type StoredData = { [T in EntityType]: Resolved<EntityData[T]> };

export interface EntityRow<T extends EntityType = EntityType> {
  id: string;
  type: T;
  data: StoredData[T];
  updatedAt: string;
  /** Change-log sequence number of the entity's last change. */
  updatedSeq: number;
  /** Set on a deleted record's last state (a tombstone): `updatedAt` is then its deletion. */
  tombstone?: true;
}

/**
 * When a record last changed as one purpose sees it: the change-log time and seq of the last
 * change visible to the purpose (src/graphql/view-times.ts), or a later bound where the log no
 * longer tells. Stored sparsely: a view holds a row only where its time differs from the entity's
 * own (`updated_at`, `updated_seq`); no row means the entity's own time.
 */
export interface ViewTime {
  updatedAt: string;
  updatedSeq: number;
}

/**
 * The store's own keys of entities a transaction wrote (`entities.k`, docs/data-engine.md "Internal
 * keys"), by id: opaque outside the store, handed back to the same transaction's later writes.
 */
export type EntityKeys = ReadonlyMap<string, number | string>;

/**
 * Which rows of a write the caller knows the store does not hold yet (a record new in this
 * transaction, or deleted earlier in it): those are inserted without a conflict check, the rest
 * inserted or updated. Why: on PostgreSQL an upsert's speculative insertion costs a third more than
 * a plain insert, and most rows of a first sync are new. A row claimed fresh that is stored fails
 * the statement (a unique violation) rather than being written twice.
 */
export interface FreshRows<T> {
  fresh?: (row: T) => boolean;
}

/** One record's time in one purpose's view (`view` is the purpose id). */
export interface ViewTimeRow extends ViewTime {
  view: string;
  entityId: string;
  type: EntityType;
}

/**
 * What one logged change does to one view's time of a record: moves it to the change (`seen`), or
 * leaves it where it was while the record's own time moves (an update the purpose does not see).
 * For a change the view does not see, the time is the change's, kept only for its order.
 */
export interface ViewTimeEffect extends ViewTimeRow {
  seen: boolean;
}

export interface SourceRecordRow {
  source: string;
  type: EntityType;
  key: string;
  entityId: string | null;
  /** The record as the source delivered it (references still as source keys). */
  data: unknown;
  hash: string;
  lastModified: string | null;
  seenRun: number;
}

export interface ChangeRow {
  seq: number;
  at: string;
  entityId: string;
  type: EntityType;
  op: 'created' | 'updated' | 'deleted';
  /** Names of fields whose value changed (for updates), so purpose-filtered feeds can skip irrelevant ones. */
  fields: string[];
  /**
   * For updates that changed a field generalised forms derive from: the generalised fields whose
   * value changed too (e.g. [] when a birth date moved within its year). Absent otherwise, and on
   * changes logged before it was recorded.
   */
  generalised?: string[];
  source: string | null;
  /** For deletions: the entity's last data, so a feed can render a tombstone filtered by purpose. */
  before?: unknown;
}

/** A deletion's last state as an entity row: what a tombstone is rendered from. */
export function tombstoneOf(c: ChangeRow): EntityRow {
  return { id: c.entityId, type: c.type, data: (c.before ?? {}) as EntityRow['data'], updatedAt: c.at, updatedSeq: c.seq, tombstone: true };
}

/**
 * For a deletion that merged the record into another (an operator's `identity link`): the id of
 * the record it now lives on. Kept in the tombstone beside its last state, like a person's pseudonyms.
 */
export function mergedIntoOf(c: ChangeRow): string | undefined {
  if (c.op !== 'deleted') return undefined;
  const v = (c.before as { _mergedInto?: unknown } | undefined)?._mergedInto;
  return typeof v === 'string' ? v : undefined;
}

/**
 * A person's tombstone written by an erasure (`rostergate erase`): it keeps no last state, only the
 * pseudonyms recipients find their copy by, and placeholders for the fields the schema requires.
 */
export function isErasedTombstone(row: EntityRow): boolean {
  return !!row.tombstone && (row.data as { _erased?: unknown })._erased === true;
}

export type SyncRunStatus = 'running' | 'complete' | 'failed' | 'guarded';

export interface SyncStateRow {
  source: string;
  /** Opaque connector state of the last committed page. */
  state: unknown;
  runId: number;
  runStatus: SyncRunStatus;
  runFull: boolean;
  startedAt: string;
  updatedAt: string;
  error: string | null;
}

/**
 * A run's hold on a source (src/store/lease.ts): `key` is the source id — a tenant id would join it
 * once one gateway serves several tenants.
 */
export interface LeaseRow {
  key: string;
  /** Random per run: two runs in one process are told apart. */
  token: string;
  holderHost: string;
  holderPid: number;
  acquiredAt: string;
  heartbeatAt: string;
  /** The lease is free after this (ISO), unless a heartbeat moved it on. */
  expiresAt: string;
}

export interface ListQuery {
  type: EntityType;
  first: number;
  /** Keyset pagination: entities with id greater than this. */
  afterId?: string;
  /** Entities changed at or after this time: their own last change, or with `view` the last one that purpose sees. */
  updatedSince?: string;
  /** The purpose whose view times `updatedSince` compares (see ViewTime); without it, the entities' own. */
  view?: string;
  /** Only entities linked to `to` through `rel` (e.g. classes of a school: rel 'class.school'). */
  linkedTo?: { rel: string; to: string };
  /** Only entities whose JSON array field contains a value (e.g. roles contains 'student'). */
  hasValue?: { field: string; value: string };
  /** Only entities whose scalar field equals a value (e.g. type = 'school'). */
  fieldEquals?: { field: string; value: string };
  /**
   * For people, enrollments and guardianships: list in pseudonym order in this (domain, version)
   * (src/store/order.ts) instead of id order, paging by `afterKey`. Rows whose person has no
   * pseudonym in that version are left out. Ignored for other types.
   */
  order?: PseudonymOrder;
  /** Keyset pagination in pseudonym order: rows whose sort key is greater than this one. */
  afterKey?: string[];
  /**
   * A range of the order's leading key (the person's pseudonym in pseudonym order, else the id):
   * rows whose leading key is greater than `above` and at most `upTo`. A parallel extract cuts a
   * list into such ranges (`leadBoundaries`) and pages each range on its own.
   */
  lead?: { above?: string; upTo?: string };
  /**
   * For people: also read each person's demographics record with the page (`ListResult.demographics`),
   * found by the id rule of `demographicsIdFor` (src/sync/ids.ts). An extract with demographics
   * columns asks, to spare them a lookup per page; a GraphQL request does not pay for the join.
   */
  withDemographics?: boolean;
  /**
   * An extract's reads of the rows' `data` (src/store/partial-data.ts). With `fields`, a row's data
   * may be read only for those members (reading another throws `MemberNotRead`), and is read from
   * the store without the members in `leaveOut` (names as in the model: letters, digits, `_`);
   * without `fields`, the rows are whole. Either way `memberReads` is told of each member read
   * beyond `fields`, and of each whole record's members. A GraphQL request asks for none of this.
   */
  fields?: readonly string[];
  leaveOut?: readonly string[];
  memberReads?: MemberReads;
}

export interface ListResult {
  rows: EntityRow[];
  hasNext: boolean;
  /** How many rows match, all pages together: counted when called (a client asking totalCount). */
  count(): Promise<number>;
  /** With `view` and `updatedSince`: the view times of the rows, read with them (primes the request's loader). */
  times?: Map<string, ViewTime>;
  /** In pseudonym order: each row's sort key (its cursor's position), parallel to `rows`. */
  keys?: string[][];
  /**
   * In pseudonym order: the person whose pseudonym leads each row's key (`keys[i][0]` is that
   * person's pseudonym, read from the same pseudonyms row), parallel to `rows`. A stored person, as
   * the walk's statement saw the store: a pseudonym is stored only while its person is
   * (`StoreTx.putPseudonyms`), so an extract's `person.id` column needs no lookup of them.
   */
  keyPeople?: string[];
  /** Asked for (`ListQuery.withDemographics`) in a list of people: each person's demographics record, undefined where none is stored; parallel to `rows`. */
  demographics?: (EntityRow | undefined)[];
}

/**
 * The children of many parents through one link (enrollments of classes: rel 'enrollment.class'),
 * each parent's list in pseudonym order (src/store/order.ts) and cut to its page in the store, so a
 * nested list reads the rows it returns rather than every child. The sort key takes each person from
 * the row's own data (`personId`; `studentId`, `guardianId`), as the order in memory does
 * (`sortKeyOf`); rows whose person has no pseudonym in the order's version are left out.
 */
export interface LinkedPageQuery {
  /** The link from child to parent, e.g. 'enrollment.class'; its first part is the children's type. */
  rel: string;
  type: PseudonymOrderedType;
  order: PseudonymOrder;
  /** The same filters as a root list's (ListQuery), on the children. */
  hasValue?: { field: string; value: string };
  fieldEquals?: { field: string; value: string };
  first: number;
  /** Each parent's rows whose sort key is greater than this one. */
  afterKey?: string[];
}

/** One parent's page of a LinkedPageQuery: rows in order, their sort keys, and whether more follow. */
export interface LinkedPage {
  rows: EntityRow[];
  keys: string[][];
  hasNext: boolean;
}

export interface IdentityConflict {
  id: number;
  at: string;
  source: string;
  type: EntityType;
  key: string;
  reason: string;
  candidates: string[];
  /** When an operator's link or unlink settled it (null while open). */
  resolvedAt: string | null;
  /** What settled it, e.g. "linked into per_…". */
  resolution: string | null;
}

/** One source's record, as an operator names it. */
export interface SourceRecordRef {
  source: string;
  type: EntityType;
  key: string;
}

/**
 * Set-at-a-time forms of the write transaction's operations, for the sync's page unit of work
 * (src/store/page-unit.ts): a page loads what it needs in a few batched reads and flushes its plan in
 * multi-row statements. Each call means exactly what calling the singular operation once per element,
 * in order, would mean; rows that do not exist are simply absent from a read's answer. Stores chunk
 * large calls to stay under their bound-parameter limits.
 */
export interface BatchTx {
  /**
   * Whether a write's statements go out without waiting for each answer (PostgreSQL, whose server
   * executes them while the process goes on): a sync then also plans its next records while the
   * last ones are written (PageUnit.flushAhead).
   */
  readonly pipelined: boolean;
  /** Source records by (source, type, key); unknown ones are absent. */
  getSourceRecords(refs: readonly SourceRecordRef[]): Promise<SourceRecordRow[]>;
  /** Source records of these entities, in no particular order. */
  sourceRecordsOfEntities(entityIds: readonly string[]): Promise<SourceRecordRow[]>;
  /** Entities by id (inside the transaction: sees its own writes); unknown ones are absent. */
  entitiesById(ids: readonly string[]): Promise<EntityRow[]>;
  /** Links through `rel` to any of `toIds`. */
  linksToMany(rel: string, toIds: readonly string[]): Promise<{ from: string; to: string }[]>;
  /** Person or organisation entities holding any of these match keys. */
  matchKeyEntities(keys: readonly { kind: string; value: string }[]): Promise<{ kind: string; value: string; entityId: string }[]>;
  /** Operators' identity overrides of these source records (those without one are absent). */
  identityOverridesOf(refs: readonly SourceRecordRef[]): Promise<(SourceRecordRef & { entityId: string })[]>;
  /** The entity each of these source records belongs to (null: pending); records not stored are absent. Reads no data. */
  entityIdsOfRecords(refs: readonly SourceRecordRef[]): Promise<(SourceRecordRef & { entityId: string | null })[]>;
  /**
   * Whether the store holds any source record of this source (the first part of their primary key):
   * a sync run asks once, and when none, knows the records it did not write are absent (src/store/run-memo.ts).
   */
  hasSourceRecords(source: string): Promise<boolean>;
  /** Whether an erasure suppressed anything of this source (when not, no record of it needs its suppression key computed). */
  hasSuppressions(source: string): Promise<boolean>;
  /** Which of these (type, keyHash) an erasure suppressed, for one source. */
  suppressedOf(source: string, entries: readonly { type: EntityType; keyHash: string }[]): Promise<{ type: EntityType; keyHash: string }[]>;
  /** The pseudonyms each person holds, domain → value (people without any are absent). */
  pseudonymsOfEntities(entityIds: readonly string[]): Promise<Map<string, Record<string, string>>>;

  /** Inserts or replaces source records (the last of a key in a call wins). */
  putSourceRecords(rows: readonly SourceRecordRow[], opts?: FreshRows<SourceRecordRef>): Promise<void>;
  /** Marks stored source records as seen by a run, and changes nothing else of them (a full sync's unchanged records). */
  markSourceRecordsSeen(runId: number, refs: readonly SourceRecordRef[]): Promise<void>;
  /**
   * Marks seen by a run those of these records that are stored unchanged: the same content hash,
   * an entity, and no reference left unresolved (what a delivered record that changed nothing
   * meets). Gives back the ones marked; reads none of their data.
   */
  markUnchangedSeen(runId: number, delivered: readonly (SourceRecordRef & { hash: string })[]): Promise<SourceRecordRef[]>;
  deleteSourceRecords(refs: readonly SourceRecordRef[]): Promise<void>;
  /**
   * Inserts or updates entities, and gives back their keys (`EntityKeys`) for the writes that follow
   * in the same transaction, so those need not look each id up again.
   */
  putEntities(rows: readonly { id: string; type: EntityType; data: unknown; updatedAt: string; updatedSeq: number }[], opts?: FreshRows<string>): Promise<EntityKeys>;
  deleteEntities(ids: readonly string[]): Promise<void>;
  /**
   * As setLinks for each entry: replaces each entity's outgoing links. `noneStored`: the caller
   * knows the store holds no link from it (a record new in this transaction), so none is deleted
   * and its links are inserted without a conflict check (FreshRows).
   */
  replaceLinks(entries: readonly { fromId: string; links: { rel: string; to: string }[]; noneStored?: boolean }[], keys?: EntityKeys): Promise<void>;
  /** As setMatchKeys for each entry. */
  replaceMatchKeys(entries: readonly { entityId: string; keys: { kind: string; value: string }[] }[]): Promise<void>;
  /**
   * The seq the next change appended gets. Only meaningful under the write lock a transaction
   * holds: a page numbers its changes from it and appends them with appendChanges.
   */
  nextChangeSeq(): Promise<number>;
  /** Appends changes numbered from nextChangeSeq() in order; later appends continue after them. */
  appendChanges(rows: readonly ChangeRow[]): Promise<void>;
}

/** Operations inside one write transaction. All are synchronous-looking but async for PostgreSQL parity. */
export interface StoreTx extends BatchTx {
  /**
   * Hands the event loop back when the work of this transaction has kept it for a while
   * (src/kernel/yield-turn.ts), so that I/O waiting in the process (the next pages of a sync, a
   * gateway's requests) goes on. The transaction stays open and its writes unseen meanwhile; a
   * store where a read could see them (an in-memory SQLite store reads on its one connection)
   * does not yield.
   */
  yieldTurn(everyMs?: number): Promise<void>;
  getSourceRecord(source: string, type: EntityType, key: string): Promise<SourceRecordRow | undefined>;
  putSourceRecord(row: SourceRecordRow): Promise<void>;
  deleteSourceRecord(source: string, type: EntityType, key: string): Promise<void>;
  /** Source records of one entity, in no particular order. */
  sourceRecordsOf(entityId: string): Promise<SourceRecordRow[]>;
  /** Source records of a source and type that the given run did not see (candidates for deletion). */
  unseenSourceRecords(source: string, types: EntityType[], runId: number): Promise<{ type: EntityType; key: string }[]>;
  countSourceRecords(source: string, types: EntityType[]): Promise<number>;
  /** Source records waiting for a reference to resolve. */
  pendingSourceRecords(source: string): Promise<SourceRecordRow[]>;
  /** The entity a source key maps to, if any. */
  resolveKey(source: string, type: EntityType, key: string): Promise<string | undefined>;

  getEntity(id: string): Promise<EntityRow | undefined>;
  putEntity(row: { id: string; type: EntityType; data: unknown; updatedAt: string; updatedSeq: number }): Promise<void>;
  deleteEntity(id: string): Promise<void>;
  /** Replaces the outgoing links of an entity: rel → target ids. */
  setLinks(fromId: string, links: { rel: string; to: string }[]): Promise<void>;
  /** Ids of entities linking to `toId` through `rel`. */
  linksTo(rel: string, toId: string): Promise<string[]>;
  appendChange(c: Omit<ChangeRow, 'seq'>): Promise<number>;
  /** Retained change-log rows of these entities, in seq order. */
  changesOf(entityIds: readonly string[]): Promise<ChangeRow[]>;
  /**
   * A time no purged change is later than: the oldest retained change, or with an empty log the
   * newest change of any entity (undefined: nothing was ever stored).
   */
  changeHorizon(): Promise<ViewTime | undefined>;

  /**
   * Inserts or replaces view times (one row per view and entity in a call); `keys` from putEntities
   * in this transaction. `fresh` (by entity id): entities putEntities inserted in this transaction,
   * which hold no view time yet; only rows named by such a key are inserted without a check.
   * `keepStored`: a row already stored for the view and entity stays as it is (a time held where it
   * was: the stored row is the older, true one).
   */
  putViewTimes(rows: ViewTimeRow[], keys?: EntityKeys, opts?: FreshRows<string> & { keepStored?: boolean }): Promise<void>;
  /** Drops view times that became their entity's own (`keys` from putEntities in this transaction). */
  deleteViewTimes(rows: readonly { view: string; entityId: string }[], keys?: EntityKeys): Promise<void>;
  /**
   * Entities of a type in id order after `afterId`, for (re)computing views: with their own times,
   * and the seq of each view time stored for them (by view; absent where none is).
   */
  entitiesForView(type: EntityType, q: { afterId?: string; limit: number }): Promise<({ id: string; type: EntityType; stored?: ReadonlyMap<string, number> } & ViewTime)[]>;
  /** Drops a view's times of types outside `keep` (a policy that no longer sees them). */
  deleteViewTimesExcept(view: string, keep: EntityType[]): Promise<number>;
  /** Drops a view altogether: its times and its fingerprint. */
  dropView(view: string): Promise<void>;
  setViewFingerprint(view: string, fingerprint: string, at: string): Promise<void>;

  /** Identity match keys (normalised SIS id, email) → person entities. */
  findByMatchKey(kind: string, value: string): Promise<string[]>;
  setMatchKeys(entityId: string, keys: { kind: string; value: string }[]): Promise<void>;
  /** Records a conflict; one found again (same source, record and reason) is open again. */
  addConflict(c: Omit<IdentityConflict, 'id' | 'resolvedAt' | 'resolution'>): Promise<void>;
  /** Marks the open conflicts of a source record resolved; returns how many. */
  resolveConflicts(record: SourceRecordRef, resolution: string, at: string): Promise<number>;
  /** The entity an operator's identity override puts a source record in, if any. */
  identityOverride(record: SourceRecordRef): Promise<string | undefined>;
  setIdentityOverride(record: SourceRecordRef, entityId: string, at: string): Promise<void>;

  setSyncState(row: SyncStateRow): Promise<void>;
  getLease(key: string): Promise<LeaseRow | undefined>;
  /** Inserts or replaces the lease of `row.key`. */
  putLease(row: LeaseRow): Promise<void>;
  /** Drops a lease if `token` still holds it. */
  deleteLease(key: string, token: string): Promise<void>;

  getDomainVersion(domain: string): Promise<number | undefined>;
  setDomainVersion(domain: string, version: number, at: string): Promise<void>;
  /**
   * Stores pseudonyms (a row replaces the one of its domain, version and person), each only where its
   * entity is a stored person: others are dropped. With every deletion of a person taking their
   * pseudonyms along in the same transaction, a stored pseudonym always has its person stored. A walk
   * in pseudonym order relies on that (ListResult.keyPeople).
   */
  putPseudonyms(rows: { domain: string; version: number; entityId: string; value: string }[]): Promise<void>;
  deletePseudonyms(domain: string, version: number): Promise<number>;
  pseudonymsOfEntity(entityId: string): Promise<Record<string, string>>;
  /** Tombstones of deleted people still in the change log, after `afterSeq` in seq order, with the pseudonyms they keep (domain → value). */
  personTombstones(afterSeq: number, limit: number): Promise<{ seq: number; entityId: string; pseudonyms: Record<string, string> }[]>;
  /** Replaces the pseudonyms a person's tombstone keeps (key rotation re-keys them). */
  setTombstonePseudonyms(seq: number, pseudonyms: Record<string, string>): Promise<void>;
  lastAudit(): Promise<{ seq: number; hash: string } | undefined>;
  insertAudit(row: AuditRow): Promise<number>;
  recordDisclosures(client: string, entityIds: string[], at: string): Promise<void>;
  /**
   * Ledger rows of `fromId` become rows of `toId` (earliest first, latest last disclosure kept):
   * `move` takes them away from `fromId` (a merged-away person), else they are copied (a person
   * split off one whose data they received).
   */
  transferDisclosures(fromId: string, toId: string, mode: 'move' | 'copy'): Promise<void>;
  /** Retention (src/privacy/retention.ts): deletes changes older than `beforeIso`, as Store.purgeChanges, inside this transaction. */
  purgeChangesBefore(beforeIso: string): Promise<number>;
  /** Deletes delivered and dead webhook deliveries finished (dead: created) before `beforeIso`; pending ones stay. */
  purgeWebhookDeliveriesBefore(beforeIso: string): Promise<number>;
  /** The newest audit entry written before `beforeIso`, if any. */
  auditLastBefore(beforeIso: string): Promise<{ seq: number; hash: string } | undefined>;
  /**
   * Deletes audit entries through `seq`: the only path past the append-only trigger, which is
   * lifted for this statement inside the caller's transaction and restored before it commits.
   * The caller writes the checkpoint entry first.
   */
  deleteAuditThrough(seq: number): Promise<number>;
  /** Whether an erasure suppressed this source record (`keyHash`: KeyRing.suppressionKey of its key). */
  isSuppressed(source: string, type: EntityType, keyHash: string): Promise<boolean>;
  addSuppressions(rows: SuppressionRow[]): Promise<void>;
  /** Lifts the erasure that suppressed this record: all of that erasure's rows go. Returns how many. */
  liftSuppression(source: string, type: EntityType, keyHash: string): Promise<number>;
  /**
   * Erasure: removes every remaining trace of these (already deleted) entities that names their
   * ids or pseudonyms — links to them, match keys, pseudonyms of every version, view times,
   * identity overrides and conflicts, ledger rows, change-log rows (own rows, and tombstones whose
   * last state names them) and queued or delivered webhook payloads that carry an id or pseudonym.
   */
  eraseTraces(entityIds: readonly string[], pseudonyms: readonly string[]): Promise<void>;
  /** Queues webhook deliveries outside the change-feed cursor (erasure notices to chosen subscriptions). */
  addDeliveries(ds: Omit<DeliveryRow, 'id' | 'status' | 'attempts' | 'lastStatus' | 'lastError' | 'deliveredAt'>[]): Promise<void>;
}

export interface SuppressionRow {
  source: string;
  type: EntityType;
  keyHash: string;
  /** The erasure it belongs to (a random id, not the person's). */
  erasure: string;
  createdAt: string;
}

export interface AuditRow {
  at: string;
  client: string;
  purpose: string;
  /** 'query' | 'extract' | 'webhook' | 'erasure' … */
  kind: string;
  operation: string | null;
  operationHash: string | null;
  /** Classified fields touched, counted by category. */
  categories: Record<string, number>;
  /** Schema coordinates touched. */
  fields: string[];
  /** How many people the response carried data about. */
  people: number;
  prevHash: string;
  hash: string;
}

/**
 * Where a store lives, for opening it again from another thread of this process (a parallel
 * extract's workers: src/extract/parallel.ts). It may hold the database password: never log it.
 */
export type StoreLocation = { kind: 'sqlite'; path: string } | { kind: 'postgres'; url: string; schema?: string };

/**
 * What a write transaction writes, when less than everything (`scope`):
 * - `roster`: the roster and what derives from it (a sync's groups): never the audit log or the
 *   disclosure ledger; the transaction refuses those operations.
 * - `audit`: the audit log and the disclosure ledger only (the group commit of served requests).
 * PostgreSQL then takes only that part's write lock, so a request's audit entry does not wait for a
 * sync's group to commit (docs/serving.md); a transaction of neither scope takes both, the roster's
 * first. SQLite has one writer: its transactions run one at a time whatever their scope.
 */
export interface TransactionOptions {
  scope?: 'roster' | 'audit';
}

export interface Store {
  readonly kind: 'sqlite' | 'postgres';
  /** Where to open this store again; undefined for one that cannot be (SQLite in memory). */
  location(): StoreLocation | undefined;
  /** Runs `fn` in one write transaction; commits if it resolves, rolls back if it throws. */
  transaction<T>(fn: (tx: StoreTx) => Promise<T>, opts?: TransactionOptions): Promise<T>;
  /**
   * How many write transactions wait for the one running, in this process: SQLite's one writer
   * takes them in turn, so a sync commits its group at the next page boundary when one waits (a
   * served request's audit entry, say). PostgreSQL: 0.
   */
  waitingWriters(): number;

  getEntities(ids: readonly string[]): Promise<(EntityRow | undefined)[]>;
  /**
   * Which of `ids` exist, and their types, without reading their data: for callers that need only
   * a related record's key (an extract's `class.id`). Absent ids are undefined, as in getEntities.
   */
  entityKeys(ids: readonly string[]): Promise<({ id: string; type: EntityType } | undefined)[]>;
  list(q: ListQuery): Promise<ListResult>;
  /** For each target id, the ids of entities linking to it through `rel` (ordered by id). */
  linkedFrom(rel: string, toIds: readonly string[]): Promise<Map<string, string[]>>;
  /** For each parent id, its page of children in pseudonym order (one statement for all of them). */
  linkedPages(q: LinkedPageQuery, parents: readonly string[]): Promise<Map<string, LinkedPage>>;
  /** For each parent id, how many children a LinkedPageQuery orders, all pages together (totalCount). */
  linkedCounts(q: Omit<LinkedPageQuery, 'first' | 'afterKey'>, parents: readonly string[]): Promise<Map<string, number>>;
  /** Source references of entities, for provenance. */
  sourcesOf(entityIds: readonly string[]): Promise<Map<string, { source: string; key: string; lastModified: string | null }[]>>;
  getSyncState(source: string): Promise<SyncStateRow | undefined>;
  changes(q: { afterSeq: number; limit: number; types?: EntityType[] }): Promise<ChangeRow[]>;
  /**
   * The last state of deleted records still in the change log (their tombstones), for ids that
   * have one; a change-feed tombstone renders its links to other deleted records from these.
   */
  tombstones(ids: readonly string[]): Promise<EntityRow[]>;
  oldestChangeSeq(): Promise<number | undefined>;
  /** The newest change's seq (0 when the log is empty). */
  headSeq(): Promise<number>;
  /** Changes up to this seq were purged by retention; a feed cursor before it is expired. */
  purgedThroughSeq(): Promise<number>;
  /** Deletes changes older than `beforeIso`; returns how many. */
  purgeChanges(beforeIso: string): Promise<number>;
  /**
   * Records `value` under a metadata key unless the key already holds one, and returns the value
   * the store holds afterwards (the first writer wins, also between concurrent processes).
   */
  initMeta(key: string, value: string): Promise<string>;
  /** A metadata value, if the key has one. */
  meta(key: string): Promise<string | undefined>;
  conflicts(): Promise<IdentityConflict[]>;
  /**
   * Stored entities per type. With `types`, only those are counted (every other type reads 0): a
   * range of the (type, …) index each, not a pass over every entity (a parallel extract of the people
   * needs one type: 43 → 11 ms on SQLite at 50,000 students, the first call of a process 266 ms).
   */
  counts(types?: readonly EntityType[]): Promise<Record<EntityType, number>>;
  /**
   * Every `every`-th value of a list's leading sort key, in order: the pseudonyms of the order's
   * (domain, version) with `order`, else the ids of `type`. Any increasing values cut a list into
   * ranges (`ListQuery.lead`) that together hold every row once, whatever the list's filter: the
   * ranges only come out even in size when the leading key is the row's own.
   */
  leadBoundaries(q: { type: EntityType; order?: PseudonymOrder; every: number }): Promise<string[]>;

  /** `tenant`: the key serves only that tenant of its client's (issue 15); left out, every tenant the client may use. */
  addApiKey(hash: string, client: string, at: string, tenant?: string): Promise<void>;
  findApiKey(hash: string): Promise<{ client: string; revokedAt: string | null; tenant: string | null } | undefined>;
  revokeApiKeys(client: string, at: string): Promise<number>;
  /** Revokes the keys narrowed to `tenant` (`keys create --tenant`): the tenant is being removed. */
  revokeTenantApiKeys(tenant: string, at: string): Promise<number>;
  listApiKeys(): Promise<{ client: string; hashPrefix: string; createdAt: string; revokedAt: string | null; tenant: string | null }[]>;
  domainVersion(domain: string): Promise<number | undefined>;
  pseudonymsOf(domain: string, version: number, entityIds: readonly string[]): Promise<Map<string, string>>;
  entityByPseudonym(domain: string, value: string): Promise<string | undefined>;
  /** Up to `limit` people without a pseudonym in (domain, version), in no particular order, for backfills after a new domain or a rotation. */
  peopleWithoutPseudonym(domain: string, version: number, limit: number): Promise<string[]>;
  /**
   * A purpose's view times of entities: the stored row, or the entity's own time where there is
   * none. Empty for a view not computed (no fingerprint: src/graphql/view-times.ts), and ids not
   * stored and demographics (which have no time of their own in a view) are absent.
   */
  viewTimes(view: string, entityIds: readonly string[]): Promise<Map<string, ViewTime>>;
  /** Views with times in the store, and the fingerprint of the visibility they were computed for. */
  viewFingerprints(): Promise<Map<string, string>>;
  /** Person ids in id order, for batch work (pseudonym rotation). */
  personIds(afterId: string | undefined, limit: number): Promise<string[]>;
  auditEntries(q: { afterSeq?: number; limit?: number }): Promise<(AuditRow & { seq: number })[]>;
  disclosuresOf(entityId: string): Promise<{ client: string; firstAt: string; lastAt: string }[]>;
  /** The entity holding a source's record, read outside a write transaction (a subject export names a person by it). */
  entityOfRecord(ref: SourceRecordRef): Promise<string | undefined>;
  /** Everything the store keys to these entities, for a subject access export (src/privacy/subject-export.ts). */
  subjectRows(entityIds: readonly string[]): Promise<SubjectRows>;
  webhooks: WebhookStore;
  /** The deployment's tenant catalog (meaningful in the home store only; src/tenants/catalog.ts). */
  tenantCatalog: TenantCatalogStore;
  /**
   * Resolves when the store can take writes now; rejects with STORE_FULL, STORE_READ_ONLY or
   * STORE_IO (or the driver's error) when it cannot. Cheap: readiness probes call it.
   */
  writable(): Promise<void>;
  /**
   * Told after a sync run committed about `changedRecords` records: brings the query planner's
   * statistics up to date when the change is large against what they describe (PostgreSQL: ANALYZE
   * of the sync's tables when they were never analysed or the run changed more than a tenth of
   * them — what autovacuum would do, but now, before the next query plans with statistics of an
   * empty table; a freshly loaded district otherwise met an anti-join planned as nested loops).
   * SQLite: nothing (its planner uses no collected statistics unless ANALYZE ran).
   */
  refreshStatistics(changedRecords: number): Promise<void>;
  close(): Promise<void>;
}

/** Rows keyed to a person and the records about them, in a stable order (see Store.subjectRows). */
export interface SubjectRows {
  /** Ordered by source, type, key. */
  sourceRecords: SourceRecordRow[];
  /** Keyed hashes (never the SIS id or email itself), ordered by entity, kind, value. */
  matchKeys: { entityId: string; kind: string; value: string }[];
  /** Every version held, ordered by domain and version; `current` marks the domain's current version. */
  pseudonyms: { entityId: string; domain: string; version: number; value: string; current: boolean }[];
  /** Operators' identity decisions pinning a source record to one of these entities. */
  overrides: { source: string; type: EntityType; key: string; entityId: string; decidedAt: string }[];
  /** Retained change-log rows of the entities, without deleted records' last states, in seq order. */
  changes: Omit<ChangeRow, 'before'>[];
  /** Ledger rows: which client received data about which of the entities, first and last. */
  disclosures: { entityId: string; client: string; firstAt: string; lastAt: string }[];
}

export interface WebhookRow {
  id: string;
  client: string;
  url: string;
  /** Event types delivered (exact names or wildcards, see src/model/event-types.ts); empty means all. */
  events: string[];
  /** Sealed with the gateway's key: the signing secret is needed in clear only to sign. */
  secret: string;
  cursorSeq: number;
  createdAt: string;
}

export interface DeliveryRow {
  id: number;
  webhookId: string;
  seq: number;
  msgId: string;
  eventType: string;
  payload: string;
  status: 'pending' | 'delivered' | 'dead';
  attempts: number;
  nextAttemptAt: string;
  lastStatus: number | null;
  lastError: string | null;
  createdAt: string;
  deliveredAt: string | null;
}

export interface WebhookStore {
  create(w: WebhookRow): Promise<void>;
  list(): Promise<WebhookRow[]>;
  get(id: string): Promise<WebhookRow | undefined>;
  delete(id: string): Promise<boolean>;
  setCursor(id: string, seq: number): Promise<void>;
  /**
   * Adds deliveries and moves the subscription's cursor from `fromSeq` to `toSeq`, in one
   * transaction — only if the cursor is still at `fromSeq` (else nothing is written and it returns
   * false): a replay or another gateway replica that moved it first wins, and no event is queued twice.
   */
  enqueue(
    id: string, deliveries: Omit<DeliveryRow, 'id' | 'status' | 'attempts' | 'lastStatus' | 'lastError' | 'deliveredAt'>[], fromSeq: number, toSeq: number,
  ): Promise<boolean>;
  /** The oldest undelivered delivery of a subscription (deliveries go out in order). */
  nextPending(id: string): Promise<DeliveryRow | undefined>;
  update(d: Pick<DeliveryRow, 'id' | 'status' | 'attempts' | 'nextAttemptAt' | 'lastStatus' | 'lastError' | 'deliveredAt'>): Promise<void>;
  deliveries(id: string, status?: DeliveryRow['status'], limit?: number): Promise<DeliveryRow[]>;
  counts(id: string): Promise<{ pending: number; delivered: number; dead: number }>;
  /** Dead letters back to pending; returns how many. */
  retryDead(id: string, at: string): Promise<number>;
  /** First change seq at or after a time, for replays. */
  seqAt(iso: string): Promise<number>;
}

/** A catalog tenant as stored: sources are validated source configs, secrets in them by reference only. */
export interface TenantRow {
  id: string;
  name: string;
  status: 'active' | 'paused';
  sources: Record<string, unknown>[];
  createdAt: string;
  updatedAt: string;
}

/** What is kept of a removed tenant: which, when, by whom (its data is erased). */
export interface TenantRemovalRow {
  tenantId: string;
  name: string;
  removedAt: string;
  removedBy: string;
}

export interface TenantCatalogStore {
  list(): Promise<TenantRow[]>;
  get(id: string): Promise<TenantRow | undefined>;
  /** False (and nothing written) when a tenant of that id exists. */
  add(row: TenantRow): Promise<boolean>;
  /** False when there is no such tenant. */
  update(id: string, patch: Partial<Pick<TenantRow, 'name' | 'status' | 'sources'>> & { updatedAt: string }): Promise<boolean>;
  /** Deletes the catalog row and writes the removal record, in one transaction; false when there is no such tenant. */
  remove(id: string, removal: { removedAt: string; removedBy: string }): Promise<boolean>;
  /** Removal records, oldest first. */
  removals(): Promise<TenantRemovalRow[]>;
}
