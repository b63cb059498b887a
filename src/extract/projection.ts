/**
 * An extract as a compiled per-purpose projection: the purpose schema decides the columns
 * (./columns.ts) and, for each column, the chain of field resolvers that makes its value — the very
 * resolvers a GraphQL request of that purpose runs (Person.id → its pseudonym, gradeBand → the
 * generalised value, class.id → the related record's id, every Person field noting the person for
 * the audit), followed by the field type's `serialize` as GraphQL completes a leaf. The chains are
 * built once per (purpose schema, dataset); rows then come straight from the store in big pages,
 * with the related records and pseudonyms of a page read in a few batched store calls through the
 * page's loaders. No query is parsed, validated or executed per page: that machinery (a result tree,
 * a path and a completion step per field of every row) was most of what extracts spent, and of the
 * garbage they made.
 *
 * The listed records themselves are read without the members no column reads, where that pays
 * (MembersRead below, src/store/partial-data.ts): a read of such a member is refused, and the row
 * is made again from its whole record.
 *
 * Why call the resolvers rather than re-implement the transforms here: a value has one definition,
 * the one GraphQL serves; test/e2e/extract-projection.test.ts compares the two column by column.
 *
 * Related records read as keys only. A column that is a related record's `id` (`class.id`,
 * `person.id`, `terms.id`) needs the record's existence and key, not its data: its chain runs with
 * the page's context in which the entity loader is `Loaders.entityKey` (one `store.entityKeys` per
 * page: id and type, no data read or JSON decoded). The value still comes from the same resolvers —
 * `Enrollment.class` looks the class up and gets nothing for one that is gone (an empty cell, as in
 * GraphQL), `Person.id` gives the pseudonym, `notePerson` notes the person. Why this is exact: a
 * key-only row's `data`, `updatedAt` and `updatedSeq` throw `KeyOnlyRead` when read, so a chain that
 * completes did not read them and made the value a whole row would have made. A chain that does
 * read them (in a pseudonymising purpose `Person.guardianships` orders guardianships by their
 * guardian's pseudonym, read from the guardianship's data) fails with `KeyOnlyRead`; that cell is
 * made again with whole rows, and the column reads whole rows from then on. (No resolver catches an
 * error and carries on, so a read cannot go unnoticed.) Chosen over a hook in the resolvers because it
 * needs no second description of what each resolver reads, and cannot drift from it.
 */
import {
  getNamedType,
  isLeafType,
  isListType,
  isNonNullType,
  isObjectType,
  isScalarType,
  isSpecifiedScalarType,
  type GraphQLField,
  type GraphQLFieldResolver,
  type GraphQLLeafType,
  type GraphQLObjectType,
  type GraphQLOutputType,
  type GraphQLResolveInfo,
  type GraphQLSchema,
} from 'graphql';
import { RostergateError } from '../errors.ts';
import type { GraphQLContext } from '../graphql/context.ts';
import { KeyOnlyRead } from '../graphql/loaders.ts';
import { rootListPage } from '../graphql/resolvers.ts';
import { fieldResolver } from '../graphql/schema.ts';
import { checkKeyVersion, orderOf } from '../graphql/order.ts';
import type { EntityRow, ListQuery } from '../store/types.ts';
import { isMemberName, MemberNotRead, type MemberReads } from '../store/partial-data.ts';
import { cellOf, DATASETS, showsDemographics, type Column, type Dataset } from './columns.ts';
import type { Value } from './kanonymity.ts';

/** One column's completed value of one row (cellOf makes it a cell): synchronous where no related record is read. */
type CellFn = (row: EntityRow, ctx: GraphQLContext) => unknown;

/** A page of projected rows: the stored rows, their cells (columns order) and the people they disclosed. */
export interface ProjectedPage {
  rows: EntityRow[];
  cells: Value[][];
  /** Gateway ids of the people whose fields the page rendered (notePerson in the purpose schema). */
  people: Set<string>;
}

export interface Projection {
  dataset: Dataset;
  columns: Column[];
  /** The members of the listed records' data its columns read (ListQuery.fields): learnt from the reads. */
  members: MembersRead;
  /** Cells of one page of rows, read through `ctx` (a context of the purpose: its loaders batch the reads). */
  project(rows: EntityRow[], ctx: GraphQLContext): Promise<Value[][]>;
}

const isPromise = (v: unknown): v is Promise<unknown> => typeof (v as { then?: unknown } | null)?.then === 'function';
const then = <T, U>(v: T | Promise<T>, f: (x: T) => U | Promise<U>): U | Promise<U> => (isPromise(v) ? v.then(f) : f(v as T));

/**
 * The resolve info a resolver of ours may read: its field's name, types and schema. Resolvers here
 * read no more of it (they are written for any executor, see src/graphql/schema.ts); nothing reads
 * the operation, which an extract does not have.
 */
function infoOf(schema: GraphQLSchema, parentType: GraphQLObjectType, field: GraphQLField<unknown, unknown>): GraphQLResolveInfo {
  return {
    fieldName: field.name, fieldNodes: [], returnType: field.type, parentType, schema,
    path: { prev: undefined, key: field.name, typename: parentType.name }, fragments: {}, rootValue: undefined,
    operation: undefined as never, variableValues: {},
  };
}

/** Default argument values, as GraphQL passes a field selected without arguments. */
const defaultArgs = (field: GraphQLField<unknown, unknown>) =>
  Object.fromEntries(field.args.filter((a) => a.defaultValue !== undefined).map((a) => [a.name, a.defaultValue]));

/** A step of a column: from a source value to the completed value, in a page's context. */
type Step = (source: unknown, ctx: GraphQLContext) => unknown;

/**
 * How GraphQL completes a field's value for its type (non-null checks, lists, `serialize` for
 * leaves), with `next` carrying an object value on along the column's path. An error fails the
 * extract, as an error in the GraphQL execution did.
 */
function completer(type: GraphQLOutputType, where: string, next: Step | undefined): Step {
  if (isNonNullType(type)) {
    const inner = completer(type.ofType, where, next);
    return (v, ctx) => {
      if (v === null || v === undefined) throw new Error(`Cannot return null for non-nullable field ${where}.`);
      return inner(v, ctx);
    };
  }
  if (isListType(type)) {
    const item = completer(type.ofType, where, next);
    return (v, ctx) => {
      if (v === null || v === undefined) return null;
      if (typeof (v as Iterable<unknown>)[Symbol.iterator] !== 'function') throw new Error(`Expected Iterable, but did not find one for field "${where}".`);
      const items = [...(v as Iterable<unknown>)].map((x) => then(x, (y) => item(y, ctx)));
      return items.some(isPromise) ? Promise.all(items) : items;
    };
  }
  if (isLeafType(type)) {
    const serialize = servedOnce(type);
    return (v) => {
      if (v === null || v === undefined) return null;
      const out = serialize(v);
      if (out === null || out === undefined) throw new Error(`Expected \`${type.name}.serialize\` to return non-nullable value for ${where}.`);
      return out;
    };
  }
  if (isObjectType(type) && next) return (v, ctx) => (v === null || v === undefined ? null : next(v, ctx));
  throw new Error(`${where}: an extract column cannot end on ${String(type)}`);
}

/** How many distinct values a column's serialize memo keeps before it gives up on the column. */
const SERIALIZED_KEPT = 256;

/**
 * A leaf type's `serialize`, remembered per text value for the custom scalars (Date, DateTime,
 * EmailAddress: graphql-scalars checks each value with a regular expression and substrings, about
 * 130 bytes of garbage a cell). An extract's date columns repeat a handful of term dates over
 * hundreds of thousands of rows. Only a value serialize returned for is kept (a refusal is thrown
 * again each time), and a column with more than SERIALIZED_KEPT distinct values (e-mail addresses)
 * stops being remembered, so the memo stays small. The built-in scalars and enums are cheap as they
 * are. Exact because a scalar's serialize is a function of its value alone.
 */
export function servedOnce(type: GraphQLLeafType): (v: unknown) => unknown {
  const serialize = (v: unknown) => type.serialize(v);
  if (!isScalarType(type) || isSpecifiedScalarType(type)) return serialize;
  let seen: Map<string, unknown> | undefined = new Map();
  return (v) => {
    if (typeof v !== 'string' || !seen) return serialize(v);
    let out = seen.get(v);
    if (out === undefined) {
      out = serialize(v);
      if (seen.size < SERIALIZED_KEPT) seen.set(v, out);
      else seen = undefined;
    }
    return out;
  };
}

/** Compiles a column's path to the chain of the purpose schema's resolvers that makes its value. */
function compileColumn(schema: GraphQLSchema, typeName: string, column: Column): CellFn {
  const step = (parent: GraphQLObjectType, i: number): Step => {
    const field = parent.getFields()[column.path[i]!];
    if (!field) throw new RostergateError('FORBIDDEN', `this purpose cannot read ${parent.name}.${column.path[i]}`);
    const resolve = (field.resolve ?? fieldResolver) as GraphQLFieldResolver<unknown, GraphQLContext>;
    const info = infoOf(schema, parent, field as GraphQLField<unknown, unknown>);
    const args = defaultArgs(field as GraphQLField<unknown, unknown>);
    const named = getNamedType(field.type);
    const next = i + 1 < column.path.length && isObjectType(named) ? step(named, i + 1) : undefined;
    const complete = completer(field.type, `${parent.name}.${field.name}`, next);
    return (source, ctx) => {
      const v = resolve(source, args, ctx, info);
      // No closure unless the value is pending: most steps of most cells are synchronous.
      return isPromise(v) ? v.then((x) => complete(x, ctx)) : complete(v, ctx);
    };
  };
  const first = step(schema.getType(typeName) as GraphQLObjectType, 0);
  return (row, ctx) => first(row, ctx);
}

const failed = (dataset: Dataset, e: unknown) =>
  e instanceof RostergateError ? e : new RostergateError('STORE', `extract ${dataset}: ${(e as Error).message}`);

/** A column that may be served key-only rows: a related record's id (`class.id`, `terms.id`). */
const keyColumn = (c: Column) => c.path.length === 2 && c.path[1] === 'id';

/**
 * The page's context with the related records served as keys only (Loaders.entityKey): the same
 * request (people noted, pseudonyms, view) but `one`/`many` in the resolvers read no data.
 */
const keyOnlyContext = (ctx: GraphQLContext): GraphQLContext => ({
  ...ctx, loaders: { ...ctx.loaders, entity: ctx.loaders.entityKey, entityNow: ctx.loaders.entityKeyNow },
});

/**
 * The share of a record's members up to which reading only those pays (measured at 50,000
 * students, builds in alternating processes; docs/extract-engine.md, "Reading only the members a
 * purpose reads"). Classes (5 members of 10) took 0.81–0.89× the time of whole records on
 * PostgreSQL and 0.94× on SQLite, people (3 of 14) 0.87–0.91× and 0.92×; enrollments (6 of 7)
 * 1.03× on PostgreSQL, so they are read whole.
 */
const PARTIAL_UP_TO = 1 / 2;

/** How many member names MembersRead keeps of the records it saw whole. */
const SEEN_KEPT = 256;

/**
 * Which members of the listed records' data a projection's columns read, learnt from the reads
 * themselves (src/store/partial-data.ts), and whether reading only those pays:
 * - Until a page listed whole has been projected, pages are listed whole with their reads told.
 * - Then, where the columns read few of the members a record has on average (PARTIAL_UP_TO: an
 *   analytics people extract 3 of 14), pages are listed without the other members seen
 *   (ListQuery.leaveOut), readable only for those the columns read.
 *   A row that needs another throws MemberNotRead; `project` makes that row again from its whole
 *   record, and the member is read on the pages listed after. Where the columns read more of
 *   each record (enrollments: 6 of 7), leaving out the rest costs more than it saves, and pages
 *   are listed whole.
 * - A read that needs every member (keys listed, a spread) lists whole records for good.
 * Nothing here describes what a resolver reads, so it cannot drift from the resolvers: a member
 * missed costs a second read of that row, never a wrong value.
 */
export class MembersRead implements MemberReads {
  private readonly names = new Set<string>();
  private every = false;
  private sorted: string[] | undefined;
  /** Records listed whole with their reads told, and their members: the average record's size. */
  private recorded = 0;
  private memberTotal = 0;
  /** The members those records had: what a partial read leaves out (bounded, in case a record's keys are not a model's). */
  private readonly seen = new Set<string>();
  private leaveOut: string[] | undefined;
  /** Whether a page listed whole with its reads told has been projected: the reads are known. */
  private learnt = false;

  read(member: string | null): void {
    if (member === null || !isMemberName(member)) this.every = true;
    else if (!this.names.has(member)) {
      this.names.add(member);
      this.sorted = undefined;
    }
  }

  members(names: readonly string[]): void {
    this.recorded++;
    this.memberTotal += names.length;
    for (const m of names) {
      if (this.seen.size >= SEEN_KEPT || this.seen.has(m)) continue;
      this.seen.add(m);
      this.leaveOut = undefined;
    }
  }

  /** What a page's listing asks of the store: whole records with their reads told, only some members, or plain whole records. */
  listQuery(): Pick<ListQuery, 'fields' | 'leaveOut' | 'memberReads'> {
    if (this.every) return {};
    if (!this.learnt || this.recorded === 0) return { memberReads: this };
    if (this.names.size > (this.memberTotal / this.recorded) * PARTIAL_UP_TO) return {};
    if (!this.sorted) {
      this.sorted = [...this.names].sort();
      this.leaveOut = undefined;
    }
    this.leaveOut ??= [...this.seen].filter((m) => !this.names.has(m) && isMemberName(m)).sort();
    return { fields: this.sorted, leaveOut: this.leaveOut, memberReads: this };
  }

  /** A page listed as `q` (listQuery's answer) has been projected. */
  projected(q: Pick<ListQuery, 'fields' | 'memberReads'>): void {
    if (q.memberReads && !q.fields) this.learnt = true;
  }
}

/**
 * The members learnt per (purpose schema, dataset, columns), kept across extracts: a purpose's next
 * extract of a dataset reads only what its columns read from its first page on. Purpose schemas
 * are built once per purpose and kept; a WeakMap lets a replaced one go.
 */
const LEARNT = new WeakMap<GraphQLSchema, Map<string, MembersRead>>();

function membersFor(schema: GraphQLSchema, dataset: Dataset, columns: readonly Column[]): MembersRead {
  let bySchema = LEARNT.get(schema);
  if (!bySchema) LEARNT.set(schema, (bySchema = new Map()));
  const key = `${dataset}\0${columns.map((c) => c.name).join('\0')}`;
  let m = bySchema.get(key);
  if (!m) bySchema.set(key, (m = new MembersRead()));
  return m;
}

/** Compiles the projection of a dataset's columns (all of them, or the few a k-anonymity pass needs). */
export function compileProjection(schema: GraphQLSchema, dataset: Dataset, columns: Column[]): Projection {
  const typeName = DATASETS[dataset].type;
  const fns = columns.map((c) => compileColumn(schema, typeName, c));
  // Which columns are still served key-only rows: until one of their chains reads more than a key.
  const keyed = columns.map(keyColumn);
  return {
    dataset,
    columns,
    members: membersFor(schema, dataset, columns),
    async project(rows, ctx) {
      const keyCtx = keyed.some(Boolean) ? keyOnlyContext(ctx) : ctx;
      // The whole record after all: this column reads full rows from now on, and this cell again.
      const whole = (i: number, row: EntityRow, e: unknown) => {
        if (!(e instanceof KeyOnlyRead)) throw e;
        keyed[i] = false;
        return fns[i]!(row, ctx);
      };
      // Rows (by position) listed with only some members of their record (MembersRead) whose cells
      // read another: each is made again, every cell, from its whole record.
      const unread = new Set<number>();
      const notRead = (r: number, e: unknown) => {
        if (!(e instanceof MemberNotRead)) throw e;
        unread.add(r);
      };
      const pending: Promise<unknown>[] = [];
      const cellsOf = (row: EntityRow, r: number): Value[] => {
        const out = new Array<Value>(fns.length);
        for (let i = 0; i < fns.length; i++) {
          let v: unknown;
          try {
            if (!keyed[i]) v = fns[i]!(row, ctx);
            else {
              try {
                v = fns[i]!(row, keyCtx);
              } catch (e) {
                v = whole(i, row, e);
              }
            }
          } catch (e) {
            notRead(r, e);
            continue;
          }
          if (!isPromise(v)) out[i] = cellOf(v);
          else {
            const done = (x: unknown) => void (out[i] = cellOf(x));
            const k = keyed[i];
            // One reaction per pending cell (a promise per cell is most of what a related column costs).
            pending.push(v.then(done, (e: unknown) => {
              if (!k || !(e instanceof KeyOnlyRead)) return notRead(r, e);
              try {
                const again = whole(i, row, e);
                return isPromise(again) ? again.then(done, (e2: unknown) => notRead(r, e2)) : done(again);
              } catch (e2) {
                return notRead(r, e2);
              }
            }));
          }
        }
        return out;
      };
      let cells: Value[][];
      try {
        cells = rows.map(cellsOf);
        // The loaders batch every related read the page's resolvers started (one store call per kind).
        if (pending.length) await Promise.all(pending);
        if (unread.size) {
          const at = [...unread];
          pending.length = 0;
          unread.clear();
          const records = await ctx.store.getEntities(at.map((r) => rows[r]!.id));
          at.forEach((r, j) => {
            // Gone since it was listed: this page no longer holds what it listed. A newer version is
            // one record all the same, its every cell made from it.
            const record = records[j];
            if (!record) throw new RostergateError('STORE', `extract ${dataset}: a record was deleted while its page was read; run the extract again`, {}, { retryable: true });
            rows[r] = record;
            cells[r] = cellsOf(record, r);
          });
          if (pending.length) await Promise.all(pending);
          // Whole records cannot lack a member.
          if (unread.size) throw new Error('a whole record read as one without some of its members');
        }
      } catch (e) {
        throw failed(dataset, e);
      }
      return cells;
    },
  };
}

/**
 * Part of a list, for a parallel extract (./parallel.ts): the rows whose leading sort key is in
 * `lead` (ListQuery.lead), cut under the pseudonym key `version` (none in id order).
 */
export interface ListRange {
  lead: { above?: string; upTo?: string };
  version?: number;
}

/** Awaited later; if the consumer stops first, its failure is not an unhandled one. */
const quiet = <T>(p: Promise<T>) => (p.catch(() => {}), p);

/**
 * Pages of a dataset as the purpose lists it (the root list's order and filter), projected. Each
 * page is read with a fresh context (its loaders' caches go with it: the heap stays flat). With
 * `ranges`, only those parts of the list, one after the other (consecutive ranges, as listRanges in
 * ./parallel.ts cuts them, make the whole list).
 *
 * Read ahead in two steps. A page's listing gives the position of the next page, so the next
 * listing starts as soon as this one returns, before this page is projected; the next page is
 * projected once it is listed and this one projected, while the caller writes this one. At most two
 * pages are ahead of the caller. Why: on PostgreSQL a page waits for the server twice (its listing,
 * then its related records); with one page read ahead at a time this thread sat idle through both,
 * and now the server lists the next page meanwhile (0.85× the time of a people extract with 3 ms to
 * the server; docs/extract-engine.md). SQLite reads on this thread, so there nothing changes.
 *
 * The listings of one range form a chain (each starts from the last key of the one before), but
 * the next range's first page needs nothing from this range: it is listed from the start, beside
 * this range's listings, so two listings run on the server at once (`ahead`). With ranges of about a
 * page each the chain is broken at every page (`pipelinedRanges`).
 */
export async function* projectedPages(
  projection: Projection, newContext: () => Promise<GraphQLContext>, pageSize: number, ranges?: ListRange | readonly ListRange[],
): AsyncGenerator<ProjectedPage> {
  const { entity, where } = DATASETS[projection.dataset] as { entity: EntityRow['type']; where?: object };
  type Position = { afterId?: string } | { afterKey: string[]; version: number };
  type Listed = {
    ctx: GraphQLContext; r: Awaited<ReturnType<typeof rootListPage>>; next: Position | undefined;
    members: Pick<ListQuery, 'fields' | 'leaveOut' | 'memberReads'>;
  };
  // Named by kind and place, not by the driver's message, which may quote a stored value.
  const unreadable = (e: unknown) => e instanceof RostergateError
    ? e
    : new RostergateError('STORE', `extract ${projection.dataset}: a page could not be read from the store (${(e as Error).name})`, {}, { cause: e });
  const parts: readonly (ListRange | undefined)[] = ranges === undefined ? [undefined] : 'lead' in ranges ? [ranges] : ranges;
  if (parts.length === 0) return;
  const first = (range: ListRange | undefined): Position => (range?.version !== undefined ? { afterKey: [], version: range.version } : {});
  // People read with their demographics where a column shows them: no lookup of their own per page.
  const withDemographics = showsDemographics(projection.dataset, projection.columns);
  const list = async (range: ListRange | undefined, after: Position): Promise<Listed> => {
    const ctx = await newContext();
    const order = orderOf(ctx, entity);
    let position: { afterId?: string; afterKey?: string[] } = after;
    if ('version' in after) {
      // Pages straddling a rotation would mix two orders: the extract stops instead, as a cursor would.
      try {
        checkKeyVersion(ctx, after.version);
      } catch (e) {
        throw new RostergateError('STORE', `extract ${projection.dataset}: ${(e as Error).message}`, {}, { retryable: true });
      }
      position = after.afterKey.length ? { afterKey: after.afterKey } : {};
    }
    let r: Listed['r'];
    const members = projection.members.listQuery();
    try {
      r = await rootListPage(ctx, entity, {
        first: pageSize, ...position, ...where, ...(range ? { lead: range.lead } : {}), withDemographics, ...members,
      });
    } catch (e) {
      throw unreadable(e);
    }
    const last = r.rows.length - 1;
    const next: Position | undefined =
      !r.hasNext || last < 0 ? undefined : order ? { afterKey: r.keys![last]!, version: order.version } : { afterId: r.rows[last]!.id };
    // The people leading an enrollments or guardianships walk are stored people (ListResult.keyPeople):
    // primed as such, their `person.id` cells resolve at once, with no lookup of them.
    if (r.keyPeople && entity !== 'person') ctx.loaders.primeKeys(r.keyPeople.map((id) => ({ id, type: 'person' as const })));
    return { ctx, r, next, members };
  };
  // A page is projected after the one before it: the related keys that page found (KeyMemo) then
  // spare this one their lookups.
  const project = async (listed: Promise<Listed>, before?: Promise<unknown>): Promise<ProjectedPage> => {
    const { ctx, r, members } = await listed;
    await before;
    try {
      const cells = await projection.project(r.rows, ctx);
      projection.members.projected(members);
      return { rows: r.rows, cells, people: ctx.people };
    } catch (e) {
      throw unreadable(e);
    }
  };
  let at = 0;
  const opening = (i: number) => (i < parts.length ? quiet(list(parts[i], first(parts[i]))) : undefined);
  let listing = opening(0)!;
  let ahead = opening(1);
  let page = quiet(project(listing));
  let following: Promise<ProjectedPage> | undefined;
  try {
    for (;;) {
      const { next } = await listing;
      // This range goes on from where the page ended; once it is done, the next range (listed already).
      let nextListing: Promise<Listed> | undefined;
      if (next) nextListing = quiet(list(parts[at], next));
      else if (ahead) {
        nextListing = ahead;
        at++;
        ahead = opening(at + 1);
      }
      following = undefined;
      if (nextListing) {
        listing = nextListing;
        following = quiet(project(listing, page));
      }
      yield await page;
      if (!following) return;
      page = following;
    }
  } finally {
    // A page that failed, or a caller that stopped reading (a consumer gone), leaves the reads ahead
    // under way: they end before the extract does, so none reaches the store after it (a store
    // closed meanwhile, or the next extract's reads). Each is one page; their outcome is dropped.
    await Promise.allSettled([listing, ahead, page, following]);
  }
}
