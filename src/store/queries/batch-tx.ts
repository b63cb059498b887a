/**
 * The set-at-a-time operations of a write transaction (BatchTx, src/store/types.ts), written once
 * for both stores against Kysely. Each call means what the singular operation called once per
 * element, in order, would mean:
 * - reads bind their keys as one parameter (dialect.inList / inTuples), so one statement answers a
 *   whole page whatever its size;
 * - writes are INSERT … SELECT from the dialect's rowsSelect: the rows bound as one JSON parameter
 *   (SQLite json_each, PostgreSQL jsonb_array_elements), one statement text per shape whatever the
 *   row count, chunked at MAX_ROWS_PER_STATEMENT rows. Elements with
 *   the same key are folded first, as applying them one after another would leave the row: the last
 *   wins (an entity keeps the type its first insert gave it, as the singular upsert does) — and
 *   PostgreSQL refuses an ON CONFLICT DO UPDATE that meets one row twice in a statement.
 *   On PostgreSQL, the source records, links and view times known to be new (FreshRows), and every
 *   change, go by COPY instead (`writeRows`, ../postgres-copy.ts); entities stay INSERTs, since their
 *   keys come back with RETURNING.
 * Change seqs are explicit: a page numbers its changes from nextChangeSeq() under the write lock,
 * and the store's own numbering (SQLite AUTOINCREMENT, PostgreSQL's sequence) continues after them.
 */
import { sql, type Kysely } from 'kysely';
import type { EntityType } from '../../model/records.ts';
import type { Database } from '../db.ts';
import type { CopyRows, RowCells, StoreDialect } from '../dialect.ts';
import type { BatchTx, ChangeRow, EntityKeys, EntityRow, FreshRows, SourceRecordRef, SourceRecordRow } from '../types.ts';
import { endOfTurn } from '../../kernel/yield-turn.ts';
import { byKey, entityKeys } from './entity-keys.ts';
import { json, jsonOrNull, toEntity, toSource } from './rows.ts';

type EntityWrite = Parameters<BatchTx['putEntities']>[0][number];

/**
 * Rows per multi-row statement at most. Past a few hundred rows a statement saves no more round
 * trips worth having, while building, compiling and preparing it grows with its size — and a fixed
 * size lets the full chunks of every page reuse one prepared statement.
 */
const MAX_ROWS_PER_STATEMENT = 500;

/** Splits rows into chunks whose statements bind at most `maxParams` parameters (and MAX_ROWS_PER_STATEMENT rows). */
export function chunks<T>(rows: readonly T[], paramsPerRow: number, maxParams: number): T[][] {
  const size = Math.max(1, Math.min(MAX_ROWS_PER_STATEMENT, Math.floor(maxParams / paramsPerRow)));
  const out: T[][] = [];
  for (let i = 0; i < rows.length; i += size) out.push(rows.slice(i, i + size));
  return out;
}

/**
 * The rows in chunks, each with whether it holds only rows the caller knows are not stored yet
 * (FreshRows): those chunks are inserted without a conflict check, the others upserted.
 */
export function freshChunks<T>(rows: readonly T[], fresh: ((row: T) => boolean) | undefined, paramsPerRow: number, maxParams: number): [T[], boolean][] {
  if (!fresh) return chunks(rows, paramsPerRow, maxParams).map((c) => [c, false]);
  const [yes, no] = [[] as T[], [] as T[]];
  for (const r of rows) (fresh(r) ? yes : no).push(r);
  return [
    ...chunks(yes, paramsPerRow, maxParams).map((c): [T[], boolean] => [c, true]),
    ...chunks(no, paramsPerRow, maxParams).map((c): [T[], boolean] => [c, false]),
  ];
}

/**
 * Runs a write's statements one after another, in the order given. When `pipelined`, without
 * waiting for each answer before building the next: the transaction's connection runs them one at
 * a time and in order (Kysely queues a connection's queries), so on PostgreSQL the next chunk's rows
 * are serialised and compiled while the server executes this one, where the server used to wait
 * for them. Between statements the event loop gets a turn, so an answer that came back is taken and
 * the next queued statement sent. The first failure is the one raised, and nothing more is sent
 * after it: a failed write fails its transaction (PostgreSQL refuses the rest anyway).
 */
export async function inOrder<T, R>(parts: readonly T[], statement: (part: T) => Promise<R>, pipelined: boolean): Promise<R[]> {
  if (!pipelined) {
    const out: R[] = [];
    for (const part of parts) out.push(await statement(part));
    return out;
  }
  const sent: Promise<R>[] = [];
  let failed = false;
  for (const part of parts) {
    if (sent.length) await endOfTurn();
    if (failed) break;
    const p = statement(part);
    // Marked handled at once: a failure met while the next statement is built is raised below.
    p.catch(() => (failed = true));
    sent.push(p);
  }
  return Promise.all(sent);
}

const refKey = (r: SourceRecordRef) => `${r.source}\u0000${r.type}\u0000${r.key}`;
const refTuples = (refs: readonly SourceRecordRef[]) => refs.map((r) => [r.source, r.type, r.key]);
const ids = (xs: Iterable<string>) => [...new Set(xs)];
/** Byte order, as the stores sort ids (SQLite BINARY, PostgreSQL COLLATE "C"). */
const byteCompare = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);

export class BatchOps implements BatchTx {
  /**
   * Whether a write's statements go out without waiting for each answer (inOrder): only where they
   * run elsewhere (PostgreSQL's server) and the transaction may hand the event loop back. SQLite runs
   * each statement on this thread, so there is nothing to overlap; and an in-memory SQLite store must
   * not hand the loop back inside a transaction (its one connection would show the writes early).
   */
  readonly pipelined: boolean;

  constructor(
    /** The transaction's connection (the store's own multi-statement writes run on it too). */
    readonly db: Kysely<Database>,
    protected readonly d: StoreDialect,
    /** Whether other code may run while this transaction is open (see WriteTx's `yieldTurn`). */
    protected readonly mayYield: boolean,
    /** Where the store has it (PostgreSQL's COPY): how rows known to be new are written. */
    private readonly copy?: CopyRows,
  ) {
    this.pipelined = mayYield && d.kind === 'postgres';
    this.copies = copy !== undefined;
  }

  /** Whether rows known to be new go by COPY (PostgreSQL's write transactions). */
  readonly copies: boolean;

  /**
   * A write's chunks (freshChunks: each with whether all its rows are known to be new), in order.
   * Where the store offers COPY, the new rows go in one COPY first (freshChunks puts them first),
   * then the others as multi-row statements; elsewhere every chunk is its statement.
   */
  protected async writeRows<T>(parts: [T[], boolean][], statement: (part: [T[], boolean]) => Promise<unknown>, copy: { table: string; columns: readonly string[]; row: (r: T) => RowCells }): Promise<void> {
    if (this.copy) {
      const fresh: RowCells[] = [];
      for (const [part, isFresh] of parts) if (isFresh) for (const r of part) fresh.push(copy.row(r));
      if (fresh.length) {
        await this.copy(copy.table, copy.columns, fresh);
        parts = parts.filter(([, isFresh]) => !isFresh);
      }
    }
    await inOrder(parts, statement, this.pipelined);
  }

  async getSourceRecords(refs: readonly SourceRecordRef[]): Promise<SourceRecordRow[]> {
    if (refs.length === 0) return [];
    const rows = await this.db.selectFrom('source_records').selectAll()
      .where(this.d.inTuples([sql.ref('source'), sql.ref('type'), sql.ref('key')], refTuples(refs)))
      .execute();
    return rows.map((r) => toSource(this.d, r));
  }

  async entityIdsOfRecords(refs: readonly SourceRecordRef[]): Promise<(SourceRecordRef & { entityId: string | null })[]> {
    if (refs.length === 0) return [];
    const rows = await this.db.selectFrom('source_records').select(['source', 'type', 'key', 'entity_id'])
      .where(this.d.inTuples([sql.ref('source'), sql.ref('type'), sql.ref('key')], refTuples(refs)))
      .execute();
    return rows.map((r) => ({ source: r.source, type: r.type, key: r.key, entityId: r.entity_id }));
  }

  async sourceRecordsOfEntities(entityIds: readonly string[]): Promise<SourceRecordRow[]> {
    if (entityIds.length === 0) return [];
    const rows = await this.db.selectFrom('source_records').selectAll().where(this.d.inList(sql.ref('entity_id'), ids(entityIds))).execute();
    return rows.map((r) => toSource(this.d, r));
  }

  async entitiesById(entityIds: readonly string[]): Promise<EntityRow[]> {
    if (entityIds.length === 0) return [];
    const rows = await this.db.selectFrom('entities').selectAll().where(this.d.inList(sql.ref('id'), ids(entityIds))).execute();
    return rows.map((r) => toEntity(this.d, r));
  }

  async linksToMany(rel: string, toIds: readonly string[]): Promise<{ from: string; to: string }[]> {
    if (toIds.length === 0) return [];
    const order = new Map(ids(toIds).map((id, i) => [id, i]));
    const rows = await this.db.selectFrom('links as l').innerJoin('entities as e', 'e.k', 'l.from_k').select(['e.id as from_id', 'l.to_id'])
      .where('l.rel', '=', rel).where(this.d.inList(sql.ref('l.to_id'), [...order.keys()])).execute();
    // As linksTo once per target, in order: grouped by target in the order asked, each by source id.
    rows.sort((a, b) => order.get(a.to_id)! - order.get(b.to_id)! || byteCompare(a.from_id, b.from_id));
    return rows.map((r) => ({ from: r.from_id, to: r.to_id }));
  }

  async matchKeyEntities(keys: readonly { kind: string; value: string }[]): Promise<{ kind: string; value: string; entityId: string }[]> {
    if (keys.length === 0) return [];
    const order = new Map(keys.map((k, i) => [`${k.kind}\u0000${k.value}`, i]));
    const rows = await this.db.selectFrom('match_keys').select(['kind', 'value', 'entity_id'])
      .where(this.d.inTuples([sql.ref('kind'), sql.ref('value')], keys.map((k) => [k.kind, k.value]))).execute();
    rows.sort((a, b) => order.get(`${a.kind}\u0000${a.value}`)! - order.get(`${b.kind}\u0000${b.value}`)! || byteCompare(a.entity_id, b.entity_id));
    return rows.map((r) => ({ kind: r.kind, value: r.value, entityId: r.entity_id }));
  }

  async identityOverridesOf(refs: readonly SourceRecordRef[]): Promise<(SourceRecordRef & { entityId: string })[]> {
    if (refs.length === 0) return [];
    const rows = await this.db.selectFrom('identity_overrides').select(['source', 'type', 'key', 'entity_id'])
      .where(this.d.inTuples([sql.ref('source'), sql.ref('type'), sql.ref('key')], refTuples(refs))).execute();
    return rows.map((r) => ({ source: r.source, type: r.type, key: r.key, entityId: r.entity_id }));
  }

  async hasSourceRecords(source: string): Promise<boolean> {
    return !!(await this.db.selectFrom('source_records').select(sql<number>`1`.as('one')).where('source', '=', source).limit(1).executeTakeFirst());
  }

  async hasSuppressions(source: string): Promise<boolean> {
    return !!(await this.db.selectFrom('suppressions').select(sql<number>`1`.as('one')).where('source', '=', source).limit(1).executeTakeFirst());
  }

  async suppressedOf(source: string, entries: readonly { type: EntityType; keyHash: string }[]): Promise<{ type: EntityType; keyHash: string }[]> {
    if (entries.length === 0) return [];
    const rows = await this.db.selectFrom('suppressions').select(['type', 'key_hash']).where('source', '=', source)
      .where(this.d.inTuples([sql.ref('type'), sql.ref('key_hash')], entries.map((e) => [e.type, e.keyHash]))).execute();
    return rows.map((r) => ({ type: r.type, keyHash: r.key_hash }));
  }

  async pseudonymsOfEntities(entityIds: readonly string[]): Promise<Map<string, Record<string, string>>> {
    const out = new Map<string, Record<string, string>>();
    if (entityIds.length === 0) return out;
    // The current version of each domain, as pseudonymsOfEntity: what the domain's clients know the person by.
    const rows = await this.db.selectFrom('pseudonyms as p')
      .innerJoin('pseudonym_domains as d', (j) => j.onRef('d.domain', '=', 'p.domain').onRef('d.version', '=', 'p.version'))
      .select(['p.entity_id', 'p.domain', 'p.value'])
      .where(this.d.inList(sql.ref('p.entity_id'), ids(entityIds))).execute();
    for (const r of rows) {
      let m = out.get(r.entity_id);
      if (!m) out.set(r.entity_id, (m = {}));
      m[r.domain] = r.value;
    }
    return out;
  }

  async putSourceRecords(rows: readonly SourceRecordRow[], opts?: FreshRows<SourceRecordRef>): Promise<void> {
    const last = new Map<string, SourceRecordRow>();
    for (const r of rows) last.set(refKey(r), r);
    const cells = (r: SourceRecordRow): RowCells => [r.source, r.type, r.key, r.entityId, json(r.data), r.hash, r.lastModified, r.seenRun];
    const columns = ['source', 'type', 'key', 'entity_id', 'data', 'hash', 'last_modified', 'seen_run'] as const;
    await this.writeRows(freshChunks([...last.values()], opts?.fresh, 8, this.d.maxParams), ([part, fresh]) =>
      this.db.insertInto('source_records').columns(columns)
        .expression(this.d.rowsSelect(['text', 'text', 'text', 'text', 'json', 'text', 'text', 'int'], part.map(cells)))
        .$if(!fresh, (qb) => qb.onConflict((oc) => oc.columns(['source', 'type', 'key']).doUpdateSet((eb) => ({
          entity_id: eb.ref('excluded.entity_id'), data: eb.ref('excluded.data'), hash: eb.ref('excluded.hash'),
          last_modified: eb.ref('excluded.last_modified'), seen_run: eb.ref('excluded.seen_run'),
        }))))
        .execute(), { table: 'source_records', columns, row: cells });
  }

  async markSourceRecordsSeen(runId: number, refs: readonly SourceRecordRef[]): Promise<void> {
    if (refs.length === 0) return;
    await this.db.updateTable('source_records').set({ seen_run: runId })
      .where(this.d.inTuples([sql.ref('source'), sql.ref('type'), sql.ref('key')], refTuples(refs))).execute();
  }

  async markUnchangedSeen(runId: number, delivered: readonly (SourceRecordRef & { hash: string })[]): Promise<SourceRecordRef[]> {
    if (delivered.length === 0) return [];
    // As ingest's isUnchanged asks of a stored row: its hash, an entity, no `unresolved` member.
    // Joined to the delivered rows (UPDATE … FROM), not `IN` them: SQLite builds and sorts a
    // temporary index of an IN list's rows first (5,000 records: 24 against 17 ms a statement).
    const d = this.d.rowsSelect(['text', 'text', 'text', 'text'], delivered.map((r) => [r.source, r.type, r.key, r.hash]));
    const rows = await this.db.updateTable('source_records').set({ seen_run: runId })
      .from(sql<{ c0: string; c1: string; c2: string; c3: string }>`(${d})`.as('d'))
      .whereRef('source', '=', sql.ref('d.c0')).whereRef('type', '=', sql.ref('d.c1'))
      .whereRef('key', '=', sql.ref('d.c2')).whereRef('hash', '=', sql.ref('d.c3'))
      .where('entity_id', 'is not', null)
      .where(sql<boolean>`${this.d.jsonMember(sql.ref('data'), 'unresolved')} IS NULL`)
      .returning(['source', 'type', 'key']).execute();
    return rows.map((r) => ({ source: r.source, type: r.type, key: r.key }));
  }

  async deleteSourceRecords(refs: readonly SourceRecordRef[]): Promise<void> {
    if (refs.length === 0) return;
    await this.db.deleteFrom('source_records').where(this.d.inTuples([sql.ref('source'), sql.ref('type'), sql.ref('key')], refTuples(refs))).execute();
  }

  async putEntities(rows: readonly EntityWrite[], opts?: FreshRows<string>): Promise<EntityKeys> {
    const last = new Map<string, EntityWrite>();
    for (const r of rows) {
      const before = last.get(r.id);
      // An update keeps the type the row was inserted with (the upsert does not set it).
      last.set(r.id, before ? { ...r, type: before.type } : r);
    }
    const keys = new Map<string, number | string>();
    const isFresh = opts?.fresh;
    const written = await inOrder(freshChunks([...last.values()], isFresh && ((r) => isFresh(r.id)), 5, this.d.maxParams), ([part, fresh]) =>
      this.db.insertInto('entities').columns(['id', 'type', 'data', 'updated_at', 'updated_seq'])
        .expression(this.d.rowsSelect(['text', 'text', 'json', 'text', 'int'], part.map((r) => [r.id, r.type, json(r.data), r.updatedAt, r.updatedSeq])))
        .$if(!fresh, (qb) => qb.onConflict((oc) => oc.column('id').doUpdateSet((eb) => ({
          data: eb.ref('excluded.data'), updated_at: eb.ref('excluded.updated_at'), updated_seq: eb.ref('excluded.updated_seq'),
        }))))
        .returning(['id', 'k'])
        .execute(), this.pipelined);
    for (const rows of written) for (const r of rows) keys.set(r.id, r.k);
    return keys;
  }

  async deleteEntities(entityIds: readonly string[]): Promise<void> {
    if (entityIds.length === 0) return;
    const list = ids(entityIds);
    for (const t of ['match_keys', 'pseudonyms'] as const) {
      await this.db.deleteFrom(t).where(this.d.inList(sql.ref('entity_id'), list)).execute();
    }
    // Before the entities: their keys are found through them. Read first, then named: as a subquery
    // over thousands of ids, PostgreSQL planned each delete as a hash join over the whole table.
    const keys = (await entityKeys(this.db, this.d, list).execute()).map((r) => r.k);
    if (keys.length) {
      await this.db.deleteFrom('links').where(this.d.inKeys(sql.ref('from_k'), keys)).execute();
      await this.db.deleteFrom('entity_views').where(this.d.inKeys(sql.ref('entity_k'), keys)).execute();
    }
    await this.db.deleteFrom('entities').where(this.d.inList(sql.ref('id'), list)).execute();
  }

  async replaceLinks(entries: readonly { fromId: string; links: { rel: string; to: string }[]; noneStored?: boolean }[], keys?: EntityKeys): Promise<void> {
    if (entries.length === 0) return;
    const last = new Map<string, { rel: string; to: string }[]>();
    for (const e of entries) last.set(e.fromId, e.links);
    // Only the links of records stored before (most of a first sync is new).
    const stored = byKey(entries.filter((e) => !e.noneStored).map((e) => e.fromId), (id) => id, keys);
    if (stored.keyed.length) await this.db.deleteFrom('links').where(this.d.inKeys(sql.ref('from_k'), stored.keyed.map(([, k]) => k))).execute();
    if (stored.unkeyed.length) await this.db.deleteFrom('links').where('from_k', 'in', entityKeys(this.db, this.d, stored.unkeyed)).execute();
    const rows = new Map<string, [string, string, string]>();
    for (const [from, links] of last) for (const l of links) rows.set(`${from}\u0000${l.rel}\u0000${l.to}`, [from, l.rel, l.to]);
    const { keyed, unkeyed } = byKey([...rows.values()], ([from]) => from, keys);
    // Links from a record new in this transaction: none stored, so none to meet (FreshRows).
    const none = new Set(entries.filter((e) => e.noneStored).map((e) => e.fromId));
    const cells = ([[, rel, to], k]: (typeof keyed)[number]): RowCells => [k, rel, to];
    await this.writeRows(freshChunks(keyed, ([[from]]) => none.has(from), 3, this.d.maxParams), ([part, fresh]) =>
      this.db.insertInto('links').columns(['from_k', 'rel', 'to_id'])
        .expression(this.d.rowsSelect(['int', 'text', 'text'], part.map(cells)))
        .$if(!fresh, (qb) => qb.onConflict((oc) => oc.doNothing())).execute(), { table: 'links', columns: ['from_k', 'rel', 'to_id'], row: cells });
    for (const part of chunks(unkeyed, 3, this.d.maxParams)) {
      // Sources named by id alone: their keys looked up in the same statement.
      await this.db.insertInto('links').columns(['from_k', 'rel', 'to_id'])
        .expression(sql`SELECT e.k, r.c1, r.c2 FROM (${this.d.rowsSelect(['text', 'text', 'text'], part)}) AS r JOIN entities e ON e.id = r.c0 WHERE true`)
        .onConflict((oc) => oc.doNothing()).execute();
    }
  }

  async replaceMatchKeys(entries: readonly { entityId: string; keys: { kind: string; value: string }[] }[]): Promise<void> {
    if (entries.length === 0) return;
    const last = new Map<string, { kind: string; value: string }[]>();
    for (const e of entries) last.set(e.entityId, e.keys);
    await this.db.deleteFrom('match_keys').where(this.d.inList(sql.ref('entity_id'), [...last.keys()])).execute();
    const rows = new Map<string, [string, string, string]>();
    for (const [entity, keys] of last) for (const k of keys) rows.set(`${k.kind}\u0000${k.value}\u0000${entity}`, [k.kind, k.value, entity]);
    await inOrder(chunks([...rows.values()], 3, this.d.maxParams), (part) =>
      this.db.insertInto('match_keys').columns(['kind', 'value', 'entity_id']).expression(this.d.rowsSelect(['text', 'text', 'text'], part))
        .onConflict((oc) => oc.doNothing()).execute(), this.pipelined);
  }

  nextChangeSeq(): Promise<number> {
    return this.d.nextChangeSeq(this.db);
  }

  async appendChanges(rows: readonly ChangeRow[]): Promise<void> {
    if (rows.length === 0) return;
    // Seqs must continue the log: never one handed out before (a purged change's included).
    const next = await this.d.nextChangeSeq(this.db);
    let prev = next - 1;
    for (const r of rows) {
      if (!Number.isSafeInteger(r.seq) || r.seq <= prev) {
        throw new Error(`appendChanges: seq ${r.seq} does not follow ${prev} (number changes from nextChangeSeq(), in order)`);
      }
      prev = r.seq;
    }
    // Every change is a new row (its seq follows the log), so all of them may go by COPY.
    const cells = (c: ChangeRow): RowCells => [c.seq, c.at, c.entityId, c.type, c.op, json(c.fields), c.source, jsonOrNull(c.before), jsonOrNull(c.generalised)];
    const columns = ['seq', 'at', 'entity_id', 'type', 'op', 'fields', 'source', 'before', 'generalised'] as const;
    await this.writeRows(chunks(rows, 9, this.d.maxParams).map((part): [ChangeRow[], boolean] => [part, true]), ([part]) =>
      this.db.insertInto('change_log').columns(columns)
        .expression(this.d.rowsSelect(['int', 'text', 'text', 'text', 'text', 'json', 'text', 'json', 'json'], part.map(cells)))
        .execute(), { table: 'change_log', columns, row: cells });
    await this.d.changesAppended(this.db, prev);
  }
}
