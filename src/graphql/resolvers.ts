/**
 * Resolvers of the unified schema over the store. Parents are store `EntityRow`s; scalar fields
 * are read from `row.data` by the default field resolver in `schema.ts`. Every relation goes
 * through a per-request loader so nested queries stay a bounded number of store queries.
 */
import { GraphQLError } from 'graphql';
// The scalars are the model's: the mapping boundary accepts exactly what they serialise.
import { SCALARS } from '../model/values.ts';
import { GraphQLScalarType, Kind } from 'graphql';
import type { EntityType } from '../model/records.ts';
import type { EntityRow } from '../store/types.ts';
import { demographicsIdFor, typeOfId } from '../sync/ids.ts';
import { checkFirst, fromList, fromRows, sliceIds } from './connection.ts';
import type { GraphQLContext } from './context.ts';
import type { Resolvers } from './generated.ts';
import { changesResolver, encodeSeq } from '../feeds/changes.ts';
import { adminResolvers } from '../feeds/admin.ts';
import { generalisedValue } from '../privacy/generalise.ts';
import { changedSince } from './updated-at.ts';

const upper = (s: string) => s.replace(/([a-z])([A-Z])/g, '$1_$2').toUpperCase();
const enumMap = (values: string[]) => Object.fromEntries(values.map((v) => [upper(v), v]));

const TYPENAME: Record<EntityType, string> = {
  org: 'Organization', academicSession: 'AcademicSession', course: 'Course', person: 'Person',
  demographics: 'Demographics', class: 'Class', enrollment: 'Enrollment', guardianship: 'Guardianship',
};

const CursorScalar = new GraphQLScalarType({
  name: 'Cursor',
  serialize: (v) => String(v),
  parseValue: (v) => {
    if (typeof v !== 'string') throw new GraphQLError('a Cursor is a string');
    return v;
  },
  parseLiteral: (ast) => {
    if (ast.kind !== Kind.STRING) throw new GraphQLError('a Cursor is a string');
    return ast.value;
  },
});

type ListArgs = { first?: number | null; after?: string | null; updatedSince?: string | Date | null };

/** The DateTime scalar parses input into a Date; the store compares ISO strings. */
const since = (v: string | Date | null | undefined) => (v instanceof Date ? v.toISOString() : (v ?? undefined));

async function rootList(ctx: GraphQLContext, type: EntityType, args: ListArgs, extra: Partial<Parameters<GraphQLContext['store']['list']>[0]> = {}) {
  const r = await ctx.store.list({
    type,
    first: checkFirst(args.first),
    afterId: ctx.cursors.decode(args.after),
    updatedSince: since(args.updatedSince),
    view: ctx.view.name,
    ...extra,
  });
  for (const row of r.rows) ctx.loaders.entity.prime(row.id, row);
  if (r.times) for (const [id, t] of r.times) ctx.loaders.viewTime?.prime(id, t);
  return fromList(r, ctx.cursors);
}

/** A nested connection: ids from a batched reverse-link loader, rows from the entity loader. */
async function nestedList(ctx: GraphQLContext, rel: string, parentId: string, args: ListArgs, keep?: (row: EntityRow) => boolean) {
  const all = await ctx.loaders.linkedFrom(rel).load(parentId);
  const updatedSince = since(args.updatedSince);
  if (keep || updatedSince) {
    const rows = (await ctx.loaders.entity.loadMany(all)).filter((r): r is EntityRow => !!r && !(r instanceof Error));
    const matching = rows.filter((r) => !keep || keep(r));
    const kept = (updatedSince ? await changedSince(ctx, matching, updatedSince) : matching).map((r) => r.id);
    const page = sliceIds(kept, checkFirst(args.first), ctx.cursors.decode(args.after));
    const byId = new Map(rows.map((r) => [r.id, r]));
    return fromRows(page.ids.map((id) => byId.get(id)!), page.hasNext, page.total, ctx.cursors);
  }
  const page = sliceIds(all, checkFirst(args.first), ctx.cursors.decode(args.after));
  const rows = (await ctx.loaders.entity.loadMany(page.ids)).filter((r): r is EntityRow => !!r && !(r instanceof Error));
  return fromRows(rows, page.hasNext, page.total, ctx.cursors);
}

async function one(ctx: GraphQLContext, id: unknown): Promise<EntityRow | null> {
  if (typeof id !== 'string') return null;
  return (await ctx.loaders.entity.load(id)) ?? null;
}

async function many(ctx: GraphQLContext, ids: unknown): Promise<EntityRow[]> {
  if (!Array.isArray(ids)) return [];
  return (await ctx.loaders.entity.loadMany(ids as string[])).filter((r): r is EntityRow => !!r && !(r instanceof Error));
}

const d = (row: EntityRow) => row.data as Record<string, unknown>;
// Enum-typed values are the internal lower-case ones (mapped to GraphQL enum names above), which
// the generated types cannot express: hence the `never` casts on these two helpers.
const sources = async (row: EntityRow, _: unknown, ctx: GraphQLContext): Promise<never> =>
  (await ctx.loaders.sources.load(row.id)).map((s) => ({
    source: s.source,
    system: ctx.sourceTypes.get(s.source) ?? 'oneroster-csv',
    sourcedId: s.key,
    lastModified: s.lastModified,
  })) as never;
const arr = (field: string) => (row: EntityRow): never => ((d(row)[field] as string[] | undefined) ?? []) as never;

export const resolvers: Resolvers = {
  Date: SCALARS.Date,
  DateTime: SCALARS.DateTime,
  EmailAddress: SCALARS.EmailAddress,
  Cursor: CursorScalar,
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
    __resolveType: (row) => TYPENAME[row.type] as never,
  },
  RosterRecord: {
    __resolveType: (row) => TYPENAME[(row as EntityRow).type] as never,
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
    organizations: (_, args, ctx) => rootList(ctx, 'org', args, args.type ? { fieldEquals: { field: 'type', value: args.type as string } } : {}),
    schools: (_, args, ctx) => rootList(ctx, 'org', args, { fieldEquals: { field: 'type', value: 'school' } }),
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

  Organization: {
    parent: (row, _, ctx) => one(ctx, d(row).parentId),
    children: async (row, _, ctx) => many(ctx, await ctx.loaders.linkedFrom('org.parent').load(row.id)),
    classes: (row, args, ctx) => nestedList(ctx, 'class.school', row.id, args),
    people: (row, args, ctx) => nestedList(ctx, 'person.org', row.id, args, args.role ? (r) => ((d(r).roles as string[] | undefined) ?? []).includes(args.role as string) : undefined),
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
    enrollments: (row, args, ctx) => nestedList(ctx, 'enrollment.class', row.id, args, args.role ? (r) => d(r).role === args.role : undefined),
    sources,
  },
  Person: {
    roles: arr('roles'),
    grades: arr('grades'),
    gradeBand: (row) => generalisedValue('person', 'gradeBand', d(row)) as string | null,
    organizations: (row, _, ctx) => many(ctx, d(row).orgIds),
    primaryOrganization: (row, _, ctx) => one(ctx, d(row).primaryOrgId),
    demographics: (row, _, ctx) => one(ctx, demographicsIdFor(row.id)),
    enrollments: (row, args, ctx) => nestedList(ctx, 'enrollment.person', row.id, args, args.role ? (r) => d(r).role === args.role : undefined),
    guardianships: async (row, _, ctx) => {
      const [asGuardian, asStudent] = await Promise.all([
        ctx.loaders.linkedFrom('guardianship.guardian').load(row.id),
        ctx.loaders.linkedFrom('guardianship.student').load(row.id),
      ]);
      return many(ctx, [...asGuardian, ...asStudent]);
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
