/**
 * Who gets `personBySignIn`: it is classified IDENTIFIER, so a purpose must be granted it, and it
 * needs the person's id in some form; a pseudonymising purpose granted it gets pseudonyms back.
 */
import { describe, expect, it } from 'vitest';
import { isEnumType, type GraphQLObjectType } from 'graphql';
import { buildUnifiedSchema } from '../../src/graphql/schema.ts';
import { classify } from '../../src/privacy/classification.ts';
import { buildPurposeSchema } from '../../src/privacy/purpose-schema.ts';
import { personIdBySignIn, SIGN_IN_SOURCES } from '../../src/graphql/sign-in.ts';
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

describe('personIdBySignIn', () => {
  /** A context whose store answers entityOfRecord from a table of "source/key" → entity id (the lookup logic alone; test/e2e/sign-in.test.ts runs it on real stores). */
  const ctx = (records: Record<string, string>, sources: [string, string][]) =>
    ({
      sourceTypes: new Map(sources),
      store: { entityOfRecord: async (r: { source: string; type: string; key: string }) => (r.type === 'person' ? records[`${r.source}/${r.key}`] : undefined) },
    }) as unknown as Parameters<typeof personIdBySignIn>[0];

  it('searches only the provider’s source types, trimming the subject', async () => {
    const c = ctx({ 'or/u1': 'p1', 'cl/u1': 'p2' }, [['or', 'oneroster'], ['cl', 'clever']]);
    expect(await personIdBySignIn(c, 'CLASSLINK', ' u1 ')).toBe('p1');
    expect(await personIdBySignIn(c, 'CLEVER', 'u1')).toBe('p2');
    expect(await personIdBySignIn(c, 'GOOGLE', 'u1')).toBeUndefined();
  });

  it('one person in two sources is that person; two people is an error naming the sources, not the subject', async () => {
    expect(await personIdBySignIn(ctx({ 'a/u1': 'p1', 'b/u1': 'p1' }, [['a', 'oneroster'], ['b', 'oneroster-csv']]), 'ONEROSTER', 'u1')).toBe('p1');
    const err = await personIdBySignIn(ctx({ 'a/u1': 'p1', 'b/u1': 'p2' }, [['a', 'oneroster'], ['b', 'oneroster-csv']]), 'ONEROSTER', 'u1').catch((e: Error) => e);
    expect((err as Error).message).toBe('personBySignIn: the ONEROSTER subject names different people in sources a, b; link them by identity resolution or keep one source per provider');
  });
});
