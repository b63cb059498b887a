/**
 * Renders change-event records as plain JSON through a purpose schema: every leaf field the
 * purpose has, the ids of referenced records, and a person's demographics. Union members type
 * some fields differently (Person.id is a Pseudonym, Organization.type an OrgType), so fields are
 * aliased per member and the aliases removed afterwards.
 */
import { getNamedType, isLeafType, isObjectType, isUnionType, type GraphQLObjectType, type GraphQLSchema } from 'graphql';

const SEP = '__';

function memberSelection(t: GraphQLObjectType): string {
  const parts: string[] = [];
  for (const f of Object.values(t.getFields())) {
    // The tenant is said once per payload (and only to clients of several tenants), not per record.
    if (f.args.length || f.name === 'sources' || f.name === 'tenant') continue;
    const named = getNamedType(f.type);
    const alias = `${t.name}${SEP}${f.name}: ${f.name}`;
    if (isLeafType(named)) parts.push(alias);
    else if (isObjectType(named) && !named.name.endsWith('Connection')) {
      if (named.getFields().id) parts.push(`${alias} { id }`);
      else {
        const leaves = Object.values(named.getFields()).filter((x) => isLeafType(getNamedType(x.type)) && !x.args.length);
        if (leaves.length) parts.push(`${alias} { ${leaves.map((x) => x.name).join(' ')} }`);
      }
    }
  }
  return parts.join(' ');
}

export function recordSelection(schema: GraphQLSchema): string {
  const union = schema.getType('RosterRecord');
  if (!isUnionType(union)) return '__typename';
  return `__typename ${union.getTypes().map((t) => `... on ${t.name} { ${memberSelection(t)} }`).join(' ')}`;
}

/**
 * Only the ids of union members (`... on Person { Person__id: id }`), for a reference to another
 * record such as a merge's survivor: whoever follows the feed re-points to it by its id.
 */
export function idSelection(schema: GraphQLSchema): string {
  const union = schema.getType('RosterRecord');
  if (!isUnionType(union)) return '__typename';
  const members = union.getTypes().filter((t) => t.getFields().id);
  return `__typename ${members.map((t) => `... on ${t.name} { ${t.name}${SEP}id: id }`).join(' ')}`;
}

export function cleanRecord(record: unknown): unknown {
  if (!record || typeof record !== 'object') return record;
  const r = record as Record<string, unknown>;
  const type = r.__typename as string;
  const out: Record<string, unknown> = { __typename: type };
  for (const [k, v] of Object.entries(r)) if (k.startsWith(`${type}${SEP}`)) out[k.slice(type.length + SEP.length)] = v;
  return out;
}
