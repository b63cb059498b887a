/**
 * Kysely builds and compiles a query on every call — a few dozen microseconds, nothing beside a
 * statement that reads a page of rows, but the per-record operations of a sync run that many times
 * per record. For those, `compiledOnce` builds the query once per dialect with placeholder slots in
 * place of its values, keeps the compiled SQL, and on each call binds the arguments into the slots'
 * positions: the query is still written once, in Kysely, and typed against the tables.
 *
 * A slot must be bound as a plain value (`where(col, '=', slot)`, `values({ col: slot })`); a
 * query that transforms its argument (JSON.stringify of a slot …) must take the transformed value
 * as its argument instead. `compiledOnce` checks that every slot was bound exactly once.
 */
import { CompiledQuery, type Compilable, type Kysely, type QueryResult } from 'kysely';
import type { Database } from '../db.ts';
import type { StoreDialect } from '../dialect.ts';

class Slot {
  constructor(readonly index: number) {}
}

interface Template {
  sql: string;
  /** Parameters in order: a Slot stands for an argument, anything else is a constant of the query. */
  params: readonly unknown[];
}

export type Prepared<A extends readonly unknown[], R> = (db: Kysely<Database>, d: StoreDialect, ...args: A) => Promise<QueryResult<R>>;

export function compiledOnce<A extends readonly unknown[], R>(
  arity: A['length'],
  build: (db: Kysely<Database>, d: StoreDialect, ...args: A) => Compilable<R>,
): Prepared<A, R> {
  const byDialect = new Map<string, Template>();
  return async (db, d, ...args) => {
    let t = byDialect.get(d.kind);
    if (!t) {
      const slots = Array.from({ length: arity }, (_, i) => new Slot(i));
      const c = build(db, d, ...(slots as unknown as A)).compile();
      const bound = c.parameters.filter((p): p is Slot => p instanceof Slot).map((s) => s.index).sort((a, b) => a - b);
      if (bound.length !== arity || bound.some((x, i) => x !== i)) throw new Error(`compiledOnce: each of the ${arity} arguments must be bound once as a value (${c.sql})`);
      t = { sql: c.sql, params: c.parameters };
      byDialect.set(d.kind, t);
    }
    const params = t.params.map((p) => (p instanceof Slot ? args[p.index] : p));
    return db.executeQuery(CompiledQuery.raw(t.sql, params) as CompiledQuery<R>);
  };
}
