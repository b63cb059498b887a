/**
 * A better-sqlite3 connection as Kysely's SqliteDialect sees it, with its statements prepared once:
 * the dialect calls `prepare(sql)` for every query it runs, and preparing (parsing and planning)
 * costs more than running most of the store's statements. Statements are kept by SQL text in a
 * bounded LRU — the store's queries are a few hundred distinct texts, since lists bind as one
 * parameter (src/store/dialect.ts); multi-row writes add one text per chunk size, and the bound
 * keeps an unusual mix of those from growing the cache without end.
 */
import type Database from 'better-sqlite3';
import type { SqliteDatabase, SqliteStatement } from 'kysely';

const DEFAULT_CAPACITY = 512;

export class CachedStatements implements SqliteDatabase {
  private readonly cache = new Map<string, Database.Statement>();

  constructor(
    private readonly db: Database.Database,
    private readonly capacity = DEFAULT_CAPACITY,
  ) {}

  prepare(sql: string): SqliteStatement {
    let st = this.cache.get(sql);
    if (st) {
      // Most recently used last: Map keeps insertion order, so the first key is the eviction candidate.
      this.cache.delete(sql);
    } else {
      st = this.db.prepare(sql);
      if (this.cache.size >= this.capacity) this.cache.delete(this.cache.keys().next().value!);
    }
    this.cache.set(sql, st);
    return st as unknown as SqliteStatement;
  }

  /** The store closes its connections itself (Kysely's destroy would close them behind its back). */
  close(): void {}
}
