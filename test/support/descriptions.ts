/**
 * What a schema leaves undescribed: every named type, field, argument, input field, enum value and
 * directive (with its arguments) outside GraphQL's own introspection types and built-in scalars.
 */
import { isEnumType, isInputObjectType, isInterfaceType, isObjectType, isSpecifiedDirective, isSpecifiedScalarType, type GraphQLSchema } from 'graphql';

export function undescribed(schema: GraphQLSchema): string[] {
  const missing: string[] = [];
  const need = (what: string, d: string | null | undefined) => {
    if (!d?.trim()) missing.push(what);
  };
  for (const type of Object.values(schema.getTypeMap())) {
    if (type.name.startsWith('__') || isSpecifiedScalarType(type)) continue;
    need(type.name, type.description);
    if (isObjectType(type) || isInterfaceType(type)) {
      for (const f of Object.values(type.getFields())) {
        need(`${type.name}.${f.name}`, f.description);
        for (const a of f.args) need(`${type.name}.${f.name}(${a.name}:)`, a.description);
      }
    }
    if (isInputObjectType(type)) for (const f of Object.values(type.getFields())) need(`${type.name}.${f.name}`, f.description);
    if (isEnumType(type)) for (const v of type.getValues()) need(`${type.name}.${v.name}`, v.description);
  }
  for (const d of schema.getDirectives()) {
    if (isSpecifiedDirective(d)) continue;
    need(`@${d.name}`, d.description);
    for (const a of d.args) need(`@${d.name}(${a.name}:)`, a.description);
  }
  return missing.sort();
}
