import { describe, expect, it } from 'vitest';
import { isObjectType, isInterfaceType, Kind, buildSchema } from 'graphql';
import { buildUnifiedSchema, loadTypeDefs } from '../../src/graphql/schema.ts';
import { classify, unclassifiedFields } from '../../src/privacy/classification.ts';

describe('schema classification', () => {
  const sdl = loadTypeDefs();

  it('every field of every roster type carries @pii', () => {
    // The executable schema the gateway serves, built from every file in schema/.
    const schema = buildUnifiedSchema();
    expect(unclassifiedFields(schema)).toEqual([]);
    expect(classify(schema).get('Person.email')?.category).toBe('DIRECT');
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

  it('classifies names and emails DIRECT, ids IDENTIFIER, birth date QUASI, race and IEP SPECIAL', () => {
    const schema = buildSchema(sdl);
    const cat = (type: string, field: string) => {
      const t = schema.getType(type);
      if (!isObjectType(t) && !isInterfaceType(t)) throw new Error(type);
      const dir = t.getFields()[field]!.astNode!.directives!.find((d) => d.name.value === 'pii')!;
      const arg = dir.arguments![0]!.value;
      return arg.kind === Kind.ENUM ? arg.value : undefined;
    };
    expect(cat('Person', 'givenName')).toBe('DIRECT');
    expect(cat('Person', 'email')).toBe('DIRECT');
    expect(cat('Person', 'id')).toBe('IDENTIFIER');
    expect(cat('Person', 'sisId')).toBe('IDENTIFIER');
    expect(cat('SourceRef', 'sourcedId')).toBe('IDENTIFIER');
    expect(cat('Demographics', 'birthDate')).toBe('QUASI');
    expect(cat('Demographics', 'asian')).toBe('SPECIAL');
    expect(cat('Demographics', 'iep')).toBe('SPECIAL');
    expect(cat('Demographics', 'freeReducedLunch')).toBe('SPECIAL');
  });
});
