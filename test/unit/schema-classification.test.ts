import { describe, expect, it } from 'vitest';
import { buildSchema, isObjectType, type GraphQLObjectType } from 'graphql';
import { makeExecutableSchema } from '@graphql-tools/schema';
import { loadTypeDefs } from '../../src/graphql/type-defs.ts';
import { CATEGORIES, classify, isStructural, unclassifiedFields } from '../../src/privacy/classification.ts';
import { buildPurposeSchema } from '../../src/privacy/purpose-schema.ts';
import { DEMO_PURPOSES } from '../../src/demo/demo-policy.ts';
import { fieldFeeds, visibleFields } from '../../src/privacy/relevance.ts';

const sdl = loadTypeDefs();
const schemaWith = (extra = '') => makeExecutableSchema({ typeDefs: sdl + '\n' + extra });

describe('schema classification', () => {
  it('every field that can carry a value is classified', () => {
    expect(() => classify(schemaWith())).not.toThrow();
  });

  it('a field added without a classification stops the gateway from starting, wherever it is added', () => {
    expect(() => classify(schemaWith('extend type Person { nickname: String }'))).toThrow(/unclassified field\(s\) Person\.nickname/);
    expect(() => classify(schemaWith('type Extra { secret: String } extend type Query { extra: Extra }'))).toThrow(/Extra\.secret/);
    // Root fields returning a value directly, and extras on connections, are not exempt.
    expect(() => classify(schemaWith('extend type Query { emailOf(id: ID!): String }'))).toThrow(/Query\.emailOf/);
    expect(() => classify(schemaWith('extend type PersonConnection { emails: [String!]! }'))).toThrow(/PersonConnection\.emails/);
  });

  it('gives every field of every data-carrying type in schema/ one of the five categories, feed and webhook types included', () => {
    const schema = schemaWith();
    const cls = classify(schema);
    const dataTypes = Object.values(schema.getTypeMap()).filter((t): t is GraphQLObjectType => isObjectType(t) && !isStructural(t.name));
    expect(dataTypes.map((t) => t.name)).toEqual(expect.arrayContaining(['Person', 'Demographics', 'Enrollment', 'Guardianship', 'Organization', 'Change', 'Webhook', 'WebhookDelivery']));
    for (const t of dataTypes) {
      for (const f of Object.keys(t.getFields())) expect(CATEGORIES, `${t.name}.${f}`).toContain(cls.get(`${t.name}.${f}`)?.category);
    }
  });

  it('a category that is not one of the five leaves the field unclassified (SDL validation lets any value through)', () => {
    const typo = schemaWith('extend type Person { nickname: String @pii(category: SECRET) }');
    expect(unclassifiedFields(typo)).toEqual(['Person.nickname']);
    expect(() => classify(typo)).toThrow(/unclassified field\(s\) Person\.nickname \(unknown category SECRET\): give each a @pii\(category: DIRECT \| IDENTIFIER \| QUASI \| SPECIAL \| NONE\)/);
    expect(() => classify(schemaWith('extend type Demographics { shoeSize: Int @pii(category: none) }'))).toThrow(/Demographics\.shoeSize \(unknown category none\)/);
  });

  it('a generalised form needs a classification of its own: @generalises alone is not one', () => {
    const schema = schemaWith('extend type Demographics { birthDecade: Int @generalises(field: "birthDate") }');
    expect(unclassifiedFields(schema)).toEqual(['Demographics.birthDecade']);
    expect(() => classify(schema)).toThrow(/unclassified field\(s\) Demographics\.birthDecade:/);
  });

  it('catches an unclassified field in a new type, an `extend type` and a connection, and start-up refuses it', () => {
    const extended = buildSchema(`${sdl}
      type Extra { secret: String }
      extend type Person { nickname: String }
      extend type PersonConnection { leakedEmail: String }
      extend type Query { extra: Extra }`);
    const missing = ['Extra.secret', 'Person.nickname', 'PersonConnection.leakedEmail'];
    expect(unclassifiedFields(extended)).toEqual(missing);
    expect(() => classify(extended)).toThrow(new RegExp(missing.join(', ').replace(/\./g, '\\.')));
  });

  it('needs no classification for connection plumbing, and takes one where it is given', () => {
    const extended = buildSchema(`${sdl}\nextend type PersonConnection { schoolCount: Int @pii(category: QUASI) }`);
    expect(unclassifiedFields(extended)).toEqual([]);
    const cls = classify(extended);
    expect(cls.get('PersonConnection.schoolCount')?.category).toBe('QUASI');
    expect(cls.has('PersonConnection.totalCount')).toBe(false);
  });

  it('a field added later, classified, is absent from every purpose that was not granted its category or the field', () => {
    const schema = schemaWith('extend type Person { nickname: String @pii(category: DIRECT) shoeSize: Int @pii(category: QUASI) }');
    const cls = classify(schema);
    const fieldsOf = (p: { categories: object; fields?: object }) =>
      Object.keys((buildPurposeSchema(schema, cls, { id: 'p', categories: p.categories, fields: p.fields ?? {} } as never).schema.getType('Person') as never as { getFields(): object }).getFields());
    expect(fieldsOf(DEMO_PURPOSES.analytics)).not.toContain('nickname');
    expect(fieldsOf(DEMO_PURPOSES.analytics)).not.toContain('shoeSize');
    expect(fieldsOf(DEMO_PURPOSES['roster-sync'])).toEqual(expect.arrayContaining(['nickname', 'shoeSize']));
    // A purpose that says nothing about a category gets none of it.
    const noneOnly = fieldsOf({ categories: { NONE: 'allow' } });
    expect(noneOnly).not.toContain('nickname');
    expect(noneOnly).not.toContain('shoeSize');
    expect(noneOnly).not.toContain('id');
    expect(noneOnly).toContain('roles');
    expect(fieldsOf({ categories: { NONE: 'allow' }, fields: { 'Person.shoeSize': 'allow' } })).toContain('shoeSize');
  });

  it('classifies names and emails DIRECT, ids IDENTIFIER, birth date QUASI, race and IEP SPECIAL', () => {
    const cls = classify(schemaWith());
    const cat = (coordinate: string) => cls.get(coordinate)?.category;
    expect(cat('Person.givenName')).toBe('DIRECT');
    expect(cat('Person.email')).toBe('DIRECT');
    expect(cat('Person.username')).toBe('DIRECT');
    expect(cat('Person.id')).toBe('IDENTIFIER');
    expect(cat('Person.sisId')).toBe('IDENTIFIER');
    expect(cat('Person.stateId')).toBe('IDENTIFIER');
    expect(cat('SourceRef.sourcedId')).toBe('IDENTIFIER');
    expect(cat('Demographics.birthDate')).toBe('QUASI');
    expect(cat('Demographics.asian')).toBe('SPECIAL');
    expect(cat('Demographics.iep')).toBe('SPECIAL');
    expect(cat('Demographics.freeReducedLunch')).toBe('SPECIAL');
  });

  it('each generalised form is a quasi-identifier of its own, pointing at the exact field it coarsens', () => {
    const cls = classify(buildSchema(sdl));
    const generalised = [...cls.values()].filter((f) => f.generalises).map((f) => [f.coordinate, f.category, f.generalises]);
    expect(generalised).toEqual(expect.arrayContaining([
      ['Demographics.birthYear', 'QUASI', 'birthDate'],
      ['Demographics.ageBand', 'QUASI', 'birthDate'],
      ['Demographics.postalArea', 'QUASI', 'postalCode'],
      ['Person.gradeBand', 'QUASI', 'grades'],
    ]));
    for (const [coordinate, , exact] of generalised) expect(cls.get(`${coordinate!.split('.')[0]}.${exact}`)?.category).toBe('QUASI');
  });

  it('a generalised form the schema declares but the code computes differently, or not at all, stops the gateway from starting', () => {
    expect(() => fieldFeeds(classify(schemaWith()))).not.toThrow();
    const moved = sdl.replace('@generalises(field: "postalCode")', '@generalises(field: "birthDate")');
    expect(() => fieldFeeds(classify(makeExecutableSchema({ typeDefs: moved })))).toThrow(/Demographics\.postalArea is declared @generalises\(field: "birthDate"\) but src\/privacy\/generalise\.ts computes it from postalCode/);
    const extra = schemaWith('extend type Demographics { birthMonth: Int @pii(category: QUASI) @generalises(field: "birthDate") }');
    expect(() => fieldFeeds(classify(extra))).toThrow(/Demographics\.birthMonth .* does not compute it/);
  });

  it('a generalised form counts as changed when the change log says its value moved, or, on older entries that do not say, with its exact field', () => {
    const feeds = fieldFeeds(classify(schemaWith()));
    const received = new Set(['Demographics.birthYear', 'Demographics.ageBand']);
    expect(visibleFields(feeds, 'demographics', ['birthDate'], received, [])).toEqual([]);
    expect(visibleFields(feeds, 'demographics', ['birthDate'], received, ['birthYear'])).toEqual(['demographics.birthYear']);
    expect(visibleFields(feeds, 'demographics', ['birthDate'], received, undefined)).toEqual(['demographics.ageBand', 'demographics.birthYear']);
    // The exact field is counted by itself, whatever its generalised forms did.
    expect(visibleFields(feeds, 'demographics', ['birthDate'], undefined, [])).toEqual(['demographics.birthDate']);
  });
});
