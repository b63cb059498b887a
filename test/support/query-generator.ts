/**
 * Random GraphQL queries over whatever a schema offers, for property tests of purpose views: every
 * root field (those taking ids get ids from a pool: pseudonyms, raw gateway ids, junk), arguments
 * (enums, filters, page sizes), abstract types through inline fragments, and introspection
 * (`__schema`, `__type(name:)`) walked like any other type. A client can only ask for what its
 * schema has, so this is what a curious client could try. Seeded: a failing seed replays.
 */
import {
  Kind,
  getNamedType,
  parse,
  isAbstractType,
  isEnumType,
  isLeafType,
  isListType,
  isNonNullType,
  isObjectType,
  type GraphQLArgument,
  type GraphQLField,
  type GraphQLInputType,
  type GraphQLNamedType,
  type GraphQLObjectType,
  type GraphQLSchema,
} from 'graphql';
import { prng } from '../../src/demo/generator.ts';
import { DEFAULT_LIMITS, measureOperation } from '../../src/server/limits.ts';

export interface QueryPools {
  /** Values for ID / Pseudonym arguments. */
  ids: readonly string[];
  /** Values for `__type(name:)`: include names the schema does not have. */
  typeNames: readonly string[];
}

const MAX_DEPTH = 5;
/** graphql-js's MaxIntrospectionDepthRule: these list fields may nest at most twice. */
const INTROSPECTION_LISTS = new Set(['fields', 'interfaces', 'possibleTypes', 'inputFields']);
const MAX_INTROSPECTION_LISTS = 3;

/**
 * A query the gateway will run: within its default limits (src/server/limits.ts: tokens, depth,
 * aliases, directives, cost; a query over them is refused before it runs, which shows nothing of
 * the view). One over a limit is drawn again from a seed derived from this one, so a seed still
 * replays.
 */
export function randomQuery(schema: GraphQLSchema, seed: number, pools: QueryPools = { ids: [], typeNames: [] }): string {
  for (let attempt = 0; ; attempt++) {
    const q = draw(schema, (seed + attempt * 0x9e3779b1) >>> 0, pools);
    if (withinLimits(schema, q.text)) return q.text;
  }
}

export function withinLimits(schema: GraphQLSchema, text: string, limits = DEFAULT_LIMITS): boolean {
  let doc;
  try {
    doc = parse(text, { maxTokens: limits.maxTokens });
  } catch {
    return false;
  }
  const op = doc.definitions.find((d) => d.kind === Kind.OPERATION_DEFINITION)!;
  const s = measureOperation(schema, doc, op);
  return s.cost <= limits.maxCost && s.depth <= limits.maxDepth && s.aliases <= limits.maxAliases && s.directives <= limits.maxDirectives;
}

function draw(schema: GraphQLSchema, seed: number, pools: QueryPools): { text: string } {
  const rnd = prng(seed);
  const chance = (p: number) => rnd() < p;
  const one = <T>(xs: readonly T[]): T => xs[Math.floor(rnd() * xs.length)]!;
  const some = <T>(xs: readonly T[], max: number): T[] => {
    const copy = [...xs];
    for (let i = copy.length - 1; i > 0; i--) {
      const j = Math.floor(rnd() * (i + 1));
      [copy[i], copy[j]] = [copy[j]!, copy[i]!];
    }
    return copy.slice(0, 1 + Math.floor(rnd() * Math.min(max, copy.length)));
  };

  /** A literal for an argument, or undefined to leave it out (or, if required, to skip the field). */
  const argValue = (a: GraphQLArgument): string | undefined => {
    const required = isNonNullType(a.type) && a.defaultValue === undefined;
    if (!required && !chance(0.5)) return undefined;
    return literal(a.name, a.type);
  };
  const literal = (name: string, type: GraphQLInputType): string | undefined => {
    const t = isNonNullType(type) ? type.ofType : type;
    if (isListType(t)) {
      const item = getNamedType(t);
      return isEnumType(item) ? `[${some(item.getValues(), 3).map((v) => v.name).join(', ')}]` : undefined;
    }
    const named = getNamedType(t) as GraphQLNamedType;
    if (isEnumType(named)) return one(named.getValues()).name;
    if (name === 'first') return String(Math.floor(rnd() * 6));
    switch (named.name) {
      case 'ID':
      case 'Pseudonym':
        return pools.ids.length ? JSON.stringify(one(pools.ids)) : undefined;
      case 'String':
        return name === 'name' && pools.typeNames.length ? JSON.stringify(one(pools.typeNames)) : undefined;
      case 'Boolean':
        return String(chance(0.5));
      case 'DateTime':
        return JSON.stringify(one(['2000-01-01T00:00:00Z', '2999-01-01T00:00:00Z']));
      default:
        return undefined; // Cursors and the like: a client only has the ones it was given.
    }
  };
  const args = (f: GraphQLField<unknown, unknown>): string | null => {
    const parts: string[] = [];
    for (const a of f.args) {
      const v = argValue(a);
      if (v !== undefined) parts.push(`${a.name}: ${v}`);
      else if (isNonNullType(a.type) && a.defaultValue === undefined) return null;
    }
    return parts.length ? `(${parts.join(', ')})` : '';
  };

  /** `lists`: introspection list fields nested so far (graphql-js refuses a third), -1 outside introspection. */
  const selection = (type: GraphQLNamedType, depth: number, lists: number): string => {
    if (isAbstractType(type)) {
      // Members may type one field differently (Person.id is a Pseudonym): alias per member.
      const members = schema.getPossibleTypes(type);
      return `__typename ${some(members, members.length).map((m) => `... on ${m.name} { ${objectSelection(m, depth, lists, `${m.name}_`)} }`).join(' ')}`;
    }
    return objectSelection(type as GraphQLObjectType, depth, lists, '');
  };
  const objectSelection = (type: GraphQLObjectType, depth: number, lists: number, alias: string): string => {
    const parts = some(Object.values(type.getFields()), 6)
      .map((f) => field(f, depth, lists, alias))
      .filter((s): s is string => !!s);
    return parts.length ? parts.join(' ') : '__typename';
  };
  const field = (f: GraphQLField<unknown, unknown>, depth: number, lists: number, alias: string): string | undefined => {
    const nested = lists >= 0 && INTROSPECTION_LISTS.has(f.name) ? lists + 1 : lists;
    if (nested >= MAX_INTROSPECTION_LISTS) return undefined;
    const a = args(f);
    if (a === null) return undefined;
    const name = `${alias ? `${alias}${f.name}: ` : ''}${f.name}${a}`;
    const named = getNamedType(f.type);
    if (isLeafType(named)) return name;
    if (depth >= MAX_DEPTH) return undefined;
    return `${name} { ${selection(named, depth + 1, nested)} }`;
  };

  const roots: (() => string | undefined)[] = [
    ...Object.values(schema.getQueryType()!.getFields()).map((f) => () => field(f, 0, -1, '')),
    () => `__schema { ${objectSelection(schema.getType('__Schema') as GraphQLObjectType, 1, 0, '')} }`,
    () => (pools.typeNames.length ? `__type(name: ${JSON.stringify(one(pools.typeNames))}) { ${objectSelection(schema.getType('__Type') as GraphQLObjectType, 1, 0, '')} }` : undefined),
  ];
  const chosen = some(roots, 3)
    .map((make) => make())
    .filter((s): s is string => !!s);
  return { text: `{ ${chosen.length ? chosen.join(' ') : '__typename'} }` };
}
