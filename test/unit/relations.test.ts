/**
 * Relations are classified too (src/privacy/relations.ts): a purpose denied a person's school, class
 * or grade cannot reach it from any side — not through the other record's list of people, not
 * through a class's school next to its enrollments, not through a class's grades, not by a filter
 * argument. Checked on each purpose's built schema as a graph: what a client could join is what
 * its schema connects.
 */
import { describe, expect, it } from 'vitest';
import { getNamedType, isObjectType, parse, printSchema, validate, type GraphQLSchema } from 'graphql';
import { explainDenied } from '../../src/privacy/purpose-schema.ts';
import { parseConfig } from '../../src/config/config.ts';
import { buildUnifiedSchema } from '../../src/graphql/schema.ts';
import { KeyRing } from '../../src/privacy/pseudonym.ts';
import { setupPrivacy } from '../../src/graphql/privacy.ts';
import { ageBand, birthYear } from '../../src/privacy/generalise.ts';
import { demoPrivacyConfig, TEST_MASTER_KEY } from '../support/privacy.ts';

const keyring = new KeyRing(TEST_MASTER_KEY, 'test');
const setup = (purposes: Record<string, unknown>) => setupPrivacy(parseConfig({ store: ':memory:', purposes, clients: [] }, 'rg.yaml'), buildUnifiedSchema(), { keyring });
const basis = { legalBasis: 'test' };

/**
 * Record types a client of this schema can join to Person: connected through fields, connections or
 * id-filter arguments. A type without an id here (an enrollment whose id analytics may not see)
 * joins what it leads to with what leads to it, since it is read nested inside its owner.
 */
function joinable(schema: GraphQLSchema): Set<string> {
  const isRecord = (name: string) => {
    const t = schema.getType(name);
    return isObjectType(t) && !!t.getFields().id && !name.startsWith('__') && name !== 'Query' && !name.endsWith('Connection') && !name.endsWith('Edge');
  };
  /** The record types a field's type stands for: itself, or what it leads to when it has no id. */
  const records = (name: string, seen = new Set<string>()): string[] => {
    if (seen.has(name)) return [];
    seen.add(name);
    const t = schema.getType(name);
    if (!isObjectType(t) || name.startsWith('__')) return [];
    if (isRecord(name)) return [name];
    return Object.values(t.getFields()).flatMap((f) => records(getNamedType(f.type).name, seen));
  };
  const edges: [string, string][] = [];
  for (const t of Object.values(schema.getTypeMap())) {
    if (!isRecord(t.name) && t.name !== 'Query') continue;
    for (const f of Object.values((t as import('graphql').GraphQLObjectType).getFields())) {
      const to = records(getNamedType(f.type).name);
      if (t.name !== 'Query') for (const x of to) edges.push([t.name, x]);
      // Any argument taking an id links the listed records to the records it names.
      for (const a of f.args) if (/Id$/.test(a.name)) for (const x of to) edges.push([x, a.name.slice(0, -2)]);
    }
  }
  const seen = new Set(['Person']);
  for (let grew = true; grew; ) {
    grew = false;
    for (const [a, b] of edges) {
      for (const [x, y] of [[a, b], [b, a]] as const) {
        if (seen.has(x) && !seen.has(y)) (seen.add(y), (grew = true));
      }
    }
  }
  return seen;
}

describe('relations as quasi-identifiers', () => {
  const demo = setupPrivacy(demoPrivacyConfig(':memory:'), buildUnifiedSchema(), { keyring });

  it('analytics, denied a person\'s organisations, cannot join a person to any organisation from any side', () => {
    const schema = demo.schemas.get('analytics')!.schema;
    const side = joinable(schema);
    expect(side.has('Organization')).toBe(false);
    expect(side.has('school')).toBe(false);
    // …while it still reaches what it is for: course participation.
    for (const t of ['Class', 'Course', 'AcademicSession']) expect(side.has(t), t).toBe(true);
    const sdl = printSchema(schema);
    expect(sdl).not.toMatch(/schoolId/);
    const fields = (t: string) => Object.keys((schema.getType(t) as import('graphql').GraphQLObjectType).getFields());
    expect(fields('Organization')).not.toContain('people');
    expect(fields('Organization')).not.toContain('classes');
    expect(fields('Class')).not.toContain('school');
    expect(fields('Enrollment')).not.toContain('school');
    expect(fields('Course')).not.toContain('organization');
    // Grades: exact ones are denied, so a class's or course's grades are too; the band stays.
    expect(fields('Class')).not.toContain('grades');
    expect(fields('Course')).not.toContain('grades');
    expect(fields('Person')).toContain('gradeBand');
    // Free text schools and vendors fill carries identity: titles, codes, rooms.
    for (const c of ['Person.title', 'Class.title', 'Class.classCode', 'Class.location', 'Course.title', 'Course.courseCode', 'AcademicSession.title']) {
      const [t, f] = c.split('.') as [string, string];
      expect(fields(t), c).not.toContain(f);
    }
    expect(fields('Class')).toContain('subjects');
    expect([...demo.schemas.get('analytics')!.withheld.keys()]).toEqual(
      expect.arrayContaining(['Organization.people', 'Organization.classes', 'Class.school', 'Enrollment.school', 'Course.organization', 'AcademicSession.organization', 'Query.classes.schoolId']),
    );
  });

  it('a purpose granted the relation keeps every side of it', () => {
    const schema = demo.schemas.get('roster-sync')!.schema;
    expect(joinable(schema).has('Organization')).toBe(true);
    expect(demo.schemas.get('roster-sync')!.withheld.size).toBe(0);
    // (The argument, not the SDL's layout: described arguments print one per line.)
    expect(schema.getQueryType()!.getFields().classes!.args.map((a) => `${a.name}: ${a.type}`)).toContain('schoolId: ID');
  });

  it('quasi-identifiers allowed but exact grades denied: a class\'s and a course\'s grades go with them, the organisation stays', () => {
    const p = setup({ q: { ...basis, categories: { NONE: 'allow', QUASI: 'allow', IDENTIFIER: 'allow' }, fields: { 'Person.grades': 'deny' } } });
    const ps = p.schemas.get('q')!;
    expect(ps.withheld.get('Class.grades')).toBe('Person.grades');
    expect(ps.withheld.get('Course.grades')).toBe('Person.grades');
    expect(ps.received.has('Class.grades')).toBe(false);
    expect(ps.received.has('Class.school')).toBe(true);
    expect(joinable(ps.schema).has('Organization')).toBe(true);
  });

  it('a purpose denied class membership cannot join a person to classes, whichever way round', () => {
    const p = setup({ q: { ...basis, categories: { NONE: 'allow', QUASI: 'allow', IDENTIFIER: 'allow' }, fields: { 'Person.enrollments': 'deny' } } });
    const ps = p.schemas.get('q')!;
    const side = joinable(ps.schema);
    expect(side.has('Enrollment')).toBe(false);
    // A person's school and that school's classes say nothing of which class is theirs.
    expect(side.has('Class')).toBe(true);
    expect(ps.withheld.get('Class.enrollments')).toBe('Person.enrollments');
    expect(ps.withheld.get('Enrollment.person')).toBe('Person.enrollments');
  });

  it('asking for a withheld relation or filter is refused naming the Person field it would tell', () => {
    const ps = demo.schemas.get('analytics')!;
    const errors = (q: string) => validate(ps.schema, parse(q)).map((e) => explainDenied(e.message, 'analytics', undefined, demo.classification, ps.withheld));
    expect(errors('{ schools { edges { node { people { totalCount } } } } }')).toEqual([
      expect.stringMatching(/^Cannot query field "people" on type "Organization"[^:]*: the purpose "analytics" withholds Organization\.people, since it would tell a person's Person\.organizations, which the purpose does not allow\.$/),
    ]);
    expect(errors('{ classes(schoolId: "org_x") { totalCount } }')).toEqual([expect.stringMatching(/withholds Query\.classes\.schoolId, since it would tell a person's Person\.organizations/)]);
    expect(errors('{ people { edges { node { email } } } }')).toEqual([expect.stringMatching(/does not allow Person\.email \(DIRECT\)/)]);
  });

  it('an explicit allow that the purpose\'s own denial overrules is a config error naming both', () => {
    expect(() => setup({ q: { ...basis, categories: { NONE: 'allow', IDENTIFIER: 'pseudonymise' }, fields: { 'Class.school': 'allow' } } })).toThrow(
      /purposes\.q\.fields\.Class\.school: allowed, but it tells a person's Person\.organizations, which the purpose denies/,
    );
  });
});

describe('generalised dates cannot be combined into more than the coarsest', () => {
  it('the age band follows from the birth year alone: every birth date of a year gets one band, on any day', () => {
    for (const today of ['2026-01-01', '2026-03-14', '2026-12-31'].map((d) => new Date(`${d}T12:00:00Z`))) {
      for (const year of [2008, 2010, 2013, 2019]) {
        const bands = new Set<string | null>();
        for (let day = 0; day < 365; day += 7) bands.add(ageBand(new Date(Date.UTC(year, 0, 1 + day)).toISOString().slice(0, 10), today));
        expect(bands.size, `${year} on ${today.toISOString()}`).toBe(1);
        expect(birthYear(`${year}-06-30`)).toBe(year);
      }
    }
    expect(ageBand('2010-12-31', new Date('2026-01-02T00:00:00Z'))).toBe('15-17'); // 16 this year, not yet 16 by date
  });
});
