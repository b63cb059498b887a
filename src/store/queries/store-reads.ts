/**
 * The Store's operations outside a caller's transaction, written once for both stores against
 * Kysely: reads through the store's read connection (SQLite: the reader; PostgreSQL: the pool), and
 * the few writes that are a transaction of their own (API keys, metadata, purges).
 *
 * Why Kysely rather than hand-written SQL per store: 65 of 90 statements were the same in both
 * stores once placeholders were evened out, and most commits had to touch both. A query builder
 * writes them once, checked by the compiler against the tables (src/store/db.ts); what does differ
 * is a handful of fragments in the dialect (src/store/dialect.ts). Kysely compiles a query per call
 * (microseconds); statements are still prepared once (SQLite: src/store/sqlite-statements.ts).
 *
 * `list` composes its FROM clause from Kysely `sql` fragments rather than the builder: which tables
 * join depends on the order and filters asked, and pseudonym order needs a fixed join order
 * (CROSS JOIN: SQLite then keeps the order written; PostgreSQL plans it as any inner join).
 */
import { sql, type CompiledQuery, type Kysely, type RawBuilder, type SqlBool } from 'kysely';
import { ENTITY_TYPES, type EntityType } from '../../model/records.ts';
import type { Database } from '../db.ts';
import type { StoreDialect } from '../dialect.ts';
import { isPseudonymOrdered, keyTextOf, type PseudonymOrder, type PseudonymOrderedType } from '../order.ts';
import type {
  ChangeRow, EntityRow, IdentityConflict, LinkedPage, LinkedPageQuery, ListQuery, ListResult, SourceRecordRef, Store, SubjectRows, SyncStateRow, ViewTime, WebhookStore,
  TenantCatalogStore, StoreLocation, TransactionOptions,
} from '../types.ts';
import { tombstoneOf } from '../types.ts';
import { ENTITY_COLUMNS, entityOfColumns, entityWithData, toAudit, toChange, toSource, toSync } from './rows.ts';
import { StoreWebhooks } from './webhooks.ts';
import { StoreTenantCatalog } from './tenant-catalog.ts';
import type { WriteTx } from './write-tx.ts';
import { observedRead } from '../observe.ts';
import { isMemberName, partialRecords, recordedRecords } from '../partial-data.ts';

type Selected<T extends keyof Database> = import('kysely').Selectable<Database[T]>;

const and = (parts: RawBuilder<SqlBool>[]) => sql.join(parts, sql` AND `);

/**
 * The id of a person's demographics record, in SQL: `dem_` and the person's id after its `per_`
 * prefix, the rule of `demographicsIdFor` (src/sync/ids.ts), which the store, a layer below sync,
 * does not import. test/unit/list-demographics.test.ts checks the two name the same record.
 */
const demographicsIdOf = (personId: RawBuilder<unknown>) => sql<string>`'dem_' || substr(${personId}, 5)`;
const DEMOGRAPHICS_COLUMNS = sql.join(ENTITY_COLUMNS.map((c) => sql.ref(`dm.${c}`)));
/** The demographics record of a row read with DEMOGRAPHICS_COLUMNS from `at` on, or undefined (none, or not a demographics record). */
const demographicsAt = (d: StoreDialect, r: readonly unknown[], at: number) =>
  r[at + 1] === 'demographics' ? entityOfColumns(d, r.slice(at, at + ENTITY_COLUMNS.length)) : undefined;

/**
 * The entity columns of a list's SELECT (`e`), and how a row's values make its EntityRow: whole;
 * whole with its reads told (`q.memberReads`); or, with `q.fields`, without the members in
 * `q.leaveOut`, removed in SQL, and readable only for `q.fields` (partial-data.ts).
 */
function entityColumnsOf(d: StoreDialect, q: Pick<ListQuery, 'fields' | 'leaveOut' | 'memberReads'>): {
  select: RawBuilder<unknown>;
  /** The row's EntityRow, its data decoded already (`d.fromJson` of the data column). */
  entityWith: (r: readonly unknown[], data: unknown) => EntityRow;
} {
  if (!q.fields) {
    const select = sql.join(ENTITY_COLUMNS.map((c) => sql.ref(`e.${c}`)));
    if (!q.memberReads) return { select, entityWith: entityWithData };
    const recorded = recordedRecords(q.memberReads);
    return { select, entityWith: (r, data) => entityWithData(r, recorded(data as Parameters<typeof recorded>[0])) };
  }
  const leaveOut = q.leaveOut ?? [];
  const bad = leaveOut.find((f) => !isMemberName(f));
  if (bad !== undefined) throw new Error(`list: a member to leave out must be a plain name, not ${JSON.stringify(bad)}`);
  const partial = partialRecords(q.fields, q.memberReads ?? { read() {} });
  return {
    select: sql.join(ENTITY_COLUMNS.map((c) => (c === 'data' ? d.jsonWithout(sql.ref('e.data'), leaveOut) : sql.ref(`e.${c}`)))),
    entityWith: (r, data) => entityWithData(r, partial(data as Parameters<typeof partial>[0])),
  };
}

/**
 * A part of a pseudonym-order sort key (src/store/order.ts) in SQL, and where the row itself holds
 * it: its id, or a member of its data (`keyText`: a JSON string's text, '' for anything else, as
 * `sortKeyOf` reads it). Such a part is not sent with each row: a walk of 2,000 enrollments sent
 * each one's class id and id twice.
 */
interface KeyPart {
  sql: RawBuilder<string>;
  fromRow?: { id: true } | { member: string };
}

/** Whether a view's times were computed (its fingerprint is stored): before that, no entity's own time may stand in for it. */
const viewComputed = (view: string) => sql<SqlBool>`EXISTS (SELECT 1 FROM view_fingerprints f WHERE f.view = ${view})`;

export abstract class QueryStore implements Store {
  abstract readonly kind: 'sqlite' | 'postgres';
  abstract location(): StoreLocation | undefined;
  /** Read statements executed (tests assert loaders keep this bounded). */
  readCount = 0;
  readonly webhooks: WebhookStore;
  readonly tenantCatalog: TenantCatalogStore;

  protected constructor(
    /** The read connection: a Kysely over the SQLite reader, or over the PostgreSQL pool. */
    readonly rdb: Kysely<Database>,
    protected readonly d: StoreDialect,
  ) {
    this.webhooks = new StoreWebhooks(this, d);
    this.tenantCatalog = new StoreTenantCatalog(this, d);
  }

  abstract transaction<T>(fn: (tx: WriteTx) => Promise<T>, opts?: TransactionOptions): Promise<T>;
  abstract waitingWriters(): number;
  abstract writable(): Promise<void>;
  abstract refreshStatistics(changedRecords: number): Promise<void>;
  abstract close(): Promise<void>;

  /** Runs one read statement on the read connection; every read goes through here (readCount). */
  async executeRead<R>(q: CompiledQuery<R>): Promise<R[]> {
    this.readCount++;
    return observedRead(this.kind, async () => (await this.rdb.executeQuery(q)).rows);
  }

  /**
   * Runs one read statement whose rows come back as arrays, values in the order the statement
   * selects them: for the hottest reads (a list's pages), where a row object per row cost more than
   * its values (better-sqlite3 sets a property at a time; measured in docs/extract-engine.md).
   */
  abstract executeReadArrays(q: CompiledQuery<unknown>): Promise<unknown[][]>;

  async getEntities(ids: readonly string[]): Promise<(EntityRow | undefined)[]> {
    if (ids.length === 0) return [];
    const rows = await this.executeReadArrays(this.rdb.selectFrom('entities').select(ENTITY_COLUMNS).where(this.d.inList(sql.ref('id'), ids)).compile());
    const byId = new Map<string, EntityRow>();
    for (const r of rows) byId.set(r[0] as string, entityOfColumns(this.d, r));
    return ids.map((id) => byId.get(id));
  }

  async entityKeys(ids: readonly string[]): Promise<({ id: string; type: EntityType } | undefined)[]> {
    if (ids.length === 0) return [];
    const rows = await this.executeRead(this.rdb.selectFrom('entities').select(['id', 'type']).where(this.d.inList(sql.ref('id'), ids)).compile());
    const byId = new Map<string, { id: string; type: EntityType }>();
    for (const r of rows) byId.set(r.id, { id: r.id, type: r.type });
    return ids.map((id) => byId.get(id));
  }

  async list(q: ListQuery): Promise<ListResult> {
    const d = this.d;
    const ordered = q.order && isPseudonymOrdered(q.type) ? this.pseudonymFrom(q.type) : undefined;
    let from = ordered?.from ?? sql`entities e`;
    const keys = ordered?.keys.map((k) => k.sql) ?? [d.byteOrder(sql.ref('e.id'))];
    const where: RawBuilder<SqlBool>[] = [sql<SqlBool>`e.type = ${q.type}`, ...(ordered?.on ?? [])];
    if (ordered) where.push(sql<SqlBool>`k0.domain = ${q.order!.domain} AND k0.version = ${q.order!.version}`);
    if (q.linkedTo) from = sql`${from} JOIN links l ON l.from_k = e.k AND l.rel = ${q.linkedTo.rel} AND l.to_id = ${q.linkedTo.to}`;
    // A purpose's updatedSince compares the last change it could see, not the entity's own: the
    // view's row where it has one, else the entity's time. Two index ranges, not a scan of the
    // type: the view's rows changed since (entity_views_updated), and the entities changed since
    // (entities_type_updated) that have no row, so no entity is in both.
    const byView = q.updatedSince !== undefined && q.view !== undefined;
    if (byView) {
      from = sql`${from} JOIN (
        SELECT v.entity_k AS k, v.updated_at, v.updated_seq FROM entity_views v
          WHERE v.view = ${q.view} AND v.type = ${q.type} AND v.updated_at >= ${q.updatedSince}
        UNION ALL
        SELECT o.k, o.updated_at, o.updated_seq FROM entities o
          WHERE o.type = ${q.type} AND o.updated_at >= ${q.updatedSince}
            AND NOT EXISTS (SELECT 1 FROM entity_views x WHERE x.entity_k = o.k AND x.view = ${q.view})
      ) v ON v.k = e.k`;
      where.push(viewComputed(q.view!));
    } else if (q.updatedSince) where.push(sql<SqlBool>`e.updated_at >= ${q.updatedSince}`);
    if (q.hasValue) where.push(d.jsonArrayHas(sql.ref('e.data'), q.hasValue.field, q.hasValue.value));
    if (q.fieldEquals) where.push(sql<SqlBool>`${d.jsonText(sql.ref('e.data'), q.fieldEquals.field)} = ${q.fieldEquals.value}`);
    // Counted only when asked (totalCount): a count per page would make paging a large list quadratic.
    const countQuery = sql<{ n: number }>`SELECT count(*) AS n FROM ${from} WHERE ${and([...where])}`.compile(this.rdb);
    const count = async () => Number((await this.executeRead(countQuery))[0]!.n);
    const plain = !q.linkedTo && q.updatedSince === undefined && !q.hasValue && !q.fieldEquals;
    if (ordered && q.type === 'person' && plain && d.peopleByIds) return this.peopleKeysFirst(q, d.peopleByIds, count);
    if (ordered && q.afterKey) {
      // The leading part as a plain range too, so the scan starts there in the pseudonyms_order index.
      // After it, `(k0, rest) > (a0, restA)` written as `k0 > a0 OR (rest) > (restA)`, the same given
      // k0 >= a0: PostgreSQL estimates this one right (it took the row comparison for a filter that
      // drops two rows in three, and planned for far fewer rows than pass), and past the cursor's
      // person neither store evaluates the rest of the key.
      const text = (k: string) => sql`CAST(${k} AS TEXT)`;
      const [a0, ...restA] = q.afterKey;
      where.push(sql<SqlBool>`${keys[0]!} >= ${a0} AND ${restA.length
        ? sql`(${keys[0]!} > ${text(a0!)} OR (${sql.join(keys.slice(1))}) > (${sql.join(restA.map(text))}))`
        : sql`${keys[0]!} > ${text(a0!)}`}`);
    } else if (!ordered && q.afterId) where.push(sql<SqlBool>`${keys[0]!} > ${q.afterId}`);
    if (q.lead?.above !== undefined) where.push(sql<SqlBool>`${keys[0]!} > ${q.lead.above}`);
    if (q.lead?.upTo !== undefined) where.push(sql<SqlBool>`${keys[0]!} <= ${q.lead.upTo}`);
    // Columns by position (rows come back as arrays): the entity's, then the view times, the sort
    // key's parts the row does not hold (KeyPart) and the person whose pseudonym leads the key.
    const entity = entityColumnsOf(d, q);
    const n = ENTITY_COLUMNS.length;
    // A member left out of the rows (ListQuery.leaveOut) is sent as the key's SQL reads it.
    const parts = ordered?.keys.map((k) => (k.fromRow && 'member' in k.fromRow && q.leaveOut?.includes(k.fromRow.member) ? { sql: k.sql } : k));
    const sent = parts?.flatMap((k) => (k.fromRow ? [] : [k.sql]));
    // A person's demographics, joined by id after the rest (an index probe a row): last in the row.
    const demographics = q.type === 'person' && q.withDemographics;
    const extra = [
      ...(byView ? [sql`v.updated_at`, sql`v.updated_seq`] : []),
      ...(sent ? [...sent, sql`k0.entity_id`] : []),
      ...(demographics ? [DEMOGRAPHICS_COLUMNS] : []),
    ];
    const rows = await this.executeReadArrays(sql`SELECT ${entity.select}${extra.length ? sql`, ${sql.join(extra)}` : sql``}
      FROM ${from}${demographics ? sql` LEFT JOIN entities dm ON dm.id = ${demographicsIdOf(sql.ref('e.id'))}` : sql``}
      WHERE ${and(where)} ORDER BY ${sql.join(keys)} LIMIT ${q.first + 1}`.compile(this.rdb));
    const page = rows.length > q.first ? rows.slice(0, q.first) : rows;
    const times = byView ? new Map(page.map((r) => [r[0] as string, { updatedAt: r[n] as string, updatedSeq: Number(r[n + 1]) }])) : undefined;
    const k = n + (byView ? 2 : 0);
    const out: EntityRow[] = [];
    const sortKeys: string[][] = [];
    // Per part: a column sent (null), the row's id (''), or the member of the row's data named.
    const held = parts?.map((p) => (!p.fromRow ? null : 'id' in p.fromRow ? '' : p.fromRow.member));
    for (const r of page) {
      const data = d.fromJson(r[2]);
      out.push(entity.entityWith(r, data));
      if (!held) continue;
      const key: string[] = [];
      for (let j = 0, at = k; j < held.length; j++) {
        const member = held[j] as string | null;
        if (member === null) key.push(r[at++] as string);
        else if (member === '') key.push(r[0] as string);
        else {
          key.push(keyTextOf(typeof data === 'object' && data !== null ? (data as Record<string, unknown>)[member] : undefined));
        }
      }
      sortKeys.push(key);
    }
    return {
      rows: out, hasNext: rows.length > q.first, count,
      ...(times ? { times } : {}),
      ...(sent ? { keys: sortKeys, keyPeople: page.map((r) => r[k + sent.length] as string) } : {}),
      ...(demographics ? { demographics: page.map((r) => demographicsAt(d, r, r.length - ENTITY_COLUMNS.length)) } : {}),
    };
  }

  /**
   * A page of people in pseudonym order, keys first (where the dialect says how: PostgreSQL). The
   * walk in `list` joins each pseudonym to its person as it goes; PostgreSQL runs that as a nested
   * loop whose every step is an index scan of its own, while one scan for all the page's ids costs
   * a third (a page of 2,001 people at 50,000 students: 60 → 23 ms in psql, docs/data-engine.md).
   * So the page's pseudonyms are read first (an index-only scan of pseudonyms_order), then their
   * people in one index scan, joined back and sorted in key order (the page only: a sort of at most
   * `first + 1` rows, not of the list). The limit falls on the pseudonyms: one without its person
   * (none should exist; the walk leaves such rows out too) leaves the page short, and the page
   * reads on from its last pseudonym until it is full or the list ends.
   */
  private async peopleKeysFirst(
    q: ListQuery, byIds: NonNullable<StoreDialect['peopleByIds']>, count: () => Promise<number>,
  ): Promise<ListResult> {
    const d = this.d;
    const k0 = d.byteOrder(sql.ref('k0.value'));
    const bounds: RawBuilder<SqlBool>[] = [sql<SqlBool>`k0.domain = ${q.order!.domain} AND k0.version = ${q.order!.version}`];
    if (q.lead?.above !== undefined) bounds.push(sql<SqlBool>`${k0} > ${q.lead.above}`);
    if (q.lead?.upTo !== undefined) bounds.push(sql<SqlBool>`${k0} <= ${q.lead.upTo}`);
    const entity = entityColumnsOf(d, q);
    const n = ENTITY_COLUMNS.length;
    const rows: EntityRow[] = [];
    const keys: string[][] = [];
    const keyPeople: string[] = [];
    const demographics: (EntityRow | undefined)[] | undefined = q.withDemographics ? [] : undefined;
    // Their demographics found as their people are: by the ids of the page, in one index scan.
    const withDemographics = demographics ? sql`, ${DEMOGRAPHICS_COLUMNS}` : sql``;
    const joinDemographics = demographics
      ? sql` LEFT JOIN entities dm ON dm.id = ${demographicsIdOf(sql.ref('k.entity_id'))}
          AND ${byIds(sql.ref('dm.id'), sql`SELECT ${demographicsIdOf(sql.ref('entity_id'))} FROM k`)}`
      : sql``;
    for (let after = q.afterKey?.[0]; ;) {
      const want = q.first + 1 - rows.length;
      const where = after === undefined ? bounds : [...bounds, sql<SqlBool>`${k0} > ${after}`];
      // Columns by position: the entity's (null for a pseudonym without its person), the key, the
      // person, and where asked the person's demographics.
      const page = await this.executeReadArrays(sql`WITH k AS MATERIALIZED (
          SELECT ${k0} AS v, k0.entity_id FROM pseudonyms k0 WHERE ${and(where)} ORDER BY ${k0} LIMIT ${want})
        SELECT ${entity.select}, k.v, k.entity_id${withDemographics}
        FROM k LEFT JOIN entities e ON e.id = k.entity_id AND ${byIds(sql.ref('e.id'), sql`SELECT entity_id FROM k`)}${joinDemographics}
        ORDER BY ${d.byteOrder(sql.ref('k.v'))}`.compile(this.rdb));
      for (const r of page) {
        // The type is checked here, not in SQL: there the planner may intersect the scan by id with
        // one of every person (the (type, …) indexes), which costs the whole type.
        if (r[0] === null || r[1] !== 'person') continue;
        rows.push(entity.entityWith(r, d.fromJson(r[2])));
        keys.push([r[n] as string]);
        keyPeople.push(r[n + 1] as string);
        demographics?.push(demographicsAt(d, r, n + 2));
      }
      if (page.length < want || rows.length > q.first) break;
      after = page.at(-1)![n] as string;
    }
    const hasNext = rows.length > q.first;
    if (hasNext) {
      rows.length = q.first;
      keys.length = q.first;
      keyPeople.length = q.first;
      if (demographics) demographics.length = q.first;
    }
    return { rows, hasNext, count, keys, keyPeople, ...(demographics ? { demographics } : {}) };
  }

  async leadBoundaries(q: { type: EntityType; order?: PseudonymOrder; every: number }): Promise<string[]> {
    const every = Math.max(1, Math.floor(q.every));
    const lead = q.order && isPseudonymOrdered(q.type)
      ? sql`SELECT k0.value AS v, row_number() OVER (ORDER BY ${this.d.byteOrder(sql.ref('k0.value'))}) AS rn
          FROM pseudonyms k0 WHERE k0.domain = ${q.order.domain} AND k0.version = ${q.order.version}`
      : sql`SELECT e.id AS v, row_number() OVER (ORDER BY ${this.d.byteOrder(sql.ref('e.id'))}) AS rn FROM entities e WHERE e.type = ${q.type}`;
    const rows = await this.executeRead(sql<{ v: string }>`SELECT t.v FROM (${lead}) t WHERE t.rn % ${every} = 0 ORDER BY t.rn`.compile(this.rdb));
    return rows.map((r) => r.v);
  }

  /**
   * Pseudonym order (src/store/order.ts) in SQL: the rows are reached from the person's pseudonym
   * (`k0`, constrained to the order's domain and version by the caller), so a page is a walk of the
   * pseudonyms_order index from the cursor on, not a sort of the whole list. CROSS JOIN fixes that
   * join order in SQLite: without statistics its planner would rather scan every enrollment by type
   * and sort them all on every page. `on` are the join conditions, `keys` the sort key parts in order.
   */
  private pseudonymFrom(type: PseudonymOrderedType): { from: RawBuilder<unknown>; on: RawBuilder<SqlBool>[]; keys: KeyPart[] } {
    const d = this.d;
    const k0 = { sql: d.byteOrder(sql.ref('k0.value')) };
    const id: KeyPart = { sql: d.byteOrder(sql.ref('e.id')), fromRow: { id: true } };
    switch (type) {
      case 'person':
        return { from: sql`pseudonyms k0 JOIN entities e ON e.id = k0.entity_id`, on: [], keys: [k0] };
      case 'enrollment': {
        // Links are keyed by their source's k: each enrollment is found by key (SQLite's rowid).
        const walk = d.orderedWalk(sql`pseudonyms k0`, sql`links kl CROSS JOIN entities e`, sql<SqlBool>`kl.rel = 'enrollment.person' AND kl.to_id = k0.entity_id AND e.k = kl.from_k`);
        const classId = { sql: d.byteOrder(d.keyText(sql.ref('e.data'), 'classId')), fromRow: { member: 'classId' } };
        return { ...walk, keys: [k0, classId, id] };
      }
      case 'guardianship': {
        const walk = d.orderedWalk(sql`pseudonyms k0`, sql`links kl CROSS JOIN entities e`, sql<SqlBool>`kl.rel = 'guardianship.student' AND kl.to_id = k0.entity_id AND e.k = kl.from_k`);
        return {
          from: sql`${walk.from} CROSS JOIN pseudonyms k1`,
          on: [...walk.on, sql<SqlBool>`k1.domain = k0.domain AND k1.version = k0.version AND k1.entity_id = ${d.jsonText(sql.ref('e.data'), 'guardianId')}`],
          keys: [k0, { sql: d.byteOrder(sql.ref('k1.value')) }, id],
        };
      }
    }
  }

  async linkedFrom(rel: string, toIds: readonly string[]): Promise<Map<string, string[]>> {
    const out = new Map<string, string[]>(toIds.map((id) => [id, []]));
    if (toIds.length === 0) return out;
    const rows = await this.executeRead(this.rdb.selectFrom('links as l').innerJoin('entities as e', 'e.k', 'l.from_k').select(['e.id as from_id', 'l.to_id'])
      .where('l.rel', '=', rel).where(this.d.inList(sql.ref('l.to_id'), toIds)).orderBy(this.d.byteOrder(sql.ref('e.id'))).compile());
    for (const r of rows) out.get(r.to_id)!.push(r.from_id);
    return out;
  }

  async linkedPages(q: LinkedPageQuery, parents: readonly string[]): Promise<Map<string, LinkedPage>> {
    const out = new Map<string, LinkedPage>(parents.map((id) => [id, { rows: [], keys: [], hasNext: false }]));
    if (parents.length === 0) return out;
    const { from, where, keys } = this.linkedOrdered(q, parents);
    if (q.afterKey) where.push(sql<SqlBool>`(${sql.join(keys)}) > (${sql.join(q.afterKey.map((k) => sql`CAST(${k} AS TEXT)`))})`);
    // Every parent's children are read and numbered in key order, but only first + 1 of each leave
    // the store (the +1 tells hasNext): a class of 27 enrollments asked for 10 decodes 10 rows.
    // Columns by position (rows come back as arrays): the entity's, the sort key's parts, the parent.
    const n = ENTITY_COLUMNS.length;
    const rows = await this.executeReadArrays(sql`SELECT * FROM (
      SELECT ${sql.join(ENTITY_COLUMNS.map((c) => sql.ref(`e.${c}`)))}, ${sql.join(keys.map((k, i) => sql`${k} AS ${sql.raw(`sk${i}`)}`))},
        l.to_id AS parent, row_number() OVER (PARTITION BY l.to_id ORDER BY ${sql.join(keys)}) AS rn
      FROM ${from} WHERE ${and(where)}) t
      WHERE rn <= ${q.first + 1} ORDER BY parent, rn`.compile(this.rdb));
    for (const r of rows) {
      const page = out.get(r[n + keys.length] as string)!;
      if (page.rows.length === q.first) {
        page.hasNext = true;
        continue;
      }
      page.rows.push(entityOfColumns(this.d, r));
      page.keys.push(r.slice(n, n + keys.length) as string[]);
    }
    return out;
  }

  async linkedCounts(q: Omit<LinkedPageQuery, 'first' | 'afterKey'>, parents: readonly string[]): Promise<Map<string, number>> {
    const out = new Map<string, number>(parents.map((id) => [id, 0]));
    if (parents.length === 0) return out;
    const { from, where } = this.linkedOrdered(q, parents);
    const rows = await this.executeRead(sql<{ parent: string; n: number | string }>`SELECT l.to_id AS parent, count(*) AS n
      FROM ${from} WHERE ${and(where)} GROUP BY l.to_id`.compile(this.rdb));
    for (const r of rows) out.set(r.parent, Number(r.n));
    return out;
  }

  /**
   * The children of `parents` through `q.rel` joined to the pseudonyms they are ordered by, and
   * their sort key parts (src/store/order.ts). Unlike a root list (`pseudonymFrom`, which walks the
   * pseudonyms index from a cursor through the links table), each person comes from the row's own
   * data, as `sortKeyOf` takes it, so a nested list orders exactly as it did in memory. CROSS JOIN
   * keeps SQLite's join order as written: the parents' links first (the links primary key), then
   * each child and its pseudonyms by primary key; PostgreSQL plans it as any inner join.
   */
  private linkedOrdered(q: Omit<LinkedPageQuery, 'first' | 'afterKey'>, parents: readonly string[]) {
    const d = this.d;
    const data = sql.ref('e.data');
    const pseudonym = (alias: string, person: RawBuilder<unknown>) => {
      const a = sql.raw(alias);
      return {
        from: sql`pseudonyms ${a}`,
        on: sql<SqlBool>`${a}.domain = ${q.order.domain} AND ${a}.version = ${q.order.version} AND ${a}.entity_id = ${person}`,
        key: d.byteOrder(sql`${a}.value`),
      };
    };
    const people = q.type === 'person' ? [pseudonym('k0', sql.ref('e.id'))]
      : q.type === 'enrollment' ? [pseudonym('k0', d.jsonText(data, 'personId'))]
      : [pseudonym('k0', d.jsonText(data, 'studentId')), pseudonym('k1', d.jsonText(data, 'guardianId'))];
    const keys = q.type === 'person' ? [people[0]!.key]
      : q.type === 'enrollment' ? [people[0]!.key, d.byteOrder(d.keyText(data, 'classId')), d.byteOrder(sql.ref('e.id'))]
      : [people[0]!.key, people[1]!.key, d.byteOrder(sql.ref('e.id'))];
    const where: RawBuilder<SqlBool>[] = [
      sql<SqlBool>`l.rel = ${q.rel}`, d.inList(sql.ref('l.to_id'), parents), sql<SqlBool>`e.k = l.from_k`, ...people.map((p) => p.on),
    ];
    if (q.hasValue) where.push(d.jsonArrayHas(data, q.hasValue.field, q.hasValue.value));
    if (q.fieldEquals) where.push(sql<SqlBool>`${d.jsonText(data, q.fieldEquals.field)} = ${q.fieldEquals.value}`);
    const from = sql`links l CROSS JOIN entities e ${sql.join(people.map((p) => sql`CROSS JOIN ${p.from}`), sql` `)}`;
    return { from, where, keys };
  }

  async sourcesOf(entityIds: readonly string[]) {
    const out = new Map<string, { source: string; key: string; lastModified: string | null }[]>(entityIds.map((id) => [id, []]));
    if (entityIds.length === 0) return out;
    const rows = await this.executeRead(this.rdb.selectFrom('source_records').select(['entity_id', 'source', 'key', 'last_modified'])
      .where(this.d.inList(sql.ref('entity_id'), entityIds)).orderBy('source').orderBy('key').compile());
    for (const r of rows) out.get(r.entity_id!)?.push({ source: r.source, key: r.key, lastModified: r.last_modified });
    return out;
  }

  async getSyncState(source: string): Promise<SyncStateRow | undefined> {
    const r = (await this.executeRead(this.rdb.selectFrom('sync_state').selectAll().where('source', '=', source).compile()))[0];
    return r && toSync(this.d, r);
  }

  async changes(q: { afterSeq: number; limit: number; types?: EntityType[] }): Promise<ChangeRow[]> {
    const rows = await this.executeRead(this.rdb.selectFrom('change_log').selectAll()
      .where('seq', '>', q.afterSeq).where(this.d.inList(sql.ref('type'), q.types ?? ENTITY_TYPES)).orderBy('seq').limit(q.limit).compile());
    return rows.map((r) => toChange(this.d, r));
  }

  async tombstones(ids: readonly string[]): Promise<EntityRow[]> {
    if (ids.length === 0) return [];
    const rows = await this.executeRead(this.rdb.selectFrom('change_log as c')
      .innerJoin(
        (eb) => eb.selectFrom('change_log').select(['entity_id', (e) => e.fn.max('seq').as('seq')])
          .where(this.d.inList(sql.ref('entity_id'), ids)).where('op', '=', 'deleted').groupBy('entity_id').as('last'),
        (j) => j.onRef('last.seq', '=', 'c.seq'),
      )
      .selectAll('c').compile());
    return rows.map((r) => tombstoneOf(toChange(this.d, r)));
  }

  async oldestChangeSeq(): Promise<number | undefined> {
    const r = (await this.executeRead(this.rdb.selectFrom('change_log').select((eb) => eb.fn.min('seq').as('s')).compile()))[0];
    return r?.s === null || r?.s === undefined ? undefined : Number(r.s);
  }

  async headSeq(): Promise<number> {
    // A log purged to nothing still has a head: the last change it held (seqs are never reused).
    const r = await this.executeRead(sql<{ s: number | string | null }>`SELECT coalesce((SELECT max(seq) FROM change_log),
      (SELECT CAST(value AS BIGINT) FROM meta WHERE key = 'change_log_purged_through'), 0) AS s`.compile(this.rdb));
    return Number(r[0]?.s ?? 0);
  }

  async purgedThroughSeq(): Promise<number> {
    return Number((await this.meta('change_log_purged_through')) ?? 0);
  }

  async purgeChanges(beforeIso: string): Promise<number> {
    return this.transaction((tx) => tx.purgeChangesBefore(beforeIso));
  }

  async initMeta(key: string, value: string): Promise<string> {
    return this.transaction(async (tx) => {
      await tx.db.insertInto('meta').values({ key, value }).onConflict((oc) => oc.column('key').doNothing()).execute();
      // A statement of its own, so it sees a row a concurrent process committed while the insert waited on it.
      return (await tx.db.selectFrom('meta').select('value').where('key', '=', key).executeTakeFirstOrThrow()).value;
    });
  }

  async meta(key: string): Promise<string | undefined> {
    return (await this.executeRead(this.rdb.selectFrom('meta').select('value').where('key', '=', key).compile()))[0]?.value;
  }

  async conflicts(): Promise<IdentityConflict[]> {
    const rows = await this.executeRead(this.rdb.selectFrom('identity_conflicts').selectAll().orderBy('id').compile());
    return rows.map((r) => ({
      id: Number(r.id), at: r.at, source: r.source, type: r.type, key: r.key, reason: r.reason, candidates: this.d.fromJson<string[]>(r.candidates),
      resolvedAt: r.resolved_at, resolution: r.resolution,
    }));
  }

  async counts(types?: readonly EntityType[]): Promise<Record<EntityType, number>> {
    const out = Object.fromEntries(ENTITY_TYPES.map((t) => [t, 0])) as Record<EntityType, number>;
    if (types?.length === 0) return out;
    let q = this.rdb.selectFrom('entities').select(['type', (eb) => eb.fn.countAll<number>().as('n')]);
    if (types) q = q.where(this.d.inList(sql.ref('type'), [...new Set(types)]));
    const rows = await this.executeRead(q.groupBy('type').compile());
    for (const r of rows) out[r.type] = Number(r.n);
    return out;
  }

  async addApiKey(hash: string, client: string, at: string, tenant?: string): Promise<void> {
    await this.transaction((tx) => tx.db.insertInto('api_keys').values({ hash, client, created_at: at, tenant: tenant ?? null }).execute());
  }

  async findApiKey(hash: string) {
    const r = (await this.executeRead(this.rdb.selectFrom('api_keys').select(['client', 'revoked_at', 'tenant']).where('hash', '=', hash).compile()))[0];
    return r && { client: r.client, revokedAt: r.revoked_at, tenant: r.tenant };
  }

  async revokeApiKeys(client: string, at: string): Promise<number> {
    return this.transaction(async (tx) => {
      const r = await tx.db.updateTable('api_keys').set({ revoked_at: at }).where('client', '=', client).where('revoked_at', 'is', null).executeTakeFirst();
      return Number(r.numUpdatedRows);
    });
  }

  async revokeTenantApiKeys(tenant: string, at: string): Promise<number> {
    return this.transaction(async (tx) => {
      const r = await tx.db.updateTable('api_keys').set({ revoked_at: at }).where('tenant', '=', tenant).where('revoked_at', 'is', null).executeTakeFirst();
      return Number(r.numUpdatedRows);
    });
  }

  async listApiKeys() {
    const rows = await this.executeRead(this.rdb.selectFrom('api_keys').select(['client', 'hash', 'created_at', 'revoked_at', 'tenant']).orderBy('client').orderBy('created_at').compile());
    return rows.map((r) => ({ client: r.client, hashPrefix: r.hash.slice(0, 8), createdAt: r.created_at, revokedAt: r.revoked_at, tenant: r.tenant }));
  }

  async domainVersion(domain: string) {
    return (await this.executeRead(this.rdb.selectFrom('pseudonym_domains').select('version').where('domain', '=', domain).compile()))[0]?.version;
  }

  async pseudonymsOf(domain: string, version: number, entityIds: readonly string[]) {
    const out = new Map<string, string>();
    if (entityIds.length === 0) return out;
    const rows = await this.executeRead(this.rdb.selectFrom('pseudonyms').select(['entity_id', 'value'])
      .where('domain', '=', domain).where('version', '=', version).where(this.d.inList(sql.ref('entity_id'), entityIds)).compile());
    for (const r of rows) out.set(r.entity_id, r.value);
    return out;
  }

  async entityByPseudonym(domain: string, value: string) {
    return (await this.executeRead(this.rdb.selectFrom('pseudonyms').select('entity_id').where('domain', '=', domain).where('value', '=', value).compile()))[0]?.entity_id;
  }

  async peopleWithoutPseudonym(domain: string, version: number, limit: number) {
    // In no particular order: the backfill takes batches until none is left, and every sync ends
    // with this check, nearly always finding nobody. Ordered, PostgreSQL sorted every person and
    // probed the pseudonyms once per person (0.4 s at 20,000 students); unordered, it merges the
    // two indexes. SQLite walks the type index either way.
    const rows = await this.executeRead(this.rdb.selectFrom('entities as e').select('e.id').where('e.type', '=', 'person')
      .where(({ not, exists, selectFrom }) => not(exists(selectFrom('pseudonyms as p').select(sql.lit(1).as('one'))
        .where('p.domain', '=', domain).where('p.version', '=', version).whereRef('p.entity_id', '=', 'e.id'))))
      .limit(limit).compile());
    return rows.map((r) => r.id);
  }

  async viewTimes(view: string, entityIds: readonly string[]) {
    const out = new Map<string, ViewTime>();
    if (entityIds.length === 0) return out;
    // The view's row where it differs, else the entity's own time (src/graphql/view-times.ts); nothing for a view not computed.
    const rows = await this.executeRead(this.rdb.selectFrom('entities as e').leftJoin('entity_views as v', (j) => j.onRef('v.entity_k', '=', 'e.k').on('v.view', '=', view))
      .select(['e.id', sql<string>`coalesce(v.updated_at, e.updated_at)`.as('updated_at'), sql<number>`coalesce(v.updated_seq, e.updated_seq)`.as('updated_seq')])
      .where(this.d.inList(sql.ref('e.id'), entityIds)).where('e.type', '<>', 'demographics').where(viewComputed(view)).compile());
    for (const r of rows) out.set(r.id, { updatedAt: r.updated_at, updatedSeq: Number(r.updated_seq) });
    return out;
  }

  async viewFingerprints() {
    const rows = await this.executeRead(this.rdb.selectFrom('view_fingerprints').select(['view', 'fingerprint']).compile());
    return new Map(rows.map((r) => [r.view, r.fingerprint]));
  }

  async personIds(afterId: string | undefined, limit: number) {
    const id = this.d.byteOrder(sql.ref('id'));
    const rows = await this.executeRead(this.rdb.selectFrom('entities').select('id').where('type', '=', 'person')
      .where(id, '>', afterId ?? '').orderBy(id).limit(limit).compile());
    return rows.map((r) => r.id);
  }

  async auditEntries(q: { afterSeq?: number; limit?: number }) {
    const rows = await this.executeRead(this.rdb.selectFrom('audit_log').selectAll().where('seq', '>', q.afterSeq ?? 0).orderBy('seq').limit(q.limit ?? 1_000_000).compile());
    return rows.map((r) => toAudit(this.d, r));
  }

  async disclosuresOf(entityId: string) {
    const rows = await this.executeRead(this.rdb.selectFrom('disclosures').select(['client', 'first_at', 'last_at']).where('entity_id', '=', entityId).orderBy('client').compile());
    return rows.map((r) => ({ client: r.client, firstAt: r.first_at, lastAt: r.last_at }));
  }

  async entityOfRecord(r: SourceRecordRef) {
    const row = (await this.executeRead(this.rdb.selectFrom('source_records').select('entity_id')
      .where('source', '=', r.source).where('type', '=', r.type).where('key', '=', r.key).compile()))[0];
    return row?.entity_id ?? undefined;
  }

  async subjectRows(entityIds: readonly string[]): Promise<SubjectRows> {
    const d = this.d;
    const among = (col: string) => d.inList(sql.ref(col), entityIds);
    const by = (col: string) => d.byteOrder(sql.ref(col));
    const [sources, matchKeys, pseudonyms, overrides, changes, disclosures] = await Promise.all([
      this.executeRead(this.rdb.selectFrom('source_records').selectAll().where(among('entity_id')).orderBy(by('source')).orderBy(by('type')).orderBy(by('key')).compile()),
      this.executeRead(this.rdb.selectFrom('match_keys').select(['entity_id', 'kind', 'value']).where(among('entity_id'))
        .orderBy(by('entity_id')).orderBy(by('kind')).orderBy(by('value')).compile()),
      this.executeRead(this.rdb.selectFrom('pseudonyms as p').leftJoin('pseudonym_domains as pd', 'pd.domain', 'p.domain')
        .select(['p.entity_id', 'p.domain', 'p.version', 'p.value', sql<number | boolean | null>`(pd.version = p.version)`.as('current')])
        .where(among('p.entity_id')).orderBy(by('p.domain')).orderBy('p.version').orderBy(by('p.entity_id')).compile()),
      this.executeRead(this.rdb.selectFrom('identity_overrides').selectAll().where(among('entity_id')).orderBy(by('source')).orderBy(by('type')).orderBy(by('key')).compile()),
      this.executeRead(this.rdb.selectFrom('change_log').selectAll().where(among('entity_id')).orderBy('seq').compile()),
      this.executeRead(this.rdb.selectFrom('disclosures').select(['entity_id', 'client', 'first_at', 'last_at']).where(among('entity_id'))
        .orderBy(by('client')).orderBy(by('entity_id')).compile()),
    ]);
    return {
      sourceRecords: sources.map((r) => toSource(d, r)),
      matchKeys: matchKeys.map((r) => ({ entityId: r.entity_id, kind: r.kind, value: r.value })),
      pseudonyms: pseudonyms.map((r) => ({ entityId: r.entity_id, domain: r.domain, version: r.version, value: r.value, current: r.current === true || r.current === 1 })),
      overrides: overrides.map((r) => ({ source: r.source, type: r.type, key: r.key, entityId: r.entity_id, decidedAt: r.decided_at })),
      changes: changes.map((r) => {
        const { before: _before, ...c } = toChange(d, r);
        return c;
      }),
      disclosures: disclosures.map((r) => ({ entityId: r.entity_id, client: r.client, firstAt: r.first_at, lastAt: r.last_at })),
    };
  }
}
