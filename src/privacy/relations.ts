/**
 * Relations are classified too. A person's membership — which school, which class, which grade —
 * is a quasi-identifier whether it is read from the person (`Person.organizations`) or from the
 * other side (`Organization.people`, a class's `school` next to its enrollments, a class's
 * `grades`). This module derives, from the schema and one purpose's field decisions, which
 * relations that purpose may traverse, so that denying a person's school denies it from every side.
 *
 * The model: records with an `id` are nodes; every relation field (or connection) and every
 * filter argument marked `@links` is an edge between two record types. A purpose can join any two
 * records whose types are connected through edges it has: directly in one query, or across queries
 * by the ids of the records in between. So for each record type a person's own relation fields
 * lead to (Organization through `Person.organizations`, Enrollment through `Person.enrollments`, …)
 * that the purpose is denied, that type must not be connected to Person at all: every edge between
 * it and the person's side of the graph is cut. Values that describe the people linked to a record
 * (`@describes(field: "Person.grades")` on `Class.grades`) follow that Person field's decision
 * wherever the record is on the person's side.
 *
 * Value objects without an id (SourceRef, Address, Demographics) join nothing: each belongs to one
 * record. What they carry is classified field by field like any other.
 */
import { getNamedType, isObjectType, Kind, type ConstDirectiveNode, type GraphQLField, type GraphQLNamedType, type GraphQLObjectType, type GraphQLSchema } from 'graphql';
import { isStructural } from './classification.ts';

/** An edge: a field of `from` (or a filter argument of it) that leads to records of `to`. */
export interface Relation {
  coordinate: string;
  from: string;
  to: string;
  /** For a filter argument marked @links: its name (the field itself stays, the argument goes). */
  argument?: string;
}

export interface RelationCuts {
  /** Relation fields withheld, with the Person field whose denial withholds each. */
  fields: Map<string, string>;
  /** Filter arguments withheld ("Query.classes.schoolId"), with the Person field whose denial withholds each. */
  arguments: Map<string, string>;
  /** The record types a person can be joined with in this purpose (Person included). */
  personSide: Set<string>;
}

const isRecordType = (t: unknown): t is GraphQLObjectType => isObjectType(t) && !isStructural(t.name) && !t.name.startsWith('__') && !!t.getFields().id;

/** The record type a field leads to: its own type, or the node type of a connection. */
function recordTarget(schema: GraphQLSchema, f: GraphQLField<unknown, unknown>): string | undefined {
  let t: GraphQLNamedType | undefined = getNamedType(f.type);
  if (isObjectType(t) && t.name.endsWith('Connection')) {
    const edge = t.getFields().edges && getNamedType(t.getFields().edges!.type);
    const node = isObjectType(edge) ? edge.getFields().node : undefined;
    if (node) t = getNamedType(node.type);
  }
  return isRecordType(t) && schema.getType(t.name) === t ? t.name : undefined;
}

const directiveArg = (nodes: readonly ConstDirectiveNode[] | undefined, directive: string, arg: string) => {
  const a = nodes?.find((d) => d.name.value === directive)?.arguments?.find((x) => x.name.value === arg)?.value;
  return a && a.kind === Kind.STRING ? a.value : undefined;
};

/** Every relation of the unified schema: record → record fields, and @links filter arguments (root lists included). */
export function relationsOf(schema: GraphQLSchema): Relation[] {
  const out: Relation[] = [];
  for (const type of Object.values(schema.getTypeMap())) {
    if (!isObjectType(type) || type.name.startsWith('__') || isStructural(type.name) && type.name !== 'Query') continue;
    for (const f of Object.values(type.getFields())) {
      const coordinate = `${type.name}.${f.name}`;
      const to = recordTarget(schema, f);
      if (to && isRecordType(type)) out.push({ coordinate, from: type.name, to });
      for (const a of f.args) {
        const linked = directiveArg(a.astNode?.directives, 'links', 'type');
        // On a root list, the argument links the listed type to the linked one.
        const from = isRecordType(type) ? type.name : to;
        if (linked && from) out.push({ coordinate, from, to: linked, argument: a.name });
      }
    }
  }
  return out;
}

/** Fields marked @describes(field: "Person.x"): coordinate → the Person field they tell about. */
export function describedFields(schema: GraphQLSchema): Map<string, string> {
  const out = new Map<string, string>();
  for (const type of Object.values(schema.getTypeMap())) {
    if (!isObjectType(type) || type.name.startsWith('__')) continue;
    for (const f of Object.values(type.getFields())) {
      const described = directiveArg(f.astNode?.directives, 'describes', 'field');
      if (described) out.set(`${type.name}.${f.name}`, described);
    }
  }
  return out;
}

/**
 * The cuts one purpose needs. `denied` holds the coordinates its policy denies, and arguments
 * already withheld as "Type.field.argument" (it is not changed); the answer lists what must be
 * withheld on top, each with the reason.
 */
export function relationCuts(schema: GraphQLSchema, denied: ReadonlySet<string>): RelationCuts {
  const relations = relationsOf(schema);
  const fields = new Map<string, string>();
  const args = new Map<string, string>();
  const key = (r: Relation) => (r.argument ? `${r.coordinate}.${r.argument}` : r.coordinate);
  const open = (r: Relation) => !denied.has(r.coordinate) && !denied.has(key(r)) && !fields.has(r.coordinate) && !args.has(key(r));
  const personFields = relations.filter((r) => r.from === 'Person' && !r.argument);
  /** Types reachable from Person over open edges, not passing through `without`. */
  const side = (without?: string) => {
    const seen = new Set(['Person']);
    const queue = ['Person'];
    while (queue.length) {
      const t = queue.pop()!;
      for (const r of relations) {
        if (!open(r)) continue;
        const next = r.from === t ? r.to : r.to === t ? r.from : undefined;
        if (next && next !== without && !seen.has(next)) {
          seen.add(next);
          queue.push(next);
        }
      }
    }
    return seen;
  };
  // A type the purpose may not join to a person: every Person field leading to it is denied.
  const deniedTargets = new Map<string, string>();
  for (const r of personFields) {
    if (r.to === 'Person') continue;
    const granted = personFields.some((g) => g.to === r.to && !denied.has(g.coordinate));
    if (!granted) deniedTargets.set(r.to, personFields.filter((g) => g.to === r.to).map((g) => g.coordinate).sort()[0]!);
  }
  // Cutting one type off may disconnect another; repeat until nothing changes.
  for (let changed = true; changed; ) {
    changed = false;
    for (const [target, because] of deniedTargets) {
      const personSide = side(target);
      for (const r of relations) {
        if (!open(r)) continue;
        const crosses = (r.from === target && personSide.has(r.to)) || (r.to === target && personSide.has(r.from));
        if (!crosses) continue;
        if (r.argument) args.set(key(r), because);
        else fields.set(r.coordinate, because);
        changed = true;
      }
    }
  }
  return { fields, arguments: args, personSide: side() };
}

/**
 * Values on the person's side that describe the people linked to them, withheld where the Person
 * field they describe is denied.
 */
export function describedCuts(schema: GraphQLSchema, denied: ReadonlySet<string>, personSide: ReadonlySet<string>): Map<string, string> {
  const out = new Map<string, string>();
  for (const [coordinate, described] of describedFields(schema)) {
    const type = coordinate.slice(0, coordinate.indexOf('.'));
    if (personSide.has(type) && denied.has(described) && !denied.has(coordinate)) out.set(coordinate, described);
  }
  return out;
}
