/**
 * Reads the classification out of the schema: for every field of every roster type, its @pii
 * category and, for generalised forms, which exact field it generalises. One source of truth for
 * the per-purpose schemas, ingest minimisation, the audit log and the privacy report.
 */
import { isInterfaceType, isObjectType, Kind, type GraphQLSchema, type ConstDirectiveNode } from 'graphql';

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

function arg(d: ConstDirectiveNode | undefined, name: string): string | undefined {
  const a = d?.arguments?.find((x) => x.name.value === name)?.value;
  return a && (a.kind === Kind.ENUM || a.kind === Kind.STRING) ? a.value : undefined;
}

export function classify(schema: GraphQLSchema): Classification {
  const out: Classification = new Map();
  for (const type of Object.values(schema.getTypeMap())) {
    if (!(isObjectType(type) || isInterfaceType(type)) || isStructural(type.name) || isInterfaceType(type)) continue;
    for (const f of Object.values(type.getFields())) {
      const dirs = f.astNode?.directives ?? [];
      const pii = dirs.find((d) => d.name.value === 'pii');
      const category = arg(pii, 'category') as Category | undefined;
      const coordinate = `${type.name}.${f.name}`;
      if (!category) throw new Error(`field ${coordinate} has no @pii classification`);
      out.set(coordinate, {
        coordinate, type: type.name, field: f.name, category,
        generalises: arg(dirs.find((d) => d.name.value === 'generalises'), 'field'),
      });
    }
  }
  return out;
}
