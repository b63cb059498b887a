/**
 * The page unit of work: how a sync page (or an operator's identity decision) reaches the store in
 * a few statements instead of a dozen per record.
 *
 * - load: before a page is applied, what it will read — its source records, the records their
 *   references name, those records' entities and their other source records, match-key holders,
 *   identity overrides, suppressions, links to owners — is read in a few set-at-a-time BatchTx reads.
 * - plan: ingest.ts runs its per-record logic against this unit as if it were the transaction.
 *   Reads are answered from what was loaded, overlaid with the page's own buffered writes, so a
 *   later record sees an earlier one (a person linked to one created two records before, an
 *   enrollment resolving to a class of the same page). A read of something not loaded falls back
 *   to the real transaction (and is kept), so correctness never depends on the prefetch.
 * - flush: the plan is written with multi-row BatchTx statements, changes numbered from the store's
 *   next seq, and the ingest policy (src/store/ingest-policy.ts) adds the rows every change needs —
 *   pseudonyms of created people, each purpose's view times — computed for the whole page.
 *
 * Writes that no read of the plan depends on (conflicts, identity overrides) go straight to the
 * transaction. Everything is in the caller's transaction: a page still commits or rolls back whole
 * with its connector state.
 *
 * Flushing replays the plan's final state, not its steps: what the steps deleted is deleted first,
 * then the final rows are written. Rows that a deletion removes with its entity (links, match keys,
 * pseudonyms, view times) are kept only where the step that wrote them came after the entity's
 * last deletion — the order a row-by-row run would have left.
 */
import type { EntityType } from '../model/records.ts';
import type { ChangeRow, EntityRow, IdentityConflict, SourceRecordRef, SourceRecordRow, StoreTx, ViewTimeEffect, ViewTimeRow } from './types.ts';
import type { IngestPolicy } from './ingest-policy.ts';
import type { RunMemo } from './run-memo.ts';

/** What ingest reads and writes through: the unit of work (a subset of StoreTx, plus `declareNew`). */
export type IngestTx = Pick<
  StoreTx,
  | 'getSourceRecord' | 'putSourceRecord' | 'deleteSourceRecord' | 'sourceRecordsOf' | 'pendingSourceRecords' | 'unseenSourceRecords'
  | 'countSourceRecords' | 'resolveKey' | 'getEntity' | 'putEntity' | 'deleteEntity' | 'setLinks' | 'linksTo' | 'appendChange'
  | 'findByMatchKey' | 'setMatchKeys' | 'addConflict' | 'identityOverride' | 'setIdentityOverride' | 'isSuppressed' | 'pseudonymsOfEntity'
> & {
  /** An id minted in this transaction: the store holds nothing under it (saves a read that would find nothing). */
  declareNew(entityId: string): void;
  /** Prefetches what the next records will read (see PageNeeds). */
  load(needs: PageNeeds): Promise<void>;
  /** Prefetches source records by key alone, without their entities: what deciding whether a delivered record changed needs. */
  loadRecords(refs: readonly SourceRecordRef[]): Promise<void>;
  /**
   * Settles delivered records whose stored version is unchanged (the same content hash, an entity,
   * no reference left unresolved) in one statement that marks them seen by the run, without loading
   * them. Only for records nothing of this unit has read or planned yet.
   */
  settleUnchanged(runId: number, delivered: readonly (SourceRecordRef & { hash: string })[]): Promise<void>;
  /** Whether settleUnchanged settled this record and nothing planned has touched it since: applying it is done. */
  isSettled(source: string, type: EntityType, key: string): boolean;

  /**
   * Whether any record of this source may be suppressed (an erasure left suppressions for it). Asked
   * once per unit: when none, nothing needs a suppression key (an HMAC per record and per person it names).
   */
  mayBeSuppressed(source: string): Promise<boolean>;
};

/** What a page will read, for `load`. */
export interface PageNeeds {
  /** Source records by key that the page writes (its own, held-back ones): loaded with their entities and those entities' other records. */
  records: SourceRecordRef[];
  /**
   * Source records the page's references name: only resolved to their entity ids (an enrollment needs
   * its class's id, not the class), so their entities are not loaded.
   */
  references?: SourceRecordRef[];
  /** Entity ids known in advance beyond those the records name (e.g. demographics ids of resolved people). */
  moreEntities?: (resolve: (ref: SourceRecordRef) => string | undefined) => string[];
  matchKeys?: { kind: string; value: string }[];
  overrides?: SourceRecordRef[];
  suppressions?: { source: string; entries: { type: EntityType; keyHash: string }[] };
  /** Links to the entities of these records through these rels (owners' dependents, deleted records' dependents). */
  linksTo?: { rels: string[]; of: SourceRecordRef }[];
  /** People whose pseudonyms a tombstone will keep (deleted records' entities). */
  pseudonymsOf?: SourceRecordRef[];
}

const recKey = (source: string, type: string, key: string) => `${source}\0${type}\0${key}`;
const pairKey = (a: string, b: string) => `${a}\0${b}`;
type Link = { rel: string; to: string };
type MatchKey = { kind: string; value: string };

/** A unit of work over a write transaction; the policy is required: its flush applies it. */
export function openPageUnit(tx: StoreTx, policy: IngestPolicy, memo?: RunMemo): PageUnit {
  return new PageUnit(tx, policy, memo);
}

export class PageUnit implements IngestTx {
  // What the store holds (as of the last flush), learnt by `load` or by a read that missed.
  private baseRecord = new Map<string, SourceRecordRow | null>();
  private baseRecordsOf = new Map<string, SourceRecordRow[]>();
  private baseEntity = new Map<string, EntityRow | null>();
  private baseLinksTo = new Map<string, string[]>();
  private baseMatch = new Map<string, string[]>();
  private baseOverride = new Map<string, string | null>();
  private baseSuppressed = new Map<string, boolean>();
  private basePseudonyms = new Map<string, Record<string, string>>();
  /** Entity ids of records only referenced (loaded without their data); baseRecord has the rest. */
  private baseEntityIdOf = new Map<string, string | null>();
  private baseMayBeSuppressed = new Map<string, boolean>();
  /** Records settleUnchanged found unchanged and marked seen in the store; a plan that touches one unsettles it. */
  private settled = new Set<string>();

  // The plan: final state of what the steps wrote (null: deleted), with indexes for reads.
  private records = new Map<string, SourceRecordRow | null>();
  private recordsByEntity = new Map<string, Set<string>>();
  private entities = new Map<string, EntityRow | null>();
  private links = new Map<string, Link[]>();
  /**
   * The planned links by target (`rel`, `to`): built from `links` on the first read that needs it
   * (`linksTo`, or a flush with links to overlay), then kept up to date until the plan is reset.
   * Most units never read links by target (a first sync's), and building it per planned link cost
   * 2 % of a sync's time.
   */
  private linkIndex: Map<string, Set<string>> | undefined;
  private matchKeys = new Map<string, MatchKey[]>();
  private matchIndex = new Map<string, Set<string>>();
  private changes: Omit<ChangeRow, 'seq'>[] = [];
  /** Per entity, how many changes were logged when it was last deleted / last created (people). */
  private deletedAt = new Map<string, number>();
  private createdAt = new Map<string, number>();

  /** Reads that missed what `load` brought and went to the store (tests keep this small). */
  misses = 0;

  /** The writes flushAhead started, until they are answered. */
  private inFlight: Promise<void> | undefined;

  /** The transaction's set-at-a-time operations (StoreTx extends BatchTx), named for what they are used for. */
  private readonly batch: StoreTx;

  /** What the sync run knew the store held before this unit's transaction (checked by the run), if any. */
  private readonly memo: RunMemo | undefined;

  constructor(private readonly tx: StoreTx, readonly policy: IngestPolicy, memo?: RunMemo) {
    this.batch = tx;
    this.memo = memo;
  }

  /** Prefetches what a page will read, in a few set-at-a-time reads. */
  async load(needs: PageNeeds): Promise<void> {
    await this.loadRecords(needs.records);
    const referenced = unknownBy(needs.references ?? [], refKey, (k) => this.baseRecord.has(k) || this.baseEntityIdOf.has(k));
    // What the run's earlier groups read or wrote is known without asking (src/store/run-memo.ts).
    const asked = this.memo ? referenced.filter((r) => {
      const k = refKey(r);
      const id = this.memo!.entityIdOf(k) ?? (this.memo!.knownAbsent(k) ? null : undefined);
      if (id !== undefined) this.baseEntityIdOf.set(k, id);
      return id === undefined;
    }) : referenced;
    if (asked.length) {
      for (const r of asked) this.baseEntityIdOf.set(recKey(r.source, r.type, r.key), null);
      for (const r of await (await this.ready()).entityIdsOfRecords(asked)) this.baseEntityIdOf.set(recKey(r.source, r.type, r.key), r.entityId);
    }
    const entityIds = new Set<string>();
    for (const r of needs.records) {
      const id = this.baseRecord.get(recKey(r.source, r.type, r.key))?.entityId;
      if (id) entityIds.add(id);
    }
    const keys = unknownBy(needs.matchKeys ?? [], (k) => pairKey(k.kind, k.value), (k) => this.baseMatch.has(k));
    if (keys.length) {
      for (const k of keys) this.baseMatch.set(pairKey(k.kind, k.value), []);
      for (const m of await (await this.ready()).matchKeyEntities(keys)) this.baseMatch.get(pairKey(m.kind, m.value))?.push(m.entityId);
      for (const k of keys) {
        const ids = this.baseMatch.get(pairKey(k.kind, k.value))!.sort();
        for (const id of ids) entityIds.add(id);
      }
    }
    const overrides = unknownBy(needs.overrides ?? [], refKey, (k) => this.baseOverride.has(k));
    if (overrides.length) {
      for (const r of overrides) this.baseOverride.set(recKey(r.source, r.type, r.key), null);
      for (const o of await (await this.ready()).identityOverridesOf(overrides)) {
        this.baseOverride.set(recKey(o.source, o.type, o.key), o.entityId);
        entityIds.add(o.entityId);
      }
    }
    if (needs.suppressions?.entries.length) {
      const { source } = needs.suppressions;
      const entries = unknownBy(needs.suppressions.entries, (e) => recKey(source, e.type, e.keyHash), (k) => this.baseSuppressed.has(k));
      for (const e of entries) this.baseSuppressed.set(recKey(source, e.type, e.keyHash), false);
      if (entries.length) for (const e of await (await this.ready()).suppressedOf(source, entries)) this.baseSuppressed.set(recKey(source, e.type, e.keyHash), true);
    }
    const resolve = (r: SourceRecordRef) => this.baseResolved(recKey(r.source, r.type, r.key)) ?? undefined;
    for (const id of needs.moreEntities?.(resolve) ?? []) entityIds.add(id);
    await this.loadEntities([...entityIds]);

    // Links to owners and to deleted records' entities, then what those links lead to.
    const byRel = new Map<string, Set<string>>();
    for (const l of needs.linksTo ?? []) {
      const to = resolve(l.of);
      if (!to) continue;
      for (const rel of l.rels) if (!this.baseLinksTo.has(pairKey(rel, to))) (byRel.get(rel) ?? byRel.set(rel, new Set()).get(rel)!).add(to);
    }
    const linked = new Set<string>();
    for (const [rel, tos] of byRel) {
      for (const to of tos) this.baseLinksTo.set(pairKey(rel, to), []);
      for (const l of await (await this.ready()).linksToMany(rel, [...tos])) {
        this.baseLinksTo.get(pairKey(rel, l.to))!.push(l.from);
        linked.add(l.from);
      }
      for (const to of tos) this.baseLinksTo.get(pairKey(rel, to))!.sort();
    }
    await this.loadEntities([...linked]);

    const people = [...new Set((needs.pseudonymsOf ?? []).map(resolve).filter((id): id is string => !!id && !this.basePseudonyms.has(id)))];
    if (people.length) {
      const found = await (await this.ready()).pseudonymsOfEntities(people);
      for (const id of people) this.basePseudonyms.set(id, found.get(id) ?? {});
    }
  }

  async loadRecords(refs: readonly SourceRecordRef[]): Promise<void> {
    // What the run knows absent is not asked for (a source's first sync: src/store/run-memo.ts).
    const wanted = unknownBy(refs, refKey, (k) => this.baseRecord.has(k) || this.absentByMemo(k));
    if (!wanted.length) return;
    for (const r of wanted) this.baseRecord.set(recKey(r.source, r.type, r.key), null);
    for (const row of await (await this.ready()).getSourceRecords(wanted)) this.baseRecord.set(recKey(row.source, row.type, row.key), row);
  }

  /** Whether the run knows this record of its source is not stored (src/store/run-memo.ts): then it is loaded as absent. */
  private absentByMemo(k: string): boolean {
    if (!this.memo?.knownAbsent(k)) return false;
    this.baseRecord.set(k, null);
    return true;
  }

  async settleUnchanged(runId: number, delivered: readonly (SourceRecordRef & { hash: string })[]): Promise<void> {
    const fresh = delivered.filter((r) => {
      const k = recKey(r.source, r.type, r.key);
      return !this.records.has(k) && !this.baseRecord.has(k) && !this.baseEntityIdOf.has(k) && !this.memo?.knownAbsent(k);
    });
    if (!fresh.length) return;
    for (const r of await (await this.ready()).markUnchangedSeen(runId, fresh)) this.settled.add(recKey(r.source, r.type, r.key));
  }

  /**
   * Every source record's entity id the unit knows the store will hold once its plan is written
   * (null: pending or absent), keyed as records are: what was loaded, with the plan over it. For the
   * run's memo (src/store/run-memo.ts), taken before the last flush forgets it.
   */
  knownEntityIds(): [string, string | null][] {
    const out = new Map<string, string | null>(this.baseEntityIdOf);
    for (const [k, row] of this.baseRecord) out.set(k, row?.entityId ?? null);
    for (const [k, row] of this.records) out.set(k, row?.entityId ?? null);
    return [...out];
  }

  isSettled(source: string, type: EntityType, key: string): boolean {
    return this.settled.size > 0 && this.settled.has(recKey(source, type, key));
  }

  /** Entities and all their source records, for ids not yet known. */
  private async loadEntities(ids: string[]): Promise<void> {
    const unloaded = ids.filter((id) => !this.baseEntity.has(id) || !this.baseRecordsOf.has(id));
    if (!unloaded.length) return;
    for (const id of unloaded) {
      this.baseEntity.set(id, this.baseEntity.get(id) ?? null);
      this.baseRecordsOf.set(id, []);
    }
    for (const e of await (await this.ready()).entitiesById(unloaded)) this.baseEntity.set(e.id, e);
    for (const r of await (await this.ready()).sourceRecordsOfEntities(unloaded)) {
      this.baseRecordsOf.get(r.entityId!)?.push(r);
      this.baseRecord.set(recKey(r.source, r.type, r.key), r);
    }
  }

  declareNew(entityId: string): void {
    this.baseEntity.set(entityId, null);
    this.baseRecordsOf.set(entityId, []);
  }

  // ── source records ──

  async getSourceRecord(source: string, type: EntityType, key: string): Promise<SourceRecordRow | undefined> {
    const k = recKey(source, type, key);
    if (this.records.has(k)) return this.records.get(k) ?? undefined;
    return (await this.baseRecordOf(k, async () => (await this.ready()).getSourceRecord(source, type, key))) ?? undefined;
  }

  private async baseRecordOf(k: string, read: () => Promise<SourceRecordRow | undefined>): Promise<SourceRecordRow | null> {
    if (this.baseRecord.has(k) || this.absentByMemo(k)) return this.baseRecord.get(k)!;
    this.misses++;
    const row = (await read()) ?? null;
    this.baseRecord.set(k, row);
    return row;
  }

  async resolveKey(source: string, type: EntityType, key: string): Promise<string | undefined> {
    const k = recKey(source, type, key);
    if (!this.records.has(k) && !this.baseRecord.has(k) && this.baseEntityIdOf.has(k)) return this.baseEntityIdOf.get(k) ?? undefined;
    return (await this.getSourceRecord(source, type, key))?.entityId ?? undefined;
  }

  /** A stored record's entity id as loaded (null: pending or absent; undefined: not loaded). */
  private baseResolved(k: string): string | null | undefined {
    if (this.baseRecord.has(k)) return this.baseRecord.get(k)?.entityId ?? null;
    return this.baseEntityIdOf.get(k);
  }

  async putSourceRecord(row: SourceRecordRow): Promise<void> {
    this.planRecord(recKey(row.source, row.type, row.key), row);
  }

  async deleteSourceRecord(source: string, type: EntityType, key: string): Promise<void> {
    this.planRecord(recKey(source, type, key), null);
  }

  private planRecord(k: string, row: SourceRecordRow | null): void {
    // Planned now (deleted with its entity, written again): no longer settled as it was stored.
    if (this.settled.size) this.settled.delete(k);
    const old = this.records.get(k);
    if (old?.entityId) this.recordsByEntity.get(old.entityId)?.delete(k);
    this.records.set(k, row);
    if (row?.entityId) (this.recordsByEntity.get(row.entityId) ?? this.recordsByEntity.set(row.entityId, new Set()).get(row.entityId)!).add(k);
  }

  async sourceRecordsOf(entityId: string): Promise<SourceRecordRow[]> {
    let base = this.baseRecordsOf.get(entityId);
    if (!base) {
      this.misses++;
      base = await (await this.ready()).sourceRecordsOf(entityId);
      this.baseRecordsOf.set(entityId, base);
      for (const r of base) this.baseRecord.set(recKey(r.source, r.type, r.key), r);
    }
    const out = base.filter((r) => !this.records.has(recKey(r.source, r.type, r.key)));
    for (const k of this.recordsByEntity.get(entityId) ?? []) out.push(this.records.get(k)!);
    return out;
  }

  async pendingSourceRecords(source: string): Promise<SourceRecordRow[]> {
    const stored = await (await this.ready()).pendingSourceRecords(source);
    for (const r of stored) if (!this.baseRecord.has(recKey(r.source, r.type, r.key))) this.baseRecord.set(recKey(r.source, r.type, r.key), r);
    return [
      ...stored.filter((r) => !this.records.has(recKey(r.source, r.type, r.key))),
      ...[...this.records.values()].filter((r): r is SourceRecordRow => !!r && r.source === source && r.entityId === null),
    ];
  }

  async unseenSourceRecords(source: string, types: EntityType[], runId: number): Promise<{ type: EntityType; key: string }[]> {
    const stored = (await (await this.ready()).unseenSourceRecords(source, types, runId)).filter((r) => !this.records.has(recKey(source, r.type, r.key)));
    const planned = [...this.records.values()].filter((r): r is SourceRecordRow => !!r && r.source === source && types.includes(r.type) && r.seenRun !== runId);
    return [...stored, ...planned.map((r) => ({ type: r.type, key: r.key }))].sort((a, b) => (a.type < b.type ? -1 : a.type > b.type ? 1 : a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
  }

  async countSourceRecords(source: string, types: EntityType[]): Promise<number> {
    let n = await (await this.ready()).countSourceRecords(source, types);
    const planned = [...this.records].filter(([k]) => {
      const [s, t] = k.split('\0');
      return s === source && types.includes(t as EntityType);
    });
    const unknown = planned.filter(([k]) => !this.baseRecord.has(k)).map(([k]) => refOf(k));
    if (unknown.length) {
      for (const r of unknown) this.baseRecord.set(recKey(r.source, r.type, r.key), null);
      for (const row of await (await this.ready()).getSourceRecords(unknown)) this.baseRecord.set(recKey(row.source, row.type, row.key), row);
    }
    for (const [k, row] of planned) n += (row ? 1 : 0) - (this.baseRecord.get(k) ? 1 : 0);
    return n;
  }

  // ── entities, links, change log ──

  async getEntity(id: string): Promise<EntityRow | undefined> {
    if (this.entities.has(id)) return this.entities.get(id) ?? undefined;
    if (!this.baseEntity.has(id)) {
      this.misses++;
      this.baseEntity.set(id, (await (await this.ready()).getEntity(id)) ?? null);
    }
    return this.baseEntity.get(id) ?? undefined;
  }

  async putEntity(row: { id: string; type: EntityType; data: unknown; updatedAt: string; updatedSeq: number }): Promise<void> {
    this.entities.set(row.id, { id: row.id, type: row.type, data: row.data as EntityRow['data'], updatedAt: row.updatedAt, updatedSeq: row.updatedSeq });
  }

  async deleteEntity(id: string): Promise<void> {
    this.entities.set(id, null);
    this.planLinks(id, []);
    this.planMatchKeys(id, []);
    this.deletedAt.set(id, this.changes.length);
  }

  async setLinks(fromId: string, links: Link[]): Promise<void> {
    this.planLinks(fromId, links);
  }

  private planLinks(fromId: string, links: Link[]): void {
    const index = this.linkIndex;
    if (index) for (const l of this.links.get(fromId) ?? []) index.get(pairKey(l.rel, l.to))?.delete(fromId);
    this.links.set(fromId, links);
    if (index) indexLinks(index, fromId, links);
  }

  /** The planned links to `k` (a `pairKey(rel, to)`), through the index built on first use. */
  private plannedLinksTo(k: string): Set<string> | undefined {
    if (!this.linkIndex) {
      this.linkIndex = new Map();
      for (const [fromId, links] of this.links) indexLinks(this.linkIndex, fromId, links);
    }
    return this.linkIndex.get(k);
  }

  async linksTo(rel: string, toId: string): Promise<string[]> {
    const k = pairKey(rel, toId);
    let base = this.baseLinksTo.get(k);
    if (!base) {
      this.misses++;
      base = await (await this.ready()).linksTo(rel, toId);
      this.baseLinksTo.set(k, base);
    }
    return overlay(base, this.links, this.plannedLinksTo(k));
  }

  /** Logs a change; its seq is provisional (negative) until the flush numbers the page's changes. */
  async appendChange(c: Omit<ChangeRow, 'seq'>): Promise<number> {
    this.changes.push(c);
    if (c.op === 'created' && c.type === 'person') this.createdAt.set(c.entityId, this.changes.length);
    return -this.changes.length;
  }

  // ── identity ──

  async findByMatchKey(kind: string, value: string): Promise<string[]> {
    const k = pairKey(kind, value);
    let base = this.baseMatch.get(k);
    if (!base) {
      this.misses++;
      base = await (await this.ready()).findByMatchKey(kind, value);
      this.baseMatch.set(k, base);
    }
    return overlay(base, this.matchKeys, this.matchIndex.get(k));
  }

  async setMatchKeys(entityId: string, keys: MatchKey[]): Promise<void> {
    this.planMatchKeys(entityId, keys);
  }

  private planMatchKeys(entityId: string, keys: MatchKey[]): void {
    for (const m of this.matchKeys.get(entityId) ?? []) this.matchIndex.get(pairKey(m.kind, m.value))?.delete(entityId);
    this.matchKeys.set(entityId, keys);
    for (const m of keys) (this.matchIndex.get(pairKey(m.kind, m.value)) ?? this.matchIndex.set(pairKey(m.kind, m.value), new Set()).get(pairKey(m.kind, m.value))!).add(entityId);
  }

  async addConflict(c: Omit<IdentityConflict, 'id' | 'resolvedAt' | 'resolution'>): Promise<void> {
    await (await this.ready()).addConflict(c);
  }

  async identityOverride(r: SourceRecordRef): Promise<string | undefined> {
    const k = recKey(r.source, r.type, r.key);
    if (!this.baseOverride.has(k)) {
      this.misses++;
      this.baseOverride.set(k, (await (await this.ready()).identityOverride(r)) ?? null);
    }
    return this.baseOverride.get(k) ?? undefined;
  }

  async setIdentityOverride(r: SourceRecordRef, entityId: string, at: string): Promise<void> {
    await (await this.ready()).setIdentityOverride(r, entityId, at);
    this.baseOverride.set(recKey(r.source, r.type, r.key), entityId);
  }

  async mayBeSuppressed(source: string): Promise<boolean> {
    let any = this.baseMayBeSuppressed.get(source);
    if (any === undefined) this.baseMayBeSuppressed.set(source, (any = await (await this.ready()).hasSuppressions(source)));
    return any;
  }

  async isSuppressed(source: string, type: EntityType, keyHash: string): Promise<boolean> {
    const k = recKey(source, type, keyHash);
    if (!this.baseSuppressed.has(k)) {
      this.misses++;
      this.baseSuppressed.set(k, await (await this.ready()).isSuppressed(source, type, keyHash));
    }
    return this.baseSuppressed.get(k)!;
  }

  async pseudonymsOfEntity(entityId: string): Promise<Record<string, string>> {
    const created = this.createdAt.get(entityId) ?? -1;
    const deleted = this.deletedAt.get(entityId) ?? -1;
    if (created > deleted) return Object.fromEntries(this.policy.personCreated([entityId]).map((p) => [p.domain, p.value]));
    // Pseudonyms go with their entity: a person this plan deleted has none left.
    if (deleted >= 0) return {};
    if (!this.basePseudonyms.has(entityId)) {
      this.misses++;
      this.basePseudonyms.set(entityId, await (await this.ready()).pseudonymsOfEntity(entityId));
    }
    return this.basePseudonyms.get(entityId)!;
  }

  // ── flush ──

  /**
   * Writes the plan in multi-row statements, with what the policy adds to it, and starts a fresh
   * plan (what was loaded is forgotten: the store now holds the plan). Returns the changes logged, numbered.
   */
  async flush(): Promise<ChangeRow[]> {
    const sealed = await this.seal();
    this.reset();
    await this.write(sealed);
    return sealed.numbered;
  }

  /**
   * Starts writing the plan so far and returns before the store has answered, so that the next
   * records are planned while it writes (PostgreSQL: the server executes, the process plans). What
   * was planned becomes what the unit knows the store holds (`absorb`), so later steps read it as
   * loaded. Until the writes are answered, every read or write of the unit's own waits for them
   * first (`ready`): it runs after them, and a failure of theirs is the one it raises. The caller
   * must `settle()` before its transaction ends, whether it ends in COMMIT or ROLLBACK.
   */
  async flushAhead(): Promise<void> {
    const sealed = await this.seal();
    this.absorb(sealed);
    const writing = this.write(sealed);
    this.inFlight = writing;
    // Done once answered. A failure stays, handled here: settle() (and every access after it) raises it.
    writing.then(() => {
      if (this.inFlight === writing) this.inFlight = undefined;
    }, () => undefined);
  }

  /** Waits for the writes flushAhead started; raises their failure (again on every later call). */
  async settle(): Promise<void> {
    const writing = this.inFlight;
    if (!writing) return;
    await writing;
    if (this.inFlight === writing) this.inFlight = undefined;
  }

  /** Whether writes started by flushAhead are still running, or failed (the runner hands the loop back more often meanwhile). */
  get writing(): boolean {
    return this.inFlight !== undefined;
  }

  /** The transaction, once the writes in flight are answered: nothing of the unit's own overtakes them. */
  private async ready(): Promise<StoreTx> {
    if (this.inFlight) await this.settle();
    return this.tx;
  }

  /**
   * The plan's final state as rows to write, decided now: which rows are fresh, which entities had
   * nothing stored, the changes numbered from the store's next seq (read here, after any writes in
   * flight). Everything that depends on what the unit knew before this flush is computed here,
   * because flushAhead changes that knowledge before the writes run.
   */
  private async seal(): Promise<Sealed> {
    const tx = await this.ready();
    const numbered: ChangeRow[] = [];
    if (this.changes.length) {
      const first = await tx.nextChangeSeq();
      this.changes.forEach((c, i) => numbered.push({ ...c, seq: first + i }));
    }
    const seqOf = (s: number) => (s < 0 ? numbered[-s - 1]!.seq : s);
    const survives = (entityId: string, position: number) => position > (this.deletedAt.get(entityId) ?? -1);

    const deletedRecords: SourceRecordRef[] = [];
    const putRecords: SourceRecordRow[] = [];
    const freshRecords = new Set<SourceRecordRef>();
    // Stored records whose only change is the run that saw them (a full sync's unchanged records,
    // most of a nightly full drop): their seen_run is set, and their data not written again.
    const seenOnly = new Map<number, SourceRecordRef[]>();
    for (const [k, row] of this.records) {
      const base = this.baseRecord.get(k);
      if (!row) deletedRecords.push(refOf(k));
      else if (onlySeenBy(base, row)) (seenOnly.get(row.seenRun) ?? seenOnly.set(row.seenRun, []).get(row.seenRun)!).push(row);
      else {
        putRecords.push(row);
        // Known not to be stored (loaded as absent): inserted without a conflict check (FreshRows in ./types.ts).
        if (base === null) freshRecords.add(row);
      }
    }
    // An entity known not to be stored before this unit, or deleted first: no row, links or view times of it are stored.
    const noneStored = new Set<string>();
    const isNoneStored = (id: string) => this.isNoneStored(id);
    const live: EntityRow[] = [];
    for (const e of this.entities.values()) {
      if (!e) continue;
      live.push({ ...e, updatedSeq: seqOf(e.updatedSeq) });
      if (isNoneStored(e.id)) noneStored.add(e.id);
    }
    const finallyDeleted = (id: string) => this.entities.get(id) === null;
    const links = [...this.links].filter(([id]) => !finallyDeleted(id)).map(([fromId, l]) => ({ fromId, links: l, noneStored: isNoneStored(fromId) }));
    const keys = [...this.matchKeys].filter(([id]) => !finallyDeleted(id)).map(([entityId, k]) => ({ entityId, keys: k }));
    const created = [...this.createdAt].filter(([id, at]) => survives(id, at)).map(([id]) => id);
    const pseudonyms = created.length ? this.policy.personCreated(created) : [];
    const viewTimes = numbered.length ? this.sealViewTimes(numbered, survives, seqOf) : { put: [], held: [], own: [] };
    for (const row of viewTimes.put) if (isNoneStored(row.entityId)) noneStored.add(row.entityId);
    return {
      numbered, deletedRecords, seenOnly, putRecords, freshRecords, deletedEntities: [...this.deletedAt.keys()], live, noneStored,
      links, keys, pseudonyms, viewTimes,
    };
  }

  /**
   * The view times the changes leave, stored only where they differ from the entity's own
   * (src/graphql/view-times.ts). Per view and entity, the last change that survives its entity's
   * last deletion decides: the last one the view sees, if any, is its time, and a row is written
   * unless the entity's own time is that same change (then a stored row goes); with none seen, the
   * entity's own time moved past the view's, so the time it had before this plan is held (a row,
   * unless one is stored: that one is older and true).
   */
  private sealViewTimes(numbered: ChangeRow[], survives: (id: string, position: number) => boolean, seqOf: (s: number) => number): Sealed['viewTimes'] {
    const first = numbered[0]!.seq;
    // Per view (a handful), the last effect per entity, seen or not: nested maps rather than a key
    // string per effect (several per change), and the effects themselves kept as rows.
    const last = new Map<string, Map<string, ViewTimeEffect>>();
    for (const effect of this.policy.changeLogged(numbered)) {
      if (!survives(effect.entityId, effect.updatedSeq - first + 1)) continue;
      const ofView = last.get(effect.view) ?? last.set(effect.view, new Map()).get(effect.view)!;
      // An unseen change after a seen one leaves the seen one deciding (the view's time is still it).
      const before = ofView.get(effect.entityId);
      if (effect.seen || !before?.seen) ofView.set(effect.entityId, effect);
    }
    const out: Sealed['viewTimes'] = { put: [], held: [], own: [] };
    for (const ofView of last.values()) {
      for (const row of ofView.values()) {
        if (row.seen) {
          const e = this.entities.get(row.entityId);
          if (!e || seqOf(e.updatedSeq) !== row.updatedSeq) out.put.push(row);
          // The entity's own time: a stored row goes (an entity new in this plan has none).
          else if (!this.isNoneStored(row.entityId)) out.own.push(row);
          continue;
        }
        const before = this.baseEntity.get(row.entityId);
        // An update is logged only of an entity read first; one created in this plan was seen created.
        if (!before) throw new Error(`view time of ${row.entityId} in ${row.view}: its time before this change was not read`);
        out.held.push({ ...row, updatedAt: before.updatedAt, updatedSeq: before.updatedSeq });
      }
    }
    return out;
  }

  /** Whether nothing of an entity is stored before this plan: known absent, or deleted by it first. */
  private isNoneStored(id: string): boolean {
    return this.baseEntity.get(id) === null || this.deletedAt.has(id);
  }

  /** Writes sealed rows, in the order a row-by-row run would have left them. */
  private async write(p: Sealed): Promise<void> {
    if (p.deletedRecords.length) await this.batch.deleteSourceRecords(p.deletedRecords);
    for (const [runId, refs] of p.seenOnly) await this.batch.markSourceRecordsSeen(runId, refs);
    // Everything a step deleted goes first (with its links, match keys, pseudonyms, view times);
    // an entity deleted and then written again is written again below.
    if (p.deletedEntities.length) await this.batch.deleteEntities(p.deletedEntities);
    if (p.numbered.length) await this.batch.appendChanges(p.numbered);
    if (p.putRecords.length) await this.batch.putSourceRecords(p.putRecords, { fresh: (r) => p.freshRecords.has(r) });
    const noneStored = (id: string) => p.noneStored.has(id);
    // Their keys: the links and view times below name them by key rather than look each id up again.
    const entityKeys = p.live.length ? await this.batch.putEntities(p.live, { fresh: noneStored }) : undefined;
    if (p.links.length) await this.batch.replaceLinks(p.links, entityKeys);
    if (p.keys.length) await this.batch.replaceMatchKeys(p.keys);
    if (p.pseudonyms.length) await this.tx.putPseudonyms(p.pseudonyms);
    const times = p.viewTimes;
    if (times.put.length) await this.tx.putViewTimes(times.put, entityKeys, { fresh: noneStored });
    if (times.held.length) await this.tx.putViewTimes(times.held, entityKeys, { keepStored: true });
    if (times.own.length) await this.tx.deleteViewTimes(times.own, entityKeys);
  }

  /**
   * Makes the sealed plan what the unit knows the store holds, then starts a fresh plan: each
   * loaded answer is overlaid with the plan as a read would have seen it (the reverse indexes of
   * links and match keys included), the entities get their numbered seqs, and people get the
   * pseudonyms written for them. What was never loaded stays unloaded: a later read of it goes to
   * the store after the writes, and finds them there.
   */
  private absorb(p: Sealed): void {
    const touched = new Set<string>();
    for (const [k, row] of this.records) {
      const before = this.baseRecord.get(k)?.entityId;
      if (before) touched.add(before);
      if (row?.entityId) touched.add(row.entityId);
    }
    for (const id of touched) {
      const base = this.baseRecordsOf.get(id);
      if (!base) continue;
      const out = base.filter((r) => !this.records.has(recKey(r.source, r.type, r.key)));
      for (const k of this.recordsByEntity.get(id) ?? []) out.push(this.records.get(k)!);
      this.baseRecordsOf.set(id, out);
    }
    for (const [k, row] of this.records) this.baseRecord.set(k, row);
    const live = new Map(p.live.map((e) => [e.id, e]));
    for (const [id, e] of this.entities) this.baseEntity.set(id, e ? live.get(id)! : null);
    for (const [k, base] of this.baseLinksTo) this.baseLinksTo.set(k, overlay(base, this.links, this.plannedLinksTo(k)));
    for (const [k, base] of this.baseMatch) this.baseMatch.set(k, overlay(base, this.matchKeys, this.matchIndex.get(k)));
    // New objects, never changed in place: an answer handed out before stays what it was.
    const written = new Map<string, Record<string, string>>();
    for (const row of p.pseudonyms) (written.get(row.entityId) ?? written.set(row.entityId, {}).get(row.entityId)!)[row.domain] = row.value;
    for (const id of this.deletedAt.keys()) this.basePseudonyms.set(id, {});
    for (const [id, pseudonyms] of written) this.basePseudonyms.set(id, pseudonyms);
    this.resetPlan();
  }

  private reset(): void {
    for (const m of [this.baseRecord, this.baseRecordsOf, this.baseEntity, this.baseLinksTo, this.baseMatch, this.basePseudonyms, this.baseEntityIdOf, this.baseMayBeSuppressed, this.settled]) m.clear();
    this.resetPlan();
  }

  private resetPlan(): void {
    for (const m of [this.records, this.recordsByEntity, this.entities, this.links, this.matchKeys, this.matchIndex, this.deletedAt, this.createdAt]) m.clear();
    this.linkIndex = undefined;
    this.changes = [];
  }
}

/** A plan's rows as flush writes them, decided before the unit plans on (see seal). */
interface Sealed {
  numbered: ChangeRow[];
  deletedRecords: SourceRecordRef[];
  seenOnly: Map<number, SourceRecordRef[]>;
  putRecords: SourceRecordRow[];
  /** The rows (by identity) known not to be stored. */
  freshRecords: Set<SourceRecordRef>;
  deletedEntities: string[];
  live: EntityRow[];
  /** Entities of which nothing was stored (new in this unit, or deleted by it first). */
  noneStored: Set<string>;
  links: { fromId: string; links: Link[]; noneStored: boolean }[];
  keys: { entityId: string; keys: MatchKey[] }[];
  pseudonyms: ReturnType<IngestPolicy['personCreated']>;
  /** Rows to write, rows to write unless one is stored (held), rows to drop (the entity's own time). */
  viewTimes: { put: ViewTimeRow[]; held: ViewTimeRow[]; own: ViewTimeRow[] };
}

/**
 * Whether a planned source record differs from the stored one only in the run that saw it. Its data
 * is the stored row's own object (a step marks a record seen by copying the row it read), so an
 * identical reference means identical content without comparing it.
 */
function onlySeenBy(base: SourceRecordRow | null | undefined, row: SourceRecordRow): boolean {
  return !!base && base.data === row.data && base.hash === row.hash && base.entityId === row.entityId &&
    base.lastModified === row.lastModified && base.seenRun !== row.seenRun;
}

/** Ids from the store, less entities whose links (or keys) the plan replaced, plus the plan's own; sorted like the store's answer. */
function indexLinks(index: Map<string, Set<string>>, fromId: string, links: readonly Link[]): void {
  for (const l of links) {
    const k = pairKey(l.rel, l.to);
    let from = index.get(k);
    if (!from) index.set(k, (from = new Set()));
    from.add(fromId);
  }
}

function overlay(base: string[], planned: Map<string, unknown>, plannedHere: Set<string> | undefined): string[] {
  if (!plannedHere?.size && !base.some((id) => planned.has(id))) return base;
  const out = base.filter((id) => !planned.has(id));
  for (const id of plannedHere ?? []) out.push(id);
  return [...new Set(out)].sort();
}

function refOf(k: string): SourceRecordRef {
  const [source, type, key] = k.split('\0') as [string, EntityType, string];
  return { source, type, key };
}

const refKey = (r: SourceRecordRef) => recKey(r.source, r.type, r.key);

/** The items whose key is not `known`, each key once (its first item): one key built per item. */
function unknownBy<T>(xs: readonly T[], key: (x: T) => string, known: (k: string) => boolean): T[] {
  const seen = new Map<string, T>();
  for (const x of xs) {
    const k = key(x);
    if (!seen.has(k) && !known(k)) seen.set(k, x);
  }
  return [...seen.values()];
}

