/**
 * The line each field of a purpose's schema ends its description with: the field's classification
 * and what this purpose receives of it. Generated from the schema's @pii / @generalises and the
 * policy's action, so introspection (docs explorers, codegen comments) cannot drift from what the
 * gateway enforces. Only fields present in the purpose's schema get one: a denied field is absent.
 */
import { MapperKind, mapSchema } from '@graphql-tools/utils';
import type { GraphQLSchema } from 'graphql';
import type { Classification, FieldClass } from './classification.ts';
import type { Action } from './policy.ts';

const CATEGORY_MEANS: Record<FieldClass['category'], string> = {
  DIRECT: 'identifies a person directly',
  IDENTIFIER: 'an id that points at a person',
  QUASI: 'identifying in combination with other data',
  SPECIAL: 'a special category of personal data',
  NONE: 'not personal data',
};

/** "Classification: QUASI (…)", with the exact field a generalised form is derived from. */
function category(f: FieldClass): string {
  const from = f.generalises ? `, generalised from ${f.generalises}` : '';
  return `Classification: ${f.category} (${CATEGORY_MEANS[f.category]}${from}).`;
}

/**
 * The note for one field. `actions` is the purpose's policy; omitted (open access, or an admin
 * purpose, which receives what the store holds) the note gives the category only.
 */
export function classificationNote(cls: Classification, coordinate: string, actions?: ReadonlyMap<string, Action>): string | undefined {
  const f = cls.get(coordinate);
  if (!f) return undefined;
  const action = actions?.get(coordinate);
  if (!action || action === 'deny') return category(f);
  if (action === 'pseudonymise') return `${category(f)} This purpose receives a keyed pseudonym in its own domain, never the value itself.`;
  if (f.generalises) {
    const exact = actions!.get(`${f.type}.${f.generalises}`);
    if (exact === 'allow') return `${category(f)} This purpose receives it as is (and the exact ${f.generalises} too).`;
    return `${category(f)} This purpose receives this generalised form only, not ${f.generalises} itself.`;
  }
  return `${category(f)} This purpose receives it as is.`;
}

/** A description with the note appended as its own paragraph. */
export function withNote(description: string | null | undefined, note: string | undefined): string | undefined {
  if (!note) return description ?? undefined;
  return description?.trim() ? `${description.trimEnd()}\n\n${note}` : note;
}

/** The schema open access serves: every field, each classified one noting its category. */
export function withCategoryNotes(schema: GraphQLSchema, cls: Classification): GraphQLSchema {
  return mapSchema(schema, {
    [MapperKind.OBJECT_FIELD]: (config, field, type) => ({ ...config, description: withNote(config.description, classificationNote(cls, `${type}.${field}`)) }),
  });
}
