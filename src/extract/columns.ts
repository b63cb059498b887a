/**
 * Extract datasets and their columns, derived from the client's purpose schema: the leaf fields of
 * the dataset's type, ids of the records it refers to, and a person's demographics flattened. What
 * the purpose may not see is not in its schema, so it cannot become a column.
 */
import {
  getNamedType,
  isLeafType,
  isListType,
  isNonNullType,
  isObjectType,
  type GraphQLSchema,
  type GraphQLOutputType,
} from 'graphql';
import { RostergateError } from '../errors.ts';
import type { EntityType } from '../model/records.ts';
import type { ListQuery } from '../store/types.ts';
import { SCHOOLS_ONLY } from '../graphql/resolvers.ts';

/**
 * Each dataset is a root list of the schema: its root field, GraphQL type, the stored record type
 * and the filter that root list applies (schools are the organisations of type school).
 */
export const DATASETS = {
  people: { root: 'people', type: 'Person', entity: 'person' },
  enrollments: { root: 'enrollments', type: 'Enrollment', entity: 'enrollment' },
  classes: { root: 'classes', type: 'Class', entity: 'class' },
  schools: { root: 'schools', type: 'Organization', entity: 'org', where: SCHOOLS_ONLY },
  organizations: { root: 'organizations', type: 'Organization', entity: 'org' },
  courses: { root: 'courses', type: 'Course', entity: 'course' },
  sessions: { root: 'academicSessions', type: 'AcademicSession', entity: 'academicSession' },
  guardianships: { root: 'guardianships', type: 'Guardianship', entity: 'guardianship' },
} as const satisfies Record<string, { root: string; type: string; entity: EntityType; where?: Partial<ListQuery> }>;
export type Dataset = keyof typeof DATASETS;

export interface Column {
  /** Header name, e.g. "demographics.birthYear" or "class.id". */
  name: string;
  /** Path in the GraphQL result node. */
  path: string[];
  /** The schema coordinate the value comes from (classification, audit). */
  coordinate: string;
  list: boolean;
}

const unwrapList = (t: GraphQLOutputType): boolean => isListType(isNonNullType(t) ? t.ofType : t);

export function datasetOf(name: string): Dataset {
  if (!(name in DATASETS)) throw new RostergateError('CONFIG_INVALID', `unknown dataset "${name}" (datasets: ${Object.keys(DATASETS).join(', ')})`);
  return name as Dataset;
}

/** Whether a dataset's rows show their people's demographics: the store then reads them with each page (`ListQuery.withDemographics`). */
export function showsDemographics(dataset: Dataset, columns: readonly Column[]): boolean {
  return DATASETS[dataset].entity === 'person' && columns.some((c) => c.path[0] === 'demographics');
}

/**
 * `tenant`: include the `tenant` column (clients of several tenants, whose extracts must say whose
 * rows they are); otherwise it is left out, as every row of a one-tenant client's extract has the same.
 */
export function columnsFor(schema: GraphQLSchema, dataset: Dataset, opts: { tenant?: boolean } = {}): { columns: Column[]; selection: string } {
  const { type: typeName, root } = DATASETS[dataset];
  const type = schema.getType(typeName);
  // A root list can outlive its records' type: a purpose that sees none of their fields keeps only the counts.
  if (!schema.getQueryType()?.getFields()[root] || !isObjectType(type)) throw new RostergateError('FORBIDDEN', `this purpose cannot read ${dataset}`);
  const columns: Column[] = [];
  const parts: string[] = [];
  for (const f of Object.values(type.getFields())) {
    const named = getNamedType(f.type);
    if (f.name === 'sources' || f.name === 'updatedAt' || (f.name === 'tenant' && !opts.tenant)) continue;
    if (isLeafType(named)) {
      columns.push({ name: f.name, path: [f.name], coordinate: `${typeName}.${f.name}`, list: unwrapList(f.type) });
      parts.push(f.name);
      continue;
    }
    if (!isObjectType(named) || named.name.endsWith('Connection') || f.args.length) continue;
    if (f.name === 'demographics') {
      const leaves = Object.values(named.getFields()).filter((x) => isLeafType(getNamedType(x.type)));
      if (!leaves.length) continue;
      for (const x of leaves) columns.push({ name: `demographics.${x.name}`, path: ['demographics', x.name], coordinate: `Demographics.${x.name}`, list: unwrapList(x.type) });
      parts.push(`demographics { ${leaves.map((x) => x.name).join(' ')} }`);
    } else if (named.getFields().id) {
      columns.push({ name: `${f.name}.id`, path: [f.name, 'id'], coordinate: `${typeName}.${f.name}`, list: unwrapList(f.type) });
      parts.push(`${f.name} { id }`);
    }
  }
  return { columns, selection: parts.join(' ') };
}

/** A cell value from a GraphQL result node: lists joined with ";", absent values empty. */
export function cell(node: unknown, c: Column): string | number | boolean | null {
  let v: unknown = node;
  for (const p of c.path) {
    if (Array.isArray(v)) v = v.map((x) => (x as Record<string, unknown> | null)?.[p]);
    else v = (v as Record<string, unknown> | null | undefined)?.[p];
  }
  return cellOf(v);
}

/** A column's completed value as a cell: lists joined with ";" (nulls left out), absent values empty. */
export function cellOf(v: unknown): string | number | boolean | null {
  if (v === undefined || v === null) return null;
  if (Array.isArray(v)) return v.filter((x) => x !== null && x !== undefined).join(';');
  return v as string | number | boolean;
}
