/**
 * The roster as GraphQL shows it, in vendor-neutral terms (names, SIS ids, class titles), and the
 * same view computed from the demo dataset: end-to-end tests compare the two to show that a
 * source landed the district in the store and in GraphQL.
 */
import { execute, parse } from 'graphql';
import type { RosterDataset } from '../../src/demo/dataset.ts';
import type { Store } from '../../src/store/types.ts';
import { buildUnifiedSchema } from '../../src/graphql/schema.ts';
import { createContext } from '../../src/graphql/context.ts';

const schema = buildUnifiedSchema();

export interface RosterView {
  classes: string[];
  enrollments: string[];
  students: string[];
  teachers: string[];
  guardianships: string[];
}

const QUERY = parse(`{
  classes(first: 1000) { edges { node { title school { name } enrollments(first: 200) { edges { node { role person { sisId } } } } } } }
  students: people(first: 1000, role: STUDENT) { edges { node { sisId givenName familyName grades } } }
  teachers: people(first: 1000, role: TEACHER) { edges { node { sisId givenName familyName } } }
  guardianships(first: 1000) { edges { node { guardian { sisId } student { sisId } } } }
}`);

/* eslint-disable @typescript-eslint/no-explicit-any */
export async function rosterViaGraphQL(store: Store): Promise<RosterView> {
  const r = await execute({ schema, contextValue: createContext(store, new Map()), document: QUERY });
  if (r.errors) throw new Error(r.errors[0]!.message);
  const d = r.data as any;
  return {
    classes: d.classes.edges.map((e: any) => `${e.node.title} @ ${e.node.school?.name}`).sort(),
    enrollments: d.classes.edges.flatMap((e: any) => e.node.enrollments.edges.map((x: any) => `${e.node.title}|${x.node.role}|${x.node.person.sisId}`)).sort(),
    students: d.students.edges.map((e: any) => `${e.node.sisId} ${e.node.givenName} ${e.node.familyName} ${e.node.grades.join(',')}`).sort(),
    teachers: d.teachers.edges.map((e: any) => `${e.node.sisId} ${e.node.givenName} ${e.node.familyName}`).sort(),
    guardianships: d.guardianships.edges.map((e: any) => `${e.node.guardian?.sisId} → ${e.node.student?.sisId}`).sort(),
  };
}
/* eslint-enable @typescript-eslint/no-explicit-any */

export function expectedRoster(ds: RosterDataset): RosterView {
  const school = new Map(ds.list('org').map((o) => [o.key, o.data.name]));
  const cls = new Map(ds.list('class').map((c) => [c.key, c.data.title]));
  const person = new Map(ds.list('person').map((p) => [p.key, p.data]));
  const withRole = (role: string) => ds.list('person').filter((p) => p.data.roles.includes(role as never));
  return {
    classes: ds.list('class').map((c) => `${c.data.title} @ ${school.get(c.data.schoolKey!)}`).sort(),
    enrollments: ds.list('enrollment').map((e) => `${cls.get(e.data.classKey)}|${e.data.role.toUpperCase()}|${person.get(e.data.personKey)!.sisId}`).sort(),
    students: withRole('student').map((p) => `${p.data.sisId} ${p.data.givenName} ${p.data.familyName} ${(p.data.grades ?? []).join(',')}`).sort(),
    teachers: withRole('teacher').map((p) => `${p.data.sisId} ${p.data.givenName} ${p.data.familyName}`).sort(),
    guardianships: ds.list('guardianship').map((g) => `${person.get(g.data.guardianKey)!.sisId} → ${person.get(g.data.studentKey)!.sisId}`).sort(),
  };
}
