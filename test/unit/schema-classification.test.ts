import { describe, expect, it } from 'vitest';
import { isObjectType, isInterfaceType, parse, visit, Kind, buildSchema } from 'graphql';
import { loadTypeDefs } from '../../src/graphql/schema.ts';

/** Structural types carry no data of their own; every other field must be classified. */
const STRUCTURAL = (name: string) => name === 'Query' || name === 'Mutation' || name === 'PageInfo' || /Connection$|Edge$/.test(name) || name.startsWith('__');

export function unclassifiedFields(sdl: string): string[] {
  const missing: string[] = [];
  visit(parse(sdl), {
    ObjectTypeDefinition(node) {
      if (STRUCTURAL(node.name.value)) return;
      for (const f of node.fields ?? []) {
        if (!f.directives?.some((d) => d.name.value === 'pii')) missing.push(`${node.name.value}.${f.name.value}`);
      }
    },
  });
  return missing;
}

describe('schema classification', () => {
  const sdl = loadTypeDefs();

  it('every field of every roster type carries @pii', () => {
    expect(unclassifiedFields(sdl)).toEqual([]);
  });

  it('the check catches an unclassified field', () => {
    expect(unclassifiedFields(sdl + '\ntype Extra { secret: String }')).toEqual(['Extra.secret']);
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
