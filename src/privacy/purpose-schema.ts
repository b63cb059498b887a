/**
 * A schema per purpose, derived at start-up from the unified schema and the purpose's policy:
 * - denied fields do not exist (introspection tells each client the truth; asking for one is an
 *   ordinary validation error, reworded to name the field and the purpose);
 * - a pseudonymised Person.id is typed `Pseudonym` and resolves to the materialised pseudonym of the
 *   purpose's domain (no HMAC at query time);
 * - a type whose id a purpose may not see leaves the `Node` interface, and `node(id:)` does not find
 *   its records; where Person.id is a pseudonym, `node(id:)` returns the union `AnyRecord` (every
 *   Node here, and Person) and takes a pseudonym too;
 * - every Person field notes the person in the request's disclosure set (audit + ledger);
 * - types no client of the purpose can reach, and the classification directives, are left out;
 * - each classified field's description ends with its classification and what this purpose
 *   receives of it (./field-notes.ts; an admin purpose's gives the category only).
 */
import { MapperKind, mapSchema } from '@graphql-tools/utils';
import {
  GraphQLNonNull,
  GraphQLObjectType,
  GraphQLSchema,
  GraphQLUnionType,
  getNamedType,
  isAbstractType,
  isInputObjectType,
  isInterfaceType,
  isObjectType,
  isScalarType,
  isSpecifiedDirective,
  defaultFieldResolver,
  type GraphQLNamedType,
  type GraphQLFieldConfig,
  type GraphQLFieldResolver,
} from 'graphql';
import type { EntityRow } from '../store/types.ts';
import { GRAPHQL_TYPE } from '../model/names.ts';
import { isStructural, type Classification } from './classification.ts';
import { fieldActions, type Action, type Purpose } from './policy.ts';
import { versionOf } from './pseudonym.ts';
import { isErasedTombstone } from '../store/types.ts';
import { describedCuts, relationCuts } from './relations.ts';
import { classificationNote, withNote } from './field-notes.ts';

/**
 * What this schema's own resolvers read of a request's context (src/graphql/context.ts builds it).
 * Declared here rather than imported: the GraphQL layer sits above this one.
 */
export interface PurposeRequest {
  /** The pseudonymisation domain of a pseudonymising purpose. */
  pseudonymDomain?: string;
  /** Gateway ids of the people whose fields the request resolved (audit and disclosure ledger). */
  people: Set<string>;
  loaders: {
    pseudonymNow(id: string): string | undefined;
    pseudonym: { load(id: string): Promise<string | undefined> };
  };
}

export interface PurposeSchema {
  schema: GraphQLSchema;
  actions: Map<string, Action>;
  /** Coordinates the purpose receives in any form (allow or pseudonymise). */
  received: Set<string>;
  pseudonymises: boolean;
  /**
   * What the policy allows but this purpose's schema withholds, because it would tell a person's
   * membership the policy denies (src/privacy/relations.ts): coordinate (or "Type.field.argument")
   * → the Person field it would reveal.
   */
  withheld: Map<string, string>;
}

/**
 * `base` is the unified schema with its resolvers (src/graphql/schema.ts gives every field one);
 * the wrappers here fall back to graphql's default resolver only for a schema built without them.
 */
export function buildPurposeSchema(
  base: GraphQLSchema,
  cls: Classification,
  purpose: Pick<Purpose, 'id' | 'categories' | 'fields'> & { admin?: boolean },
): PurposeSchema {
  const actions = fieldActions(purpose, cls);
  const denied = new Set([...actions].filter(([, a]) => a === 'deny').map(([c]) => c));
  const withheld = withholdRelations(base, denied);
  const pseudonymises = actions.get('Person.id') === 'pseudonymise';
  const pseudonymType = base.getType('Pseudonym');
  if (!isScalarType(pseudonymType)) throw new Error('schema/ must declare scalar Pseudonym');
  const idAllowed = (typeName: string) => actions.get(`${typeName}.id`) === 'allow';

  const schema = mapSchema(base, {
    // Operations marked @admin exist only in admin purposes' schemas.
    [MapperKind.MUTATION]: (type) => (purpose.admin ? type : null),
    [MapperKind.OBJECT_TYPE]: (type) => {
      const config = type.toConfig();
      if (config.interfaces.some((i) => i.name === 'Node') && !idAllowed(type.name)) {
        return new GraphQLObjectType({ ...config, interfaces: config.interfaces.filter((i) => i.name !== 'Node') });
      }
      return type;
    },
    [MapperKind.OBJECT_FIELD]: (fieldConfig, fieldName, typeName) => {
      const coord = `${typeName}.${fieldName}`;
      if (denied.has(coord)) return null;
      const args = fieldConfig.args && Object.keys(fieldConfig.args).filter((a) => withheld.has(`${coord}.${a}`));
      if (args?.length) fieldConfig = { ...fieldConfig, args: Object.fromEntries(Object.entries(fieldConfig.args!).filter(([a]) => !args.includes(a))) };
      if (!purpose.admin && fieldConfig.astNode?.directives?.some((d) => d.name.value === 'admin')) return null;
      if (coord === 'Query.node') {
        return { ...fieldConfig, resolve: nodeWithin(pseudonymises, (fieldConfig.resolve ?? defaultFieldResolver) as GraphQLFieldResolver<unknown, PurposeRequest>) } as GraphQLFieldConfig<unknown, unknown>;
      }
      // Finds a person by an identifier, so it needs the person's id to be shown in some form too.
      if (coord === 'Query.personBySignIn' && actions.get('Person.id') === 'deny') return null;
      if (coord === 'Query.person') {
        if (actions.get('Person.id') === 'deny') return null;
        if (pseudonymises) return { ...fieldConfig, args: { ...fieldConfig.args, id: { ...fieldConfig.args!.id!, type: new GraphQLNonNull(pseudonymType) } } } as GraphQLFieldConfig<unknown, unknown>;
        return fieldConfig;
      }
      let out = fieldConfig as GraphQLFieldConfig<unknown, PurposeRequest>;
      if (coord === 'Person.id' && pseudonymises) {
        out = {
          ...out,
          type: new GraphQLNonNull(pseudonymType),
          description: 'A keyed pseudonym of this person in this purpose’s pseudonymisation domain.',
          resolve: (row, _args, ctx) => {
            // A tombstone carries the pseudonyms its person had when deleted (only a tombstone: a
            // stored record never does, so its data is not read — an extract may hold its key only).
            const kept = (row as EntityRow).tombstone
              ? ((row as EntityRow).data as { _pseudonyms?: Record<string, string> })._pseudonyms?.[ctx.pseudonymDomain ?? '']
              : undefined;
            if (kept) return kept;
            // Synchronous where the person was loaded with its pseudonym: a promise per person is
            // most of what a pseudonymised list would otherwise cost over the unrestricted one.
            const id = (row as EntityRow).id;
            const now = ctx.loaders.pseudonymNow(id);
            if (now) return now;
            return ctx.loaders.pseudonym.load(id).then((p) => {
              if (!p) throw new Error('pseudonym not materialised for this person');
              return p;
            });
          },
        };
      }
      if (typeName === 'Person') out = { ...out, resolve: notePerson(out.resolve ?? (defaultFieldResolver as GraphQLFieldResolver<unknown, PurposeRequest>)) };
      // Said after the Person.id rewrite, so the note follows the pseudonym's own description.
      return { ...out, description: withNote(out.description, classificationNote(cls, coord, purpose.admin ? undefined : actions)) };
    },
  });
  const received = new Set([...actions].filter(([c, a]) => a !== 'deny' && !denied.has(c)).map(([c]) => c));
  return { schema: reachableOnly(pseudonymises ? nodeTakesPseudonyms(schema) : schema), actions, received, pseudonymises, withheld };
}

/**
 * Adds to `denied` what the policy's denials imply: relations and described values that would tell
 * a person's denied membership from the other side, and fields whose type has nothing left to show.
 * Either may cause the other (a class with nothing left cuts a person off from classes), so both
 * repeat until nothing changes. Returns what was withheld beyond the policy, with the reason.
 */
function withholdRelations(base: GraphQLSchema, denied: Set<string>): Map<string, string> {
  const withheld = new Map<string, string>();
  for (let changed = true; changed; ) {
    changed = false;
    const cuts = relationCuts(base, denied);
    const described = describedCuts(base, denied, cuts.personSide);
    for (const [coord, because] of [...cuts.fields, ...described]) {
      denied.add(coord);
      withheld.set(coord, because);
      changed = true;
    }
    for (const [arg, because] of cuts.arguments) {
      denied.add(arg);
      withheld.set(arg, because);
      changed = true;
    }
    // A field whose type has nothing left to show is denied too.
    for (const type of Object.values(base.getTypeMap())) {
      if (!isObjectType(type) || type.name.startsWith('__')) continue;
      for (const f of Object.values(type.getFields())) {
        const coord = `${type.name}.${f.name}`;
        if (denied.has(coord)) continue;
        const target = getNamedType(f.type);
        if (isObjectType(target) && !isStructural(target.name) && Object.keys(target.getFields()).every((n) => denied.has(`${target.name}.${n}`))) {
          denied.add(coord);
          changed = true;
        }
      }
    }
  }
  return withheld;
}

/**
 * Where Person.id is a `Pseudonym`, Person cannot implement `Node` (GraphQL lets no `Pseudonym` field
 * implement `Node.id: ID!`), yet `node(id:)` should find anything a client holds an id of. So in
 * such a purpose `node` returns the union `AnyRecord` — every type that is a Node here, and Person —
 * and clients select with inline fragments (`node(id: $id) { ... on Person { gradeBand } }`), as
 * they do for any Node.
 */
function nodeTakesPseudonyms(schema: GraphQLSchema): GraphQLSchema {
  const query = schema.getQueryType()!;
  const node = query.getFields().node;
  const person = schema.getType('Person');
  if (!node || !isObjectType(person)) return schema;
  const members = Object.values(schema.getTypeMap()).filter(
    (t): t is GraphQLObjectType => isObjectType(t) && (t === person || t.getInterfaces().some((i) => i.name === 'Node')),
  );
  const anyRecord = new GraphQLUnionType({
    name: 'AnyRecord',
    description: 'What node(id:) finds in this purpose: any record whose id it shows — a person by its pseudonym, the others by their ids.',
    types: members,
    resolveType: (row) => GRAPHQL_TYPE[(row as EntityRow).type],
  });
  const config = schema.toConfig();
  const queryConfig = query.toConfig();
  const newQuery = new GraphQLObjectType({ ...queryConfig, fields: { ...queryConfig.fields, node: { ...queryConfig.fields.node!, type: anyRecord } } });
  return new GraphQLSchema({ ...config, query: newQuery, types: [...config.types.filter((t) => t !== query), anyRecord] });
}

/**
 * Keeps only the types a client can reach from its roots, and only the directives GraphQL itself
 * defines: a type left behind by denied fields (an enum of free-lunch statuses, the webhook types
 * of admin operations) or the classification directives would tell a client about data it may
 * not have. (graphql-tools' pruneSchema keeps unreachable enums, hence this walk.)
 */
function reachableOnly(schema: GraphQLSchema): GraphQLSchema {
  const seen = new Set<string>();
  const queue: GraphQLNamedType[] = [schema.getQueryType(), schema.getMutationType()].filter((t): t is GraphQLObjectType => !!t);
  while (queue.length) {
    const t = queue.pop()!;
    if (seen.has(t.name)) continue;
    seen.add(t.name);
    if (isObjectType(t) || isInterfaceType(t)) {
      for (const f of Object.values(t.getFields())) queue.push(getNamedType(f.type), ...f.args.map((a) => getNamedType(a.type)));
      queue.push(...t.getInterfaces());
    }
    if (isAbstractType(t)) queue.push(...schema.getPossibleTypes(t));
    if (isInputObjectType(t)) queue.push(...Object.values(t.getFields()).map((f) => getNamedType(f.type)));
  }
  const config = schema.toConfig();
  return new GraphQLSchema({ ...config, types: config.types.filter((t) => seen.has(t.name)), directives: config.directives.filter(isSpecifiedDirective) });
}

/**
 * `node(id:)` within a purpose: a record whose type is no Node here (its id is withheld) is not
 * found, rather than failing at type resolution. Where people have pseudonyms, a pseudonym finds
 * its person (the same lookup as `person(id:)`); a person's gateway id finds nothing, since the
 * purpose never shows it.
 */
function nodeWithin(pseudonymises: boolean, inner: GraphQLFieldResolver<unknown, PurposeRequest>): GraphQLFieldResolver<unknown, PurposeRequest> {
  return async (src, args: { id?: unknown }, ctx, info) => {
    if (pseudonymises && typeof args.id === 'string' && versionOf(args.id) !== undefined) {
      const byPseudonym = info.schema.getQueryType()!.getFields().person!.resolve!;
      return byPseudonym(src, { id: args.id }, ctx, info);
    }
    const row = (await inner(src, args, ctx, info)) as EntityRow | null | undefined;
    if (!row) return null;
    const type = info.schema.getType(GRAPHQL_TYPE[row.type]);
    return isObjectType(type) && type.getInterfaces().some((i) => i.name === 'Node') ? row : null;
  };
}

function notePerson(inner: GraphQLFieldResolver<unknown, PurposeRequest>): GraphQLFieldResolver<unknown, PurposeRequest> {
  return (row, args, ctx, info) => {
    // An erasure's tombstone discloses nothing about the person: the ledger must not list them again.
    if (!isErasedTombstone(row as EntityRow)) ctx.people.add((row as EntityRow).id);
    return inner(row, args, ctx, info);
  };
}

/** Rewrites "Cannot query field" validation errors so they name the purpose that denies the field. */
export function explainDenied(message: string, purposeId: string, clientId: string | undefined, cls: Classification, withheld?: ReadonlyMap<string, string>): string {
  const m = /^Cannot query field "(\w+)" on type "(\w+)"/.exec(message) ?? /^Unknown argument "(\w+)" on field "(\w+\.\w+)"/.exec(message);
  if (!m) return message;
  const coord = `${m[2]}.${m[1]}`;
  const because = withheld?.get(coord);
  const who = `the purpose "${purposeId}"${clientId ? ` of client "${clientId}"` : ''}`;
  if (because) return `${message.replace(/\.$/, '')}: ${who} withholds ${coord}, since it would tell a person's ${because}, which the purpose does not allow.`;
  const f = cls.get(coord);
  if (!f) return message;
  return `Cannot query field "${m[1]}" on type "${m[2]}": the purpose "${purposeId}"${clientId ? ` of client "${clientId}"` : ''} does not allow ${f.coordinate} (${f.category}).`;
}
