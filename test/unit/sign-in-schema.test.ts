/**
 * Who gets `personBySignIn`: it is classified IDENTIFIER, so a purpose must be granted it, and it
 * needs the person's id in some form; a pseudonymising purpose granted it gets pseudonyms back.
 */
import { describe, expect, it } from 'vitest';
import { isEnumType, type GraphQLObjectType } from 'graphql';
import { buildUnifiedSchema } from '../../src/graphql/schema.ts';
import { classify } from '../../src/privacy/classification.ts';
import { buildPurposeSchema } from '../../src/privacy/purpose-schema.ts';
import { SIGN_IN_SOURCES } from '../../src/graphql/sign-in.ts';
import { DEMO_PURPOSES } from '../../src/demo/demo-policy.ts';

const base = buildUnifiedSchema();
const cls = classify(base);
const lookup = (p: Parameters<typeof buildPurposeSchema>[2]) => (buildPurposeSchema(base, cls, p).schema.getQueryType()!.getFields().personBySignIn);

describe('personBySignIn per purpose', () => {
  it('is classified IDENTIFIER', () => {
    expect(cls.get('Query.personBySignIn')?.category).toBe('IDENTIFIER');
  });

  it('exists where IDENTIFIER is allowed, not where it is only pseudonymised or denied', () => {
    expect(lookup({ id: 'a', categories: { IDENTIFIER: 'allow', NONE: 'allow' }, fields: {} })).toBeDefined();
    expect(lookup({ id: 'b', categories: { IDENTIFIER: 'pseudonymise', NONE: 'allow' }, fields: {} })).toBeUndefined();
    expect(lookup({ id: 'c', categories: { NONE: 'allow' }, fields: {} })).toBeUndefined();
  });

  it('granted to a pseudonymising purpose, it returns people by their pseudonym', () => {
    const f = lookup({ id: 'p', categories: { IDENTIFIER: 'pseudonymise', NONE: 'allow' }, fields: { 'Query.personBySignIn': 'allow' } });
    expect(f).toBeDefined();
    expect(String((f!.type as GraphQLObjectType).getFields().id!.type)).toBe('Pseudonym!');
  });

  it('does not exist without Person.id, even when granted', () => {
    expect(lookup({ id: 'd', categories: { NONE: 'allow' }, fields: { 'Query.personBySignIn': 'allow' } })).toBeUndefined();
  });

  it('the demo sso purpose: the lookup, and of a person only id, roles and enrolments', () => {
    const s = buildPurposeSchema(base, cls, { id: 'sso', ...DEMO_PURPOSES.sso });
    expect(s.schema.getQueryType()!.getFields().personBySignIn).toBeDefined();
    expect(Object.keys((s.schema.getType('Person') as GraphQLObjectType).getFields()).sort()).toEqual(['enrollments', 'id', 'roles']);
    expect(Object.keys((s.schema.getType('Class') as GraphQLObjectType).getFields()).sort()).toEqual(['id', 'subjects']);
    for (const c of s.received) expect(['DIRECT', 'QUASI', 'SPECIAL']).not.toContain(cls.get(c)?.category);
  });

  it('every provider of the schema enum has its source types', () => {
    const e = base.getType('SignInProvider');
    expect(isEnumType(e) && e.getValues().map((v) => v.name).sort()).toEqual(Object.keys(SIGN_IN_SOURCES).sort());
  });
});
