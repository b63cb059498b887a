import { describe, expect, it } from 'vitest';
import { generateDistrict, countDistrict, districtShape } from '../../src/demo/generator.ts';
import { RosterDataset } from '../../src/demo/dataset.ts';
import { demoViews } from '../../src/demo/demo.ts';

/** Classes per student, for every student of the district (0 where a student has none). */
function classesPerStudent(d: ReturnType<typeof generateDistrict>): number[] {
  const per = new Map<string, number>();
  for (const e of d.enrollment) if (e.data.role === 'student') per.set(e.data.personKey, (per.get(e.data.personKey) ?? 0) + 1);
  return d.person.filter((p) => p.data.roles.includes('student')).map((p) => per.get(p.key) ?? 0);
}

describe('demo district generator', () => {
  const d = generateDistrict();

  it('is deterministic for a seed and differs across seeds', () => {
    expect(generateDistrict()).toEqual(d);
    expect(generateDistrict({ seed: 7 }).person[0]).not.toEqual(d.person[0]);
  });

  it('has the default shape: 3 schools, 1500 students, 80 teachers, 200 classes, guardians, demographics', () => {
    const c = countDistrict(d);
    expect(d.org.filter((o) => o.data.type === 'school')).toHaveLength(3);
    expect(d.person.filter((p) => p.data.roles.includes('student'))).toHaveLength(1500);
    expect(d.person.filter((p) => p.data.roles.includes('teacher'))).toHaveLength(80);
    expect(c.class).toBe(200);
    expect(c.demographics).toBe(1500);
    expect(d.person.filter((p) => p.data.roles.includes('guardian')).length).toBeGreaterThan(800);
    expect(c.guardianship).toBeGreaterThan(1500);
  });

  it('has non-ASCII names, students in several classes, and a teacher in two schools', () => {
    // Not one token name: a good share of people, in given and in family names, beyond Latin-1 too.
    const nonAscii = (s: string) => /[^\x00-\x7f]/.test(s);
    const people = d.person.map((p) => p.data);
    expect(people.filter((p) => nonAscii(p.givenName + p.familyName)).length / people.length).toBeGreaterThan(0.2);
    expect(people.some((p) => nonAscii(p.givenName))).toBe(true);
    expect(people.some((p) => nonAscii(p.familyName))).toBe(true);
    expect(people.some((p) => /[^\x00-\xff]/.test(p.givenName + p.familyName))).toBe(true);
    // Emails and usernames stay ASCII.
    for (const p of people) expect(p.email ?? '').toMatch(/^[\x21-\x7e]*$/);
    const perStudent = new Map<string, number>();
    for (const e of d.enrollment) if (e.data.role === 'student') perStudent.set(e.data.personKey, (perStudent.get(e.data.personKey) ?? 0) + 1);
    expect([...perStudent.values()].filter((n) => n >= 2).length).toBeGreaterThan(500);
    const t = d.person.find((p) => p.key === 'tch-0001')!;
    expect(t.data.orgKeys).toHaveLength(2);
    const schoolsTaught = new Set(d.enrollment.filter((e) => e.data.personKey === 'tch-0001').map((e) => e.data.schoolKey));
    expect(schoolsTaught.size).toBe(2);
  });

  it('keeps plausible distributions for demographics and program flags', () => {
    const n = d.demographics.length;
    const share = (f: (x: (typeof d.demographics)[number]['data']) => boolean) => d.demographics.filter((x) => f(x.data)).length / n;
    expect(share((x) => x.iep === true)).toBeGreaterThan(0.08);
    expect(share((x) => x.iep === true)).toBeLessThan(0.2);
    expect(share((x) => x.freeReducedLunch === 'free')).toBeGreaterThan(0.2);
    expect(share((x) => x.hispanicOrLatino === true)).toBeGreaterThan(0.15);
    // Sex roughly even, with a few other or unspecified.
    expect(share((x) => x.sex === 'female')).toBeGreaterThan(0.44);
    expect(share((x) => x.sex === 'male')).toBeGreaterThan(0.44);
    expect(share((x) => x.sex === 'other' || x.sex === 'unspecified')).toBeLessThan(0.05);
    // One race flag per student, each category present, white the largest share.
    const races = ['americanIndianOrAlaskaNative', 'asian', 'blackOrAfricanAmerican', 'nativeHawaiianOrOtherPacificIslander', 'white', 'twoOrMoreRaces'] as const;
    for (const x of d.demographics) expect(races.filter((r) => x.data[r] === true)).toHaveLength(1);
    for (const r of races) expect(share((x) => x[r] === true), r).toBeGreaterThan(0);
    expect(share((x) => x.white === true)).toBeGreaterThan(0.35);
    expect(share((x) => x.white === true)).toBeLessThan(0.65);
    for (const r of races.filter((r) => r !== 'white')) expect(share((x) => x[r] === true), r).toBeLessThan(share((x) => x.white === true));
    // English learners come from homes with another language; most homes speak English.
    expect(d.demographics.filter((x) => x.data.englishLanguageLearner).every((x) => x.data.homeLanguage !== 'eng')).toBe(true);
    expect(share((x) => x.englishLanguageLearner === true)).toBeGreaterThan(0.05);
    expect(share((x) => x.homeLanguage === 'eng')).toBeGreaterThan(0.6);
    expect(new Set(d.demographics.map((x) => x.data.homeLanguage)).size).toBeGreaterThan(4);
    expect(share((x) => x.section504 === true)).toBeGreaterThan(0.01);
    expect(share((x) => x.section504 === true)).toBeLessThan(0.06);
  });

  it('gives every student one or two guardians, shared between siblings', () => {
    const guardiansOf = new Map<string, string[]>();
    for (const g of d.guardianship) guardiansOf.set(g.data.studentKey, [...(guardiansOf.get(g.data.studentKey) ?? []), g.data.guardianKey]);
    const students = d.person.filter((p) => p.data.roles.includes('student'));
    for (const s of students) expect([1, 2], s.key).toContain(guardiansOf.get(s.key)?.length);
    const twoGuardians = students.filter((s) => guardiansOf.get(s.key)!.length === 2).length / students.length;
    expect(twoGuardians).toBeGreaterThan(0.4);
    expect(twoGuardians).toBeLessThan(0.7);
    // Siblings: guardians with more than one child in the district.
    const children = new Map<string, number>();
    for (const g of d.guardianship) children.set(g.data.guardianKey, (children.get(g.data.guardianKey) ?? 0) + 1);
    expect([...children.values()].filter((n) => n >= 2).length).toBeGreaterThan(50);
    expect(d.guardianship.filter((g) => g.data.relation === 'parent').length / d.guardianship.length).toBeGreaterThan(0.75);
  });

  it('gives students the age of their grade on the first day of the school year (a quarter a year older)', () => {
    const start = new Date(Date.UTC(2026, 8, 1)); // the default school year 2026-2027
    const grade = new Map(d.person.map((p) => [p.key, p.data.grades?.[0]]));
    const over = d.demographics.map((x) => {
      const b = new Date(`${x.data.birthDate}T00:00:00Z`);
      const age = start.getUTCFullYear() - b.getUTCFullYear() - (start < new Date(Date.UTC(start.getUTCFullYear(), b.getUTCMonth(), b.getUTCDate())) ? 1 : 0);
      const g = grade.get(x.data.personKey)!;
      return age - 5 - (g === 'KG' ? 0 : Number(g));
    });
    expect(new Set(over)).toEqual(new Set([0, 1]));
    const older = over.filter((n) => n === 1).length / over.length;
    expect(older).toBeGreaterThan(0.2);
    expect(older).toBeLessThan(0.3);
  });

  it('uses only reserved example domains for emails', () => {
    for (const p of d.person) if (p.data.email) expect(p.data.email).toMatch(/\.example$|@mail\.example$/);
  });

  it('gives every student a schedule: three to five classes in the default district', () => {
    const per = classesPerStudent(d);
    expect(Math.min(...per)).toBeGreaterThanOrEqual(3);
    expect(Math.max(...per)).toBeLessThanOrEqual(5);
  });

  it('keeps every student in a class however few classes a small district has', () => {
    for (const o of [{ students: 30 }, { students: 150, teachers: 9, classes: 15 }, { students: 20, teachers: 2, classes: 2, schools: 1 }]) {
      const small = generateDistrict(o);
      expect(Math.min(...classesPerStudent(small)), JSON.stringify(o)).toBeGreaterThanOrEqual(1);
      const people = new Set(small.person.map((p) => p.key));
      for (const e of small.enrollment) expect(people.has(e.data.personKey)).toBe(true);
    }
  });

  it('scales by option; teachers and classes not given grow with the students', () => {
    const small = generateDistrict({ students: 60, teachers: 6, classes: 10, schools: 2 });
    expect(small.person.filter((p) => p.data.roles.includes('student'))).toHaveLength(60);
    expect(small.class).toHaveLength(10);
    expect(districtShape({ students: 3000 })).toMatchObject({ students: 3000, teachers: 160, classes: 400 });
    expect(districtShape({ students: 30 })).toMatchObject({ teachers: 3, classes: 4 });
    expect(Math.min(...classesPerStudent(generateDistrict({ students: 3000 })))).toBeGreaterThanOrEqual(3);
  });
});

describe('the demo’s division of the district among vendors', () => {
  it('gives each vendor a consistent slice: every student it holds is on one of its class rosters', () => {
    // Classroom knows students only from course rosters; a guardianship naming a student on no
    // roster would wait for a person that never arrives.
    const ds = RosterDataset.generate();
    for (const [type, view] of demoViews(ds)) {
      const rostered = new Set(view.list('enrollment').map((e) => e.data.personKey));
      const classes = new Set(view.list('class').map((c) => c.key));
      const people = new Set(view.list('person').map((p) => p.key));
      for (const e of view.list('enrollment')) expect(classes.has(e.data.classKey) && people.has(e.data.personKey), `${type} ${e.key}`).toBe(true);
      for (const g of view.list('guardianship')) {
        expect(people.has(g.data.guardianKey), `${type} ${g.key}`).toBe(true);
        expect(rostered.has(g.data.studentKey), `${type}: student of ${g.key} on no roster`).toBe(true);
      }
    }
  });
});

describe('sandbox dataset journal', () => {
  it('records creates, updates with previous data, and deletions in order with increasing timestamps', () => {
    const ds = RosterDataset.generate({ students: 20, teachers: 3, classes: 4, schools: 1 });
    const p = ds.list('person')[0]!;
    ds.upsert('person', p.key, { givenName: 'New' });
    ds.remove('person', p.key);
    ds.upsert('org', 'sch-99', { name: 'Annex', type: 'school' });
    const j = ds.changesSince(0);
    expect(j.map((e) => e.op)).toEqual(['updated', 'deleted', 'created']);
    expect((j[0]!.previous as { givenName: string }).givenName).toBe(p.data.givenName);
    expect(j[0]!.at < j[1]!.at && j[1]!.at < j[2]!.at).toBe(true);
    expect(ds.get('person', p.key)).toBeUndefined();
    expect(ds.listWithDeleted('person').find((r) => r.key === p.key)?.deletedAt).toBeDefined();
  });
});
