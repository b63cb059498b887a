/**
 * Reads the classification out of the schema: for every field of every roster type, its @pii
 * category and, for generalised forms, which exact field it generalises. One source of truth for
 * the per-purpose schemas, ingest minimisation, the audit log and the privacy report.
 */
import { isObjectType, Kind, type ConstDirectiveNode, type GraphQLField, type GraphQLObjectType, type GraphQLSchema } from 'graphql';

export const CATEGORIES = ['DIRECT', 'IDENTIFIER', 'QUASI', 'SPECIAL', 'NONE'] as const;
export type Category = (typeof CATEGORIES)[number];

export interface FieldClass {
  /** Schema coordinate, e.g. "Person.email". */
  coordinate: string;
  type: string;
  field: string;
  category: Category;
  /** For generalised forms: the exact field on the same type it is derived from. */
  generalises?: string;
}

export type Classification = Map<string, FieldClass>;

export function isStructural(typeName: string): boolean {
  return typeName === 'Query' || typeName === 'Mutation' || typeName === 'PageInfo' || /Connection$|Edge$/.test(typeName) || typeName.startsWith('__');
}

const isRoot = (typeName: string) => typeName === 'Query' || typeName === 'Mutation' || typeName === 'Subscription';

/**
 * The plumbing of connections, edges and page info: these fields carry no data of their own and
 * need no classification. Any other field — on any type but the roots, structural or not — does.
 */
const PLUMBING = new Set(['edges', 'node', 'cursor', 'pageInfo', 'totalCount', 'hasNextPage', 'hasPreviousPage', 'startCursor', 'endCursor']);

function arg(d: ConstDirectiveNode | undefined, name: string): string | undefined {
  const a = d?.arguments?.find((x) => x.name.value === name)?.value;
  return a && (a.kind === Kind.ENUM || a.kind === Kind.STRING) ? a.value : undefined;
}

/** Object types whose fields are classified (or plumbing): every type but the roots and introspection. */
function classifiedTypes(schema: GraphQLSchema): GraphQLObjectType[] {
  return Object.values(schema.getTypeMap()).filter((t): t is GraphQLObjectType => isObjectType(t) && !isRoot(t.name) && !t.name.startsWith('__'));
}

const piiOf = (f: GraphQLField<unknown, unknown>) => f.astNode?.directives?.find((d) => d.name.value === 'pii');

/**
 * Schema coordinates of fields without @pii, in order. Works on the built schema, so fields added by
 * `extend type` in any file of schema/ are checked like the rest.
 */
export function unclassifiedFields(schema: GraphQLSchema): string[] {
  const missing: string[] = [];
  for (const type of classifiedTypes(schema)) {
    for (const f of Object.values(type.getFields())) {
      if (!piiOf(f) && !(isStructural(type.name) && PLUMBING.has(f.name))) missing.push(`${type.name}.${f.name}`);
    }
  }
  return missing.sort();
}

export function classify(schema: GraphQLSchema): Classification {
  const missing = unclassifiedFields(schema);
  if (missing.length) throw new Error(`fields without a @pii classification (add @pii(category: …) in schema/): ${missing.join(', ')}`);
  const out: Classification = new Map();
  for (const type of classifiedTypes(schema)) {
    for (const f of Object.values(type.getFields())) {
      const pii = piiOf(f);
      if (!pii) continue;
      const coordinate = `${type.name}.${f.name}`;
      out.set(coordinate, {
        coordinate, type: type.name, field: f.name, category: arg(pii, 'category') as Category,
        generalises: arg(f.astNode?.directives?.find((d) => d.name.value === 'generalises'), 'field'),
      });
    }
  }
  return out;
}
