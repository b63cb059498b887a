/**
 * The store's own key of an entity (`entities.k`): a whole number in insertion order that tables
 * written with every change use in place of the public id (docs/data-engine.md, "Internal keys").
 * A random public id as a key puts each insert at a random place in its index, so every commit
 * rewrites index pages spread over the whole store; k puts them at the end.
 *
 * k never leaves the store. Every method of the store takes and returns public ids, and converts
 * in the statement itself with these subqueries (or a join on `entities`), so no caller can
 * confuse the two. The entity row must exist when a row keyed by it is written, and those rows are
 * deleted before the entity is.
 */
import { sql, type Kysely } from 'kysely';
import type { Database } from '../db.ts';
import type { StoreDialect } from '../dialect.ts';
import type { EntityKeys } from '../types.ts';

/** `(SELECT k FROM entities WHERE id = ?)`: one entity's key, for a statement about that entity. */
export function entityKey(db: Kysely<Database>, id: string) {
  return db.selectFrom('entities').select('k').where('id', '=', id);
}

/** The keys of the entities named, as a subquery for `k IN (…)`. */
export function entityKeys(db: Kysely<Database>, d: StoreDialect, ids: readonly string[]) {
  return db.selectFrom('entities').select('k').where(d.inList(sql.ref('id'), ids));
}

/**
 * Rows split by whether their entity's key is known (`keys` from putEntities in this transaction):
 * a statement then names those by key, and looks up only the rest. Why not look them all up: given
 * thousands of ids, PostgreSQL plans the lookup as a scan of the whole entities table (a hash join),
 * a cost that grows with the store (about 0.1 s a statement at 58,000 entities).
 */
export function byKey<T>(rows: readonly T[], idOf: (row: T) => string, keys: EntityKeys | undefined): { keyed: [T, number | string][]; unkeyed: T[] } {
  const out = { keyed: [] as [T, number | string][], unkeyed: [] as T[] };
  for (const row of rows) {
    const k = keys?.get(idOf(row));
    if (k === undefined) out.unkeyed.push(row);
    else out.keyed.push([row, k]);
  }
  return out;
}
