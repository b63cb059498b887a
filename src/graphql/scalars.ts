/**
 * The schema's custom scalars, strict about input: a value of the wrong kind (an object where a
 * Pseudonym goes, a number for a Cursor, "yesterday" for a DateTime) is the client's mistake, so
 * it is BAD_USER_INPUT with a message saying what was expected, as a variable and as a literal.
 * Without this a Pseudonym accepted anything and an object reached the resolver (an internal error).
 * Messages do not repeat the value: graphql-js already prefixes a variable's error with it, and an
 * EmailAddress literal need not be echoed twice.
 *
 * Date, DateTime and EmailAddress are the model's scalars (src/model/values.ts), so what is valid
 * is defined once: the wrapping keeps their serialize as it is (the very function the mapping
 * boundary checks stored values with) and changes only how refused input is reported.
 */
import { GraphQLError, GraphQLScalarType, Kind, valueFromASTUntyped, type ValueNode } from 'graphql';
import { SCALARS } from '../model/values.ts';

const badInput = (name: string, expected: string) => new GraphQLError(`${name} expects ${expected}`, { extensions: { code: 'BAD_USER_INPUT' } });

/** Wraps a scalar's input parsing so every refusal is BAD_USER_INPUT naming what was expected. */
export function strictInput(scalar: GraphQLScalarType, expected: string): GraphQLScalarType {
  const config = scalar.toConfig();
  const parseValue = config.parseValue ?? ((v: unknown) => v);
  const parseLiteral = config.parseLiteral ?? ((ast: ValueNode) => valueFromASTUntyped(ast));
  return new GraphQLScalarType({
    ...config,
    parseValue(v) {
      try {
        return parseValue(v);
      } catch {
        throw badInput(config.name, expected);
      }
    },
    parseLiteral(ast, variables) {
      try {
        return parseLiteral(ast, variables);
      } catch {
        throw badInput(config.name, expected);
      }
    },
  });
}

/** An opaque string scalar: any non-empty string, nothing else. */
function opaqueString(name: string, description: string): GraphQLScalarType {
  const check = (v: unknown) => {
    if (typeof v !== 'string' || v === '') throw new Error('not a string');
    return v;
  };
  return new GraphQLScalarType({
    name,
    description,
    serialize: (v) => String(v),
    parseValue: check,
    parseLiteral: (ast) => check(ast.kind === Kind.STRING ? ast.value : undefined),
  });
}

export const PseudonymScalar = strictInput(opaqueString('Pseudonym', 'a keyed pseudonym'), 'a pseudonym string as returned by this API (e.g. a Person.id)');
export const CursorScalar = strictInput(opaqueString('Cursor', 'an opaque cursor'), 'a cursor string as returned by this API (an endCursor or edge cursor)');
export const DateTimeScalar = strictInput(SCALARS.DateTime, 'an RFC 3339 date-time string with a time zone, e.g. "2024-09-01T00:00:00Z"');
export const DateScalar = strictInput(SCALARS.Date, 'an RFC 3339 full-date string, e.g. "2024-09-01"');
export const EmailAddressScalar = strictInput(SCALARS.EmailAddress, 'an email address string, e.g. "someone@example.org"');
