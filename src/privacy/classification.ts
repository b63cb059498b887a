/**
 * Reads the classification out of the schema: for every field of every roster type, its @pii
 * category and, for generalised forms, which exact field it generalises. One source of truth for
 * the per-purpose schemas, ingest minimisation, the audit log and the privacy report.
 */
import { getNamedType, isLeafType, isObjectType, Kind, type ConstDirectiveNode, type GraphQLField, type GraphQLObjectType, type GraphQLSchema } from 'graphql';

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

/** The fields a connection, edge or page info is made of; anything else on them carries data. */
const STRUCTURAL_FIELDS = new Set(['edges', 'pageInfo', 'totalCount', 'node', 'cursor', 'hasNextPage', 'endCursor']);

function arg(d: ConstDirectiveNode | undefined, name: string): string | undefined {
  const a = d?.arguments?.find((x) => x.name.value === name)?.value;
  return a && (a.kind === Kind.ENUM || a.kind === Kind.STRING) ? a.value : undefined;
}

/** What a field's @pii says, as written (SDL validation does not check directive argument values). */
const declaredCategory = (f: GraphQLField<unknown, unknown>) => arg(f.astNode?.directives?.find((d) => d.name.value === 'pii'), 'category');

/** The field's category; one that is not among CATEGORIES leaves the field unclassified, as no category would. */
const categoryOf = (f: GraphQLField<unknown, unknown>): Category | undefined => {
  const c = declaredCategory(f);
  return (CATEGORIES as readonly string[]).includes(c ?? '') ? (c as Category) : undefined;
};

/**
 * Every field that can carry a value must be classified, or the gateway does not start: a field
 * added later cannot reach a client by default. That is every field of a roster type, any extra
 * field on a connection, edge or page info, and any root field (Query, Mutation) returning a
 * scalar or enum directly; root fields returning roster types are covered by those types. Works on
 * the built schema, so fields added by `extend type` in any file of schema/ are checked like the rest.
 */
export function unclassifiedFields(schema: GraphQLSchema): string[] {
  const missing: string[] = [];
  for (const type of Object.values(schema.getTypeMap())) {
    if (!isObjectType(type) || type.name.startsWith('__')) continue;
    const root = type.name === 'Query' || type.name === 'Mutation';
    for (const f of Object.values(type.getFields())) {
      if (categoryOf(f)) continue;
      const exempt = root ? !isLeafType(getNamedType(f.type)) : isStructural(type.name) && STRUCTURAL_FIELDS.has(f.name);
      if (!exempt) missing.push(`${type.name}.${f.name}`);
    }
  }
  return missing.sort();
}

export function classify(schema: GraphQLSchema): Classification {
  const missing = unclassifiedFields(schema);
  if (missing.length) {
    const named = missing.map((c) => {
      const [type, field] = c.split('.') as [string, string];
      const declared = declaredCategory((schema.getType(type) as GraphQLObjectType).getFields()[field]!);
      return declared === undefined ? c : `${c} (unknown category ${declared})`;
    });
    throw new Error(`unclassified field(s) ${named.join(', ')}: give each a @pii(category: ${CATEGORIES.join(' | ')}) in schema/`);
  }
  const out: Classification = new Map();
  for (const type of Object.values(schema.getTypeMap())) {
    if (!isObjectType(type) || type.name.startsWith('__')) continue;
    for (const f of Object.values(type.getFields())) {
      const category = categoryOf(f);
      if (!category) continue;
      out.set(`${type.name}.${f.name}`, {
        coordinate: `${type.name}.${f.name}`, type: type.name, field: f.name, category,
        generalises: arg(f.astNode?.directives?.find((d) => d.name.value === 'generalises'), 'field'),
      });
    }
  }
  return out;
}
