/**
 * Correcting identity by hand. Resolution keeps a record apart when the evidence is ambiguous and
 * can link wrongly when a source's ids are wrong; an operator decides instead:
 * - link: the entity holding a source record (typically one a conflict kept apart) is merged into a
 *   chosen entity of the same type;
 * - unlink: one source's record is split off its entity into a new entity of its own.
 * Each runs in one transaction: source records move, every record referring to a moved record is
 * resolved again (enrollments, guardianships, demographics, classes' schools, people's schools), the
 * change log records it for feeds and webhooks (the merged-away entity as a deletion whose tombstone
 * names the survivor; a split-off entity as created, the one it left as updated), the disclosure
 * ledger follows the people, the record's conflicts are marked resolved, and every record involved
 * is pinned as an identity override that later syncs honour (see chooseEntityId in ingest.ts).
 */
import { createHash } from 'node:crypto';
import { RostergateError } from '../errors.ts';
import type { EntityType } from '../model/records.ts';
import { appendAudit } from '../privacy/audit.ts';
import type { SourceRecordRef, SourceRecordRow, Store, StoreTx } from '../store/types.ts';
import { newEntityId } from './ids.ts';
import { deleteEntity, newCounters, rematerialise, reresolveSourceRecord, type IngestContext } from './ingest.ts';
import { relsTo } from './merge.ts';
import { stableJson } from '../model/stable-json.ts';
import { openPageUnit, type IngestTx, type PageUnit } from '../store/page-unit.ts';
import { ingestPolicy, type IngestPolicy } from '../store/ingest-policy.ts';

/** Entity types an operator can link and unlink: those identity resolution links. */
export const IDENTITY_TYPES = ['person', 'org'] as const;

export interface OperatorOptions {
  /** Source ids in precedence order (the config's), for merging fields as a sync would. */
  precedence: string[];
  /**
   * The ingest policy's parts a decision needs (Privacy.ingest() gives them): pseudonyms of a new
   * person (an unlink creates one), each purpose's view times of the changes logged, as in a sync.
   */
  personCreated?: IngestPolicy['personCreated'];
  changeLogged?: IngestPolicy['changeLogged'];
  /** The audit chain's key; without one (no purposes configured) nothing is audited. */
  auditKey?: Buffer;
  now?: () => string;
}

export interface LinkResult {
  type: EntityType;
  /** The entity that went (its tombstone names `into`). */
  merged: string;
  into: string;
  /** Source records moved into `into`. */
  records: number;
  /** Source records referring to the moved ones, resolved again. */
  repointed: number;
}

export interface UnlinkResult {
  type: EntityType;
  /** The entity the record left. */
  from: string;
  /** The new entity holding it. */
  to: string;
  repointed: number;
}

/** Merges the entity holding `record` into `into`. */
export function linkRecord(store: Store, record: SourceRecordRef, into: string, opts: OperatorOptions): Promise<LinkResult> {
  return store.transaction(async (raw) => {
    const at = (opts.now ?? (() => new Date().toISOString()))();
    const ctx = operatorContext('identity-link', opts, at);
    // The decision is planned in a unit of work and flushed once, with the policy's rows.
    const tx = openPageUnit(raw, ctx.policy);
    const row = await entityRecord(tx, record);
    const mergedId = row.entityId!;
    const target = await tx.getEntity(into);
    if (!target) throw refuse(record, `there is no entity ${into} to link it into`);
    if (target.type !== record.type) throw refuse(record, `${into} is not ${record.type === 'org' ? 'an organisation' : 'a person'}`);
    if (mergedId === into) throw refuse(record, `it is already part of ${into}`);
    const merged = (await tx.getEntity(mergedId))!;
    const kinds = [merged, target].map((e) => (e.data as { type?: string }).type);
    // A school into a district (or back) is a data error, as in resolution: never merged.
    if (record.type === 'org' && kinds[0] !== kinds[1]) throw refuse(record, `it is a ${kinds[0]} and ${into} a ${kinds[1]}: only the same kind of organisation links`);

    const moved = await tx.sourceRecordsOf(mergedId);
    for (const r of moved) await tx.putSourceRecord({ ...r, entityId: into });
    await rematerialise(tx, ctx, into, record.type, { sourcesChanged: true });
    const repointed = await repoint(tx, ctx, record.type, mergedId, new Set(moved.map((r) => r.source)));
    // Erasure notices must still reach every client that received either person.
    if (record.type === 'person') await raw.transferDisclosures(mergedId, into, 'move');
    // Deleting an entity takes what depends on it along: anything still pointing at it is a bug to
    // stop at (the transaction rolls back), not data to lose.
    for (const rel of relsTo(record.type)) {
      if ((await tx.linksTo(rel, mergedId)).length) throw new RostergateError('STORE', `${rel} references to ${mergedId} remain after re-pointing; nothing was changed`);
    }
    // Last, once nothing refers to it: consumers re-point before they see it go.
    await deleteEntity(tx, ctx, merged, { mergedInto: into });

    await pin(tx, into, at);
    await tx.flush();
    for (const r of moved) await raw.resolveConflicts(r, `linked into ${into}`, at);
    await audit(raw, opts, at, 'link', record, { from: mergedId, into });
    return { type: record.type, merged: mergedId, into, records: moved.length, repointed };
  });
}

/** Splits `record` off its entity into a new entity of its own. */
export function unlinkRecord(store: Store, record: SourceRecordRef, opts: OperatorOptions): Promise<UnlinkResult> {
  return store.transaction(async (raw) => {
    const at = (opts.now ?? (() => new Date().toISOString()))();
    const ctx = operatorContext('identity-unlink', opts, at);
    const tx = openPageUnit(raw, ctx.policy);
    const row = await entityRecord(tx, record);
    const fromId = row.entityId!;
    if ((await tx.sourceRecordsOf(fromId)).length < 2) throw refuse(record, `it is the only source record of ${fromId}: there is nothing to split it from`);

    const toId = newEntityId(record.type);
    tx.declareNew(toId);
    await tx.putSourceRecord({ ...row, entityId: toId });
    await rematerialise(tx, ctx, toId, record.type);
    await rematerialise(tx, ctx, fromId, record.type, { sourcesChanged: true });
    const repointed = await repoint(tx, ctx, record.type, fromId, new Set([row.source]));
    // Clients that received the person before the split received this record's data too.
    if (record.type === 'person') await raw.transferDisclosures(fromId, toId, 'copy');

    await pin(tx, toId, at);
    await pin(tx, fromId, at);
    await tx.flush();
    await raw.resolveConflicts(record, `split off into ${toId}`, at);
    await audit(raw, opts, at, 'unlink', record, { from: fromId, into: toId });
    return { type: record.type, from: fromId, to: toId, repointed };
  });
}

function operatorContext(label: string, opts: OperatorOptions, at: string): IngestContext {
  // Source ids cannot contain ':', so the change log's source names the operator unambiguously.
  return {
    source: `operator:${label}`, runId: 0, now: () => at, precedence: opts.precedence, matchRules: [], orgMatchRules: [],
    policy: ingestPolicy({ personCreated: opts.personCreated, changeLogged: opts.changeLogged }), counters: newCounters(),
  };
}

function refuse(record: SourceRecordRef, why: string): RostergateError {
  return new RostergateError('IDENTITY_REFUSED', `${why}; nothing was changed`, { source: record.source, record: `${record.type} ${record.key}` });
}

/** The stored record an operator names, which must belong to an entity already. */
async function entityRecord(tx: IngestTx, record: SourceRecordRef): Promise<SourceRecordRow> {
  if (!(IDENTITY_TYPES as readonly string[]).includes(record.type)) throw refuse(record, `only people and organisations are linked (not ${record.type})`);
  const row = await tx.getSourceRecord(record.source, record.type, record.key);
  if (!row) throw refuse(record, 'the store has no such record (`rostergate identity conflicts` lists the records kept apart)');
  if (!row.entityId) throw refuse(record, 'it waits for a record it refers to and belongs to no entity yet');
  return row;
}

/**
 * Resolves again the records of `sources` that refer to `oldId`: those sources' keys of the moved
 * records now lead elsewhere. References resolve through each source's own keys, so records of
 * other sources cannot be affected. Returns how many were resolved again.
 */
async function repoint(tx: PageUnit, ctx: IngestContext, type: EntityType, oldId: string, sources: Set<string>): Promise<number> {
  const seen = new Set<string>();
  let n = 0;
  for (const rel of relsTo(type)) {
    for (const dep of await tx.linksTo(rel, oldId)) {
      if (seen.has(dep)) continue;
      seen.add(dep);
      for (const r of await tx.sourceRecordsOf(dep)) {
        if (!sources.has(r.source)) continue;
        await reresolveSourceRecord(tx, ctx, r);
        n++;
      }
    }
  }
  return n;
}

/** Pins every record of an entity to it: later syncs bring them back there, whatever the rules say. */
async function pin(tx: IngestTx, entityId: string, at: string): Promise<void> {
  for (const r of await tx.sourceRecordsOf(entityId)) await tx.setIdentityOverride(r, entityId, at);
}

/**
 * One audit entry per decision, in the same transaction. Like every entry it names no one: the
 * hash binds it to the decision (record and entity ids), which the change log and the overrides keep.
 */
async function audit(tx: StoreTx, opts: OperatorOptions, at: string, op: 'link' | 'unlink', record: SourceRecordRef, ids: { from: string; into: string }): Promise<void> {
  if (!opts.auditKey) return;
  const decision = stableJson({ op, source: record.source, type: record.type, key: record.key, ...ids });
  await appendAudit(tx, opts.auditKey, {
    at, client: 'operator', purpose: 'identity', kind: 'identity', operation: `identity ${op} (${record.type})`,
    operationHash: createHash('sha256').update(decision).digest('hex').slice(0, 32),
    categories: {}, fields: [], people: record.type === 'person' ? 2 : 0,
  });
}
