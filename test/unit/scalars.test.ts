/**
 * Every custom scalar refuses wrong input as BAD_USER_INPUT naming what it expected, as a variable
 * and as a literal, through the gateway's own HTTP path. Date and EmailAddress are no argument of
 * the roster schema today, so a small schema takes each scalar as an argument; the roster
 * schema's own arguments (Pseudonym, Cursor, DateTime) are covered in test/e2e/query-limits.test.ts.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeExecutableSchema } from '@graphql-tools/schema';
import { request } from 'undici';
import { startGateway, type RunningGateway } from '../../src/server/gateway.ts';
import { createLogger } from '../../src/log.ts';
import { CursorScalar, DateScalar, DateTimeScalar, EmailAddressScalar, PseudonymScalar } from '../../src/graphql/scalars.ts';

const SCALARS = { Pseudonym: PseudonymScalar, Cursor: CursorScalar, DateTime: DateTimeScalar, Date: DateScalar, EmailAddress: EmailAddressScalar };
const GOOD: Record<keyof typeof SCALARS, unknown> = { Pseudonym: 'p1_AAAAAAAAAAAAAAAAAAAAAA', Cursor: 'YzE6eA', DateTime: '2024-09-01T00:00:00Z', Date: '2024-09-01', EmailAddress: 'someone@example.org' };
const EXPECTED: Record<keyof typeof SCALARS, RegExp> = {
  Pseudonym: /^Pseudonym expects a pseudonym string/,
  Cursor: /^Cursor expects a cursor string/,
  DateTime: /^DateTime expects an RFC 3339 date-time string/,
  Date: /^Date expects an RFC 3339 full-date string/,
  EmailAddress: /^EmailAddress expects an email address string/,
};
const BAD_VARIABLES: unknown[] = [{ a: 1 }, 42, true, ['x'], 'not-a-valid-value'];
const BAD_LITERALS = ['{ a: 1 }', '42', 'true', '["x"]', '"not-a-valid-value"'];

let gw: RunningGateway;
beforeAll(async () => {
  const names = Object.keys(SCALARS);
  const schema = makeExecutableSchema({
    typeDefs: `${names.map((n) => `scalar ${n}`).join('\n')}\ntype Query { ${names.map((n) => `echo${n}(v: ${n}!): String`).join(' ')} }`,
    resolvers: { ...SCALARS, Query: Object.fromEntries(names.map((n) => [`echo${n}`, (_: unknown, a: { v: unknown }) => String(a.v instanceof Date ? a.v.toISOString() : a.v)])) },
  });
  gw = await startGateway({ schemas: { default: { schema } }, context: async () => ({}), port: 0, log: createLogger({ level: 'silent' }) });
});
afterAll(() => gw?.close());

async function gql(query: string, variables?: unknown) {
  const r = await request(`${gw.url}/graphql`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ query, variables }) });
  return { status: r.statusCode, body: (await r.body.json()) as { data?: Record<string, unknown>; errors?: { message: string; extensions?: { code?: string } }[] } };
}

describe.each(Object.keys(SCALARS) as (keyof typeof SCALARS)[])('the %s scalar', (name) => {
  it('accepts a good value', async () => {
    const r = await gql(`query($v: ${name}!) { echo${name}(v: $v) }`, { v: GOOD[name] });
    expect(r.body.errors).toBeUndefined();
  });

  it('refuses wrong-typed variables with BAD_USER_INPUT saying what it expects', async () => {
    for (const v of BAD_VARIABLES) {
      if (name === 'Pseudonym' || name === 'Cursor') if (v === 'not-a-valid-value') continue; // any non-empty string is a well-formed opaque value
      const r = await gql(`query($v: ${name}!) { echo${name}(v: $v) }`, { v });
      expect(r.status, JSON.stringify(v)).toBe(400);
      expect(r.body.errors, JSON.stringify(v)).toEqual([expect.objectContaining({ extensions: expect.objectContaining({ code: 'BAD_USER_INPUT' }) })]);
      expect(r.body.errors![0]!.message.split('; ').at(-1)).toMatch(EXPECTED[name]);
    }
  });

  it('refuses wrong-typed literals with BAD_USER_INPUT saying what it expects', async () => {
    for (const lit of BAD_LITERALS) {
      if (name === 'Pseudonym' || name === 'Cursor') if (lit === '"not-a-valid-value"') continue;
      const r = await gql(`{ echo${name}(v: ${lit}) }`);
      expect(r.status, lit).toBe(400);
      expect(r.body.errors, lit).toEqual([expect.objectContaining({ message: expect.stringMatching(EXPECTED[name]), extensions: expect.objectContaining({ code: 'BAD_USER_INPUT' }) })]);
    }
  });
});
