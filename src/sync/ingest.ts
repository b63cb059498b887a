/**
 * Applying source records to the store, inside the page's transaction: content-hash diffing (an
 * unchanged record costs one lookup), reference resolution (records whose targets have not arrived
 * yet wait as pending), identity resolution for people and organisations, multi-source merge, links
 * and the change log. Deleting an entity also deletes what cannot exist without it (enrollments of a class).
 */
import { hash as hashOnce } from 'node:crypto';
import { ENTITY_TYPES, REFERENCES, type EntityType, type OrgData, type PersonData, type SourceRecord } from '../model/records.ts';
import { changedGeneralisations } from '../privacy/generalise.ts';
import type { ChangeRow, EntityRow, SourceRecordRef, SourceRecordRow } from '../store/types.ts';
import { demographicsIdFor, newEntityId } from './ids.ts';
import { matchKeysOf, orgMatchKeysOf, resolveOrg, resolvePerson, type MatchKey, type MatchRule, type OrgMatchRule } from './identity.ts';
import { changedFields, keptResolved, linksOf, mergeData, REQUIRED_REFS, resolveRefs, withRefs } from './merge.ts';
import { stableJson } from '../model/stable-json.ts';
import type { IngestTx, PageNeeds } from '../store/page-unit.ts';
import type { IngestPolicy } from '../store/ingest-policy.ts';
import type { RunMemo } from '../store/run-memo.ts';

/** The transaction ingest works through: a page unit of work (src/store/page-unit.ts). */
type StoreTx = IngestTx;

export interface IngestContext {
  source: string;
  runId: number;
  now: () => string;
  /** Source ids in precedence order, for merging people and organisations seen in several sources. */
  precedence: string[];
  matchRules: MatchRule[];
  /** Rules linking organisations across sources; empty: each source's organisations stay its own. */
  orgMatchRules: OrgMatchRule[];
  /**
   * Minimisation, match-key hashing and suppression applied while planning; the same policy the
   * page unit of work applies at its flush (pseudonyms, view times). Required: see src/store/ingest-policy.ts.
   */
  policy: IngestPolicy;
  counters: IngestCounters;
  /** Told of each reference that did not resolve once the record stops waiting for it (the sync report). */
  dangling?: (record: { type: EntityType; key: string }, fields: string[], heldBack: boolean) => void;
}

export interface IngestCounters {
  created: number;
  updated: number;
  deleted: number;
  unchanged: number;
  pending: number;
  /** People linked to a person another source delivered. */
  linked: number;
  /** Schools and districts linked to one another source delivered. */
  linkedOrgs: number;
  /** People and organisations kept apart on ambiguous evidence (see the conflict report). */
  conflicts: number;
  /** Records dropped unstored because an erasure suppressed them (`rostergate erase`). */
  suppressed: number;
}

export function newCounters(): IngestCounters {
  return { created: 0, updated: 0, deleted: 0, unchanged: 0, pending: 0, linked: 0, linkedOrgs: 0, conflicts: 0, suppressed: 0 };
}

/** Entity types that cannot exist without the entity they reference through these link names. */
const DEPENDENTS: { type: EntityType; rel: string }[] = [
  { type: 'enrollment', rel: 'enrollment.class' },
  { type: 'enrollment', rel: 'enrollment.person' },
  { type: 'guardianship', rel: 'guardianship.guardian' },
  { type: 'guardianship', rel: 'guardianship.student' },
  { type: 'demographics', rel: 'demographics.person' },
];

/**
 * What a source record is stored with, to tell an unchanged delivery (the same hash) at the next
 * sync: it must stay the same from release to release (test/unit/content-hash.test.ts). One call
 * of node:crypto's one-shot `hash`: SHA-256 of the same bytes the chained `createHash` hashed
 * before, at less than half its cost for a record's few hundred bytes.
 */
export function contentHash(type: EntityType, data: unknown): string {
  return hashOnce('sha256', `${type}\0${stableJson(data)}`, 'base64url').slice(0, 32);
}

export async function applyRecord(tx: StoreTx, ctx: IngestContext, record: SourceRecord): Promise<void> {
  if (record.deleted) return deleteSourceRecord(tx, ctx, record.type, record.key);
  if (ctx.policy.suppressionKey && (await tx.mayBeSuppressed(ctx.source)) && (await isSuppressed(tx, ctx, ctx.policy.suppressionKey, record))) {
    ctx.counters.suppressed++;
    return;
  }
  // Found unchanged and marked seen by the prefetch (settleUnchanged), and untouched since: nothing
  // more to store. (The prefetch settles nothing for a source with suppressions, so the check above
  // costs a settled record nothing.)
  if (tx.isSettled(ctx.source, record.type, record.key)) ctx.counters.unchanged++;
  else await upsertSourceRecord(tx, ctx, record);
  // An owner's list of its dependents is not in its content hash: what it no longer lists goes,
  // settled or not.
  if (record.owns?.length) await dropDisowned(tx, ctx, record.type, record.key, record.owns);
}

/** References to a person: a record about an erased person (a new enrollment of theirs) is suppressed too. */
const PERSON_REFS: Partial<Record<EntityType, string[]>> = { demographics: ['personKey'], enrollment: ['personKey'], guardianship: ['guardianKey', 'studentKey'] };

/** Whether an erasure suppressed this record, or the person it is about. */
async function isSuppressed(tx: StoreTx, ctx: IngestContext, key: NonNullable<IngestPolicy['suppressionKey']>, record: Exclude<SourceRecord, { deleted: true }>): Promise<boolean> {
  if (await tx.isSuppressed(ctx.source, record.type, key(ctx.source, record.type, record.key))) return true;
  const data = record.data as unknown as Record<string, unknown>;
  for (const f of PERSON_REFS[record.type] ?? []) {
    const ref = data[f];
    if (typeof ref === 'string' && (await tx.isSuppressed(ctx.source, 'person', key(ctx.source, 'person', ref)))) return true;
  }
  return false;
}

/**
 * Deletes this source's records linked to an owner through `rel` that the owner no longer lists
 * (a guardian a student's agents dropped, a student a section's roster dropped). Records of other
 * sources are left alone: each source speaks only for itself.
 */
async function dropDisowned(tx: StoreTx, ctx: IngestContext, type: EntityType, key: string, owns: { rel: string; keys: string[] }[]): Promise<void> {
  const ownerId = await tx.resolveKey(ctx.source, type, key);
  if (!ownerId) return;
  for (const o of owns) {
    const depType = o.rel.slice(0, o.rel.indexOf('.')) as EntityType;
    const keep = new Set(o.keys);
    for (const depId of await tx.linksTo(o.rel, ownerId)) {
      for (const r of await tx.sourceRecordsOf(depId)) {
        if (r.source === ctx.source && r.type === depType && !keep.has(r.key)) await deleteSourceRecord(tx, ctx, r.type, r.key);
      }
    }
  }
}

type Delivered = Exclude<SourceRecord, { deleted: true }>;

/** A delivered record as it would be stored (minimised, kept fields filled in), its match keys and content hash. */
interface DeliveredForm {
  raw: Record<string, unknown>;
  match: MatchKey[] | undefined;
  hash: string;
}

/**
 * Computed once per record: the prefetch needs it to tell unchanged records (which need nothing
 * more loaded) from the rest, and applying the record needs it again. Kept with the context and
 * the stored row it was computed against, since kept fields come from that row.
 */
const deliveredForms = new WeakMap<Delivered, DeliveredForm & { ctx: IngestContext; existing: SourceRecordRow | undefined }>();

function deliveredForm(ctx: IngestContext, record: Delivered, existing: SourceRecordRow | undefined): DeliveredForm {
  const memo = deliveredForms.get(record);
  // The stored row matters only for the fields the delivery keeps from it.
  if (memo && memo.ctx === ctx && (memo.existing === existing || !record.keep?.length)) return memo;
  let raw = ctx.policy.minimise(record.type, record.data as unknown as Record<string, unknown>);
  // Fields this delivery does not carry keep what the source said last time.
  if (record.keep?.length && existing) {
    const before = rawOf(existing);
    raw = { ...raw };
    for (const f of record.keep) raw[f] = before[f];
  }
  // Match keys come from the record as delivered: minimisation may drop the email it matches on.
  const match = matchKeysOfRecord(ctx, record.type, record.data);
  const hash = contentHash(record.type, match ? { raw, match } : raw);
  deliveredForms.set(record, { raw, match, hash, ctx, existing });
  return { raw, match, hash };
}

/** The delivered form, or nothing if the record cannot take one: applying it then fails, naming the record. */
function formOrNothing(ctx: IngestContext, record: Delivered, existing: SourceRecordRow | undefined): DeliveredForm | undefined {
  try {
    return deliveredForm(ctx, record, existing);
  } catch {
    return undefined;
  }
}

/**
 * Unchanged costs one lookup — unless the stored version still misses a reference that may
 * resolve now (its target skipped or late last time): then it is resolved again.
 */
function isUnchanged(existing: SourceRecordRow, hash: string): boolean {
  return existing.hash === hash && !!existing.entityId && !unresolvedOf(existing)?.length;
}

async function upsertSourceRecord(tx: StoreTx, ctx: IngestContext, record: Delivered): Promise<void> {
  const existing = await tx.getSourceRecord(ctx.source, record.type, record.key);
  const { raw, match, hash } = deliveredForm(ctx, record, existing);
  if (existing && isUnchanged(existing, hash)) {
    ctx.counters.unchanged++;
    if (existing.seenRun !== ctx.runId) await tx.putSourceRecord({ ...existing, seenRun: ctx.runId });
    return;
  }
  const row: SourceRecordRow = {
    source: ctx.source,
    type: record.type,
    key: record.key,
    entityId: existing?.entityId ?? null,
    data: { raw, refs: null, match },
    hash,
    lastModified: record.lastModified ?? null,
    seenRun: ctx.runId,
  };
  if ((await materialiseSourceRecord(tx, ctx, row, existing, { final: false })) === 'pending') ctx.counters.pending++;
}

/**
 * Resolves a source record's references and folds it into its entity. With `final`, optional
 * references that still do not resolve are dropped instead of holding the record back.
 */
async function materialiseSourceRecord(
  tx: StoreTx,
  ctx: IngestContext,
  row: SourceRecordRow,
  existing: SourceRecordRow | undefined,
  opts: { final: boolean },
): Promise<'stored' | 'pending'> {
  const raw = rawOf(row) as Record<string, unknown>;
  const match = matchOf(row);
  // References resolve through the record's own source (the same as ctx.source while syncing).
  const { data, unresolved } = await resolveRefs(row.type, raw, (t, k) => tx.resolveKey(row.source, t, k));
  const required = REQUIRED_REFS[row.type] ?? [];
  // A new record waits for an optional reference until the run ends (its target may be on a later
  // page); a stored one is updated now without it, so its entity is neither stale nor orphaned.
  const dropOptional = opts.final || row.entityId !== null;
  // Most records resolve every reference: no filtered copies of an empty list for them.
  const blocking = dropOptional && unresolved.length ? unresolved.filter((f) => required.includes(f)) : unresolved;
  if (blocking.length > 0) {
    if (opts.final) ctx.dangling?.(row, blocking, true);
    // Wait for the referenced records (a later page, or a later run); keep what was delivered.
    await tx.putSourceRecord({ ...row, entityId: null, data: { raw, refs: null, match } });
    // A stored record that now points at something unknown leaves its entity, which goes if no
    // other source holds it: an entity is never left behind without its source record.
    if (row.entityId) await rematerialise(tx, ctx, row.entityId, row.type);
    return 'pending';
  }
  let entityId = row.entityId;
  if (!entityId) entityId = await chooseEntityId(tx, ctx, row, data, match ?? []);
  const dropped = unresolved.length ? unresolved.filter((f) => !required.includes(f)) : unresolved;
  if (dropped.length) ctx.dangling?.(row, dropped, false);
  const stored: WithForm = { raw, ...keptResolved(row.type, raw, data), match, ...(dropped.length ? { unresolved: dropped } : {}), [RESOLVED_FORM]: data };
  await tx.putSourceRecord({ ...row, entityId, data: stored });
  await rematerialise(tx, ctx, entityId, row.type);
  return 'stored';
}

/** Identity match keys of a delivered record: people and organisations have them; other types none. */
function matchKeysOfRecord(ctx: IngestContext, type: EntityType, data: unknown): MatchKey[] | undefined {
  if (type === 'person') return matchKeysOf(data as PersonData, ctx.matchRules, ctx.policy.hashMatchKey ?? undefined);
  if (type === 'org') return orgMatchKeysOf(data as OrgData, ctx.orgMatchRules, ctx.policy.hashMatchKey ?? undefined);
  return undefined;
}

/**
 * What a source record keeps: what the source delivered (`raw`), once resolved the fields its
 * references resolved to (`refs`; null while it waits for one), and for people and organisations
 * their match keys. The resolved form is `raw` with those fields in place of the references
 * (`resolvedOf`): storing it whole repeated every other field, about half of a source record.
 */
interface StoredSourceData {
  raw: Record<string, unknown>;
  refs?: Record<string, unknown> | null;
  /** The resolved form whole: as source records were stored before 7 December 2026, and still where `refs` cannot keep it (merge.ts, keptResolved). */
  resolved?: Record<string, unknown> | null;
  match?: MatchKey[];
  /** Optional reference fields that did not resolve and were left out of the resolved form. */
  unresolved?: string[];
}
const rawOf = (row: SourceRecordRow) => (row.data as StoredSourceData).raw;
const unresolvedOf = (row: SourceRecordRow) => (row.data as StoredSourceData).unresolved;
const matchOf = (row: SourceRecordRow) => (row.data as StoredSourceData).match;

/**
 * The resolved form, once built, kept on the stored data under a symbol: JSON leaves symbol-keyed
 * members out, so it is never stored. (A WeakMap by data object instead cost a 20,000-student sync
 * 2.4–4.2 s more CPU in three alternating pairs, about a tenth: an entry per record for the
 * collector to trace.)
 */
const RESOLVED_FORM = Symbol('resolved form');
type WithForm = StoredSourceData & { [RESOLVED_FORM]?: Record<string, unknown> };

/** A source record's resolved form, or null while it waits for a reference. */
function resolvedOf(row: SourceRecordRow): Record<string, unknown> | null {
  const d = row.data as WithForm;
  if (d.resolved !== undefined) return d.resolved;
  if (!d.refs) return null;
  return (d[RESOLVED_FORM] ??= withRefs(row.type, d.raw, d.refs));
}

async function chooseEntityId(
  tx: StoreTx, ctx: IngestContext, row: SourceRecordRow, data: Record<string, unknown>, match: MatchKey[],
): Promise<string> {
  const { type, key } = row;
  if (type === 'demographics') return demographicsIdFor(data.personId as string);
  if (type !== 'person' && type !== 'org') return mint(tx, type);
  // An operator's link or unlink outranks the rules: the record goes back to the entity it was put
  // in, under the same id even if that entity went meanwhile (so its group comes back together).
  const pinned = await tx.identityOverride(row);
  if (pinned) {
    if (await tx.getEntity(pinned)) {
      if (type === 'person') ctx.counters.linked++;
      else ctx.counters.linkedOrgs++;
    }
    return pinned;
  }
  const res = type === 'person'
    ? await resolvePerson(tx, row.source, match, (data.roles as string[] | undefined) ?? [])
    : await resolveOrg(tx, row.source, match, data.type as OrgData['type']);
  if (res.kind === 'link') {
    if (type === 'person') ctx.counters.linked++;
    else ctx.counters.linkedOrgs++;
    return res.entityId;
  }
  if (res.kind === 'conflict') {
    ctx.counters.conflicts++;
    await tx.addConflict({ at: ctx.now(), source: row.source, type, key, reason: res.reason, candidates: res.candidates });
  }
  return mint(tx, type);
}

/**
 * The fields a created record's change names. A consumer of a created record reads the record, so
 * the change feed lists no fields for it (src/graphql/changes.ts, `toEvent`), and its change keeps
 * none (they were 40 % of a first sync's change log, and never read). Demographics keep theirs:
 * their creation reaches the feed as an update of their person, naming the fields a purpose sees,
 * and a purpose that sees none of them is not told.
 */
function createdFields(type: EntityType, data: Record<string, unknown>): string[] {
  return type === 'demographics' ? changedFields(undefined, data) : [];
}

/** A new entity id, declared to the unit of work so nothing is read for it. */
function mint(tx: StoreTx, type: EntityType): string {
  const id = newEntityId(type);
  tx.declareNew(id);
  return id;
}

/**
 * Recomputes an entity from all its source records and records the change, if any. With
 * `sourcesChanged` (an operator moved source records in or out) the entity's provenance changed
 * even if no field did: the update is logged with `sources` among its fields.
 */
export async function rematerialise(tx: StoreTx, ctx: IngestContext, entityId: string, type: EntityType, opts: { sourcesChanged?: boolean } = {}): Promise<void> {
  const rows = (await tx.sourceRecordsOf(entityId)).filter((r) => resolvedOf(r));
  const before = await tx.getEntity(entityId);
  if (rows.length === 0) {
    if (before) await deleteEntity(tx, ctx, before);
    return;
  }
  const rank = (s: string) => {
    const i = ctx.precedence.indexOf(s);
    return i < 0 ? ctx.precedence.length : i;
  };
  // Most entities have one source record: no sort (its work copy is garbage per record).
  if (rows.length > 1) rows.sort((a, b) => rank(a.source) - rank(b.source) || (a.key < b.key ? -1 : 1));
  const merged = mergeData(rows.map((r) => resolvedOf(r)!));
  const fields = before ? changedFields(before.data as Record<string, unknown>, merged) : createdFields(type, merged);
  if (before && opts.sourcesChanged) {
    fields.push('sources');
    fields.sort();
  }
  // Match keys follow the source records even when no stored field moved (an email minimisation
  // does not keep, a record joining or leaving the entity with the same values).
  const keys = type === 'person' || type === 'org' ? dedupe(rows.flatMap((r) => matchOf(r) ?? [])) : undefined;
  if (before && fields.length === 0) {
    if (keys) await tx.setMatchKeys(entityId, keys);
    ctx.counters.unchanged++;
    return;
  }
  const at = ctx.now();
  // Which generalised values moved with their exact fields: a purpose that receives only those
  // must not learn of a change to the exact value.
  const generalised = before ? changedGeneralisations(type, fields, before.data as Record<string, unknown>, merged, new Date(at)) : undefined;
  const seq = await logChange(tx, ctx, { at, entityId, type, op: before ? 'updated' : 'created', fields, ...(generalised ? { generalised } : {}), source: ctx.source });
  await tx.putEntity({ id: entityId, type, data: merged, updatedAt: at, updatedSeq: seq });
  await tx.setLinks(entityId, linksOf(type, merged));
  if (keys) await tx.setMatchKeys(entityId, keys);
  if (before) ctx.counters.updated++;
  else ctx.counters.created++;
}

async function deleteSourceRecord(tx: StoreTx, ctx: IngestContext, type: EntityType, key: string): Promise<void> {
  const existing = await tx.getSourceRecord(ctx.source, type, key);
  if (!existing) return;
  await tx.deleteSourceRecord(ctx.source, type, key);
  if (existing.entityId) await rematerialise(tx, ctx, existing.entityId, type);
}

/**
 * Deletes an entity and what cannot exist without it, logging tombstones. `mergedInto` (an
 * operator's link) names the entity that lives on in its place, kept in the tombstone.
 */
export async function deleteEntity(tx: StoreTx, ctx: IngestContext, entity: EntityRow, opts: { mergedInto?: string } = {}): Promise<void> {
  // Dependents first, so the change log never shows an enrollment outliving its class.
  for (const dep of DEPENDENTS) {
    if (!dep.rel.startsWith(`${dep.type}.`)) continue;
    const target = dep.rel.slice(dep.type.length + 1);
    if (!refTargets(entity.type).includes(target)) continue;
    for (const depId of await tx.linksTo(dep.rel, entity.id)) {
      const depEntity = await tx.getEntity(depId);
      if (!depEntity) continue;
      for (const r of await tx.sourceRecordsOf(depId)) await tx.deleteSourceRecord(r.source, r.type, r.key);
      await deleteEntity(tx, ctx, depEntity);
    }
  }
  const at = ctx.now();
  // The tombstone keeps the last state (shown through each purpose's view) and, for people, the
  // pseudonyms their clients know them by, since those rows go with the entity.
  const last = entity.type === 'person' ? { ...(entity.data as object), _pseudonyms: await tx.pseudonymsOfEntity(entity.id) } : entity.data;
  const before = opts.mergedInto ? { ...(last as object), _mergedInto: opts.mergedInto } : last;
  await logChange(tx, ctx, { at, entityId: entity.id, type: entity.type, op: 'deleted', fields: [], source: ctx.source, before });
  await tx.deleteEntity(entity.id);
  ctx.counters.deleted++;
}

/**
 * Appends a change to the unit of work's log; its flush numbers it and adds what the policy
 * derives from it (a created person's pseudonyms, each purpose's view times).
 */
async function logChange(tx: StoreTx, _ctx: IngestContext, c: Omit<ChangeRow, 'seq'>): Promise<number> {
  return tx.appendChange(c);
}

/** Link names under which other records point at an entity of this type. */
function refTargets(type: EntityType): string[] {
  if (type === 'class') return ['class'];
  if (type === 'person') return ['person', 'guardian', 'student'];
  return [];
}

/**
 * Resolves a stored source record's references again, from what its source delivered, and folds
 * it into its entity: after an operator moved records between entities, the records referring to
 * them (enrollments, guardianships, classes, people's schools) point at the entity that now holds
 * the referenced record. Demographics follow their person (their entity id derives from the
 * person's), leaving the old person's demographics entity behind for rematerialisation.
 */
export async function reresolveSourceRecord(tx: StoreTx, ctx: IngestContext, row: SourceRecordRow): Promise<void> {
  const followsPerson = row.type === 'demographics';
  await materialiseSourceRecord(tx, ctx, followsPerson ? { ...row, entityId: null } : row, row, { final: true });
  if (followsPerson && row.entityId && (await tx.resolveKey(row.source, row.type, row.key)) !== row.entityId) await rematerialise(tx, ctx, row.entityId, row.type);
}

/** Retries records waiting for references. With `final`, optional references that never came are dropped. */
export async function resolvePending(tx: StoreTx, ctx: IngestContext, opts: { final: boolean }): Promise<number> {
  // Dependency order, repeated until nothing more resolves: a pending class can unblock its enrollments.
  let pending = await tx.pendingSourceRecords(ctx.source);
  for (;;) {
    pending.sort((a, b) => ENTITY_TYPES.indexOf(a.type) - ENTITY_TYPES.indexOf(b.type));
    await prefetchStored(tx, pending);
    const still: SourceRecordRow[] = [];
    for (const row of pending) {
      const res = await materialiseSourceRecord(tx, ctx, row, undefined, opts);
      if (res === 'pending') still.push(row);
    }
    if (still.length === 0 || still.length === pending.length) return still.length;
    pending = still;
  }
}

/**
 * A record the mapping boundary held back: what the source delivered before stands, and counts as
 * seen, so a complete listing does not delete it for a defect in this delivery.
 */
export async function keepHeldBack(tx: StoreTx, ctx: IngestContext, type: EntityType, key: string): Promise<void> {
  const existing = await tx.getSourceRecord(ctx.source, type, key);
  if (existing && existing.seenRun !== ctx.runId) await tx.putSourceRecord({ ...existing, seenRun: ctx.runId });
}

/** Deletes this source's records of `types` that the current run did not see. */
export async function sweepUnseen(tx: StoreTx, ctx: IngestContext, types: EntityType[]): Promise<number> {
  const unseen = await tx.unseenSourceRecords(ctx.source, types, ctx.runId);
  await prefetchRecords(tx, ctx, unseen.map((u) => ({ type: u.type, key: u.key, deleted: true }) as SourceRecord));
  for (const u of unseen) await deleteSourceRecord(tx, ctx, u.type, u.key);
  return unseen.length;
}

/**
 * Loads what applying these records will read, in a few batched reads (src/store/page-unit.ts):
 * the records and those their references name, their entities, match-key holders, identity
 * overrides, suppressions, owners' dependents, and for deletions what goes with the entity. Only a
 * prefetch: a read it did not foresee still goes to the store. `memo`: the run's, when a sync's
 * group loads (it keeps whether the group found any of its records stored, for the next group).
 */
export async function prefetchRecords(tx: StoreTx, ctx: IngestContext, records: readonly SourceRecord[], heldBack: readonly { type: EntityType; key: string }[] = [], memo?: RunMemo): Promise<void> {
  const source = ctx.source;
  const needs: Required<Omit<PageNeeds, 'suppressions' | 'moreEntities'>> = { records: [], references: [], matchKeys: [], overrides: [], linksTo: [], pseudonymsOf: [] };
  const suppressions: { type: EntityType; keyHash: string }[] = [];
  const demographicsOf: SourceRecordRef[] = [];
  const sk = ctx.policy.suppressionKey && (await tx.mayBeSuppressed(source)) ? ctx.policy.suppressionKey : undefined;
  // First the records stored unchanged, settled by their content hash in one statement that marks
  // them seen: nothing of them is loaded, and applying them does nothing more. Most records of a full
  // sync (every CSV drop) are unchanged. Not where more than the hash may decide (`settleable`), nor
  // where the source has suppressions (each record is checked against them first), nor after a group
  // that found none of its records stored (a first sync's: the statement would find nothing; a group
  // with any stored record turns it on again, so a re-sync loses one group at most). The run's memo
  // carries that from group to group (`foundStored`, src/store/run-memo.ts).
  // Then the other records themselves (held-back ones need nothing more): a record the hash finds
  // unchanged is only marked seen, so what applying a changed one reads — its entity and that
  // entity's other records, what its references name, match-key holders — is loaded for the others alone.
  if (!sk && memo?.foundStored !== false) await tx.settleUnchanged(ctx.runId, settleable(ctx, records, heldBack));
  const open: SourceRecord[] = [];
  for (const r of records) {
    if (r.deleted || !tx.isSettled(source, r.type, r.key)) open.push(r);
    else if (r.owns?.length) {
      // A settled owner still drops what it no longer lists: its entity id (no data) and its dependents.
      const self = { source, type: r.type, key: r.key };
      needs.references.push(self);
      for (const o of r.owns) needs.linksTo.push({ rels: [o.rel], of: self });
    }
  }
  await tx.loadRecords([...heldBack.map((h) => ({ source, type: h.type, key: h.key })), ...open.map((r) => ({ source, type: r.type, key: r.key }))]);
  let stored = open.length < records.length;
  for (const r of open) {
    const self = { source, type: r.type, key: r.key };
    if (r.deleted) {
      needs.records.push(self);
      needs.linksTo.push({ rels: dependentRels(r.type), of: self });
      if (r.type === 'person') needs.pseudonymsOf.push(self);
      continue;
    }
    const data = r.data as unknown as Record<string, unknown>;
    if (sk) {
      suppressions.push({ type: r.type, keyHash: sk(source, r.type, r.key) });
      for (const f of PERSON_REFS[r.type] ?? []) if (typeof data[f] === 'string') suppressions.push({ type: 'person', keyHash: sk(source, 'person', data[f]) });
    }
    for (const o of r.owns ?? []) needs.linksTo.push({ rels: [o.rel], of: self });
    const existing = await tx.getSourceRecord(source, r.type, r.key);
    if (existing) stored = true;
    const form = formOrNothing(ctx, r, existing);
    if (existing && form && isUnchanged(existing, form.hash)) continue;
    const match = form?.match;
    needs.records.push(self);
    for (const ref of referencedRecords(source, r.type, data)) needs.references.push(ref);
    if (r.type === 'demographics' && typeof data.personKey === 'string') demographicsOf.push({ source, type: 'person', key: data.personKey });
    if (match) {
      needs.matchKeys.push(...match);
      needs.overrides.push(self);
    }
  }
  if (memo) memo.foundStored = stored;
  await tx.load({
    ...needs,
    suppressions: { source, entries: suppressions },
    moreEntities: (resolve) => demographicsOf.map(resolve).filter((id): id is string => !!id).map(demographicsIdFor),
  });
}

/**
 * Delivered records that may be settled unchanged without being loaded, each with its content hash:
 * the hash alone decides for them. Left out: deletions, records keeping fields from the stored
 * version (their form needs it), and keys the group holds more than once (held back included),
 * whose order decides. Owners are in: applying one still drops what it no longer lists.
 */
function settleable(ctx: IngestContext, records: readonly SourceRecord[], heldBack: readonly { type: EntityType; key: string }[]): (SourceRecordRef & { hash: string })[] {
  const times = new Map<string, number>();
  const count = (type: string, key: string) => {
    const k = `${type}\0${key}`;
    times.set(k, (times.get(k) ?? 0) + 1);
  };
  for (const r of records) count(r.type, r.key);
  for (const h of heldBack) count(h.type, h.key);
  const out: (SourceRecordRef & { hash: string })[] = [];
  for (const r of records) {
    if (r.deleted || r.keep?.length || times.get(`${r.type}\0${r.key}`) !== 1) continue;
    const form = formOrNothing(ctx, r, undefined);
    if (form) out.push({ source: ctx.source, type: r.type, key: r.key, hash: form.hash });
  }
  return out;
}

/** The same for stored records about to be resolved again (pending ones): what their references name. */
async function prefetchStored(tx: StoreTx, rows: readonly SourceRecordRow[]): Promise<void> {
  await tx.load({
    records: rows.map((r) => ({ source: r.source, type: r.type, key: r.key })),
    references: rows.flatMap((r) => referencedRecords(r.source, r.type, rawOf(r))),
    matchKeys: rows.flatMap((r) => matchOf(r) ?? []),
    overrides: rows.filter((r) => r.type === 'person' || r.type === 'org'),
  });
}

/** Source records a record's references name, through its own source's keys. */
function referencedRecords(source: string, type: EntityType, data: Record<string, unknown>): SourceRecordRef[] {
  const out: SourceRecordRef[] = [];
  for (const [field, target] of Object.entries(REFERENCES[type] as Record<string, EntityType>)) {
    const v = data[field];
    for (const key of Array.isArray(v) ? v : [v]) if (typeof key === 'string') out.push({ source, type: target, key });
  }
  return out;
}

/** Link names through which dependents point at an entity of this type (what deleting it takes along). */
function dependentRels(type: EntityType): string[] {
  return DEPENDENTS.filter((d) => refTargets(type).includes(d.rel.slice(d.type.length + 1))).map((d) => d.rel);
}

function dedupe(keys: MatchKey[]): MatchKey[] {
  const seen = new Set<string>();
  return keys.filter((k) => {
    const id = `${k.kind}\0${k.value}`;
    if (seen.has(id)) return false;
    seen.add(id);
    return true;
  });
}
