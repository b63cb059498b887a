/**
 * Every type, field, argument and enum value is described, in the unified schema and in each demo
 * purpose's schema; and each classified field's description tells its classification and what the
 * purpose receives, generated from @pii and the policy.
 */
import { describe, expect, it } from 'vitest';
import { buildSchema, type GraphQLObjectType, type GraphQLSchema } from 'graphql';
import { buildUnifiedSchema } from '../../src/graphql/schema.ts';
import { classify } from '../../src/privacy/classification.ts';
import { buildPurposeSchema } from '../../src/privacy/purpose-schema.ts';
import { withCategoryNotes } from '../../src/privacy/field-notes.ts';
import { KeyRing } from '../../src/privacy/pseudonym.ts';
import { setupPrivacy } from '../../src/graphql/privacy.ts';
import { demoPrivacyConfig, TEST_MASTER_KEY } from '../support/privacy.ts';
import { undescribed } from '../support/descriptions.ts';

const base = buildUnifiedSchema();
const privacy = setupPrivacy(demoPrivacyConfig(':memory:'), base, { keyring: new KeyRing(TEST_MASTER_KEY, 'test') });
const schemaOf = (purpose: string) => privacy.schemas.get(purpose)!.schema;
const described = (schema: GraphQLSchema, coord: string) => {
  const [type, field] = coord.split('.') as [string, string];
  return (schema.getType(type) as GraphQLObjectType).getFields()[field]?.description ?? '';
};

describe('schema descriptions', () => {
  it('leave nothing undescribed in the unified schema', () => {
    expect(undescribed(base)).toEqual([]);
  });

  it.each(['roster-sync', 'analytics', 'sso', 'admin'])('leave nothing undescribed in the %s purpose schema', (purpose) => {
    expect(undescribed(schemaOf(purpose))).toEqual([]);
  });

  it('the check itself names what lacks a description', () => {
    const s = buildSchema(`
      "Root." type Query { "Described." a(x: Int): E  b: Int }
      enum E { "Yes." Y  N }
    `);
    expect(undescribed(s)).toEqual(['E', 'E.N', 'Query.a(x:)', 'Query.b']);
  });

  it('analytics: Person.id is a keyed pseudonym, birthYear a generalised form of birthDate', () => {
    const a = schemaOf('analytics');
    expect(described(a, 'Person.id')).toMatch(/^A keyed pseudonym .*\n\nClassification: IDENTIFIER \(.*\)\. This purpose receives a keyed pseudonym/s);
    expect(described(a, 'Demographics.birthYear')).toMatch(
      /^Year of birth: a generalised form of birthDate\.\n\nClassification: QUASI \(.*, generalised from birthDate\)\. This purpose receives this generalised form only, not birthDate itself\.$/,
    );
    expect(described(a, 'Person.gradeBand')).toContain('generalised from grades). This purpose receives this generalised form only, not grades itself.');
    expect(described(a, 'Person.roles')).toMatch(/Classification: NONE \(not personal data\)\. This purpose receives it as is\.$/);
    // Denied fields are absent, so no description can claim anything about them.
    expect(described(a, 'Person.givenName')).toBe('');
  });

  it('roster-sync: names and exact values as is; a generalised form says the exact one comes too', () => {
    const r = schemaOf('roster-sync');
    expect(described(r, 'Person.id')).toMatch(/^The gateway's stable id .*\n\nClassification: IDENTIFIER \(.*\)\. This purpose receives it as is\.$/s);
    expect(described(r, 'Person.givenName')).toBe('First name.\n\nClassification: DIRECT (identifies a person directly). This purpose receives it as is.');
    expect(described(r, 'Demographics.birthDate')).toContain('Classification: QUASI (identifying in combination with other data). This purpose receives it as is.');
    expect(described(r, 'Demographics.birthYear')).toContain('This purpose receives it as is (and the exact birthDate too).');
    // Keeps the hand-written description and adds the note after it.
    expect(described(r, 'Class.title')).toMatch(/^Free text the school fills: section titles often carry .*\n\nClassification: DIRECT/s);
  });

  it('admin and open access: the category only', () => {
    expect(described(schemaOf('admin'), 'Person.email')).toBe('Email address.\n\nClassification: DIRECT (identifies a person directly).');
    const open = withCategoryNotes(base, classify(base));
    expect(described(open, 'Demographics.iep')).toBe('Whether the student has an individualised education programme (IEP).\n\nClassification: SPECIAL (a special category of personal data).');
    expect(undescribed(open)).toEqual([]);
  });

  it('is generated from the policy: a purpose allowing one more field says so for that field', () => {
    const cls = classify(base);
    const ps = buildPurposeSchema(base, cls, { id: 'p', categories: { NONE: 'allow', IDENTIFIER: 'pseudonymise' }, fields: { 'Demographics.birthDate': 'allow', 'Demographics.birthYear': 'allow' } });
    expect(described(ps.schema, 'Demographics.birthYear')).toContain('(and the exact birthDate too)');
    expect(described(ps.schema, 'Demographics.birthDate')).toContain('This purpose receives it as is.');
  });
});
