/**
 * What truly differs between the two stores once every query is written once against Kysely
 * (src/store/queries/): how a list of values is bound, how JSON and booleans are kept, how text is
 * ordered, and how the change log's sequence is read and moved on. SQLite implements it in
 * src/store/sqlite.ts, PostgreSQL in src/store/postgres.ts; nothing else in a query may ask which
 * store it runs on.
 *
 * Lists are bound as ONE parameter (SQLite: a JSON array read by json_each; PostgreSQL: an array),
 * so a statement's text does not depend on how many values it carries: it is prepared once and
 * reused, and no list can run into the bound-parameter limit.
 */
import type { Expression, Kysely, RawBuilder, SqlBool } from 'kysely';
import type { Database } from './db.ts';

/** How `rowsSelect` binds a column: text, a whole number, or JSON text for a JSON column. */
export type ColumnKind = 'text' | 'int' | 'json';

/** A row's cells in its columns' order, as `rowsSelect` takes them: text, whole numbers, JSON text, or null. */
export type RowCells = readonly (string | number | null)[];

/**
 * Writes rows known to be new (FreshRows) into a table in one stream, inside the transaction: what
 * a store that has a faster way than a multi-row INSERT offers its transactions (PostgreSQL: COPY,
 * src/store/postgres-copy.ts). It has no conflict clause and gives nothing back.
 */
export type CopyRows = (table: string, columns: readonly string[], rows: readonly RowCells[]) => Promise<void>;

export interface StoreDialect {
  readonly kind: 'sqlite' | 'postgres';
  /** Bound parameters one statement may carry (SQLite 32766, PostgreSQL 65535): multi-row writes chunk under it. */
  readonly maxParams: number;
  /** `expr IN (values)`, the values bound as one parameter. */
  inList(expr: Expression<unknown>, values: readonly string[]): RawBuilder<SqlBool>;
  /** `expr IN (keys)` for whole-number keys (`entities.k`), bound as one parameter (PostgreSQL: a bigint array). */
  inKeys(expr: Expression<unknown>, keys: readonly (number | string)[]): RawBuilder<SqlBool>;
  /**
   * A list of text values as a one-column table named `alias` with the column `value`, bound as one
   * parameter (SQLite: json_each; PostgreSQL: unnest): `INSERT … SELECT … FROM` it writes any number
   * of rows with one statement text.
   */
  listTable(values: readonly string[], alias: string): RawBuilder<unknown>;
  /**
   * `SELECT c0, c1, … FROM rows` (the columns named so in both stores, for a statement that joins
   * them): rows given as values in column order, bound as one parameter
   * (SQLite: a JSON array of arrays read by json_each; PostgreSQL: the same as jsonb, read by
   * jsonb_array_elements, JSON columns' text spliced in as it is). The source of a multi-row
   * `INSERT … SELECT` whose text does not depend on the row count, so Kysely builds no node per
   * value and each store prepares or parses one text per shape. `json` columns take JSON text (or null).
   */
  rowsSelect(kinds: readonly ColumnKind[], rows: readonly (readonly (string | number | null)[])[]): RawBuilder<unknown>;
  /** `(exprs…) IN (rows…)` for composite keys, the rows bound as one parameter per column. */
  inTuples(exprs: readonly Expression<unknown>[], rows: readonly (readonly string[])[]): RawBuilder<SqlBool>;
  /** A JSON column's value as read (text in SQLite, parsed jsonb in PostgreSQL) → the value. */
  fromJson<T = unknown>(raw: unknown): T;
  /** A boolean as the store keeps it (SQLite: 0/1; better-sqlite3 refuses to bind booleans). */
  bool(v: boolean): number | boolean;
  /**
   * `FROM from CROSS JOIN (the entities `e` reached through `path` where `on` holds)`, walked in the
   * order of `from`, row by row: the FROM clause of a list in pseudonym order, whose page must be a
   * walk of the pseudonyms_order index from its cursor on. SQLite keeps a CROSS JOIN's order as
   * written (`on` joins the WHERE clause). PostgreSQL's planner reorders joins by its estimates, and
   * from the middle of the list on it hash-joined every remaining enrollment and sorted them
   * (50–180 ms a page instead of mostly 10–40): there `path` is a LATERAL subquery behind OFFSET 0
   * (which it does not flatten), so each pseudonym leads to its own rows and the LIMIT stops the walk.
   */
  orderedWalk(from: RawBuilder<unknown>, path: RawBuilder<unknown>, on: RawBuilder<SqlBool>): { from: RawBuilder<unknown>; on: RawBuilder<SqlBool>[] };
  /**
   * How a page of people in pseudonym order finds its people: undefined to walk the pseudonyms and
   * join each to its person as it goes (SQLite, whose index probes cost little), or the condition
   * that finds them all by the ids of the page's pseudonyms in one index scan (PostgreSQL:
   * `id = ANY(ARRAY(subquery))`, whose array it reads once and looks up in index order).
   * src/store/queries/store-reads.ts, `peopleKeysFirst`.
   */
  peopleByIds?: (id: Expression<string>, ids: RawBuilder<unknown>) => RawBuilder<SqlBool>;
  /** Text in byte order for ORDER BY and keyset comparisons (PostgreSQL: COLLATE "C", whatever the locale). */
  byteOrder(expr: Expression<string>): RawBuilder<string>;
  /** A JSON column's member as text (SQLite json_extract, PostgreSQL ->>), null where absent. */
  jsonText(col: Expression<unknown>, field: string): RawBuilder<string | null>;
  /**
   * A JSON column's member as a sort key's part: its text where it holds a JSON string, '' where it
   * holds anything else (null, absent, a number, a boolean, an object, an array). The same rule as
   * `keyTextOf` (src/store/order.ts) in memory, so a list reads each row's part from the row itself
   * and orders exactly as a nested list sorted in memory; the text a database would write for a
   * number or a boolean differs between SQLite and PostgreSQL, so no such text is ever a key.
   */
  keyText(col: Expression<unknown>, field: string): RawBuilder<string>;
  /** A JSON column's member as the column keeps JSON (decode with fromJson), null where absent. */
  jsonMember(col: Expression<unknown>, field: string): RawBuilder<unknown>;
  /**
   * A JSON object column without some members (plain names), as the column keeps JSON (decode with
   * fromJson): the rest as stored, absent members absent and JSON nulls null (src/store/partial-data.ts).
   */
  jsonWithout(col: Expression<unknown>, members: readonly string[]): RawBuilder<unknown>;
  /** The JSON column with one member set to a value given as JSON text. */
  jsonWith(col: Expression<unknown>, field: string, jsonText: string): RawBuilder<unknown>;
  /** Whether a JSON column's array member holds a text value. */
  jsonArrayHas(col: Expression<unknown>, field: string, value: string): RawBuilder<SqlBool>;
  /** Whether a text or JSON column's text holds `needle` (erasure finds ids inside payloads). */
  textHas(col: Expression<unknown>, needle: string): RawBuilder<SqlBool>;
  /** The smaller and larger of two values (SQLite's scalar min/max, PostgreSQL's least/greatest). */
  least(a: Expression<string>, b: Expression<string>): RawBuilder<string>;
  greatest(a: Expression<string>, b: Expression<string>): RawBuilder<string>;
  /**
   * Lifts (`false`) or restores (`true`) the trigger that refuses deleting audit entries, inside the
   * caller's transaction (SQLite: DROP/CREATE TRIGGER; PostgreSQL: ALTER TABLE … DISABLE/ENABLE TRIGGER).
   */
  auditDeleteGuard(db: Kysely<Database>, on: boolean): Promise<void>;
  /**
   * The seq the change log's next append gets, read under the write lock: after the largest seq
   * ever handed out (also one since purged), so seqs are never reused.
   */
  nextChangeSeq(db: Kysely<Database>): Promise<number>;
  /** After changes were appended with explicit seqs through `maxSeq`: the store's own numbering continues after them. */
  changesAppended(db: Kysely<Database>, maxSeq: number): Promise<void>;
}
