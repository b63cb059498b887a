/**
 * A write transaction's operations (StoreTx), written once for both stores against Kysely. The store
 * opens the transaction and takes its write lock (SQLite: BEGIN IMMEDIATE on the writer connection;
 * PostgreSQL: BEGIN + pg_advisory_xact_lock on one pooled connection) and hands this class a Kysely
 * bound to that connection; what differs between the stores is asked of the dialect.
 *
 * The per-record operations today's sync runs many times per record are compiled once per dialect
 * (compiled-once.ts); test/unit/batch-tx.test.ts holds them and their set-at-a-time forms to the
 * same results.
 */
import { sql, type Kysely } from 'kysely';
import type { EntityType } from '../../model/records.ts';
import type { Database } from '../db.ts';
import type { CopyRows, RowCells, StoreDialect } from '../dialect.ts';
import type {
  AuditRow, ChangeRow, EntityKeys, FreshRows, IdentityConflict, LeaseRow, SourceRecordRef, SourceRecordRow, StoreTx, SuppressionRow, SyncStateRow, TransactionOptions, ViewTime, ViewTimeRow,
} from '../types.ts';
import { BatchOps, chunks, freshChunks, inOrder } from './batch-tx.ts';
import { yieldIfBusy } from '../../kernel/yield-turn.ts';
import { compiledOnce } from './compiled-once.ts';
import { byKey, entityKey, entityKeys } from './entity-keys.ts';
import { json, jsonOrNull, toChange, toEntity, toSource } from './rows.ts';

const count = (n: bigint | undefined) => Number(n ?? 0n);

// The per-record statements of today's sync, compiled once per dialect (src/store/queries/compiled-once.ts).
const SOURCE_BY_KEY = compiledOnce(3, (db, _d, source: string, type: EntityType, key: string) =>
  db.selectFrom('source_records').selectAll().where('source', '=', source).where('type', '=', type).where('key', '=', key));
const SOURCES_OF = compiledOnce(1, (db, _d, entityId: string) => db.selectFrom('source_records').selectAll().where('entity_id', '=', entityId));
const UPSERT_SOURCE = compiledOnce(8, (db, _d, source: string, type: EntityType, key: string, entityId: string | null, data: string, hash: string,
  lastModified: string | null, seenRun: number) =>
  db.insertInto('source_records').values({ source, type, key, entity_id: entityId, data, hash, last_modified: lastModified, seen_run: seenRun })
    .onConflict((oc) => oc.columns(['source', 'type', 'key']).doUpdateSet((eb) => ({
      entity_id: eb.ref('excluded.entity_id'), data: eb.ref('excluded.data'), hash: eb.ref('excluded.hash'),
      last_modified: eb.ref('excluded.last_modified'), seen_run: eb.ref('excluded.seen_run'),
    }))));
const ENTITY_BY_ID = compiledOnce(1, (db, _d, id: string) => db.selectFrom('entities').selectAll().where('id', '=', id));
const UPSERT_ENTITY = compiledOnce(5, (db, _d, id: string, type: EntityType, data: string, updatedAt: string, updatedSeq: number) =>
  db.insertInto('entities').values({ id, type, data, updated_at: updatedAt, updated_seq: updatedSeq })
    .onConflict((oc) => oc.column('id').doUpdateSet((eb) => ({
      data: eb.ref('excluded.data'), updated_at: eb.ref('excluded.updated_at'), updated_seq: eb.ref('excluded.updated_seq'),
    }))));
// The audit chain's head and append: a serving group commit runs them once per batch and once per request.
const LAST_AUDIT = compiledOnce(0, (db) => db.selectFrom('audit_log').select(['seq', 'hash']).orderBy('seq', 'desc').limit(1));
const INSERT_AUDIT = compiledOnce(11, (db, _d, at: string, client: string, purpose: string, kind: string, operation: string | null,
  operationHash: string | null, categories: string, fields: string, people: number, prevHash: string, hash: string) =>
  db.insertInto('audit_log')
    .values({ at, client, purpose, kind, operation, operation_hash: operationHash, categories, fields, people, prev_hash: prevHash, hash })
    .returning('seq'));
// Links are keyed by their source entity's k (./entity-keys.ts): looked up in each statement.
const DELETE_LINKS_FROM = compiledOnce(1, (db, _d, fromId: string) => db.deleteFrom('links').where('from_k', '=', entityKey(db, fromId)));
const INSERT_LINK = compiledOnce(3, (db, _d, fromId: string, rel: string, to: string) =>
  db.insertInto('links').columns(['from_k', 'rel', 'to_id'])
    .expression(db.selectFrom('entities').select(['k', sql.val(rel).as('rel'), sql.val(to).as('to_id')]).where('id', '=', fromId))
    .onConflict((oc) => oc.doNothing()));
const LINKS_TO = compiledOnce(2, (db, d, rel: string, toId: string) =>
  db.selectFrom('links as l').innerJoin('entities as e', 'e.k', 'l.from_k').select('e.id')
    .where('l.rel', '=', rel).where('l.to_id', '=', toId).orderBy(d.byteOrder(sql.ref('e.id'))));
// In this order: the rows keyed by k find it through the entity row, which goes last.
const DELETE_BY_ENTITY = {
  match_keys: compiledOnce(1, (db, _d, id: string) => db.deleteFrom('match_keys').where('entity_id', '=', id)),
  pseudonyms: compiledOnce(1, (db, _d, id: string) => db.deleteFrom('pseudonyms').where('entity_id', '=', id)),
  entity_views: compiledOnce(1, (db, _d, id: string) => db.deleteFrom('entity_views').where('entity_k', '=', entityKey(db, id))),
  entities: compiledOnce(1, (db, _d, id: string) => db.deleteFrom('entities').where('id', '=', id)),
};
const MATCHES = compiledOnce(2, (db, d, kind: string, value: string) =>
  db.selectFrom('match_keys').select('entity_id').where('kind', '=', kind).where('value', '=', value).orderBy(d.byteOrder(sql.ref('entity_id'))));
const INSERT_MATCH_KEY = compiledOnce(3, (db, _d, kind: string, value: string, entityId: string) =>
  db.insertInto('match_keys').values({ kind, value, entity_id: entityId }).onConflict((oc) => oc.doNothing()));
const INSERT_CHANGE = compiledOnce(8, (db, _d, at: string, entityId: string, type: EntityType, op: ChangeRow['op'], fields: string, source: string | null,
  before: string | null, generalised: string | null) =>
  db.insertInto('change_log').values({ at, entity_id: entityId, type, op, fields, source, before, generalised }).returning('seq'));
const UPSERT_VIEW_TIME = compiledOnce(5, (db, _d, view: string, entityId: string, type: EntityType, updatedAt: string, updatedSeq: number) =>
  db.insertInto('entity_views').columns(['view', 'entity_k', 'type', 'updated_at', 'updated_seq'])
    .expression(db.selectFrom('entities').select([sql.val(view).as('view'), 'k', sql.val(type).as('type'), sql.val(updatedAt).as('updated_at'), sql.val(updatedSeq).as('updated_seq')])
      .where('id', '=', entityId))
    .onConflict((oc) => oc.columns(['entity_k', 'view']).doUpdateSet((eb) => ({
      type: eb.ref('excluded.type'), updated_at: eb.ref('excluded.updated_at'), updated_seq: eb.ref('excluded.updated_seq'),
    }))));
const OVERRIDE_OF = compiledOnce(3, (db, _d, source: string, type: EntityType, key: string) =>
  db.selectFrom('identity_overrides').select('entity_id').where('source', '=', source).where('type', '=', type).where('key', '=', key));
const SUPPRESSED = compiledOnce(3, (db, _d, source: string, type: EntityType, keyHash: string) =>
  db.selectFrom('suppressions').select('erasure').where('source', '=', source).where('type', '=', type).where('key_hash', '=', keyHash));
const PSEUDONYMS_OF = compiledOnce(1, (db, _d, entityId: string) =>
  db.selectFrom('pseudonyms as p')
    .innerJoin('pseudonym_domains as pd', (j) => j.onRef('pd.domain', '=', 'p.domain').onRef('pd.version', '=', 'p.version'))
    .select(['p.domain', 'p.value']).where('p.entity_id', '=', entityId));

export class WriteTx extends BatchOps implements StoreTx {
  constructor(
    db: Kysely<Database>,
    d: StoreDialect,
    mayYield: boolean,
    /** What the transaction may write (TransactionOptions): a roster transaction holds no lock on the audit log and ledger. */
    private readonly scope: TransactionOptions['scope'] = undefined,
    /** Where the store has it (PostgreSQL): writes rows known to be new by COPY (../postgres-copy.ts). */
    copy?: CopyRows,
  ) {
    super(db, d, mayYield, copy);
  }

  /**
   * Refuses to touch the audit log or the disclosure ledger in a roster transaction: on PostgreSQL it
   * does not hold their lock, so a concurrent group commit of audit entries could interleave.
   */
  private auditAllowed(operation: string): void {
    if (this.scope === 'roster') throw new Error(`${operation} touches the audit log or the disclosure ledger, which a roster transaction may not write`);
  }

  async yieldTurn(everyMs?: number): Promise<void> {
    if (this.mayYield) await yieldIfBusy(everyMs);
  }

  async getSourceRecord(source: string, type: EntityType, key: string) {
    const r = (await SOURCE_BY_KEY(this.db, this.d, source, type, key)).rows[0];
    return r && toSource(this.d, r);
  }

  async putSourceRecord(r: SourceRecordRow) {
    await UPSERT_SOURCE(this.db, this.d, r.source, r.type, r.key, r.entityId, json(r.data), r.hash, r.lastModified, r.seenRun);
  }

  async deleteSourceRecord(source: string, type: EntityType, key: string) {
    await this.db.deleteFrom('source_records').where('source', '=', source).where('type', '=', type).where('key', '=', key).execute();
  }

  async sourceRecordsOf(entityId: string) {
    return (await SOURCES_OF(this.db, this.d, entityId)).rows.map((r) => toSource(this.d, r));
  }

  async unseenSourceRecords(source: string, types: EntityType[], runId: number) {
    return this.db.selectFrom('source_records').select(['type', 'key'])
      .where('source', '=', source).where(this.d.inList(sql.ref('type'), types)).where('seen_run', '<>', runId)
      .orderBy(this.d.byteOrder(sql.ref('type'))).orderBy(this.d.byteOrder(sql.ref('key')))
      .execute();
  }

  async countSourceRecords(source: string, types: EntityType[]) {
    const r = await this.db.selectFrom('source_records').select((eb) => eb.fn.countAll<number>().as('n'))
      .where('source', '=', source).where(this.d.inList(sql.ref('type'), types)).executeTakeFirstOrThrow();
    return Number(r.n);
  }

  async pendingSourceRecords(source: string) {
    return (await this.db.selectFrom('source_records').selectAll().where('source', '=', source).where('entity_id', 'is', null).execute())
      .map((r) => toSource(this.d, r));
  }

  async resolveKey(source: string, type: EntityType, key: string) {
    return (await SOURCE_BY_KEY(this.db, this.d, source, type, key)).rows[0]?.entity_id ?? undefined;
  }

  async getEntity(id: string) {
    const r = (await ENTITY_BY_ID(this.db, this.d, id)).rows[0];
    return r && toEntity(this.d, r);
  }

  async putEntity(r: { id: string; type: EntityType; data: unknown; updatedAt: string; updatedSeq: number }) {
    await UPSERT_ENTITY(this.db, this.d, r.id, r.type, json(r.data), r.updatedAt, r.updatedSeq);
  }

  async deleteEntity(id: string) {
    await DELETE_LINKS_FROM(this.db, this.d, id);
    for (const del of Object.values(DELETE_BY_ENTITY)) await del(this.db, this.d, id);
  }

  async setLinks(fromId: string, links: { rel: string; to: string }[]) {
    await DELETE_LINKS_FROM(this.db, this.d, fromId);
    for (const l of links) await INSERT_LINK(this.db, this.d, fromId, l.rel, l.to);
  }

  async linksTo(rel: string, toId: string) {
    return (await LINKS_TO(this.db, this.d, rel, toId)).rows.map((r) => r.id);
  }

  async appendChange(c: Omit<ChangeRow, 'seq'>) {
    const r = await INSERT_CHANGE(this.db, this.d, c.at, c.entityId, c.type, c.op, json(c.fields), c.source, jsonOrNull(c.before), jsonOrNull(c.generalised));
    return Number(r.rows[0]!.seq);
  }

  async changesOf(entityIds: readonly string[]) {
    if (entityIds.length === 0) return [];
    const rows = await this.db.selectFrom('change_log').selectAll().where(this.d.inList(sql.ref('entity_id'), entityIds)).orderBy('seq').execute();
    return rows.map((r) => toChange(this.d, r));
  }

  async changeHorizon(): Promise<ViewTime | undefined> {
    const oldest = await this.db.selectFrom('change_log').select(['at', 'seq']).orderBy('seq').limit(1).executeTakeFirst();
    if (oldest) return { updatedAt: oldest.at, updatedSeq: Number(oldest.seq) };
    const newest = await this.db.selectFrom('entities').select(['updated_at', 'updated_seq']).orderBy('updated_seq', 'desc').limit(1).executeTakeFirst();
    return newest && { updatedAt: newest.updated_at, updatedSeq: Number(newest.updated_seq) };
  }

  async putViewTimes(rows: ViewTimeRow[], keys?: EntityKeys, opts?: FreshRows<string> & { keepStored?: boolean }) {
    if (rows.length === 0) return;
    const keepStored = opts?.keepStored ?? false;
    if (rows.length === 1 && !keys?.has(rows[0]!.entityId) && !keepStored) {
      const r = rows[0]!;
      await UPSERT_VIEW_TIME(this.db, this.d, r.view, r.entityId, r.type, r.updatedAt, r.updatedSeq);
      return;
    }
    // One row per (entity, view): the last given wins, as upserting them one by one would leave it.
    const last = new Map<string, ViewTimeRow>();
    for (const r of rows) last.set(`${r.entityId}\u0000${r.view}`, r);
    const upsert = (source: ReturnType<StoreDialect['rowsSelect']>, fresh = false) =>
      this.db.insertInto('entity_views').columns(['view', 'entity_k', 'type', 'updated_at', 'updated_seq']).expression(source)
        .$if(!fresh && keepStored, (qb) => qb.onConflict((oc) => oc.columns(['entity_k', 'view']).doNothing()))
        .$if(!fresh && !keepStored, (qb) => qb.onConflict((oc) => oc.columns(['entity_k', 'view']).doUpdateSet((eb) => ({
          type: eb.ref('excluded.type'), updated_at: eb.ref('excluded.updated_at'), updated_seq: eb.ref('excluded.updated_seq'),
        }))))
        .execute();
    // Entities this transaction wrote are named by the keys putEntities gave back (./entity-keys.ts `byKey`).
    const { keyed, unkeyed } = byKey([...last.values()], (r) => r.entityId, keys);
    const isFresh = opts?.fresh;
    const cells = ([r, k]: (typeof keyed)[number]): RowCells => [r.view, k, r.type, r.updatedAt, r.updatedSeq];
    await this.writeRows(freshChunks(keyed, isFresh && (([r]) => isFresh(r.entityId)), 5, this.d.maxParams), ([part, fresh]) =>
      upsert(this.d.rowsSelect(['text', 'int', 'text', 'text', 'int'], part.map(cells)), fresh),
    { table: 'entity_views', columns: ['view', 'entity_k', 'type', 'updated_at', 'updated_seq'], row: cells });
    for (const part of chunks(unkeyed, 5, this.d.maxParams)) {
      // The rows name entities by id; the table keys them by k, looked up in the same statement.
      const rows = this.d.rowsSelect(['text', 'text', 'text', 'text', 'int'], part.map((r) => [r.view, r.entityId, r.type, r.updatedAt, r.updatedSeq]));
      await upsert(sql`SELECT r.c0, e.k, r.c2, r.c3, r.c4 FROM (${rows}) AS r JOIN entities e ON e.id = r.c1 WHERE true`);
    }
  }

  async deleteViewTimes(rows: readonly { view: string; entityId: string }[], keys?: EntityKeys) {
    // A statement per view (a handful of purposes), naming the entities by key where this transaction wrote them.
    const byView = new Map<string, { entityId: string }[]>();
    for (const r of rows) (byView.get(r.view) ?? byView.set(r.view, []).get(r.view)!).push(r);
    for (const [view, of] of byView) {
      const { keyed, unkeyed } = byKey(of, (r) => r.entityId, keys);
      await inOrder(chunks(keyed, 1, this.d.maxParams), (part) =>
        this.db.deleteFrom('entity_views').where('view', '=', view).where(this.d.inKeys(sql.ref('entity_k'), part.map(([, k]) => k))).execute(), this.pipelined);
      for (const part of chunks(unkeyed, 1, this.d.maxParams)) {
        const ks = (await entityKeys(this.db, this.d, part.map((r) => r.entityId)).execute()).map((r) => r.k);
        if (ks.length) await this.db.deleteFrom('entity_views').where('view', '=', view).where(this.d.inKeys(sql.ref('entity_k'), ks)).execute();
      }
    }
  }

  async entitiesForView(type: EntityType, q: { afterId?: string; limit: number }) {
    // One type, compared with `=`: a range of entities_type_id in its order (PostgreSQL sorted every
    // remaining entity for each batch given `type = ANY(…)`, even of one element).
    const byteId = this.d.byteOrder(sql.ref('e.id'));
    const rows = await this.db.selectFrom('entities as e').select(['e.id', 'e.type', 'e.updated_at', 'e.updated_seq'])
      .where('e.type', '=', type).where(byteId, '>', q.afterId ?? '')
      .orderBy(byteId).limit(q.limit)
      .execute();
    if (rows.length === 0) return [];
    // The rows the views hold for them, read over the same range of the index (not by a list of ids).
    const stored = new Map<string, Map<string, number>>();
    const held = await this.db.selectFrom('entities as e').innerJoin('entity_views as v', 'v.entity_k', 'e.k').select(['e.id', 'v.view', 'v.updated_seq'])
      .where('e.type', '=', type).where(byteId, '>', q.afterId ?? '').where(byteId, '<=', rows[rows.length - 1]!.id)
      .execute();
    for (const r of held) (stored.get(r.id) ?? stored.set(r.id, new Map()).get(r.id)!).set(r.view, Number(r.updated_seq));
    return rows.map((r) => ({ id: r.id, type: r.type, updatedAt: r.updated_at, updatedSeq: Number(r.updated_seq), stored: stored.get(r.id) }));
  }

  async deleteViewTimesExcept(view: string, keep: EntityType[]) {
    const r = await this.db.deleteFrom('entity_views').where('view', '=', view).where(({ not }) => not(this.d.inList(sql.ref('type'), keep)))
      .executeTakeFirst();
    return count(r.numDeletedRows);
  }

  async dropView(view: string) {
    await this.db.deleteFrom('entity_views').where('view', '=', view).execute();
    await this.db.deleteFrom('view_fingerprints').where('view', '=', view).execute();
  }

  async setViewFingerprint(view: string, fingerprint: string, at: string) {
    await this.db.insertInto('view_fingerprints').values({ view, fingerprint, built_at: at })
      .onConflict((oc) => oc.column('view').doUpdateSet((eb) => ({ fingerprint: eb.ref('excluded.fingerprint'), built_at: eb.ref('excluded.built_at') })))
      .execute();
  }

  async findByMatchKey(kind: string, value: string) {
    return (await MATCHES(this.db, this.d, kind, value)).rows.map((r) => r.entity_id);
  }

  async setMatchKeys(entityId: string, keys: { kind: string; value: string }[]) {
    await DELETE_BY_ENTITY.match_keys(this.db, this.d, entityId);
    for (const k of keys) await INSERT_MATCH_KEY(this.db, this.d, k.kind, k.value, entityId);
  }

  async addConflict(c: Omit<IdentityConflict, 'id' | 'resolvedAt' | 'resolution'>) {
    await this.db.insertInto('identity_conflicts')
      .values({ at: c.at, source: c.source, type: c.type, key: c.key, reason: c.reason, candidates: json(c.candidates) })
      .onConflict((oc) => oc.columns(['source', 'type', 'key', 'reason']).doUpdateSet((eb) => ({
        at: eb.ref('excluded.at'), candidates: eb.ref('excluded.candidates'), resolved_at: null, resolution: null,
      })))
      .execute();
  }

  async resolveConflicts(r: SourceRecordRef, resolution: string, at: string) {
    const u = await this.db.updateTable('identity_conflicts').set({ resolved_at: at, resolution })
      .where('source', '=', r.source).where('type', '=', r.type).where('key', '=', r.key).where('resolved_at', 'is', null)
      .executeTakeFirst();
    return count(u.numUpdatedRows);
  }

  async identityOverride(r: SourceRecordRef) {
    return (await OVERRIDE_OF(this.db, this.d, r.source, r.type, r.key)).rows[0]?.entity_id;
  }

  async setIdentityOverride(r: SourceRecordRef, entityId: string, at: string) {
    await this.db.insertInto('identity_overrides').values({ source: r.source, type: r.type, key: r.key, entity_id: entityId, decided_at: at })
      .onConflict((oc) => oc.columns(['source', 'type', 'key']).doUpdateSet((eb) => ({
        entity_id: eb.ref('excluded.entity_id'), decided_at: eb.ref('excluded.decided_at'),
      })))
      .execute();
  }

  async setSyncState(r: SyncStateRow) {
    await this.db.insertInto('sync_state')
      .values({
        source: r.source, state: json(r.state), run_id: r.runId, run_status: r.runStatus, run_full: this.d.bool(r.runFull),
        started_at: r.startedAt, updated_at: r.updatedAt, error: r.error,
      })
      .onConflict((oc) => oc.column('source').doUpdateSet((eb) => ({
        state: eb.ref('excluded.state'), run_id: eb.ref('excluded.run_id'), run_status: eb.ref('excluded.run_status'), run_full: eb.ref('excluded.run_full'),
        started_at: eb.ref('excluded.started_at'), updated_at: eb.ref('excluded.updated_at'), error: eb.ref('excluded.error'),
      })))
      .execute();
  }

  async getLease(key: string): Promise<LeaseRow | undefined> {
    const r = await this.db.selectFrom('sync_leases').selectAll().where('key', '=', key).executeTakeFirst();
    return r && {
      key: r.key, token: r.token, holderHost: r.holder_host, holderPid: r.holder_pid, acquiredAt: r.acquired_at, heartbeatAt: r.heartbeat_at, expiresAt: r.expires_at,
    };
  }

  async putLease(l: LeaseRow) {
    await this.db.insertInto('sync_leases')
      .values({
        key: l.key, token: l.token, holder_host: l.holderHost, holder_pid: l.holderPid, acquired_at: l.acquiredAt, heartbeat_at: l.heartbeatAt, expires_at: l.expiresAt,
      })
      .onConflict((oc) => oc.column('key').doUpdateSet((eb) => ({
        token: eb.ref('excluded.token'), holder_host: eb.ref('excluded.holder_host'), holder_pid: eb.ref('excluded.holder_pid'),
        acquired_at: eb.ref('excluded.acquired_at'), heartbeat_at: eb.ref('excluded.heartbeat_at'), expires_at: eb.ref('excluded.expires_at'),
      })))
      .execute();
  }

  async deleteLease(key: string, token: string) {
    await this.db.deleteFrom('sync_leases').where('key', '=', key).where('token', '=', token).execute();
  }

  async getDomainVersion(domain: string) {
    return (await this.db.selectFrom('pseudonym_domains').select('version').where('domain', '=', domain).executeTakeFirst())?.version;
  }

  async setDomainVersion(domain: string, version: number, at: string) {
    await this.db.insertInto('pseudonym_domains').values({ domain, version, rotated_at: at })
      .onConflict((oc) => oc.column('domain').doUpdateSet((eb) => ({ version: eb.ref('excluded.version'), rotated_at: eb.ref('excluded.rotated_at') })))
      .execute();
  }

  async putPseudonyms(rows: { domain: string; version: number; entityId: string; value: string }[]) {
    const last = new Map<string, (typeof rows)[number]>();
    for (const r of rows) last.set(`${r.domain}\u0000${r.version}\u0000${r.entityId}`, r);
    // Only for people stored in this transaction's view (Store.putPseudonyms): a row for anyone else
    // is dropped here, so no writer (a backfill racing an erasure, a caller's mistake) can leave one.
    await inOrder(chunks([...last.values()], 4, this.d.maxParams), (part) =>
      this.db.insertInto('pseudonyms').columns(['domain', 'version', 'entity_id', 'value'])
        .expression(sql`SELECT r.c0, r.c1, r.c2, r.c3 FROM (${this.d.rowsSelect(['text', 'int', 'text', 'text'], part.map((r) => [r.domain, r.version, r.entityId, r.value]))}) r
          WHERE EXISTS (SELECT 1 FROM entities p WHERE p.id = r.c2 AND p.type = 'person')`)
        .onConflict((oc) => oc.columns(['domain', 'version', 'entity_id']).doUpdateSet((eb) => ({ value: eb.ref('excluded.value') })))
        .execute(), this.pipelined);
  }

  async deletePseudonyms(domain: string, version: number) {
    return count((await this.db.deleteFrom('pseudonyms').where('domain', '=', domain).where('version', '=', version).executeTakeFirst()).numDeletedRows);
  }

  async pseudonymsOfEntity(entityId: string) {
    // The current version of each domain: what the domain's clients know the person by.
    const out: Record<string, string> = {};
    for (const r of (await PSEUDONYMS_OF(this.db, this.d, entityId)).rows) out[r.domain] = r.value;
    return out;
  }

  async personTombstones(afterSeq: number, limit: number) {
    const rows = await this.db.selectFrom('change_log').select(['seq', 'entity_id', this.d.jsonMember(sql.ref('before'), '_pseudonyms').as('p')])
      .where('op', '=', 'deleted').where('type', '=', 'person').where('seq', '>', afterSeq).orderBy('seq').limit(limit)
      .execute();
    return rows.map((r) => ({
      seq: Number(r.seq), entityId: r.entity_id, pseudonyms: r.p === null || r.p === undefined ? {} : this.d.fromJson<Record<string, string>>(r.p),
    }));
  }

  async setTombstonePseudonyms(seq: number, pseudonyms: Record<string, string>) {
    await this.db.updateTable('change_log').set({ before: this.d.jsonWith(sql.ref('before'), '_pseudonyms', json(pseudonyms)) })
      .where('seq', '=', seq).where('op', '=', 'deleted').execute();
  }

  async lastAudit() {
    this.auditAllowed('lastAudit');
    const r = (await LAST_AUDIT(this.db, this.d)).rows[0];
    return r && { seq: Number(r.seq), hash: r.hash };
  }

  async insertAudit(r: AuditRow) {
    this.auditAllowed('insertAudit');
    const row = (await INSERT_AUDIT(this.db, this.d, r.at, r.client, r.purpose, r.kind, r.operation, r.operationHash,
      json(r.categories), json(r.fields), r.people, r.prevHash, r.hash)).rows[0]!;
    return Number(row.seq);
  }

  /**
   * One statement text whatever the number of people (the ids bound as one list): a request's
   * ledger rows are written with a statement prepared once, not a VALUES list per count that SQLite
   * has to prepare and Kysely to build value by value (a people extract writes thousands at once).
   */
  async recordDisclosures(client: string, entityIds: string[], at: string) {
    this.auditAllowed('recordDisclosures');
    const ids = [...new Set(entityIds)];
    if (!ids.length) return;
    await this.db.insertInto('disclosures').columns(['client', 'entity_id', 'first_at', 'last_at'])
      .expression(sql`SELECT CAST(${client} AS TEXT), l.value, CAST(${at} AS TEXT), CAST(${at} AS TEXT) FROM ${this.d.listTable(ids, 'l')} WHERE true`)
      .onConflict((oc) => oc.columns(['client', 'entity_id']).doUpdateSet((eb) => ({ last_at: eb.ref('excluded.last_at') })))
      .execute();
  }

  async transferDisclosures(fromId: string, toId: string, mode: 'move' | 'copy') {
    this.auditAllowed('transferDisclosures');
    await this.db.insertInto('disclosures').columns(['client', 'entity_id', 'first_at', 'last_at'])
      .expression((eb) => eb.selectFrom('disclosures').select(['client', sql<string>`${toId}`.as('entity_id'), 'first_at', 'last_at']).where('entity_id', '=', fromId))
      .onConflict((oc) => oc.columns(['client', 'entity_id']).doUpdateSet((eb) => ({
        first_at: this.d.least(eb.ref('disclosures.first_at'), eb.ref('excluded.first_at')),
        last_at: this.d.greatest(eb.ref('disclosures.last_at'), eb.ref('excluded.last_at')),
      })))
      .execute();
    if (mode === 'move') await this.db.deleteFrom('disclosures').where('entity_id', '=', fromId).execute();
  }

  async purgeChangesBefore(beforeIso: string) {
    // max(seq + 0), not max(seq): SQLite answers max(seq) by walking the rowid b-tree from the
    // end until a row is old enough — the whole change log when none is, i.e. on nearly every
    // sync (40 ms at 20,000 students). The expression leaves it the `at` index's range instead.
    const last = (await this.db.selectFrom('change_log').select(sql<number | null>`max(${sql.ref('seq')} + 0)`.as('s')).where('at', '<', beforeIso).executeTakeFirst())?.s;
    if (last === null || last === undefined) return 0;
    const r = await this.db.deleteFrom('change_log').where('seq', '<=', Number(last)).executeTakeFirst();
    await this.db.insertInto('meta').values({ key: 'change_log_purged_through', value: String(last) })
      .onConflict((oc) => oc.column('key').doUpdateSet((eb) => ({ value: eb.ref('excluded.value') })))
      .execute();
    return count(r.numDeletedRows);
  }

  async purgeWebhookDeliveriesBefore(beforeIso: string) {
    const r = await this.db.deleteFrom('webhook_deliveries').where('status', '<>', 'pending')
      .where((eb) => eb(eb.fn.coalesce('delivered_at', 'created_at'), '<', beforeIso)).executeTakeFirst();
    return count(r.numDeletedRows);
  }

  async auditLastBefore(beforeIso: string) {
    this.auditAllowed('auditLastBefore');
    const r = await this.db.selectFrom('audit_log').select(['seq', 'hash'])
      .where('seq', '=', (eb) => eb.selectFrom('audit_log').select((e) => e.fn.max('seq').as('m')).where('at', '<', beforeIso))
      .executeTakeFirst();
    return r && { seq: Number(r.seq), hash: r.hash };
  }

  async deleteAuditThrough(seq: number) {
    this.auditAllowed('deleteAuditThrough');
    await this.d.auditDeleteGuard(this.db, false);
    const r = await this.db.deleteFrom('audit_log').where('seq', '<=', seq).executeTakeFirst();
    await this.d.auditDeleteGuard(this.db, true);
    return count(r.numDeletedRows);
  }

  async isSuppressed(source: string, type: EntityType, keyHash: string) {
    return (await SUPPRESSED(this.db, this.d, source, type, keyHash)).rows.length > 0;
  }

  async addSuppressions(rows: SuppressionRow[]) {
    for (const part of chunks(rows, 5, this.d.maxParams)) {
      await this.db.insertInto('suppressions')
        .values(part.map((r) => ({ source: r.source, type: r.type, key_hash: r.keyHash, erasure: r.erasure, created_at: r.createdAt })))
        .onConflict((oc) => oc.doNothing()).execute();
    }
  }

  async liftSuppression(source: string, type: EntityType, keyHash: string) {
    const r = await this.db.selectFrom('suppressions').select('erasure')
      .where('source', '=', source).where('type', '=', type).where('key_hash', '=', keyHash).executeTakeFirst();
    if (!r) return 0;
    return count((await this.db.deleteFrom('suppressions').where('erasure', '=', r.erasure).executeTakeFirst()).numDeletedRows);
  }

  async eraseTraces(entityIds: readonly string[], pseudonyms: readonly string[]) {
    this.auditAllowed('eraseTraces');
    if (entityIds.length === 0) return;
    const ids = [...entityIds];
    // Rows keyed by k (links from these records, their view times) went with the entity rows
    // (deleteEntity), and a k is never used again; these statements find any still stored. Links
    // *to* them name them by id.
    const keys = entityKeys(this.db, this.d, ids);
    await this.db.deleteFrom('links').where((eb) => eb.or([eb('from_k', 'in', keys), this.d.inList(sql.ref('to_id'), ids)])).execute();
    await this.db.deleteFrom('entity_views').where('entity_k', 'in', keys).execute();
    for (const t of ['match_keys', 'pseudonyms', 'identity_overrides', 'disclosures'] as const) {
      await this.db.deleteFrom(t).where(this.d.inList(sql.ref('entity_id'), ids)).execute();
    }
    for (const id of ids) {
      // Own rows, and tombstones whose last state names the person (a guardianship's guardianId …).
      await this.db.deleteFrom('change_log').where((eb) => eb.or([eb('entity_id', '=', id), this.d.textHas(sql.ref('before'), id)])).execute();
      await this.db.deleteFrom('identity_conflicts').where(this.d.textHas(sql.ref('candidates'), id)).execute();
    }
    // Payloads name a person by gateway id or by pseudonym, as the client's purpose sees them.
    for (const v of [...ids, ...pseudonyms]) await this.db.deleteFrom('webhook_deliveries').where(this.d.textHas(sql.ref('payload'), v)).execute();
  }

  async addDeliveries(ds: Parameters<StoreTx['addDeliveries']>[0]) {
    await this.insertDeliveries(ds);
  }

  /** Queues pending deliveries (erasure notices, and the webhook store's enqueue). */
  async insertDeliveries(ds: Parameters<StoreTx['addDeliveries']>[0]) {
    for (const part of chunks(ds, 7, this.d.maxParams)) {
      await this.db.insertInto('webhook_deliveries')
        .values(part.map((d) => ({
          webhook_id: d.webhookId, seq: d.seq, msg_id: d.msgId, event_type: d.eventType, payload: d.payload, status: 'pending' as const,
          next_attempt_at: d.nextAttemptAt, created_at: d.createdAt,
        })))
        .execute();
    }
  }
}
