/**
 * The production store: PostgreSQL through `pg`, the same interface and behaviour as SQLite.
 *
 * Every write transaction first takes one transaction-scoped advisory lock, so writers on any
 * number of gateway replicas are serialised by PostgreSQL itself: change-log sequence numbers then
 * commit in order (a feed reader never sees seq 11 before seq 10 exists), and two replicas never
 * apply pages of the same source at once.
 *
 * A store is the database's default schema (the configured store, the home tenant's), or a schema
 * of its own in the same database (each catalog tenant's, src/tenants/catalog-tenants.ts). The write
 * lock and the migration lock are the store's own — keyed by its schema — so writers of different
 * tenants never wait for each other, while one tenant's change feed stays in commit order. Tenant
 * stores share one pg Pool (hundreds of tenants must not mean hundreds of pools): a connection is
 * pointed at the store's schema (search_path) when it is checked out for a store it did not last serve.
 *
 * Every query lives in the one query layer (src/store/queries/, Kysely); this file keeps what only
 * PostgreSQL has: the pool, the transaction and its advisory lock, the readiness probe, migrations
 * (under their own advisory lock), and PostgreSQL's dialect fragments.
 */
import { createHash } from 'node:crypto';
import pg from 'pg';
import { Kysely, PostgresDialect, sql, type CompiledQuery, type SqlBool } from 'kysely';
import type { EntityType } from '../model/records.ts';
import { RostergateError } from '../errors.ts';
import { wellFormed } from '../model/unicode.ts';
import { POSTGRES_MIGRATIONS, type RowRepair } from './migrations.ts';
import { storeConditionError } from './conditions.ts';
import type { Database as Tables } from './db.ts';
import type { StoreLocation, TransactionOptions } from './types.ts';
import type { ColumnKind, StoreDialect } from './dialect.ts';
import { QueryStore } from './queries/store-reads.ts';
import { WriteTx } from './queries/write-tx.ts';
import { observedRead, observedTransaction } from './observe.ts';
import { copyInto } from './postgres-copy.ts';

/** How errors name this store: never its URL, which may carry a password. */
const LABEL = 'the PostgreSQL store';

/** Advisory lock key of the default schema's write transactions ("rstrgate" in ASCII). */
const WRITE_LOCK = 0x7273747267617465n;

/** A schema's store's names for its tables: PostgreSQL identifiers, at most 63 bytes. */
const SCHEMA_NAME = /^[a-z_][a-z0-9_]{0,62}$/;

/**
 * The advisory lock keys of a store: the default schema keeps the keys it always had (replicas of
 * an older version still serialise with this one); a named schema's are derived from its name, so
 * two stores never share a lock (64-bit keys: a collision among thousands of schemas is ~1e-13).
 * `write` is the roster's write lock, `audit` the audit log's and disclosure ledger's
 * (TransactionOptions in ./types.ts).
 */
export function storeLockKeys(schema: string | undefined): { write: bigint; audit: bigint; migrate: bigint } {
  if (schema === undefined) return { write: WRITE_LOCK, migrate: WRITE_LOCK + 1n, audit: WRITE_LOCK + 2n };
  const key = (what: string) => BigInt.asIntN(64, createHash('sha256').update(`rostergate ${what} lock\0${schema}`).digest().readBigUInt64BE(0));
  return { write: key('write'), migrate: key('migration'), audit: key('audit') };
}

/** Which connection serves which schema now: set on checkout when it differs (src/store/postgres.ts header). */
const schemaOf = new WeakMap<pg.PoolClient, string>();

/**
 * What a store takes connections from: the pool, with the connection pointed at the store's schema.
 * Kysely's PostgresDialect checks connections out through it too (it needs only connect and end).
 */
/** The tables a sync writes, whose statistics `refreshStatistics` renews. */
const STATISTICS_TABLES = ['entities', 'source_records', 'links', 'change_log', 'match_keys', 'pseudonyms', 'entity_views'];

/**
 * Settings of every session a store uses, set once per connection. No parallel workers for a
 * query: the store's reads are pages (at most a few thousand rows, LIMIT-bound), and for them the
 * planner, estimating the rows before the LIMIT, chose a Gather Merge whose workers took longer to
 * start than the page to read. A people list in pseudonym order at 50,000 students (59 pages of
 * 2,000): 5.6–5.9 s with them, 2.7–2.8 s without; enrollments 4.3–5.2 s against 4.1–4.2 s.
 */
const SESSION_SETTINGS = 'SET max_parallel_workers_per_gather = 0';
const sessionSet = new WeakSet<pg.PoolClient>();

class StorePool {
  constructor(
    readonly pool: pg.Pool,
    /** undefined: the database's default search_path (the configured store). */
    readonly schema: string | undefined,
    /** Whether closing the store ends the pool (its own), or leaves it to its owner (shared). */
    private readonly owned: boolean,
  ) {}

  /**
   * The clients this pool handed out, by their server process id. Kysely keeps a transaction's
   * client to itself, and the transaction needs it for COPY (./postgres-copy.ts): it asks the server
   * for its process id with its first lock, and finds its client here. A client checked out again is
   * entered again, so an id the server gave to a later process names that process's client.
   */
  readonly byProcess = new Map<number, pg.PoolClient>();

  async connect(): Promise<pg.PoolClient> {
    const c = await this.pool.connect();
    if (!sessionSet.has(c)) {
      try {
        await c.query(SESSION_SETTINGS);
      } catch (e) {
        c.release(e as Error);
        throw e;
      }
      sessionSet.add(c);
    }
    if (this.schema !== undefined && schemaOf.get(c) !== this.schema) {
      try {
        // Outside any transaction, so the setting holds for the session (a SET inside one rolled back would not).
        await c.query(`SET search_path TO "${this.schema}"`);
      } catch (e) {
        c.release(e as Error);
        throw e;
      }
      schemaOf.set(c, this.schema);
    }
    // By its server process, which a transaction reads with its lock (`transaction`, for COPY).
    const pid = (c as unknown as { processID: number | null }).processID;
    if (pid !== null && this.byProcess.get(pid) !== c) {
      this.byProcess.set(pid, c);
      // A client that ends leaves the map (a pool replaces idle clients over a gateway's life).
      c.once('end', () => {
        if (this.byProcess.get(pid) === c) this.byProcess.delete(pid);
      });
    }
    return c;
  }

  async end(): Promise<void> {
    if (this.owned && !this.pool.ended) await this.pool.end();
  }
}

/** A pool for stores in schemas of one database (src/tenants/catalog-tenants.ts shares one among all tenants). */
export function openSharedPool(url: string, max = 16): pg.Pool {
  const pool = new pg.Pool({ connectionString: url, max, types: types as never });
  pool.on('error', () => undefined);
  return pool;
}

// int8 (counts, sequences) as numbers: sequences stay far below 2^53.
const types = {
  getTypeParser: (oid: number, format?: string) =>
    oid === 20 ? (v: string) => Number(v) : pg.types.getTypeParser(oid, format as 'text'),
};

/**
 * The rows of a multi-row write as one JSON array of arrays, bound as one jsonb parameter. JSON
 * columns arrive as JSON text and go in as they are (not quoted as strings): the server parses
 * each record once, into the jsonb it stores. Why not one array per column (unnest), as before
 * December 2026: pg quotes every element of a text array with two regular expressions, and a
 * record's JSON, full of quotes, grew and was copied for it; the server then parsed it twice (the
 * array, then the element as jsonb). At 20,000 students that quoting was the client's largest
 * single cost after garbage collection (docs/data-engine.md, "Rows as one JSON parameter").
 */
function rowsJson(kinds: readonly ColumnKind[], rows: readonly (readonly (string | number | null)[])[], repairText = false): string {
  // Rows of text and numbers only (links, match keys, view times, pseudonyms: most rows a sync
  // writes) are what JSON.stringify writes of them, in one call instead of one per cell (5–8×
  // faster for 100,000 rows of three cells).
  if (!repairText && !kinds.includes('json')) {
    const whole = JSON.stringify(rows);
    return whole.includes('\\ud') ? rowsJson(kinds, rows, true) : whole;
  }
  let out = '[';
  for (let r = 0; r < rows.length; r++) {
    const row = rows[r]!;
    out += r ? ',[' : '[';
    for (let i = 0; i < kinds.length; i++) {
      const v = row[i] ?? null;
      if (i) out += ',';
      out += kinds[i] === 'json' ? (v === null ? '[]' : `[${v as string}]`) : JSON.stringify(repairText && typeof v === 'string' ? wellFormed(v) : v);
    }
    out += ']';
  }
  out += ']';
  // JSON.stringify writes a lone surrogate as an escape that jsonb refuses; text bound as a text
  // parameter always arrived with U+FFFD in its place (UTF-8 cannot hold one), and still does.
  return !repairText && out.includes('\\ud') ? rowsJson(kinds, rows, true) : out;
}

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
  inKeys: (e, keys) => sql<SqlBool>`${e} = ANY(${keys.map(String)}::bigint[])`,
  rowsSelect: (kinds, rows) => {
    // A JSON column's value is wrapped in an array of one, and SQL NULL is an empty array (`-> 0`
    // finds nothing), so it stays apart from a JSON null value (`[null]`). Not a bare `null`: `-> 0`
    // of a scalar jsonb gives the scalar back.
    const cols = kinds.map((k, i) => sql.raw(k === 'json' ? `(t.r -> ${i}) -> 0 AS c${i}` : k === 'int' ? `(t.r ->> ${i})::bigint AS c${i}` : `t.r ->> ${i} AS c${i}`));
    return sql`SELECT ${sql.join(cols)} FROM jsonb_array_elements(${rowsJson(kinds, rows)}::jsonb) AS t(r) WHERE true`;
  },
  listTable: (values, alias) => sql`unnest(${[...values]}::text[]) AS ${sql.id(alias)}(value)`,
  inTuples: (es, rows) =>
    sql<SqlBool>`(${sql.join(es)}) IN (SELECT * FROM unnest(${sql.join(es.map((_, i) => sql`${rows.map((r) => r[i])}::text[]`))}))`,
  fromJson: <T>(raw: unknown) => raw as T,
  bool: (v) => v,
  orderedWalk: (from, path, on) => ({ from: sql`${from} CROSS JOIN LATERAL (SELECT e.* FROM ${path} WHERE ${on} OFFSET 0) e`, on: [] }),
  peopleByIds: (id, ids) => sql<SqlBool>`${id} = ANY(ARRAY(${ids}))`,
  byteOrder: (e) => sql<string>`${e} COLLATE "C"`,
  jsonText: (col, field) => sql<string | null>`${col} ->> ${field}::text`,
  jsonMember: (col, field) => sql`${col} -> ${field}::text`,
  keyText: (col, field) => sql<string>`CASE WHEN jsonb_typeof(${col} -> ${field}::text) = 'string' THEN ${col} ->> ${field}::text ELSE '' END`,
  jsonWithout: (col, members) => (members.length ? sql`${col} - ${[...members]}::text[]` : sql`${col}`),
  jsonWith: (col, field, text) => sql`jsonb_set(${col}, ARRAY[${field}::text], ${text}::jsonb)`,
  jsonArrayHas: (col, field, value) => sql<SqlBool>`(${col} -> ${field}::text) @> jsonb_build_array(${value}::text)`,
  textHas: (col, needle) => sql<SqlBool>`strpos(coalesce(${col}::text, ''), ${needle}::text) > 0`,
  least: (a, b) => sql<string>`least(${a}, ${b})`,
  greatest: (a, b) => sql<string>`greatest(${a}, ${b})`,
  async auditDeleteGuard(db, on) {
    // ALTER TABLE is transactional and locks the table: no other writer sees the trigger lifted.
    await (on ? sql`ALTER TABLE audit_log ENABLE TRIGGER audit_log_no_delete` : sql`ALTER TABLE audit_log DISABLE TRIGGER audit_log_no_delete`).execute(db);
  },
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

export class PostgresStore extends QueryStore {
  readonly kind = 'postgres' as const;
  private readonly writeLock: bigint;
  private readonly auditLock: bigint;

  private constructor(private readonly pool: StorePool) {
    super(new Kysely<Tables>({ dialect: new PostgresDialect({ pool }) }), postgresDialect);
    ({ write: this.writeLock, audit: this.auditLock } = storeLockKeys(pool.schema));
  }

  location(): StoreLocation | undefined {
    const url = (this.pool.pool as unknown as { options: { connectionString?: string } }).options.connectionString;
    return url ? { kind: 'postgres', url, ...(this.pool.schema !== undefined ? { schema: this.pool.schema } : {}) } : undefined;
  }

  /** executeRead with rows as arrays (pg's rowMode 'array'), on a connection of the pool as Kysely takes them. */
  override async executeReadArrays(q: CompiledQuery<unknown>): Promise<unknown[][]> {
    this.readCount++;
    return observedRead(this.kind, async () => {
      const c = await this.pool.connect();
      try {
        return (await c.query({ text: q.sql, values: q.parameters as unknown[], rowMode: 'array' })).rows as unknown[][];
      } finally {
        c.release();
      }
    });
  }

  /** The store in the database's default schema, on a pool of its own. */
  static async open(url: string): Promise<PostgresStore> {
    const pool = new pg.Pool({ connectionString: url, max: 8, types: types as never });
    // An idle connection the server ends (a restart, a failover, an administrator) is dropped by the
    // pool, which reports it here; unheard, the 'error' event would end the process.
    pool.on('error', () => undefined);
    return PostgresStore.openOn(new StorePool(pool, undefined, true));
  }

  /**
   * The store in schema `schema` (created if missing) on a pool shared with other stores
   * (openSharedPool), which the caller ends after closing them.
   */
  static async openInSchema(pool: pg.Pool, schema: string): Promise<PostgresStore> {
    if (!SCHEMA_NAME.test(schema)) throw new RostergateError('STORE', `not a store schema name: ${schema}`);
    return PostgresStore.openOn(new StorePool(pool, schema, false));
  }

  private static async openOn(pool: StorePool): Promise<PostgresStore> {
    try {
      await migrate(pool);
    } catch (e) {
      await pool.end();
      if (e instanceof RostergateError) throw e;
      throw new RostergateError('STORE', `cannot open the PostgreSQL store: ${(e as Error).message.split('\n')[0]}`);
    }
    return new PostgresStore(pool);
  }

  /**
   * Drops a store's schema with everything in it (a removed tenant's data), under the store's
   * migration lock so no process is creating it at the same time. Close the store first.
   */
  static async dropSchema(pool: pg.Pool, schema: string): Promise<void> {
    if (!SCHEMA_NAME.test(schema)) throw new RostergateError('STORE', `not a store schema name: ${schema}`);
    const lock = storeLockKeys(schema).migrate.toString();
    const c = await pool.connect();
    try {
      await c.query('SELECT pg_advisory_lock($1)', [lock]);
      await c.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
    } finally {
      await c.query('SELECT pg_advisory_unlock($1)', [lock]).catch(() => undefined);
      c.release();
    }
  }

  /** Whether a schema exists in the database (tests: a removed tenant leaves none). */
  static async schemaExists(pool: pg.Pool, schema: string): Promise<boolean> {
    return (await pool.query('SELECT 1 FROM pg_namespace WHERE nspname = $1', [schema])).rowCount === 1;
  }

  /**
   * None are counted: PostgreSQL's transactions wait for each other on the server, and the one a sync
   * would end its group for, a served request's audit entry, no longer waits for a sync (`transaction`).
   */
  waitingWriters(): number {
    return 0;
  }

  /**
   * A write transaction under the locks of what it writes (TransactionOptions): the roster's, the
   * audit log's, or both, in that order (one order everywhere, so two transactions never wait for
   * each other's). An older replica appends audit entries under the roster lock alone, so while both
   * versions run an append of each may read the same chain head: schema 22's unique index on
   * `prev_hash` fails the second (its answers are withheld) rather than fork the chain.
   */
  async transaction<T>(fn: (tx: WriteTx) => Promise<T>, opts: TransactionOptions = {}): Promise<T> {
    const locks = opts.scope === 'roster' ? [this.writeLock] : opts.scope === 'audit' ? [this.auditLock] : [this.writeLock, this.auditLock];
    try {
      return await observedTransaction(this.kind, () => this.rdb.connection().execute(async (c) => {
        try {
          await sql`BEGIN`.execute(c);
          let pid: number | undefined;
          for (const lock of locks) {
            // The first lock also names the server process, and so the client (COPY runs on it).
            const [row] = (await sql<{ pid: number }>`SELECT pg_advisory_xact_lock(${lock.toString()}), pg_backend_pid() AS pid`.execute(c)).rows;
            pid ??= row?.pid;
          }
          const client = pid === undefined ? undefined : this.pool.byProcess.get(pid);
          const out = await fn(new WriteTx(c, postgresDialect, true, opts.scope, client && copyInto(client)));
          await sql`COMMIT`.execute(c);
          return out;
        } catch (e) {
          await sql`ROLLBACK`.execute(c).catch(() => undefined);
          throw e;
        }
      }));
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

  async refreshStatistics(changedRecords: number): Promise<void> {
    if (changedRecords <= 0) return;
    const c = await this.pool.connect();
    try {
      // reltuples: the planner's row count of the table as last analysed (-1 or 0: never).
      const [row] = (await c.query<{ n: number }>(`SELECT reltuples::float8 AS n FROM pg_class WHERE oid = to_regclass('entities')`)).rows;
      const known = row?.n ?? -1;
      if (known > 0 && changedRecords < known / 10) return;
      await c.query(`ANALYZE ${STATISTICS_TABLES.join(', ')}`);
    } finally {
      c.release();
    }
  }

  /** Raw SQL on the pool, for diagnostics (tests size tables, name the database); the store's own queries live in the query layer. */
  async rows<R>(text: string, params: unknown[] = []): Promise<R[]> {
    const c = await this.pool.connect();
    try {
      return (await c.query(text, params)).rows as R[];
    } finally {
      c.release();
    }
  }

  async close() {
    await this.rdb.destroy();
    // Kysely ends the pool only if it ever ran a query on it (its driver starts lazily).
    await this.pool.end();
  }
}

async function migrate(pool: StorePool) {
  const lock = storeLockKeys(pool.schema).migrate.toString();
  const c = await pool.connect();
  try {
    // Replicas starting together: one migrates, the others wait on the lock.
    await c.query('SELECT pg_advisory_lock($1)', [lock]);
    if (pool.schema !== undefined) await c.query(`CREATE SCHEMA IF NOT EXISTS "${pool.schema}"`);
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
    await c.query('SELECT pg_advisory_unlock($1)', [lock]).catch(() => undefined);
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
