/**
 * Query limits, all checked before anything runs, and all linear in the document:
 * - tokens (`maxTokens`): graphql-js's parser stops counting past the limit (Apollo `parseOptions`);
 * - depth, aliases, directives (`maxDepth`, `maxAliases`, `maxDirectives`): one validation rule;
 * - cost (`maxCost`): rows requested, each list's `first` multiplied along its path; checked once
 *   the operation and its variables are known (a plugin), since `first: $n` is only a number then.
 *
 * Every walk visits each fragment once: a fragment's shape is memoised, and a spread repeated in one
 * selection set counts once (graphql-js merges it too). A fragment chain spreading its next link
 * twice, 22 deep, used to make the depth rule visit 2^22 selections (15 s of a blocked event loop).
 *
 * Why not graphql-armor: its per-rule packages count depth, aliases and directives well, but its
 * cost-limit weighs fields by depth, not by `first`, so `schools(first: 1000) { people(first:
 * 1000) … }` looks cheap to it: the multiplied cost has to be ours. Once that memoised walk exists,
 * it yields depth, aliases and directives in the same pass; three more packages, each walking the
 * fragments again its own way, would add dependencies and work without adding a check. Tokens use
 * graphql-js's own parser limit.
 */
import {
  GraphQLError,
  Kind,
  getNamedType,
  isListType,
  isNonNullType,
  isObjectType,
  isInterfaceType,
  type ASTVisitor,
  type DocumentNode,
  type FragmentDefinitionNode,
  type GraphQLField,
  type GraphQLNamedType,
  type GraphQLOutputType,
  type GraphQLSchema,
  type OperationDefinitionNode,
  type SelectionSetNode,
  type ValidationContext,
  type ValueNode,
} from 'graphql';
import type { ApolloServerPlugin, BaseContext } from '@apollo/server';
import { MAX_PAGE } from '../graphql/connection.ts';

export interface QueryLimits {
  /** Rows requested: the sum over paged lists of their `first`, multiplied along the path. */
  maxCost: number;
  /** Field nesting levels. */
  maxDepth: number;
  /** Aliased fields, as executed (a fragment spread twice in different places counts twice). */
  maxAliases: number;
  /** Lexical tokens of the document (checked by the parser). */
  maxTokens: number;
  /** Directive uses, as executed. */
  maxDirectives: number;
}

/**
 * Defaults, every one overridable per purpose (`purposes.<id>.limits`). The cost is a worst case
 * (every list full), so the default admits a full page of classes with a full class list each,
 * classes(first: 1000) → enrollments(first: 200) (about 201,000), while bounding what one request
 * may hold in memory to a few hundred megabytes at most; the query that ran the process out of
 * memory (about 3 × 10^12) is refused ten million times over. Larger reads page.
 */
export const DEFAULT_LIMITS: QueryLimits = { maxCost: 250_000, maxDepth: 20, maxAliases: 50, maxTokens: 20_000, maxDirectives: 50 };

/** Unpaged lists of records (Organization.children, Person.organizations …) are assumed this long. */
export const UNPAGED_LIST_ROWS = 10;

/** The code of a query refused for its cost (HTTP 400). Depth, aliases and directives are GRAPHQL_VALIDATION_FAILED, tokens GRAPHQL_PARSE_FAILED. */
export const QUERY_TOO_COSTLY = 'QUERY_TOO_COSTLY';

export const COST_EXPLAINED = 'cost = rows requested: each list\'s first, multiplied along its path';

export function resolveLimits(partial: Partial<QueryLimits> = {}): QueryLimits {
  return { ...DEFAULT_LIMITS, ...Object.fromEntries(Object.entries(partial).filter(([, v]) => v !== undefined)) };
}

export interface Shape {
  /** Rows requested (see QueryLimits.maxCost). */
  cost: number;
  depth: number;
  aliases: number;
  directives: number;
}

const ZERO: Shape = Object.freeze({ cost: 0, depth: 0, aliases: 0, directives: 0 });

/**
 * The shape of one operation. `variables` are the request's (for `first: $n`); without them a
 * variable counts as its declared default, then the argument's default, then the page maximum.
 */
export function measureOperation(
  schema: GraphQLSchema,
  document: DocumentNode,
  op: OperationDefinitionNode,
  variables?: Record<string, unknown>,
  /** Selection sets walked, for tests that pin the walk down as linear in the document. */
  stats?: { visits: number },
): Shape {
  const fragments = new Map<string, FragmentDefinitionNode>();
  for (const d of document.definitions) if (d.kind === Kind.FRAGMENT_DEFINITION) fragments.set(d.name.value, d);
  const declared = new Map<string, ValueNode | undefined>();
  for (const v of op.variableDefinitions ?? []) declared.set(v.variable.name.value, v.defaultValue);
  const memo = new Map<string, Shape>();
  const intValue = (node: ValueNode | undefined): number | undefined => {
    if (!node) return undefined;
    if (node.kind === Kind.INT) return Number(node.value);
    if (node.kind === Kind.VARIABLE) {
      const v = variables?.[node.name.value];
      if (typeof v === 'number') return v;
      if (v === undefined) return intValue(declared.get(node.name.value));
    }
    return undefined;
  };
  const rowsOf = (def: GraphQLField<unknown, unknown>, args: readonly { name: { value: string }; value: ValueNode }[]): number | undefined => {
    const first = def.args.find((a) => a.name === 'first');
    if (first) {
      const given = args.find((a) => a.name.value === 'first');
      const n = given ? intValue(given.value) : undefined;
      return Math.max(0, n ?? (typeof first.defaultValue === 'number' ? first.defaultValue : MAX_PAGE));
    }
    return isRecordList(def.type) && def.name !== 'edges' ? UNPAGED_LIST_ROWS : undefined;
  };

  const walk = (set: SelectionSetNode | undefined, type: GraphQLNamedType | undefined): Shape => {
    if (!set) return ZERO;
    if (stats) stats.visits++;
    const out = { ...ZERO };
    const spread = new Set<string>();
    const add = (s: Shape) => {
      out.cost += s.cost;
      out.depth = Math.max(out.depth, s.depth);
      out.aliases += s.aliases;
      out.directives += s.directives;
    };
    for (const sel of set.selections) {
      out.directives += sel.directives?.length ?? 0;
      if (sel.kind === Kind.FIELD) {
        const def = type && (isObjectType(type) || isInterfaceType(type)) ? type.getFields()[sel.name.value] : undefined;
        const child = walk(sel.selectionSet, def ? getNamedType(def.type) : undefined);
        // Introspection reads no store rows: its lists cost nothing (graphql-js bounds its depth).
        const rows = def && !getNamedType(def.type).name.startsWith('__') ? rowsOf(def, sel.arguments ?? []) : undefined;
        out.cost += rows === undefined ? child.cost : rows + rows * child.cost;
        out.depth = Math.max(out.depth, 1 + child.depth);
        out.aliases += (sel.alias ? 1 : 0) + child.aliases;
        out.directives += child.directives;
      } else if (sel.kind === Kind.INLINE_FRAGMENT) {
        add(walk(sel.selectionSet, sel.typeCondition ? schema.getType(sel.typeCondition.name.value) ?? undefined : type));
      } else if (!spread.has(sel.name.value)) {
        spread.add(sel.name.value);
        add(fragment(sel.name.value));
      }
    }
    return out;
  };
  const fragment = (name: string): Shape => {
    const known = memo.get(name);
    if (known) return known;
    const def = fragments.get(name);
    // A cycle (itself a validation error) meets its own entry while being measured: it adds nothing.
    memo.set(name, ZERO);
    if (!def) return ZERO;
    const s = walk(def.selectionSet, schema.getType(def.typeCondition.name.value) ?? undefined);
    s.directives += def.directives?.length ?? 0;
    memo.set(name, s);
    return s;
  };

  const rootType = op.operation === 'query' ? schema.getQueryType() : op.operation === 'mutation' ? schema.getMutationType() : schema.getSubscriptionType();
  const shape = walk(op.selectionSet, rootType ?? undefined);
  shape.directives += op.directives?.length ?? 0;
  return shape;
}

function isRecordList(type: GraphQLOutputType): boolean {
  const t = isNonNullType(type) ? type.ofType : type;
  return isListType(t) && isObjectType(getNamedType(t));
}

const forPurpose = (purpose?: string) => (purpose ? ` for purpose "${purpose}"` : '');
const fmt = (n: number) => n.toLocaleString('en-US', { maximumFractionDigits: 0 });

/**
 * Depth, aliases and directives of every operation, refused during validation
 * (GRAPHQL_VALIDATION_FAILED) with a message naming the limit.
 */
export function shapeLimits(limits: Partial<QueryLimits> = {}, purpose?: string) {
  const l = resolveLimits(limits);
  return (ctx: ValidationContext): ASTVisitor => ({
    OperationDefinition(op) {
      const s = measureOperation(ctx.getSchema(), ctx.getDocument(), op);
      const over = (what: string, key: keyof QueryLimits) =>
        ctx.reportError(new GraphQLError(`${what}; the limit (${key}) is ${fmt(l[key])}${forPurpose(purpose)}`, { nodes: [op] }));
      if (s.depth > l.maxDepth) over(`query is ${fmt(s.depth)} levels deep`, 'maxDepth');
      if (s.aliases > l.maxAliases) over(`query has ${fmt(s.aliases)} aliases`, 'maxAliases');
      if (s.directives > l.maxDirectives) over(`query has ${fmt(s.directives)} directives`, 'maxDirectives');
    },
  });
}

/** The cost check, or undefined when the operation is within the limit. */
export function costError(cost: number, maxCost: number, purpose?: string): GraphQLError | undefined {
  if (cost <= maxCost) return undefined;
  return new GraphQLError(`query cost ${fmt(cost)} exceeds the limit of ${fmt(maxCost)}${forPurpose(purpose)} (${COST_EXPLAINED})`, {
    extensions: { code: QUERY_TOO_COSTLY, cost, maxCost, http: { status: 400 } },
  });
}

/**
 * Refuses an operation over `maxCost` once Apollo has resolved it and before it executes: the
 * variables are known by then, so `first: $n` counts as the number sent.
 */
export function costLimitPlugin<C extends BaseContext>(limits: Partial<QueryLimits> = {}, purpose?: string): ApolloServerPlugin<C> {
  const { maxCost } = resolveLimits(limits);
  return {
    async requestDidStart() {
      return {
        async didResolveOperation(rc) {
          if (!rc.operation) return;
          const { cost } = measureOperation(rc.schema, rc.document, rc.operation, rc.request.variables);
          const e = costError(cost, maxCost, purpose);
          if (e) throw e;
        },
      };
    },
  };
}
