/**
 * A query selecting every field a client can ask of each root list — every scalar and enum, each
 * record's `sources { … lastModified }`, a person's demographics, the ids of what a record refers
 * to — so a test can show that nothing stored makes a query fail.
 */
import { execute, getNamedType, isLeafType, isObjectType, parse, type GraphQLObjectType, type GraphQLSchema } from 'graphql';
import type { Store } from '../../src/store/types.ts';
import { createContext } from '../../src/graphql/context.ts';

function selection(type: GraphQLObjectType, depth: number): string {
  const parts: string[] = [];
  for (const f of Object.values(type.getFields())) {
    if (f.args.some((a) => a.type.toString().endsWith('!') && a.defaultValue === undefined)) continue;
    const named = getNamedType(f.type);
    if (isLeafType(named)) parts.push(f.name);
    else if (isObjectType(named) && !named.name.endsWith('Connection')) {
      if (depth > 0) parts.push(`${f.name} { ${selection(named, depth - 1)} }`);
      else if (named.getFields().id) parts.push(`${f.name} { id }`);
    }
  }
  return parts.join(' ');
}

export function everyFieldQuery(schema: GraphQLSchema): string {
  const roots = Object.values(schema.getQueryType()!.getFields()).filter((f) => getNamedType(f.type).name.endsWith('Connection'));
  return `{ ${roots
    .map((r) => {
      const node = (getNamedType(r.type) as GraphQLObjectType).getFields().edges!;
      const nodeType = (getNamedType(node.type) as GraphQLObjectType).getFields().node!;
      return `${r.name}(first: 1000) { edges { node { ${selection(getNamedType(nodeType.type) as GraphQLObjectType, 1)} } } }`;
    })
    .join('\n')} }`;
}

/** Runs the every-field query over a store (no purpose: the unrestricted view) and returns data and errors. */
export async function queryEveryField(schema: GraphQLSchema, store: Store) {
  const r = await execute({ schema, contextValue: createContext(store, new Map()), document: parse(everyFieldQuery(schema)) });
  return { data: r.data as Record<string, { edges: { node: Record<string, unknown> }[] }>, errors: r.errors ?? [] };
}
