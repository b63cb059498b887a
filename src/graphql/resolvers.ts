/**
 * Resolvers of the unified schema over the store. Parents are store `EntityRow`s; scalar fields
 * are read from `row.data` by the default field resolver in `schema.ts`. Every relation goes
 * through a per-request loader so nested queries stay a bounded number of store queries.
 */
import { GraphQLError } from 'graphql';
import { CursorScalar, DateScalar, DateTimeScalar, EmailAddressScalar, PseudonymScalar } from './scalars.ts';
import type { EntityType } from '../model/records.ts';
import { GRAPHQL_TYPE } from '../model/names.ts';
import type { EntityRow, ListQuery, ListResult } from '../store/types.ts';
import { MemberNotRead } from '../store/partial-data.ts';
import { demographicsIdFor, typeOfId } from '../sync/ids.ts';
import { checkFirst, fromList, fromRows, sliceIds, toConnection } from './connection.ts';
import { peopleOrderedBy, pseudonymsInKey } from '../store/order.ts';
import { decodeIdCursor, decodeKeyCursor, encodeKeyCursor, orderOf, sliceKeyed, sortKeys } from './order.ts';
import type { GraphQLContext } from './context.ts';
import type { Resolvers } from './generated.ts';
import { changesResolver, encodeSeq } from './changes.ts';
import { adminResolvers } from './admin.ts';
import { generalisedValue } from '../privacy/generalise.ts';
import { changedSince, updatedAtOf } from './updated-at.ts';
import { personIdBySignIn } from './sign-in.ts';

const upper = (s: string) => s.replace(/([a-z])([A-Z])/g, '$1_$2').toUpperCase();
const enumMap = (values: string[]) => Object.fromEntries(values.map((v) => [upper(v), v]));

type ListArgs = { first?: number | null; after?: string | null; updatedSince?: string | Date | null };

/** The DateTime scalar parses input into a Date; the store compares ISO strings. */
const since = (v: string | Date | null | undefined) => (v instanceof Date ? v.toISOString() : (v ?? undefined));

/**
 * A root list. In a pseudonymising purpose, people, enrollments and guardianships come in
 * pseudonym order (src/graphql/order.ts) so that no two domains or key versions list them alike;
 * everything else, and every list of other purposes, in id order.
 */
async function rootList(ctx: GraphQLContext, type: EntityType, args: ListArgs, extra: Partial<ListQuery> = {}) {
  const order = orderOf(ctx, type);
  const r = await rootListPage(ctx, type, {
    first: checkFirst(args.first),
    ...(order ? { afterKey: decodeKeyCursor(ctx, order.type, args.after) } : { afterId: decodeIdCursor(ctx, args.after) }),
    updatedSince: since(args.updatedSince),
    ...extra,
  });
  if (!order) return fromList(r, ctx.cursors);
  const keys = r.keys!;
  return toConnection(r, (_, i) => encodeKeyCursor(ctx, order.type, keys[i]!));
}

/**
 * One page of a root list as the request's purpose lists it (order, view), its rows primed in the
 * request's loaders. Shared with extracts (src/extract/projection.ts), which page the same lists
 * without GraphQL and position themselves by the last row's id or sort key instead of a cursor.
 */
export async function rootListPage(ctx: GraphQLContext, type: EntityType, q: Omit<ListQuery, 'type' | 'order' | 'view'>): Promise<ListResult> {
  const order = orderOf(ctx, type);
  const { afterKey, afterId, ...rest } = q;
  const r = await ctx.store.list({
    type,
    ...rest,
    ...(order ? { order: { domain: order.domain, version: order.version }, afterKey } : { afterId }),
    view: ctx.view.name,
  });
  // Rows read with only some members (an extract's, ListQuery.fields) are not the records a related
  // read may ask for: those are read whole.
  if (!q.fields) for (const row of r.rows) ctx.loaders.entity.prime(row.id, row);
  // Read with the people when asked (an extract's demographics columns); absent ones primed as absent.
  if (r.demographics) r.rows.forEach((row, i) => ctx.loaders.entity.prime(demographicsIdFor(row.id), r.demographics![i]));
  if (r.times) for (const [id, t] of r.times) ctx.loaders.viewTime?.prime(id, t);
  // In pseudonym order the sort keys are the people's pseudonyms of this very (domain, version):
  // Person.id of these rows, and of the people they lead to, resolves without reading them again.
  if (order && r.keys) {
    const known = new Map<string, string>();
    r.rows.forEach((row, i) => {
      try {
        for (const [id, p] of pseudonymsInKey(order.type, row, r.keys![i]!, r.keyPeople?.[i])) known.set(id, p);
      } catch (e) {
        // A row read without the member its key names (ListQuery.fields): that pseudonym is read when needed.
        if (!(e instanceof MemberNotRead)) throw e;
      }
    });
    ctx.loaders.primePseudonyms(known);
  }
  return r;
}

/** Only schools among organisations: the `schools` root list, and the extract dataset of the same name. */
export const SCHOOLS_ONLY = { fieldEquals: { field: 'type', value: 'school' } } as const;

/** A nested list's filter on its rows: the same shapes as a root list's (ListQuery). */
type NestedFilter = Pick<ListQuery, 'hasValue' | 'fieldEquals'>;

/** The filter in memory, as the store applies it in SQL (`jsonArrayHas`, `jsonText … =`). */
function matches(row: EntityRow, f: NestedFilter): boolean {
  const data = d(row);
  if (f.hasValue && !((data[f.hasValue.field] as unknown[] | undefined) ?? []).includes(f.hasValue.value)) return false;
  if (f.fieldEquals && data[f.fieldEquals.field] !== f.fieldEquals.value) return false;
  return true;
}

/**
 * A nested connection, ordered as rootList orders. In pseudonym order the store orders and cuts
 * each parent's page (`linkedPage`: one read for every parent of the field, only the rows returned
 * leave the store). Otherwise — id order, or `updatedSince`, which compares the purpose's view
 * times — ids come from the batched reverse-link loader and the page is cut in memory.
 */
async function nestedList(ctx: GraphQLContext, rel: string, parentId: string, args: ListArgs, filter: NestedFilter = {}) {
  const order = orderOf(ctx, rel.slice(0, rel.indexOf('.')) as EntityType);
  const updatedSince = since(args.updatedSince);
  if (order && !updatedSince) {
    const first = checkFirst(args.first);
    const q = { rel, type: order.type, order: { domain: order.domain, version: order.version }, ...filter };
    const page = await ctx.loaders.linkedPage({ ...q, first, afterKey: decodeKeyCursor(ctx, order.type, args.after) }).load(parentId);
    const known = new Map<string, string>();
    page.rows.forEach((row, i) => {
      ctx.loaders.entity.prime(row.id, row);
      // The key's pseudonyms are those of the people the row names in its data, in key order.
      peopleOrderedBy(order.type, row).forEach((id, part) => known.set(id, page.keys[i]![part]!));
    });
    ctx.loaders.primePseudonyms(known);
    return toConnection(
      { rows: page.rows, hasNext: page.hasNext, count: () => ctx.loaders.linkedCount(q).load(parentId) },
      (_, i) => encodeKeyCursor(ctx, order.type, page.keys[i]!),
    );
  }
  let ids = await ctx.loaders.linkedFrom(rel).load(parentId);
  let rows: EntityRow[] | undefined;
  if (filter.hasValue || filter.fieldEquals || updatedSince) {
    const matching = (await rowsOf(ctx, ids)).filter((r) => matches(r, filter));
    rows = updatedSince ? await changedSince(ctx, matching, updatedSince) : matching;
    ids = rows.map((r) => r.id);
  }
  const first = checkFirst(args.first);
  if (order) {
    const keys = await sortKeys(ctx, order.type, ids, rows);
    const page = sliceKeyed(keys, first, decodeKeyCursor(ctx, order.type, args.after));
    return toConnection({ rows: await rowsOf(ctx, page.ids), hasNext: page.hasNext, count: async () => page.total }, (row) => encodeKeyCursor(ctx, order.type, keys.get(row.id)!));
  }
  const page = sliceIds(ids, first, decodeIdCursor(ctx, args.after));
  return fromRows(await rowsOf(ctx, page.ids), page.hasNext, page.total, ctx.cursors);
}

/** Records by id through the request's loader (cached: loading the same ids again reads nothing). */
function rowsOf(ctx: GraphQLContext, ids: readonly unknown[]): Promise<EntityRow[]> {
  return ctx.loaders.entity.loadMany(ids as readonly string[]).then(existing);
}
const existing = (rows: (EntityRow | undefined | Error)[]) => rows.filter((r): r is EntityRow => !!r && !(r instanceof Error));

/**
 * A related record by id, null when there is none. Not an async function: resolvers call it for
 * every related field of every row (an extract's `class.id`, `person.id`), and an async frame with
 * its await made about half of what such a field allocated; one `then` on the loader's promise does
 * the same.
 */
function one(ctx: GraphQLContext, id: unknown): Promise<EntityRow | null> | EntityRow | null {
  if (typeof id !== 'string') return null;
  // A record the request knows at once (an extract's related keys found on an earlier page): no promise.
  const now = ctx.loaders.entityNow?.(id);
  if (now) return now;
  return ctx.loaders.entity.load(id).then(orNull);
}
const orNull = (row: EntityRow | undefined) => row ?? null;

/**
 * Related records by id, in the ids' order, without the ones there are none of. Like `one`, not an
 * async function: where the request knows every one of them at once (an extract's class terms, found
 * on an earlier page), the list is answered without a promise; a promise per row and one per id
 * were most of what a classes extract allocated.
 */
function many(ctx: GraphQLContext, ids: unknown): Promise<EntityRow[]> | EntityRow[] {
  if (!Array.isArray(ids)) return [];
  const now = ctx.loaders.entityNow;
  if (now) {
    const rows: EntityRow[] = [];
    for (const id of ids) {
      const row = typeof id === 'string' ? now(id) : undefined;
      if (!row) return rowsOf(ctx, ids);
      rows.push(row);
    }
    return rows;
  }
  return rowsOf(ctx, ids);
}

const d = (row: EntityRow) => row.data as Record<string, unknown>;
// Enum-typed values are the internal lower-case ones (mapped to GraphQL enum names above), which
// the generated types cannot express: hence the `never` casts on these two helpers.
// A source's own lastModified moves with every change it makes, seen or not: in a purpose with its
// own view of time it would disclose what updatedAt hides (an email changed). There it shows the
// record's last change that purpose can see, like updatedAt; open access and admin-less stores
// without view times show the source's stamp.
const sources = async (row: EntityRow, _: unknown, ctx: GraphQLContext): Promise<never> => {
  const refs = await ctx.loaders.sources.load(row.id);
  const seen = ctx.loaders.viewTime && !row.tombstone && refs.length ? await updatedAtOf(ctx, row) : undefined;
  return refs.map((s) => ({
    source: s.source,
    system: ctx.sourceTypes.get(s.source) ?? 'oneroster-csv',
    sourcedId: s.key,
    lastModified: seen ?? s.lastModified,
  })) as never;
};
const arr = (field: string) => (row: EntityRow): never => ((d(row)[field] as string[] | undefined) ?? []) as never;

export const resolvers: Resolvers = {
  Date: DateScalar,
  DateTime: DateTimeScalar,
  EmailAddress: EmailAddressScalar,
  Cursor: CursorScalar,
  Pseudonym: PseudonymScalar,
  OrgType: enumMap(['district', 'school', 'department', 'local', 'state', 'national', 'other']) as never,
  SessionType: enumMap(['schoolYear', 'semester', 'term', 'gradingPeriod']) as never,
  PersonRole: enumMap(['student', 'teacher', 'staff', 'administrator', 'guardian']) as never,
  EnrollmentRole: enumMap(['student', 'teacher', 'administrator', 'aide', 'proctor']) as never,
  Sex: enumMap(['male', 'female', 'other', 'unspecified']) as never,
  FreeReducedLunch: enumMap(['free', 'reduced', 'paid', 'other']) as never,
  GuardianRelation: { ...enumMap(['parent', 'guardian', 'grandparent', 'relative', 'sibling', 'self', 'other']), AUNT_UNCLE: 'aunt_uncle' } as never,
  SourceType: {
    CLEVER: 'clever', ONEROSTER: 'oneroster', ONEROSTER_CSV: 'oneroster-csv', MSGRAPH: 'msgraph', SDS_CSV: 'sds-csv', GOOGLE_CLASSROOM: 'google-classroom',
  } as never,

  Node: {
    __resolveType: (row) => GRAPHQL_TYPE[row.type] as never,
  },
  RosterRecord: {
    __resolveType: (row) => GRAPHQL_TYPE[(row as EntityRow).type] as never,
  },

  Query: {
    node: async (_, { id }, ctx) => {
      const type = typeOfId(id);
      if (!type || type === 'demographics') return null;
      return one(ctx, id);
    },
    person: async (_, { id }, ctx) => {
      const entityId = await ctx.resolvePersonId(id);
      const row = entityId ? await one(ctx, entityId) : null;
      return row?.type === 'person' ? row : null;
    },
    personBySignIn: async (_, { provider, subject }, ctx) => {
      const row = await one(ctx, await personIdBySignIn(ctx, provider, subject));
      return row?.type === 'person' ? row : null;
    },
    organizations: (_, args, ctx) => rootList(ctx, 'org', args, args.type ? { fieldEquals: { field: 'type', value: args.type as string } } : {}),
    schools: (_, args, ctx) => rootList(ctx, 'org', args, SCHOOLS_ONLY),
    academicSessions: (_, args, ctx) => rootList(ctx, 'academicSession', args),
    courses: (_, args, ctx) => rootList(ctx, 'course', args),
    classes: (_, args, ctx) => rootList(ctx, 'class', args, args.schoolId ? { linkedTo: { rel: 'class.school', to: args.schoolId } } : {}),
    people: (_, args, ctx) => rootList(ctx, 'person', args, args.role ? { hasValue: { field: 'roles', value: args.role as string } } : {}),
    enrollments: (_, args, ctx) => rootList(ctx, 'enrollment', args, args.role ? { fieldEquals: { field: 'role', value: args.role as string } } : {}),
    guardianships: (_, args, ctx) => rootList(ctx, 'guardianship', args),
    changes: (_, args, ctx) => changesResolver(ctx, args as never) as never,
    changesHead: async (_, __, ctx) => encodeSeq(ctx, await ctx.store.headSeq()),
    ...(adminResolvers.Query as object),
  },
  Mutation: adminResolvers.Mutation as never,
  Webhook: adminResolvers.Webhook as never,
  DeliveryStatus: adminResolvers.DeliveryStatus as never,
  TenantStatus: adminResolvers.TenantStatus as never,

  Organization: {
    parent: (row, _, ctx) => one(ctx, d(row).parentId),
    children: async (row, _, ctx) => many(ctx, await ctx.loaders.linkedFrom('org.parent').load(row.id)),
    classes: (row, args, ctx) => nestedList(ctx, 'class.school', row.id, args),
    people: (row, args, ctx) => nestedList(ctx, 'person.org', row.id, args, args.role ? { hasValue: { field: 'roles', value: args.role as string } } : {}),
    sources,
  },
  AcademicSession: {
    parent: (row, _, ctx) => one(ctx, d(row).parentId),
    organization: (row, _, ctx) => one(ctx, d(row).orgId),
    sources,
  },
  Course: {
    subjects: arr('subjects'),
    grades: arr('grades'),
    organization: (row, _, ctx) => one(ctx, d(row).orgId),
    schoolYear: (row, _, ctx) => one(ctx, d(row).schoolYearId),
    sources,
  },
  Class: {
    periods: arr('periods'),
    subjects: arr('subjects'),
    grades: arr('grades'),
    school: (row, _, ctx) => one(ctx, d(row).schoolId),
    course: (row, _, ctx) => one(ctx, d(row).courseId),
    terms: (row, _, ctx) => many(ctx, d(row).termIds),
    enrollments: (row, args, ctx) => nestedList(ctx, 'enrollment.class', row.id, args, args.role ? { fieldEquals: { field: 'role', value: args.role as string } } : {}),
    sources,
  },
  Person: {
    roles: arr('roles'),
    grades: arr('grades'),
    gradeBand: (row) => generalisedValue('person', 'gradeBand', d(row)) as string | null,
    organizations: (row, _, ctx) => many(ctx, d(row).orgIds),
    primaryOrganization: (row, _, ctx) => one(ctx, d(row).primaryOrgId),
    demographics: (row, _, ctx) => one(ctx, demographicsIdFor(row.id)),
    enrollments: (row, args, ctx) => nestedList(ctx, 'enrollment.person', row.id, args, args.role ? { fieldEquals: { field: 'role', value: args.role as string } } : {}),
    guardianships: async (row, _, ctx) => {
      const [asGuardian, asStudent] = await Promise.all([
        ctx.loaders.linkedFrom('guardianship.guardian').load(row.id),
        ctx.loaders.linkedFrom('guardianship.student').load(row.id),
      ]);
      const ids = [...asGuardian, ...asStudent];
      // Not a connection, but a list leading to people all the same: in pseudonym order where lists are.
      const order = orderOf(ctx, 'guardianship');
      if (!order) return many(ctx, ids);
      const keys = await sortKeys(ctx, order.type, ids);
      return many(ctx, sliceKeyed(keys, keys.size).ids);
    },
    sources,
  },
  Demographics: {
    birthYear: (row) => generalisedValue('demographics', 'birthYear', d(row)) as number | null,
    ageBand: (row) => generalisedValue('demographics', 'ageBand', d(row)) as string | null,
    postalArea: (row) => generalisedValue('demographics', 'postalArea', d(row)) as string | null,
  },
  Enrollment: {
    class: (row, _, ctx) => one(ctx, d(row).classId),
    person: (row, _, ctx) => one(ctx, d(row).personId),
    school: (row, _, ctx) => one(ctx, d(row).schoolId),
    sources,
  },
  Guardianship: {
    guardian: (row, _, ctx) => one(ctx, d(row).guardianId),
    student: (row, _, ctx) => one(ctx, d(row).studentId),
    sources,
  },
};
