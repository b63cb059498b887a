/**
 * The query limits of src/server/limits.ts on the unified schema, without a server: the cost is
 * rows requested (each list's first, its default when absent, multiplied along its path), and the
 * walk is linear in the document however fragments are spread.
 */
import { describe, expect, it } from 'vitest';
import { Kind, parse, specifiedRules, validate, type OperationDefinitionNode } from 'graphql';
import { buildUnifiedSchema } from '../../src/graphql/schema.ts';
import { demoPrivacyConfig } from '../support/privacy.ts';
import { DEMO_PURPOSES } from '../../src/demo/demo-policy.ts';
import { COSTLY, fragmentChain } from '../support/costly-queries.ts';
import { costError, DEFAULT_LIMITS, measureOperation, resolveLimits, shapeLimits, UNPAGED_LIST_ROWS } from '../../src/server/limits.ts';

const schema = buildUnifiedSchema();
const measure = (q: string, variables?: Record<string, unknown>, stats?: { visits: number }) => {
  const doc = parse(q);
  const op = doc.definitions.find((d): d is OperationDefinitionNode => d.kind === Kind.OPERATION_DEFINITION)!;
  return measureOperation(schema, doc, op, variables, stats);
};

describe('query cost', () => {
  it('multiplies each list\'s first along its path: the issue\'s query costs about 3 × 10^12 rows', () => {
    const one = 1000 + 1000 ** 2 + 1000 ** 3 + 1000 ** 4;
    expect(measure(COSTLY).cost).toBe(3 * one);
    expect(measure(COSTLY).aliases).toBe(3);
    expect(measure(COSTLY).depth).toBeLessThanOrEqual(DEFAULT_LIMITS.maxDepth);
  });

  it('counts an absent first as the argument\'s default, and a variable as the number sent', () => {
    // schools: first = 50 by default; Organization.classes 50; Class.enrollments 100.
    expect(measure('{ schools { edges { node { classes { edges { node { enrollments { totalCount } } } } } } } }').cost).toBe(50 + 50 * 50 + 50 * 50 * 100);
    const q = 'query($n: Int, $m: Int = 7) { people(first: $n) { edges { node { enrollments(first: $m) { totalCount } } } } }';
    expect(measure(q, { n: 3 }).cost).toBe(3 + 3 * 7);
    expect(measure(q, { n: 3, m: 2 }).cost).toBe(3 + 3 * 2);
    // No value and no declared default: the argument's own default (people: 50).
    expect(measure(q, {}).cost).toBe(50 + 50 * 7);
  });

  it('counts unpaged lists of records as a few rows each, and introspection as nothing', () => {
    expect(measure('{ people(first: 10) { edges { node { organizations { name } } } } }').cost).toBe(10 + 10 * UNPAGED_LIST_ROWS);
    expect(measure('{ __schema { types { fields { args { name } } } } }').cost).toBe(0);
  });

  it('names the limit, the purpose and the estimate in its error', () => {
    const e = costError(measure(COSTLY).cost, 50_000, 'analytics')!;
    expect(e.message).toBe('query cost 3,003,003,003,000 exceeds the limit of 50,000 for purpose "analytics" (cost = rows requested: each list\'s first, multiplied along its path)');
    expect(e.extensions).toMatchObject({ code: 'QUERY_TOO_COSTLY', cost: 3_003_003_003_000, maxCost: 50_000 });
    expect(costError(50_000, 50_000)).toBeUndefined();
  });
});

describe('shape limits', () => {
  it('walks a 22-deep doubling fragment chain once per fragment, and validates it at once', () => {
    const stats = { visits: 0 };
    const s = measure(fragmentChain(22), undefined, stats);
    // One selection set per fragment and per field: linear (the old depth rule made 2^22 visits).
    expect(stats.visits).toBeLessThan(50);
    // graphql-js merges a fragment spread twice into one selection: counted once, not 2^22 times.
    expect(s.cost).toBe(1);
    const started = performance.now();
    const errors = validate(schema, parse(fragmentChain(22)), [...specifiedRules, shapeLimits()]);
    expect(errors).toEqual([]);
    expect(performance.now() - started).toBeLessThan(2000);
  });

  it('measures cyclic fragments without hanging (graphql-js reports the cycle)', () => {
    const q = 'query { ...A } fragment A on Query { ...B schools { totalCount } } fragment B on Query { ...A }';
    expect(measure(q).depth).toBe(2);
    const errors = validate(schema, parse(q), [...specifiedRules, shapeLimits()]);
    expect(errors.map((e) => e.message)).toEqual([expect.stringMatching(/Cannot spread fragment "A" within itself/)]);
  });

  it('refuses depth, aliases and directives over their limits, naming the limit and the purpose, through fragments too', () => {
    let deep = 'id';
    for (let i = 0; i < 20; i++) deep = `parent { ${deep} }`;
    const q = `query { schools { edges { node { ...Deep } } } } fragment Deep on Organization { ${deep} }`;
    expect(validate(schema, parse(q), [shapeLimits({}, 'analytics')]).map((e) => e.message)).toEqual(['query is 24 levels deep; the limit (maxDepth) is 20 for purpose "analytics"']);
    const aliases = `{ ...A ...B } fragment A on Query { ${Array.from({ length: 3 }, (_, i) => `a${i}: changesHead`).join(' ')} } fragment B on Query { b: changesHead }`;
    expect(validate(schema, parse(aliases), [shapeLimits({ maxAliases: 3 })]).map((e) => e.message)).toEqual(['query has 4 aliases; the limit (maxAliases) is 3']);
    const directives = `{ changesHead @include(if: true) @skip(if: false) schools @include(if: true) { totalCount } }`;
    expect(validate(schema, parse(directives), [shapeLimits({ maxDirectives: 2 })]).map((e) => e.message)).toEqual(['query has 3 directives; the limit (maxDirectives) is 2']);
    expect(validate(schema, parse(directives), [shapeLimits({ maxDirectives: 3 })])).toEqual([]);
  });

  it('reads a purpose\'s limits from config, refusing unknown keys and non-positive values', () => {
    const cfg = (limits: unknown) => demoPrivacyConfig(':memory:', { purposes: { ...DEMO_PURPOSES, analytics: { ...DEMO_PURPOSES.analytics, limits } } });
    expect(cfg({ maxCost: 50_000, maxDepth: 8 }).purposes.analytics!.limits).toEqual({ maxCost: 50_000, maxDepth: 8 });
    expect(cfg(undefined).purposes.analytics!.limits).toBeUndefined();
    expect(() => cfg({ maxCosts: 1 })).toThrow(/limits/);
    expect(() => cfg({ maxCost: 0 })).toThrow(/limits\.maxCost/);
  });

  it('fills the limits a purpose leaves out with the defaults', () => {
    expect(resolveLimits({ maxCost: 10 })).toEqual({ ...DEFAULT_LIMITS, maxCost: 10 });
    expect(resolveLimits()).toEqual(DEFAULT_LIMITS);
  });
});
