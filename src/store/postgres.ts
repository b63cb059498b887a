/**
 * The production store: PostgreSQL through `pg`, the same interface and behaviour as SQLite.
 *
 * Every write transaction first takes one transaction-scoped advisory lock, so writers on any
 * number of gateway replicas are serialised by PostgreSQL itself: change-log sequence numbers then
 * commit in order (a feed reader never sees seq 11 before seq 10 exists), and two replicas never
 * apply pages of the same source at once.
 */
import pg from 'pg';
import { ENTITY_TYPES, type EntityType } from '../model/records.ts';
import { RostergateError } from '../errors.ts';
import { POSTGRES_MIGRATIONS, type RowRepair } from './migrations.ts';
import { storeConditionError } from './conditions.ts';
import type {
  AuditRow,
  ChangeRow,
  DeliveryRow,
  EntityRow,
  IdentityConflict,
  LeaseRow,
  ListQuery,
  ListResult,
  SourceRecordRef,
  SourceRecordRow,
  Store,
  SubjectRows,
  StoreTx,
  SuppressionRow,
  SyncStateRow,
  ViewTime,
  ViewTimeRow,
  WebhookRow,
  WebhookStore,
} from './types.ts';
import { tombstoneOf } from './types.ts';
import { isPseudonymOrdered, type PseudonymOrderedType } from './order.ts';
import { CompiledQuery, Kysely, PostgresDialect, sql, type SqlBool } from 'kysely';
import type { Database as Tables } from './db.ts';
import type { StoreDialect } from './dialect.ts';
import { BatchOps } from './queries/batch-tx.ts';

/** How errors name this store: never its URL, which may carry a password. */
const LABEL = 'the PostgreSQL store';

/** Advisory lock key of the gateway's write transactions ("rstrgate" in ASCII). */
const WRITE_LOCK = 0x7273747267617465n;

// int8 (counts, sequences) as numbers: sequences stay far below 2^53.
const types = {
  getTypeParser: (oid: number, format?: string) =>
    oid === 20 ? (v: string) => Number(v) : pg.types.getTypeParser(oid, format as 'text'),
};

type Q = { query: pg.Pool['query'] };

/**
 * PostgreSQL's side of the query layer (src/store/dialect.ts): lists as arrays (`= ANY`, unnest),
 * JSON as jsonb (pg parses it on read), booleans as booleans, byte order by COLLATE "C" (the
 * database's locale would order otherwise), and the change log's bigserial: after a page appended
 * changes with explicit seqs, setval moves the sequence on so appendChange continues after them.
 * setval is not transactional: a page rolled back leaves a gap, never a reused seq.
 */
export const postgresDialect: StoreDialect = {
  kind: 'postgres',
  maxParams: 65535,
  inList: (e, values) => sql<SqlBool>`${e} = ANY(${[...values]}::text[])`,
  inTuples: (es, rows) =>
    sql<SqlBool>`(${sql.join(es)}) IN (SELECT * FROM unnest(${sql.join(es.map((_, i) => sql`${rows.map((r) => r[i])}::text[]`))}))`,
  fromJson: <T>(raw: unknown) => raw as T,
  bool: (v) => v,
  byteOrder: (e) => sql<string>`${e} COLLATE "C"`,
  async nextChangeSeq(db) {
    // The sequence's next value without taking it, and never below the log's head (headSeq's rule:
    // a log purged to nothing keeps its head in meta).
    const r = await sql<{ n: number }>`SELECT greatest(
        (SELECT CASE WHEN is_called THEN last_value + 1 ELSE last_value END FROM change_log_seq_seq),
        coalesce((SELECT max(seq) FROM change_log), 0) + 1,
        coalesce((SELECT value::bigint FROM meta WHERE key = 'change_log_purged_through'), 0) + 1) AS n`.execute(db);
    return Number(r.rows[0]!.n);
  },
  async changesAppended(db, maxSeq) {
    await sql`SELECT setval('change_log_seq_seq', ${maxSeq}::bigint)`.execute(db);
  },
};

export class PostgresStore implements Store {
  readonly kind = 'postgres' as const;
  readonly webhooks: WebhookStore;
  readCount = 0;

  /** Queries through the pool; a write transaction runs on one connection of it. */
  private readonly db: Kysely<Tables>;

  private constructor(private readonly pool: pg.Pool) {
    this.db = new Kysely<Tables>({ dialect: new PostgresDialect({ pool }) });
    this.webhooks = new PgWebhooks(this, pool);
  }

  static async open(url: string): Promise<PostgresStore> {
    const pool = new pg.Pool({ connectionString: url, max: 8, types: types as never });
    // An idle connection the server ends (a restart, a failover, an administrator) is dropped by the
    // pool, which reports it here; unheard, the 'error' event would end the process.
    pool.on('error', () => undefined);
    try {
      await migrate(pool);
    } catch (e) {
      await pool.end();
      if (e instanceof RostergateError) throw e;
      throw new RostergateError('STORE', `cannot open the PostgreSQL store: ${(e as Error).message.split('\n')[0]}`);
    }
    return new PostgresStore(pool);
  }

  async rows<R>(sql: string, params: unknown[] = []): Promise<R[]> {
    this.readCount++;
    return (await this.pool.query(sql, params)).rows as R[];
  }

  async transaction<T>(fn: (tx: StoreTx) => Promise<T>): Promise<T> {
    try {
      return await this.db.connection().execute(async (c) => {
        try {
          await sql`BEGIN`.execute(c);
          await sql`SELECT pg_advisory_xact_lock(${WRITE_LOCK.toString()})`.execute(c);
          const out = await fn(new PgTx(c));
          await sql`COMMIT`.execute(c);
          return out;
        } catch (e) {
          await sql`ROLLBACK`.execute(c).catch(() => undefined);
          throw e;
        }
      });
    } catch (e) {
      throw storeConditionError(e, LABEL) ?? e;
    }
  }

  /**
   * Whether the store takes writes now (readiness probes call it): a write in a transaction that is
   * rolled back. A read-only database or standby refuses it at once (25006); a full disk (53100)
   * refuses the write-ahead log it needs.
   */
  async writable(): Promise<void> {
    const c = await this.pool.connect();
    try {
      await c.query('BEGIN');
      await c.query(`INSERT INTO meta (key, value) VALUES ('write_probe', $1) ON CONFLICT (key) DO UPDATE SET value = excluded.value`, [new Date().toISOString()]);
      await c.query('ROLLBACK');
    } catch (e) {
      await c.query('ROLLBACK').catch(() => undefined);
      throw storeConditionError(e, LABEL) ?? e;
    } finally {
      c.release();
    }
  }

  async getEntities(ids: readonly string[]) {
    if (ids.length === 0) return [];
    const rows = await this.rows<RawEntity>(`SELECT * FROM entities WHERE id = ANY($1::text[])`, [ids]);
    const byId = new Map(rows.map((r) => [r.id, toEntity(r)]));
    return ids.map((id) => byId.get(id));
  }

  async list(q: ListQuery): Promise<ListResult> {
    const params: unknown[] = [q.type];
    const p = (v: unknown) => {
      params.push(v);
      return `$${params.length}`;
    };
    const ordered = q.order && isPseudonymOrdered(q.type) ? pseudonymFrom(q.type) : undefined;
    let from = ordered?.from ?? 'entities e';
    // COLLATE "C": keyset order must match SQLite's byte order, whatever the database's locale.
    const keys = ordered?.keys ?? ['e.id COLLATE "C"'];
    const where = ['e.type = $1'];
    if (ordered) where.push(`k0.domain = ${p(q.order!.domain)} AND k0.version = ${p(q.order!.version)}`);
    if (q.linkedTo) from += ` JOIN links l ON l.from_id = e.id AND l.rel = ${p(q.linkedTo.rel)} AND l.to_id = ${p(q.linkedTo.to)}`;
    // A purpose's updatedSince compares the last change it could see (entity_views), not the entity's own.
    const byView = q.updatedSince !== undefined && q.view !== undefined;
    if (byView) {
      from += ` JOIN entity_views v ON v.view = ${p(q.view)} AND v.type = $1 AND v.entity_id = e.id`;
      where.push(`v.updated_at >= ${p(q.updatedSince)}`);
    } else if (q.updatedSince) where.push(`e.updated_at >= ${p(q.updatedSince)}`);
    if (q.hasValue) where.push(`(e.data -> ${p(q.hasValue.field)}) @> jsonb_build_array(${p(q.hasValue.value)}::text)`);
    if (q.fieldEquals) where.push(`e.data ->> ${p(q.fieldEquals.field)} = ${p(q.fieldEquals.value)}`);
    // Counted only when asked (totalCount): a count per page would make paging a large list quadratic.
    const countSql = `SELECT count(*)::int AS n FROM ${from} WHERE ${where.join(' AND ')}`;
    const countParams = [...params];
    const count = async () => (await this.rows<{ n: number }>(countSql, countParams))[0]!.n;
    if (ordered && q.afterKey) {
      // The leading part as a plain range too, so the scan starts there in the pseudonyms_order index.
      where.push(`k0.value COLLATE "C" >= ${p(q.afterKey[0])} AND (${keys.join(', ')}) > (${q.afterKey.map((k) => `${p(k)}::text`).join(', ')})`);
    } else if (!ordered && q.afterId) where.push(`e.id COLLATE "C" > ${p(q.afterId)}`);
    const rows = await this.rows<RawEntity & Partial<RawViewTime> & Record<`sk${number}`, string>>(
      `SELECT e.*${byView ? ', v.updated_at AS view_at, v.updated_seq AS view_seq' : ''}${ordered ? keys.map((k, i) => `, ${k} AS sk${i}`).join('') : ''}
       FROM ${from} WHERE ${where.join(' AND ')} ORDER BY ${keys.join(', ')} LIMIT ${p(q.first + 1)}`,
      params,
    );
    const page = rows.slice(0, q.first);
    const times = byView ? new Map(page.map((r) => [r.id, { updatedAt: r.view_at!, updatedSeq: r.view_seq! }])) : undefined;
    return {
      rows: page.map(toEntity), hasNext: rows.length > q.first, count,
      ...(times ? { times } : {}),
      ...(ordered ? { keys: page.map((r) => keys.map((_, i) => r[`sk${i}`]!)) } : {}),
    };
  }

  async linkedFrom(rel: string, toIds: readonly string[]) {
    const out = new Map<string, string[]>(toIds.map((id) => [id, []]));
    if (toIds.length === 0) return out;
    for (const r of await this.rows<{ from_id: string; to_id: string }>(
      `SELECT from_id, to_id FROM links WHERE rel = $1 AND to_id = ANY($2::text[]) ORDER BY from_id COLLATE "C"`, [rel, toIds],
    )) out.get(r.to_id)!.push(r.from_id);
    return out;
  }

  async sourcesOf(entityIds: readonly string[]) {
    const out = new Map<string, { source: string; key: string; lastModified: string | null }[]>(entityIds.map((id) => [id, []]));
    if (entityIds.length === 0) return out;
    for (const r of await this.rows<{ entity_id: string; source: string; key: string; last_modified: string | null }>(
      `SELECT entity_id, source, key, last_modified FROM source_records WHERE entity_id = ANY($1::text[]) ORDER BY source, key`, [entityIds],
    )) out.get(r.entity_id)?.push({ source: r.source, key: r.key, lastModified: r.last_modified });
    return out;
  }

  async getSyncState(source: string) {
    const r = (await this.rows<RawSync>(`SELECT * FROM sync_state WHERE source = $1`, [source]))[0];
    return r && toSync(r);
  }

  async changes(q: { afterSeq: number; limit: number; types?: EntityType[] }) {
    return (await this.rows<RawChange>(
      `SELECT * FROM change_log WHERE seq > $1 AND type = ANY($2::text[]) ORDER BY seq LIMIT $3`,
      [q.afterSeq, q.types ?? [...ENTITY_TYPES], q.limit],
    )).map(toChange);
  }

  async tombstones(ids: readonly string[]) {
    if (ids.length === 0) return [];
    return (await this.rows<RawChange>(
      `SELECT DISTINCT ON (entity_id) * FROM change_log WHERE entity_id = ANY($1::text[]) AND op = 'deleted' ORDER BY entity_id, seq DESC`,
      [ids],
    )).map((r) => tombstoneOf(toChange(r)));
  }

  async oldestChangeSeq() {
    return (await this.rows<{ s: number | null }>(`SELECT min(seq) AS s FROM change_log`))[0]?.s ?? undefined;
  }

  async headSeq() {
    // A log purged to nothing still has a head: the last change it held (seqs are never reused).
    return Number((await this.rows<{ s: string | number | null }>(
      `SELECT coalesce((SELECT max(seq) FROM change_log), (SELECT value::bigint FROM meta WHERE key = 'change_log_purged_through'), 0) AS s`,
    ))[0]?.s ?? 0);
  }

  async purgedThroughSeq() {
    return Number((await this.rows<{ value: string }>(`SELECT value FROM meta WHERE key = 'change_log_purged_through'`))[0]?.value ?? 0);
  }

  async initMeta(key: string, value: string) {
    // Two statements, so the read sees a row a concurrent process committed while the insert waited on it.
    await this.pool.query(`INSERT INTO meta (key, value) VALUES ($1, $2) ON CONFLICT (key) DO NOTHING`, [key, value]);
    return (await this.rows<{ value: string }>(`SELECT value FROM meta WHERE key = $1`, [key]))[0]!.value;
  }

  async meta(key: string) {
    return (await this.rows<{ value: string }>(`SELECT value FROM meta WHERE key = $1`, [key]))[0]?.value;
  }

  async purgeChanges(beforeIso: string) {
    return this.transaction(async (tx) => (tx as PgTx).purge(beforeIso));
  }

  async conflicts(): Promise<IdentityConflict[]> {
    return this.rows<IdentityConflict>(
      `SELECT id, at, source, type, key, reason, candidates, resolved_at AS "resolvedAt", resolution FROM identity_conflicts ORDER BY id`,
    );
  }

  async counts() {
    const out = Object.fromEntries(ENTITY_TYPES.map((t) => [t, 0])) as Record<EntityType, number>;
    for (const r of await this.rows<{ type: EntityType; n: number }>(`SELECT type, count(*)::int AS n FROM entities GROUP BY type`)) out[r.type] = r.n;
    return out;
  }

  async addApiKey(hash: string, client: string, at: string) {
    await this.transaction((tx) => (tx as PgTx).exec(`INSERT INTO api_keys (hash, client, created_at) VALUES ($1, $2, $3)`, [hash, client, at]));
  }

  async findApiKey(hash: string) {
    const r = (await this.rows<{ client: string; revoked_at: string | null }>(`SELECT client, revoked_at FROM api_keys WHERE hash = $1`, [hash]))[0];
    return r && { client: r.client, revokedAt: r.revoked_at };
  }

  async revokeApiKeys(client: string, at: string) {
    return this.transaction((tx) => (tx as PgTx).exec(`UPDATE api_keys SET revoked_at = $1 WHERE client = $2 AND revoked_at IS NULL`, [at, client]));
  }

  async listApiKeys() {
    return (await this.rows<{ client: string; hash: string; created_at: string; revoked_at: string | null }>(
      `SELECT client, hash, created_at, revoked_at FROM api_keys ORDER BY client, created_at`,
    )).map((r) => ({ client: r.client, hashPrefix: r.hash.slice(0, 8), createdAt: r.created_at, revokedAt: r.revoked_at }));
  }

  async domainVersion(domain: string) {
    return (await this.rows<{ version: number }>(`SELECT version FROM pseudonym_domains WHERE domain = $1`, [domain]))[0]?.version;
  }

  async pseudonymsOf(domain: string, version: number, entityIds: readonly string[]) {
    const out = new Map<string, string>();
    if (entityIds.length === 0) return out;
    for (const r of await this.rows<{ entity_id: string; value: string }>(
      `SELECT entity_id, value FROM pseudonyms WHERE domain = $1 AND version = $2 AND entity_id = ANY($3::text[])`, [domain, version, entityIds],
    )) out.set(r.entity_id, r.value);
    return out;
  }

  async entityByPseudonym(domain: string, value: string) {
    return (await this.rows<{ entity_id: string }>(`SELECT entity_id FROM pseudonyms WHERE domain = $1 AND value = $2`, [domain, value]))[0]?.entity_id;
  }

  async peopleWithoutPseudonym(domain: string, version: number, limit: number) {
    return (await this.rows<{ id: string }>(
      `SELECT e.id FROM entities e WHERE e.type = 'person' AND NOT EXISTS
         (SELECT 1 FROM pseudonyms p WHERE p.domain = $1 AND p.version = $2 AND p.entity_id = e.id) ORDER BY e.id COLLATE "C" LIMIT $3`,
      [domain, version, limit],
    )).map((r) => r.id);
  }

  async viewTimes(view: string, entityIds: readonly string[]) {
    const out = new Map<string, ViewTime>();
    if (entityIds.length === 0) return out;
    for (const r of await this.rows<{ entity_id: string; view_at: string; view_seq: number }>(
      `SELECT entity_id, updated_at AS view_at, updated_seq AS view_seq FROM entity_views WHERE view = $1 AND entity_id = ANY($2::text[])`, [view, entityIds],
    )) out.set(r.entity_id, { updatedAt: r.view_at, updatedSeq: r.view_seq });
    return out;
  }

  async viewFingerprints() {
    return new Map((await this.rows<{ view: string; fingerprint: string }>(`SELECT view, fingerprint FROM view_fingerprints`)).map((r) => [r.view, r.fingerprint]));
  }

  async personIds(afterId: string | undefined, limit: number) {
    return (await this.rows<{ id: string }>(
      `SELECT id FROM entities WHERE type = 'person' AND id COLLATE "C" > $1 ORDER BY id COLLATE "C" LIMIT $2`, [afterId ?? '', limit],
    )).map((r) => r.id);
  }

  async auditEntries(q: { afterSeq?: number; limit?: number }) {
    return (await this.rows<RawAudit>(`SELECT * FROM audit_log WHERE seq > $1 ORDER BY seq LIMIT $2`, [q.afterSeq ?? 0, q.limit ?? 1_000_000])).map(toAudit);
  }

  async disclosuresOf(entityId: string) {
    return (await this.rows<{ client: string; first_at: string; last_at: string }>(
      `SELECT client, first_at, last_at FROM disclosures WHERE entity_id = $1 ORDER BY client`, [entityId],
    )).map((r) => ({ client: r.client, firstAt: r.first_at, lastAt: r.last_at }));
  }

  async entityOfRecord(r: SourceRecordRef) {
    const row = (await this.rows<{ entity_id: string | null }>(`SELECT entity_id FROM source_records WHERE source = $1 AND type = $2 AND key = $3`, [r.source, r.type, r.key]))[0];
    return row?.entity_id ?? undefined;
  }

  async subjectRows(entityIds: readonly string[]): Promise<SubjectRows> {
    const ids = [entityIds];
    const [sources, matchKeys, pseudonyms, overrides, changes, disclosures] = await Promise.all([
      this.rows<RawSource>(`SELECT * FROM source_records WHERE entity_id = ANY($1::text[]) ORDER BY source COLLATE "C", type COLLATE "C", key COLLATE "C"`, ids),
      this.rows<{ entity_id: string; kind: string; value: string }>(
        `SELECT entity_id, kind, value FROM match_keys WHERE entity_id = ANY($1::text[]) ORDER BY entity_id COLLATE "C", kind COLLATE "C", value COLLATE "C"`, ids,
      ),
      this.rows<{ entity_id: string; domain: string; version: number; value: string; current: boolean | null }>(
        `SELECT p.entity_id, p.domain, p.version, p.value, (d.version = p.version) AS current FROM pseudonyms p
         LEFT JOIN pseudonym_domains d ON d.domain = p.domain WHERE p.entity_id = ANY($1::text[]) ORDER BY p.domain COLLATE "C", p.version, p.entity_id COLLATE "C"`, ids,
      ),
      this.rows<{ source: string; type: EntityType; key: string; entity_id: string; decided_at: string }>(
        `SELECT * FROM identity_overrides WHERE entity_id = ANY($1::text[]) ORDER BY source COLLATE "C", type COLLATE "C", key COLLATE "C"`, ids,
      ),
      this.rows<RawChange>(`SELECT * FROM change_log WHERE entity_id = ANY($1::text[]) ORDER BY seq`, ids),
      this.rows<{ entity_id: string; client: string; first_at: string; last_at: string }>(
        `SELECT entity_id, client, first_at, last_at FROM disclosures WHERE entity_id = ANY($1::text[]) ORDER BY client COLLATE "C", entity_id COLLATE "C"`, ids,
      ),
    ]);
    return {
      sourceRecords: sources.map(toSource),
      matchKeys: matchKeys.map((r) => ({ entityId: r.entity_id, kind: r.kind, value: r.value })),
      pseudonyms: pseudonyms.map((r) => ({ entityId: r.entity_id, domain: r.domain, version: r.version, value: r.value, current: r.current === true })),
      overrides: overrides.map((r) => ({ source: r.source, type: r.type, key: r.key, entityId: r.entity_id, decidedAt: r.decided_at })),
      changes: changes.map((r) => {
        const { before: _before, ...c } = toChange(r);
        return c;
      }),
      disclosures: disclosures.map((r) => ({ entityId: r.entity_id, client: r.client, firstAt: r.first_at, lastAt: r.last_at })),
    };
  }

  async close() {
    await this.db.destroy();
  }
}

/**
 * Pseudonym order (src/store/order.ts) in SQL: the rows are reached from the person's pseudonym
 * (`k0`, constrained to the order's domain and version by the caller), so a page is a walk of the
 * pseudonyms_order index (its value in COLLATE "C", as here) from the cursor on, not a sort of the
 * whole list. `keys` are the sort key parts as SQL expressions, in order.
 */
function pseudonymFrom(type: PseudonymOrderedType): { from: string; keys: string[] } {
  switch (type) {
    case 'person':
      return { from: 'pseudonyms k0 JOIN entities e ON e.id = k0.entity_id', keys: ['k0.value COLLATE "C"'] };
    case 'enrollment':
      return {
        from: `pseudonyms k0 JOIN links kl ON kl.rel = 'enrollment.person' AND kl.to_id = k0.entity_id JOIN entities e ON e.id = kl.from_id`,
        keys: ['k0.value COLLATE "C"', `coalesce(e.data ->> 'classId', '') COLLATE "C"`, 'e.id COLLATE "C"'],
      };
    case 'guardianship':
      return {
        from: `pseudonyms k0 JOIN links kl ON kl.rel = 'guardianship.student' AND kl.to_id = k0.entity_id JOIN entities e ON e.id = kl.from_id
          JOIN pseudonyms k1 ON k1.domain = k0.domain AND k1.version = k0.version AND k1.entity_id = e.data ->> 'guardianId'`,
        keys: ['k0.value COLLATE "C"', 'k1.value COLLATE "C"', 'e.id COLLATE "C"'],
      };
  }
}

class PgTx extends BatchOps implements StoreTx {
  constructor(c: Kysely<Tables>) {
    super(c, postgresDialect);
  }

  private async q<R>(text: string, params: unknown[] = []): Promise<R[]> {
    return (await this.db.executeQuery(CompiledQuery.raw(text, params))).rows as R[];
  }

  async exec(text: string, params: unknown[] = []): Promise<number> {
    const r = await this.db.executeQuery(CompiledQuery.raw(text, params));
    return Number(r.numAffectedRows ?? 0n);
  }

  async purge(beforeIso: string): Promise<number> {
    const last = (await this.q<{ s: number | null }>(`SELECT max(seq) AS s FROM change_log WHERE at < $1`, [beforeIso]))[0]?.s;
    if (last === null || last === undefined) return 0;
    const n = await this.exec(`DELETE FROM change_log WHERE seq <= $1`, [last]);
    await this.exec(
      `INSERT INTO meta (key, value) VALUES ('change_log_purged_through', $1) ON CONFLICT (key) DO UPDATE SET value = excluded.value`, [String(last)],
    );
    return n;
  }

  async getSourceRecord(source: string, type: EntityType, key: string) {
    const r = (await this.q<RawSource>(`SELECT * FROM source_records WHERE source = $1 AND type = $2 AND key = $3`, [source, type, key]))[0];
    return r && toSource(r);
  }

  async putSourceRecord(r: SourceRecordRow) {
    await this.exec(
      `INSERT INTO source_records (source, type, key, entity_id, data, hash, last_modified, seen_run) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
       ON CONFLICT (source, type, key) DO UPDATE SET entity_id = excluded.entity_id, data = excluded.data, hash = excluded.hash,
         last_modified = excluded.last_modified, seen_run = excluded.seen_run`,
      [r.source, r.type, r.key, r.entityId, JSON.stringify(r.data), r.hash, r.lastModified, r.seenRun],
    );
  }

  async deleteSourceRecord(source: string, type: EntityType, key: string) {
    await this.exec(`DELETE FROM source_records WHERE source = $1 AND type = $2 AND key = $3`, [source, type, key]);
  }

  async sourceRecordsOf(entityId: string) {
    return (await this.q<RawSource>(`SELECT * FROM source_records WHERE entity_id = $1`, [entityId])).map(toSource);
  }

  async unseenSourceRecords(source: string, types: EntityType[], runId: number) {
    return this.q<{ type: EntityType; key: string }>(
      `SELECT type, key FROM source_records WHERE source = $1 AND type = ANY($2::text[]) AND seen_run <> $3 ORDER BY type, key`, [source, types, runId],
    );
  }

  async countSourceRecords(source: string, types: EntityType[]) {
    return (await this.q<{ n: number }>(`SELECT count(*)::int AS n FROM source_records WHERE source = $1 AND type = ANY($2::text[])`, [source, types]))[0]!.n;
  }

  async pendingSourceRecords(source: string) {
    return (await this.q<RawSource>(`SELECT * FROM source_records WHERE source = $1 AND entity_id IS NULL`, [source])).map(toSource);
  }

  async resolveKey(source: string, type: EntityType, key: string) {
    return (await this.q<{ entity_id: string | null }>(`SELECT entity_id FROM source_records WHERE source = $1 AND type = $2 AND key = $3`, [source, type, key]))[0]?.entity_id ?? undefined;
  }

  async getEntity(id: string) {
    const r = (await this.q<RawEntity>(`SELECT * FROM entities WHERE id = $1`, [id]))[0];
    return r && toEntity(r);
  }

  async putEntity(r: { id: string; type: EntityType; data: unknown; updatedAt: string; updatedSeq: number }) {
    await this.exec(
      `INSERT INTO entities (id, type, data, updated_at, updated_seq) VALUES ($1, $2, $3, $4, $5)
       ON CONFLICT (id) DO UPDATE SET data = excluded.data, updated_at = excluded.updated_at, updated_seq = excluded.updated_seq`,
      [r.id, r.type, JSON.stringify(r.data), r.updatedAt, r.updatedSeq],
    );
  }

  async deleteEntity(id: string) {
    await this.exec(`DELETE FROM links WHERE from_id = $1`, [id]);
    await this.exec(`DELETE FROM match_keys WHERE entity_id = $1`, [id]);
    await this.exec(`DELETE FROM pseudonyms WHERE entity_id = $1`, [id]);
    await this.exec(`DELETE FROM entity_views WHERE entity_id = $1`, [id]);
    await this.exec(`DELETE FROM entities WHERE id = $1`, [id]);
  }

  async setLinks(fromId: string, links: { rel: string; to: string }[]) {
    await this.exec(`DELETE FROM links WHERE from_id = $1`, [fromId]);
    if (links.length) {
      await this.exec(
        `INSERT INTO links (from_id, rel, to_id) SELECT $1, r, t FROM unnest($2::text[], $3::text[]) AS u(r, t) ON CONFLICT DO NOTHING`,
        [fromId, links.map((l) => l.rel), links.map((l) => l.to)],
      );
    }
  }

  async linksTo(rel: string, toId: string) {
    return (await this.q<{ from_id: string }>(`SELECT from_id FROM links WHERE rel = $1 AND to_id = $2 ORDER BY from_id COLLATE "C"`, [rel, toId])).map((r) => r.from_id);
  }

  async appendChange(c: Omit<ChangeRow, 'seq'>) {
    return (await this.q<{ seq: number }>(
      `INSERT INTO change_log (at, entity_id, type, op, fields, source, before, generalised) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING seq`,
      [c.at, c.entityId, c.type, c.op, JSON.stringify(c.fields), c.source, c.before === undefined ? null : JSON.stringify(c.before),
        c.generalised === undefined ? null : JSON.stringify(c.generalised)],
    ))[0]!.seq;
  }

  async changesOf(entityIds: readonly string[]) {
    if (entityIds.length === 0) return [];
    return (await this.q<RawChange>(`SELECT * FROM change_log WHERE entity_id = ANY($1::text[]) ORDER BY seq`, [entityIds])).map(toChange);
  }

  async changeHorizon() {
    return (await this.q<ViewTime>(`SELECT at AS "updatedAt", seq AS "updatedSeq" FROM change_log ORDER BY seq LIMIT 1`))[0] ??
      (await this.q<ViewTime>(`SELECT updated_at AS "updatedAt", updated_seq AS "updatedSeq" FROM entities ORDER BY updated_seq DESC LIMIT 1`))[0];
  }

  async putViewTimes(rows: ViewTimeRow[]) {
    if (rows.length === 0) return;
    // One statement per call: the sync calls this once per change, for every purpose at once.
    await this.exec(
      `INSERT INTO entity_views (view, entity_id, type, updated_at, updated_seq)
         SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::bigint[])
       ON CONFLICT (entity_id, view) DO UPDATE SET type = excluded.type, updated_at = excluded.updated_at, updated_seq = excluded.updated_seq`,
      [rows.map((r) => r.view), rows.map((r) => r.entityId), rows.map((r) => r.type), rows.map((r) => r.updatedAt), rows.map((r) => r.updatedSeq)],
    );
  }

  async entitiesForView(view: string, types: EntityType[], q: { afterId?: string; limit: number; missingOnly: boolean }) {
    return this.q<{ id: string; type: EntityType }>(
      `SELECT e.id, e.type FROM entities e WHERE e.type = ANY($1::text[]) AND e.id COLLATE "C" > $2
         AND (NOT $3::boolean OR NOT EXISTS (SELECT 1 FROM entity_views v WHERE v.view = $4 AND v.entity_id = e.id)) ORDER BY e.id COLLATE "C" LIMIT $5`,
      [types, q.afterId ?? '', q.missingOnly, view, q.limit],
    );
  }

  async deleteViewTimesExcept(view: string, keep: EntityType[]) {
    return this.exec(`DELETE FROM entity_views WHERE view = $1 AND NOT (type = ANY($2::text[]))`, [view, keep]);
  }

  async dropView(view: string) {
    await this.exec(`DELETE FROM entity_views WHERE view = $1`, [view]);
    await this.exec(`DELETE FROM view_fingerprints WHERE view = $1`, [view]);
  }

  async setViewFingerprint(view: string, fingerprint: string, at: string) {
    await this.exec(
      `INSERT INTO view_fingerprints (view, fingerprint, built_at) VALUES ($1, $2, $3) ON CONFLICT (view) DO UPDATE SET fingerprint = excluded.fingerprint, built_at = excluded.built_at`,
      [view, fingerprint, at],
    );
  }

  async findByMatchKey(kind: string, value: string) {
    return (await this.q<{ entity_id: string }>(`SELECT entity_id FROM match_keys WHERE kind = $1 AND value = $2 ORDER BY entity_id COLLATE "C"`, [kind, value])).map((r) => r.entity_id);
  }

  async setMatchKeys(entityId: string, keys: { kind: string; value: string }[]) {
    await this.exec(`DELETE FROM match_keys WHERE entity_id = $1`, [entityId]);
    if (keys.length) {
      await this.exec(
        `INSERT INTO match_keys (kind, value, entity_id) SELECT k, v, $1 FROM unnest($2::text[], $3::text[]) AS u(k, v) ON CONFLICT DO NOTHING`,
        [entityId, keys.map((k) => k.kind), keys.map((k) => k.value)],
      );
    }
  }

  async addConflict(c: Omit<IdentityConflict, 'id' | 'resolvedAt' | 'resolution'>) {
    await this.exec(
      `INSERT INTO identity_conflicts (at, source, type, key, reason, candidates) VALUES ($1, $2, $3, $4, $5, $6)
       ON CONFLICT (source, type, key, reason) DO UPDATE SET at = excluded.at, candidates = excluded.candidates, resolved_at = NULL, resolution = NULL`,
      [c.at, c.source, c.type, c.key, c.reason, JSON.stringify(c.candidates)],
    );
  }

  async resolveConflicts(r: SourceRecordRef, resolution: string, at: string) {
    return this.exec(
      `UPDATE identity_conflicts SET resolved_at = $1, resolution = $2 WHERE source = $3 AND type = $4 AND key = $5 AND resolved_at IS NULL`,
      [at, resolution, r.source, r.type, r.key],
    );
  }

  async identityOverride(r: SourceRecordRef) {
    return (await this.q<{ entity_id: string }>(`SELECT entity_id FROM identity_overrides WHERE source = $1 AND type = $2 AND key = $3`, [r.source, r.type, r.key]))[0]?.entity_id;
  }

  async setIdentityOverride(r: SourceRecordRef, entityId: string, at: string) {
    await this.exec(
      `INSERT INTO identity_overrides (source, type, key, entity_id, decided_at) VALUES ($1, $2, $3, $4, $5)
       ON CONFLICT (source, type, key) DO UPDATE SET entity_id = excluded.entity_id, decided_at = excluded.decided_at`,
      [r.source, r.type, r.key, entityId, at],
    );
  }

  async setSyncState(r: SyncStateRow) {
    await this.exec(
      `INSERT INTO sync_state (source, state, run_id, run_status, run_full, started_at, updated_at, error) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
       ON CONFLICT (source) DO UPDATE SET state = excluded.state, run_id = excluded.run_id, run_status = excluded.run_status,
         run_full = excluded.run_full, started_at = excluded.started_at, updated_at = excluded.updated_at, error = excluded.error`,
      [r.source, JSON.stringify(r.state), r.runId, r.runStatus, r.runFull, r.startedAt, r.updatedAt, r.error],
    );
  }

  async getLease(key: string): Promise<LeaseRow | undefined> {
    return (await this.q<LeaseRow>(
      `SELECT key, token, holder_host AS "holderHost", holder_pid AS "holderPid", acquired_at AS "acquiredAt", heartbeat_at AS "heartbeatAt", expires_at AS "expiresAt"
       FROM sync_leases WHERE key = $1`,
      [key],
    ))[0];
  }

  async putLease(l: LeaseRow) {
    await this.exec(
      `INSERT INTO sync_leases (key, token, holder_host, holder_pid, acquired_at, heartbeat_at, expires_at) VALUES ($1, $2, $3, $4, $5, $6, $7)
       ON CONFLICT (key) DO UPDATE SET token = excluded.token, holder_host = excluded.holder_host, holder_pid = excluded.holder_pid,
         acquired_at = excluded.acquired_at, heartbeat_at = excluded.heartbeat_at, expires_at = excluded.expires_at`,
      [l.key, l.token, l.holderHost, l.holderPid, l.acquiredAt, l.heartbeatAt, l.expiresAt],
    );
  }

  async deleteLease(key: string, token: string) {
    await this.exec(`DELETE FROM sync_leases WHERE key = $1 AND token = $2`, [key, token]);
  }

  async getDomainVersion(domain: string) {
    return (await this.q<{ version: number }>(`SELECT version FROM pseudonym_domains WHERE domain = $1`, [domain]))[0]?.version;
  }

  async setDomainVersion(domain: string, version: number, at: string) {
    await this.exec(
      `INSERT INTO pseudonym_domains (domain, version, rotated_at) VALUES ($1, $2, $3)
       ON CONFLICT (domain) DO UPDATE SET version = excluded.version, rotated_at = excluded.rotated_at`, [domain, version, at],
    );
  }

  async putPseudonyms(rows: { domain: string; version: number; entityId: string; value: string }[]) {
    for (let i = 0; i < rows.length; i += 1000) {
      const b = rows.slice(i, i + 1000);
      await this.exec(
        `INSERT INTO pseudonyms (domain, version, entity_id, value) SELECT * FROM unnest($1::text[], $2::int[], $3::text[], $4::text[])
         ON CONFLICT (domain, version, entity_id) DO UPDATE SET value = excluded.value`,
        [b.map((r) => r.domain), b.map((r) => r.version), b.map((r) => r.entityId), b.map((r) => r.value)],
      );
    }
  }

  async deletePseudonyms(domain: string, version: number) {
    return this.exec(`DELETE FROM pseudonyms WHERE domain = $1 AND version = $2`, [domain, version]);
  }

  async personTombstones(afterSeq: number, limit: number) {
    const rows = await this.q<{ seq: number; entity_id: string; p: Record<string, string> | null }>(
      `SELECT seq, entity_id, before->'_pseudonyms' AS p FROM change_log WHERE op = 'deleted' AND type = 'person' AND seq > $1 ORDER BY seq LIMIT $2`, [afterSeq, limit],
    );
    return rows.map((r) => ({ seq: r.seq, entityId: r.entity_id, pseudonyms: r.p ?? {} }));
  }

  async setTombstonePseudonyms(seq: number, pseudonyms: Record<string, string>) {
    await this.exec(`UPDATE change_log SET before = jsonb_set(before, '{_pseudonyms}', $2::jsonb) WHERE seq = $1 AND op = 'deleted'`, [seq, JSON.stringify(pseudonyms)]);
  }

  async pseudonymsOfEntity(entityId: string) {
    const rows = await this.q<{ domain: string; value: string }>(
      `SELECT p.domain, p.value FROM pseudonyms p JOIN pseudonym_domains d ON d.domain = p.domain AND d.version = p.version WHERE p.entity_id = $1`, [entityId],
    );
    return Object.fromEntries(rows.map((r) => [r.domain, r.value]));
  }

  async lastAudit() {
    return (await this.q<{ seq: number; hash: string }>(`SELECT seq, hash FROM audit_log ORDER BY seq DESC LIMIT 1`))[0];
  }

  async purgeChangesBefore(beforeIso: string) {
    return this.purge(beforeIso);
  }

  async purgeWebhookDeliveriesBefore(beforeIso: string) {
    return this.exec(`DELETE FROM webhook_deliveries WHERE status <> 'pending' AND coalesce(delivered_at, created_at) < $1`, [beforeIso]);
  }

  async auditLastBefore(beforeIso: string) {
    return (await this.q<{ seq: number; hash: string }>(
      `SELECT seq::int AS seq, hash FROM audit_log WHERE seq = (SELECT max(seq) FROM audit_log WHERE at < $1)`, [beforeIso],
    ))[0];
  }

  async deleteAuditThrough(seq: number) {
    // ALTER TABLE is transactional and locks the table: no other writer sees the trigger lifted.
    await this.exec(`ALTER TABLE audit_log DISABLE TRIGGER audit_log_no_delete`);
    const n = await this.exec(`DELETE FROM audit_log WHERE seq <= $1`, [seq]);
    await this.exec(`ALTER TABLE audit_log ENABLE TRIGGER audit_log_no_delete`);
    return n;
  }

  async insertAudit(r: AuditRow) {
    return (await this.q<{ seq: number }>(
      `INSERT INTO audit_log (at, client, purpose, kind, operation, operation_hash, categories, fields, people, prev_hash, hash)
       VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) RETURNING seq`,
      [r.at, r.client, r.purpose, r.kind, r.operation, r.operationHash, JSON.stringify(r.categories), JSON.stringify(r.fields), r.people, r.prevHash, r.hash],
    ))[0]!.seq;
  }

  async recordDisclosures(client: string, entityIds: string[], at: string) {
    for (let i = 0; i < entityIds.length; i += 5000) {
      await this.exec(
        `INSERT INTO disclosures (client, entity_id, first_at, last_at) SELECT $1, e, $2, $2 FROM unnest($3::text[]) AS u(e)
         ON CONFLICT (client, entity_id) DO UPDATE SET last_at = excluded.last_at`,
        [client, at, entityIds.slice(i, i + 5000)],
      );
    }
  }

  async transferDisclosures(fromId: string, toId: string, mode: 'move' | 'copy') {
    await this.exec(
      `INSERT INTO disclosures (client, entity_id, first_at, last_at) SELECT client, $2, first_at, last_at FROM disclosures WHERE entity_id = $1
       ON CONFLICT (client, entity_id) DO UPDATE SET first_at = least(disclosures.first_at, excluded.first_at), last_at = greatest(disclosures.last_at, excluded.last_at)`,
      [fromId, toId],
    );
    if (mode === 'move') await this.exec(`DELETE FROM disclosures WHERE entity_id = $1`, [fromId]);
  }

  async isSuppressed(source: string, type: EntityType, keyHash: string) {
    return (await this.q(`SELECT 1 FROM suppressions WHERE source = $1 AND type = $2 AND key_hash = $3`, [source, type, keyHash])).length > 0;
  }

  async addSuppressions(rows: SuppressionRow[]) {
    for (const r of rows) {
      await this.exec(`INSERT INTO suppressions (source, type, key_hash, erasure, created_at) VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING`,
        [r.source, r.type, r.keyHash, r.erasure, r.createdAt]);
    }
  }

  async liftSuppression(source: string, type: EntityType, keyHash: string) {
    return (await this.q(
      `DELETE FROM suppressions WHERE erasure IN (SELECT erasure FROM suppressions WHERE source = $1 AND type = $2 AND key_hash = $3) RETURNING 1`,
      [source, type, keyHash],
    )).length;
  }

  async eraseTraces(entityIds: readonly string[], pseudonyms: readonly string[]) {
    if (entityIds.length === 0) return;
    const ids = [...entityIds];
    await this.exec(`DELETE FROM links WHERE from_id = ANY($1::text[]) OR to_id = ANY($1::text[])`, [ids]);
    for (const t of ['match_keys', 'pseudonyms', 'entity_views', 'identity_overrides', 'disclosures']) await this.exec(`DELETE FROM ${t} WHERE entity_id = ANY($1::text[])`, [ids]);
    for (const id of ids) {
      await this.exec(`DELETE FROM change_log WHERE entity_id = $1 OR strpos(coalesce(before::text, ''), $1) > 0`, [id]);
      await this.exec(`DELETE FROM identity_conflicts WHERE strpos(candidates::text, $1) > 0`, [id]);
    }
    // Payloads name a person by gateway id or by pseudonym, as the client's purpose sees them.
    for (const v of [...ids, ...pseudonyms]) await this.exec(`DELETE FROM webhook_deliveries WHERE strpos(payload, $1) > 0`, [v]);
  }

  async addDeliveries(ds: Parameters<StoreTx['addDeliveries']>[0]) {
    for (const d of ds) {
      await this.exec(`INSERT INTO webhook_deliveries (webhook_id, seq, msg_id, event_type, payload, status, next_attempt_at, created_at)
        VALUES ($1, $2, $3, $4, $5, 'pending', $6, $7)`, [d.webhookId, d.seq, d.msgId, d.eventType, d.payload, d.nextAttemptAt, d.createdAt]);
    }
  }
}

class PgWebhooks implements WebhookStore {
  constructor(private readonly store: PostgresStore, private readonly pool: Q) {}

  private write<T>(fn: (tx: PgTx) => Promise<T>): Promise<T> {
    return this.store.transaction((tx) => fn(tx as PgTx));
  }

  async create(w: WebhookRow) {
    await this.write((tx) => tx.exec(`INSERT INTO webhooks (id, client, url, events, secret, cursor_seq, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7)`,
      [w.id, w.client, w.url, JSON.stringify(w.events), w.secret, w.cursorSeq, w.createdAt]));
  }
  async list() {
    return (await this.store.rows<RawWebhook>(`SELECT * FROM webhooks ORDER BY created_at, id`)).map(toWebhook);
  }
  async get(id: string) {
    const r = (await this.store.rows<RawWebhook>(`SELECT * FROM webhooks WHERE id = $1`, [id]))[0];
    return r && toWebhook(r);
  }
  async delete(id: string) {
    return this.write(async (tx) => {
      await tx.exec(`DELETE FROM webhook_deliveries WHERE webhook_id = $1`, [id]);
      return (await tx.exec(`DELETE FROM webhooks WHERE id = $1`, [id])) > 0;
    });
  }
  async setCursor(id: string, seq: number) {
    await this.write((tx) => tx.exec(`UPDATE webhooks SET cursor_seq = $1 WHERE id = $2`, [seq, id]));
  }
  async enqueue(id: string, ds: Parameters<WebhookStore['enqueue']>[1], fromSeq: number, toSeq: number) {
    return this.write(async (tx) => {
      const moved = (await tx.exec(`UPDATE webhooks SET cursor_seq = $1 WHERE id = $2 AND cursor_seq = $3`, [toSeq, id, fromSeq])) > 0;
      if (!moved) return false;
      for (const d of ds) {
        await tx.exec(`INSERT INTO webhook_deliveries (webhook_id, seq, msg_id, event_type, payload, status, next_attempt_at, created_at)
          VALUES ($1, $2, $3, $4, $5, 'pending', $6, $7)`, [id, d.seq, d.msgId, d.eventType, d.payload, d.nextAttemptAt, d.createdAt]);
      }
      return true;
    });
  }
  async nextPending(id: string) {
    const r = (await this.store.rows<RawDelivery>(`SELECT * FROM webhook_deliveries WHERE webhook_id = $1 AND status = 'pending' ORDER BY id LIMIT 1`, [id]))[0];
    return r && toDelivery(r);
  }
  async update(d: Parameters<WebhookStore['update']>[0]) {
    await this.write((tx) => tx.exec(
      `UPDATE webhook_deliveries SET status = $1, attempts = $2, next_attempt_at = $3, last_status = $4, last_error = $5, delivered_at = $6 WHERE id = $7`,
      [d.status, d.attempts, d.nextAttemptAt, d.lastStatus, d.lastError, d.deliveredAt, d.id],
    ));
  }
  async deliveries(id: string, status?: DeliveryRow['status'], limit = 100) {
    return (await this.store.rows<RawDelivery>(
      `SELECT * FROM webhook_deliveries WHERE webhook_id = $1 AND ($2::text IS NULL OR status = $2) ORDER BY id DESC LIMIT $3`, [id, status ?? null, limit],
    )).map(toDelivery);
  }
  async counts(id: string) {
    const out = { pending: 0, delivered: 0, dead: 0 };
    for (const r of await this.store.rows<{ status: DeliveryRow['status']; n: number }>(
      `SELECT status, count(*)::int AS n FROM webhook_deliveries WHERE webhook_id = $1 GROUP BY status`, [id],
    )) out[r.status] = r.n;
    return out;
  }
  async retryDead(id: string, at: string) {
    return this.write((tx) => tx.exec(`UPDATE webhook_deliveries SET status = 'pending', attempts = 0, next_attempt_at = $1 WHERE webhook_id = $2 AND status = 'dead'`, [at, id]));
  }
  async seqAt(iso: string) {
    return (await this.store.rows<{ s: number | null }>(`SELECT min(seq) AS s FROM change_log WHERE at >= $1`, [iso]))[0]?.s ?? (await this.store.headSeq()) + 1;
  }
}

async function migrate(pool: pg.Pool) {
  const c = await pool.connect();
  try {
    // Replicas starting together: one migrates, the others wait on the lock.
    await c.query('SELECT pg_advisory_lock($1)', [(WRITE_LOCK + 1n).toString()]);
    await c.query(`CREATE TABLE IF NOT EXISTS schema_migrations (version integer PRIMARY KEY, applied_at text NOT NULL)`);
    const done = new Set((await c.query(`SELECT version FROM schema_migrations`)).rows.map((r: { version: number }) => r.version));
    const newest = Math.max(0, ...done);
    const known = Math.max(...POSTGRES_MIGRATIONS.map((m) => m.version));
    if (newest > known) throw new RostergateError('STORE', `the store was written by a newer rostergate (schema ${newest} > ${known}); upgrade rostergate`);
    for (const m of POSTGRES_MIGRATIONS) {
      if (done.has(m.version)) continue;
      await c.query('BEGIN');
      try {
        if (m.sql) await c.query(m.sql);
        if (m.repair) await repairRows(c, m.repair);
        await c.query(`INSERT INTO schema_migrations (version, applied_at) VALUES ($1, $2)`, [m.version, new Date().toISOString()]);
        await c.query('COMMIT');
      } catch (e) {
        await c.query('ROLLBACK');
        throw e;
      }
    }
  } finally {
    await c.query('SELECT pg_advisory_unlock($1)', [(WRITE_LOCK + 1n).toString()]).catch(() => undefined);
    c.release();
  }
}

/** Runs a data migration's row rewrites, a page of rows at a time (keyset by primary key). */
async function repairRows(c: pg.PoolClient, repair: RowRepair): Promise<void> {
  const PAGE = 1000;
  for (let after = ''; ; ) {
    const rows = (await c.query(`SELECT id, type, data FROM entities WHERE id > $1 ORDER BY id LIMIT ${PAGE}`, [after])).rows as { id: string; type: EntityType; data: unknown }[];
    for (const row of rows) {
      const d = repair.entity(row.type, row.data);
      if (d) await c.query(`UPDATE entities SET data = $1 WHERE id = $2`, [JSON.stringify(d), row.id]);
    }
    if (rows.length < PAGE) break;
    after = rows[rows.length - 1]!.id;
  }
  for (let after: [string, string, string] = ['', '', '']; ; ) {
    const rows = (await c.query(
      `SELECT source, type, key, data, last_modified FROM source_records WHERE (source, type, key) > ($1, $2, $3) ORDER BY source, type, key LIMIT ${PAGE}`, after,
    )).rows as { source: string; type: EntityType; key: string; data: unknown; last_modified: string | null }[];
    for (const row of rows) {
      const fix = repair.sourceRecord(row.type, row.data, row.last_modified);
      if (!fix) continue;
      await c.query(
        `UPDATE source_records SET data = coalesce($1::jsonb, data), last_modified = CASE WHEN $2 THEN $3 ELSE last_modified END WHERE source = $4 AND type = $5 AND key = $6`,
        [fix.data ? JSON.stringify(fix.data) : null, fix.lastModified !== undefined, fix.lastModified ?? null, row.source, row.type, row.key],
      );
    }
    if (rows.length < PAGE) break;
    const last = rows[rows.length - 1]!;
    after = [last.source, last.type, last.key];
  }
}

interface RawEntity { id: string; type: EntityType; data: unknown; updated_at: string; updated_seq: number }
interface RawViewTime { view_at: string; view_seq: number }
interface RawSource { source: string; type: EntityType; key: string; entity_id: string | null; data: unknown; hash: string; last_modified: string | null; seen_run: number }
interface RawChange { seq: number; at: string; entity_id: string; type: EntityType; op: ChangeRow['op']; fields: string[]; source: string | null; before: unknown; generalised: string[] | null }
interface RawSync { source: string; state: unknown; run_id: number; run_status: SyncStateRow['runStatus']; run_full: boolean; started_at: string; updated_at: string; error: string | null }
interface RawAudit {
  seq: number; at: string; client: string; purpose: string; kind: string; operation: string | null; operation_hash: string | null;
  categories: Record<string, number>; fields: string[]; people: number; prev_hash: string; hash: string;
}
interface RawWebhook { id: string; client: string; url: string; events: string[]; secret: string; cursor_seq: number; created_at: string }
interface RawDelivery {
  id: number; webhook_id: string; seq: number; msg_id: string; event_type: string; payload: string; status: DeliveryRow['status'];
  attempts: number; next_attempt_at: string; last_status: number | null; last_error: string | null; created_at: string; delivered_at: string | null;
}

const toEntity = (r: RawEntity): EntityRow => ({ id: r.id, type: r.type, data: r.data as EntityRow['data'], updatedAt: r.updated_at, updatedSeq: r.updated_seq });
const toSource = (r: RawSource): SourceRecordRow => ({
  source: r.source, type: r.type, key: r.key, entityId: r.entity_id, data: r.data, hash: r.hash, lastModified: r.last_modified, seenRun: r.seen_run,
});
const toChange = (r: RawChange): ChangeRow => ({
  seq: r.seq, at: r.at, entityId: r.entity_id, type: r.type, op: r.op, fields: r.fields, source: r.source, ...(r.before ? { before: r.before } : {}),
  ...(r.generalised ? { generalised: r.generalised } : {}),
});
const toSync = (r: RawSync): SyncStateRow => ({
  source: r.source, state: r.state, runId: r.run_id, runStatus: r.run_status, runFull: r.run_full, startedAt: r.started_at, updatedAt: r.updated_at, error: r.error,
});
const toAudit = (r: RawAudit): AuditRow & { seq: number } => ({
  seq: r.seq, at: r.at, client: r.client, purpose: r.purpose, kind: r.kind, operation: r.operation, operationHash: r.operation_hash,
  categories: r.categories, fields: r.fields, people: r.people, prevHash: r.prev_hash, hash: r.hash,
});
const toWebhook = (r: RawWebhook): WebhookRow => ({
  id: r.id, client: r.client, url: r.url, events: r.events, secret: r.secret, cursorSeq: r.cursor_seq, createdAt: r.created_at,
});
const toDelivery = (r: RawDelivery): DeliveryRow => ({
  id: r.id, webhookId: r.webhook_id, seq: r.seq, msgId: r.msg_id, eventType: r.event_type, payload: r.payload, status: r.status,
  attempts: r.attempts, nextAttemptAt: r.next_attempt_at, lastStatus: r.last_status, lastError: r.last_error, createdAt: r.created_at, deliveredAt: r.delivered_at,
});
