/**
 * The embedded store: one SQLite file (better-sqlite3, WAL). Writes go through one connection in
 * explicit transactions. Reads go through the writer connection too while it has no transaction
 * open — its page cache then survives the audit group commits a busy gateway makes (a commit by
 * another connection resets a connection's cache; measured in docs/serving.md) — and through a
 * second, read-only connection while one is open, so GraphQL requests served during a sync page
 * see only committed data.
 *
 * Every query lives in the one query layer (src/store/queries/, Kysely); this file keeps what only
 * SQLite has: the file and its connections, the write queue and BEGIN IMMEDIATE, the readiness
 * probe, migrations, mapping of SQLite's error codes, and SQLite's dialect fragments.
 */
import Database from 'better-sqlite3';
import { closeSync, mkdirSync, openSync, statfsSync } from 'node:fs';
import { dirname } from 'node:path';
import { Kysely, SqliteDialect, sql, type CompiledQuery, type KyselyPlugin, type SqlBool } from 'kysely';
import type { EntityType } from '../model/records.ts';
import { RostergateError } from '../errors.ts';
import { SQLITE_MIGRATIONS, type RowRepair } from './migrations.ts';
import { storeConditionError } from './conditions.ts';
import type { Database as Tables } from './db.ts';
import type { StoreLocation, TransactionOptions } from './types.ts';
import type { StoreDialect } from './dialect.ts';
import { CachedStatements } from './sqlite-statements.ts';
import { QueryStore } from './queries/store-reads.ts';
import { WriteTx } from './queries/write-tx.ts';
import { observedRead, observedTransaction } from './observe.ts';
import { yieldIfBusy } from '../kernel/yield-turn.ts';
import { BACKSTOP_PAGES, BackgroundCheckpointer, WAL_SIZE_LIMIT_BYTES, type CheckpointStats } from './sqlite-checkpointer.ts';

type Db = Database.Database;

/** Room a store needs to be called writable: a page of any source fits many times over. */
const MIN_ROOM_BYTES = 1024 * 1024;
/** How long a write waits for another process's write lock. */
const BUSY_TIMEOUT_MS = 5000;

/**
 * SQLite's side of the query layer (src/store/dialect.ts): lists as one JSON array read by
 * json_each, JSON kept as TEXT, booleans as 0/1, text in BINARY (byte) order already, and the
 * change log's AUTOINCREMENT, which records the largest seq ever inserted — explicit ones too — so
 * it continues after a page's appended changes by itself.
 */
export const sqliteDialect: StoreDialect = {
  kind: 'sqlite',
  maxParams: 32766,
  inList: (e, values) => sql<SqlBool>`${e} IN (SELECT value FROM json_each(${JSON.stringify(values)}))`,
  inKeys: (e, keys) => sql<SqlBool>`${e} IN (SELECT value FROM json_each(${JSON.stringify(keys.map(Number))}))`,
  // WHERE true: an INSERT … SELECT followed by ON CONFLICT needs it to parse (SQLite's upsert rule).
  rowsSelect: (kinds, rows) => sql`SELECT ${sql.raw(kinds.map((_, i) => `value ->> ${i} AS c${i}`).join(', '))} FROM json_each(${JSON.stringify(rows)}) WHERE true`,
  listTable: (values, alias) => sql`json_each(${JSON.stringify(values)}) AS ${sql.id(alias)}`,
  inTuples: (es, rows) =>
    sql<SqlBool>`(${sql.join(es)}) IN (SELECT ${sql.raw(es.map((_, i) => `value ->> ${i}`).join(', '))} FROM json_each(${JSON.stringify(rows)}))`,
  fromJson: <T>(raw: unknown) => JSON.parse(raw as string) as T,
  bool: (v) => (v ? 1 : 0),
  orderedWalk: (from, path, on) => ({ from: sql`${from} CROSS JOIN ${path}`, on: [on] }),
  byteOrder: (e) => sql<string>`${e}`,
  // As text whatever the member holds (json_extract gives a number for a number), as PostgreSQL's ->>
  // gives it: a filter compares it with text (ListQuery.fieldEquals).
  jsonText: (col, field) => sql<string | null>`CAST(json_extract(${col}, ${`$.${field}`}) AS TEXT)`,
  jsonMember: (col, field) => sql`json_extract(${col}, ${`$.${field}`})`,
  // json_type, not typeof(json_extract): json_extract gives an object or array as text too.
  keyText: (col, field) => sql<string>`CASE json_type(${col}, ${`$.${field}`}) WHEN 'text' THEN json_extract(${col}, ${`$.${field}`}) ELSE '' END`,
  jsonWithout: (col, members) => (members.length ? sql`json_remove(${col}, ${sql.join(members.map((m) => `$.${m}`))})` : sql`${col}`),
  jsonWith: (col, field, text) => sql`json_set(${col}, ${`$.${field}`}, json(${text}))`,
  jsonArrayHas: (col, field, value) => sql<SqlBool>`EXISTS (SELECT 1 FROM json_each(${col}, ${`$.${field}`}) WHERE value = ${value})`,
  textHas: (col, needle) => sql<SqlBool>`instr(coalesce(${col}, ''), ${needle}) > 0`,
  least: (a, b) => sql<string>`min(${a}, ${b})`,
  greatest: (a, b) => sql<string>`max(${a}, ${b})`,
  async auditDeleteGuard(db, on) {
    // DDL is transactional in SQLite: should anything fail in between, the rollback restores the trigger too.
    await (on
      ? sql`CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log BEGIN SELECT RAISE(ABORT, 'audit log is append-only'); END`
      : sql`DROP TRIGGER audit_log_no_delete`
    ).execute(db);
  },
  async nextChangeSeq(db) {
    const r = await sql<{ n: number }>`SELECT max(
        coalesce((SELECT seq FROM sqlite_sequence WHERE name = 'change_log'), 0),
        coalesce((SELECT max(seq) FROM change_log), 0),
        coalesce((SELECT CAST(value AS INTEGER) FROM meta WHERE key = 'change_log_purged_through'), 0)) + 1 AS n`.execute(db);
    return Number(r.rows[0]!.n);
  },
  async changesAppended() {},
};

/** A Kysely over one connection, its statements prepared once (src/store/sqlite-statements.ts). */
function kyselyOn(statements: CachedStatements): Kysely<Tables> {
  return new Kysely<Tables>({ dialect: new SqliteDialect({ database: statements }) });
}

/**
 * The writer's statements hand the event loop back now and then (src/kernel/yield-turn.ts): each
 * runs on this thread, and a sync's flush and its reads are seconds of them at a large district.
 * Only where reads go to a connection of their own, so nothing sees a transaction's writes early.
 */
const yieldBetweenStatements: KyselyPlugin = {
  transformQuery: (args) => args.node,
  transformResult: async (args) => {
    await yieldIfBusy();
    return args.result;
  },
};

/**
 * Memory for each connection's page cache (64 MiB, SQLite's default is 2 MiB) and reads through a
 * memory map: a district's store runs to hundreds of MiB, and paging through it (extracts, the
 * change feed) otherwise decodes the same pages again and again.
 */
function tune(db: Db): void {
  db.pragma('cache_size = -65536');
  db.pragma('mmap_size = 268435456');
}

/**
 * The writer connection's settings: WAL with synchronous=NORMAL (a commit waits for no fsync; a
 * crash loses at most the last commits, never the file), foreign keys, a busy timeout, temporary
 * files in memory, the page cache and memory map. Exported for the sync bench's statement floor,
 * which must write as the store does.
 *
 * temp_store = MEMORY: a statement that writes many rows and may fail half-way (every multi-row
 * INSERT … SELECT of a page's flush: a UNIQUE or NOT NULL constraint can stop it at any row) keeps a
 * statement journal, the pages it changed as they were, to undo just that statement. Past 64 KiB
 * SQLite moves that journal to a file in the temporary directory (`/var/tmp/etilqs_…`, one per
 * statement, each written through the file system and held open until the transaction ends). In
 * memory it holds what one statement changed (a flush's statement touches a few thousand pages).
 * Direct sync of 5,000 students, six alternating runs: 6,958 → 7,390 records/s (medians). Reads
 * that run on the idle writer (executeRead) keep a large sort in memory too: a people extract's is
 * 12 MB at 50,000 students, where it was a file. The reader connection spills to files as before.
 */
export function writerSettings(db: Db): void {
  db.pragma('journal_mode = WAL');
  db.pragma('synchronous = NORMAL');
  db.pragma('foreign_keys = ON');
  db.pragma(`busy_timeout = ${BUSY_TIMEOUT_MS}`);
  db.pragma('temp_store = MEMORY');
  tune(db);
}

export class SqliteStore extends QueryStore {
  readonly kind = 'sqlite' as const;
  private readonly writer: Db;
  private readonly reader: Db;
  private readonly path: string;
  /** Queries through the writer connection (inside write transactions). */
  private readonly wdb: Kysely<Tables>;
  /** Whether write transactions may hand the event loop back (not in memory: one connection for reads and writes). */
  private readonly yields: boolean;
  /** Each connection's prepared statements, shared by its Kysely and by executeRead. */
  private readonly writerStatements: CachedStatements;
  private readonly readerStatements: CachedStatements;
  private queue: Promise<unknown> = Promise.resolve();
  /** Write transactions (and readiness probes) queued behind the one running: `waitingWriters`. */
  private queued = 0;
  /** WAL checkpoints on a thread of their own (a file store only: src/store/sqlite-checkpointer.ts). */
  private readonly checkpointer: BackgroundCheckpointer | undefined;

  /** How errors name this store (its path; never anything secret). */
  private readonly label: string;

  private constructor(writer: Db, reader: Db, path: string) {
    const readerStatements = new CachedStatements(reader);
    super(kyselyOn(readerStatements), sqliteDialect);
    this.label = `the SQLite store at ${path}`;
    this.path = path;
    this.writer = writer;
    this.reader = reader;
    this.readerStatements = readerStatements;
    this.writerStatements = reader === writer ? readerStatements : new CachedStatements(writer);
    // Reads go to a connection of their own unless the store is in memory: only then may a write
    // transaction hand the event loop back (src/kernel/yield-turn.ts) without a read seeing it early.
    this.yields = reader !== writer;
    this.wdb = this.yields ? kyselyOn(this.writerStatements).withPlugin(yieldBetweenStatements) : kyselyOn(this.writerStatements);
    if (path !== ':memory:') {
      // SQLite's default automatic checkpoint (1,000 pages) again, should the thread be gone.
      this.checkpointer = new BackgroundCheckpointer(path, () => writer.pragma('wal_autocheckpoint = 1000'));
      writer.pragma(`wal_autocheckpoint = ${BACKSTOP_PAGES}`);
      writer.pragma(`journal_size_limit = ${WAL_SIZE_LIMIT_BYTES}`);
    }
  }

  /** The background checkpoints so far, and a promise of the moment none is running (tests; undefined in memory). */
  walCheckpoints(): { stats: CheckpointStats; idle: Promise<void> } | undefined {
    return this.checkpointer && { stats: this.checkpointer.snapshot(), idle: this.checkpointer.idle() };
  }

  /**
   * Runs a read at once, synchronously (better-sqlite3 is): on the writer when no transaction is
   * open on it, else on the reader. The check and the read happen in one synchronous step, so a
   * write transaction cannot begin between them and show the read uncommitted rows.
   */
  override async executeRead<R>(q: CompiledQuery<R>): Promise<R[]> {
    this.readCount++;
    // The connection is chosen and the read run in one synchronous step, also inside a span.
    return observedRead(this.kind, () => {
      const statements = this.writer.inTransaction ? this.readerStatements : this.writerStatements;
      return (statements.prepare(q.sql) as unknown as Database.Statement).all(q.parameters as unknown[]) as R[];
    });
  }

  /** executeRead with rows as arrays: the cached statement in raw mode for this one synchronous call. */
  override async executeReadArrays(q: CompiledQuery<unknown>): Promise<unknown[][]> {
    this.readCount++;
    return observedRead(this.kind, () => {
      const statements = this.writer.inTransaction ? this.readerStatements : this.writerStatements;
      const st = statements.prepare(q.sql) as unknown as Database.Statement;
      // Statements are shared by SQL text: back to object rows before anyone else runs this one.
      try {
        return st.raw(true).all(q.parameters as unknown[]) as unknown[][];
      } finally {
        st.raw(false);
      }
    });
  }

  location(): StoreLocation | undefined {
    return this.path === ':memory:' ? undefined : { kind: 'sqlite', path: this.path };
  }

  static open(path: string): SqliteStore {
    if (path !== ':memory:') {
      // The store holds personal data: what the gateway creates is its owner's alone (folders 0700,
      // the file 0600). SQLite would create the file with the umask's 0644; it accepts an empty file
      // as a new database, and gives its -wal and -shm files the database file's mode. An existing
      // store keeps the mode its operator gave it.
      try {
        mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
      } catch (e) {
        throw new RostergateError('DATA_FOLDER', `cannot create the data folder for ${path}: ${(e as Error).message}`);
      }
      try {
        closeSync(openSync(path, 'wx', 0o600));
      } catch {
        // It exists (a store, or something SQLite will refuse with its own message below), or the
        // folder is not writable: then SQLite cannot create it either, and says so.
      }
    }
    let writer: Db;
    try {
      writer = new Database(path);
      writerSettings(writer);
      migrate(writer);
    } catch (e) {
      if (e instanceof RostergateError) throw e;
      throw new RostergateError('DATA_FOLDER', `cannot open the store at ${path}: ${(e as Error).message}`);
    }
    // An in-memory database is private to its connection, so tests read through the writer.
    const reader = path === ':memory:' ? writer : new Database(path, { readonly: true });
    if (reader !== writer) {
      reader.pragma('busy_timeout = 5000');
      tune(reader);
    }
    return new SqliteStore(writer, reader, path);
  }

  /** Write transactions waiting for the one running: a sync ends its group early for them (src/sync/runner.ts). */
  waitingWriters(): number {
    return this.queued;
  }

  /**
   * One write transaction at a time, whatever its scope (TransactionOptions: SQLite has one writer,
   * so a keyed request's audit entry waits for the sync's transaction, which ends at its next page
   * when one waits: `waitingWriters`, docs/serving.md). The scope still keeps a roster transaction
   * off the audit log and ledger, as on PostgreSQL.
   */
  async transaction<T>(fn: (tx: WriteTx) => Promise<T>, opts: TransactionOptions = {}): Promise<T> {
    // Chained, since async work happens between statements.
    this.queued++;
    const run = this.queue.then(() => observedTransaction(this.kind, async () => {
      this.queued--;
      try {
        this.writer.exec('BEGIN IMMEDIATE');
      } catch (e) {
        throw storeConditionError(e, this.label) ?? e;
      }
      try {
        const out = await fn(new WriteTx(this.wdb, sqliteDialect, this.yields, opts.scope));
        this.writer.exec('COMMIT');
        this.checkpointer?.committed();
        return out;
      } catch (e) {
        // SQLite rolls a transaction back itself on some errors (SQLITE_FULL, SQLITE_IOERR): a
        // second ROLLBACK would fail and hide the real error behind "no transaction is active".
        if (this.writer.inTransaction) this.writer.exec('ROLLBACK');
        throw storeConditionError(e, this.label) ?? e;
      }
    }));
    this.queue = run.catch(() => undefined);
    return run;
  }

  /**
   * Whether the store can take writes now, cheaply (readiness probes call it): a write in a
   * transaction that is rolled back (a read-only file or mount refuses it at once), then room left —
   * pages below max_page_count plus free pages, and free space on the disk — of at least 1 MiB.
   * The probe does not wait for the write lock: when another process (a `rostergate sync`) holds
   * it, that process is writing, which is answer enough, and /readyz must not stall behind a page.
   */
  /** SQLite's planner uses no collected statistics here (no ANALYZE has run): nothing to refresh. */
  async refreshStatistics(_changedRecords: number): Promise<void> {}

  async writable(): Promise<void> {
    this.queued++;
    const probe = this.queue.then(() => {
      this.queued--;
      this.writer.pragma('busy_timeout = 0');
      try {
        this.writer.exec('BEGIN IMMEDIATE');
      } catch (e) {
        if ((e as { code?: string }).code === 'SQLITE_BUSY') return;
        throw storeConditionError(e, this.label) ?? e;
      } finally {
        this.writer.pragma(`busy_timeout = ${BUSY_TIMEOUT_MS}`);
      }
      try {
        this.writer.prepare(`INSERT INTO meta (key, value) VALUES ('write_probe', ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value`).run(new Date().toISOString());
      } catch (e) {
        throw storeConditionError(e, this.label) ?? e;
      } finally {
        if (this.writer.inTransaction) this.writer.exec('ROLLBACK');
      }
    });
    this.queue = probe.catch(() => undefined);
    await probe;
    const n = (pragma: string) => Number(this.writer.pragma(pragma, { simple: true }));
    let room = (n('max_page_count') - n('page_count') + n('freelist_count')) * n('page_size');
    if (this.path !== ':memory:') {
      const fs = statfsSync(dirname(this.path));
      room = Math.min(room, fs.bavail * fs.bsize);
    }
    if (room < MIN_ROOM_BYTES) throw storeConditionError({ code: 'SQLITE_FULL' }, this.label)!;
  }

  async close(): Promise<void> {
    await this.queue;
    await this.checkpointer?.stop();
    if (this.reader !== this.writer) this.reader.close();
    this.writer.close();
  }
}

function migrate(db: Db) {
  db.exec(`CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, applied_at TEXT NOT NULL)`);
  const done = new Set((db.prepare(`SELECT version FROM schema_migrations`).all() as { version: number }[]).map((r) => r.version));
  const newest = Math.max(0, ...done);
  const known = Math.max(...SQLITE_MIGRATIONS.map((m) => m.version));
  if (newest > known) {
    throw new RostergateError('STORE', `the store was written by a newer rostergate (schema ${newest} > ${known}); upgrade rostergate`);
  }
  for (const m of SQLITE_MIGRATIONS) {
    if (done.has(m.version)) continue;
    db.transaction(() => {
      if (m.sql) db.exec(m.sql);
      if (m.repair) repairRows(db, m.repair);
      db.prepare(`INSERT INTO schema_migrations (version, applied_at) VALUES (?, ?)`).run(m.version, new Date().toISOString());
    })();
  }
}

/** Runs a data migration's row rewrites, a page of rows at a time (keyset by rowid). */
function repairRows(db: Db, repair: RowRepair): void {
  const PAGE = 1000;
  const entities = db.prepare(`SELECT rowid AS r, type, data FROM entities WHERE rowid > ? ORDER BY rowid LIMIT ${PAGE}`);
  const setEntity = db.prepare(`UPDATE entities SET data = ? WHERE rowid = ?`);
  for (let after = 0; ; ) {
    const rows = entities.all(after) as { r: number; type: EntityType; data: string }[];
    for (const row of rows) {
      const d = repair.entity(row.type, JSON.parse(row.data));
      if (d) setEntity.run(JSON.stringify(d), row.r);
    }
    if (rows.length < PAGE) break;
    after = rows[rows.length - 1]!.r;
  }
  const sources = db.prepare(`SELECT rowid AS r, type, data, last_modified FROM source_records WHERE rowid > ? ORDER BY rowid LIMIT ${PAGE}`);
  const setSource = db.prepare(`UPDATE source_records SET data = coalesce(?, data), last_modified = CASE WHEN ? THEN ? ELSE last_modified END WHERE rowid = ?`);
  for (let after = 0; ; ) {
    const rows = sources.all(after) as { r: number; type: EntityType; data: string; last_modified: string | null }[];
    for (const row of rows) {
      const fix = repair.sourceRecord(row.type, JSON.parse(row.data), row.last_modified);
      if (fix) setSource.run(fix.data ? JSON.stringify(fix.data) : null, fix.lastModified !== undefined ? 1 : 0, fix.lastModified ?? null, row.r);
    }
    if (rows.length < PAGE) break;
    after = rows[rows.length - 1]!.r;
  }
}
