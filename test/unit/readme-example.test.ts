/**
 * The README's example answers are real: every value it prints is in the demo district that
 * `npm start` generates (the end-to-end CLI test runs the same queries against the demo itself).
 */
import { describe, expect, it } from 'vitest';
import { RosterDataset } from '../../src/demo/dataset.ts';
import { readmeExample } from '../support/readme.ts';

const BANDS: Record<string, string> = { KG: 'K-2', '01': 'K-2', '02': 'K-2', '03': '3-5', '04': '3-5', '05': '3-5', '06': '6-8', '07': '6-8', '08': '6-8', '09': '9-12', '10': '9-12', '11': '9-12', '12': '9-12' };

describe('the README example', () => {
  const ds = RosterDataset.generate();
  const ex = readmeExample();

  it('shows a school, a class of it, its real student count and two of its students', () => {
    const school = ex.answer.data.schools.edges[0].node;
    const cls = school.classes.edges[0].node;
    const org = ds.list('org').find((o) => o.data.name === school.name);
    expect(org, school.name).toBeDefined();
    const row = ds.list('class').find((c) => c.data.schoolKey === org!.key && c.data.title === cls.title);
    expect(row, cls.title).toBeDefined();
    const students = ds.list('enrollment').filter((e) => e.data.classKey === row!.key && e.data.role === 'student').map((e) => ds.get('person', e.data.personKey)!.data);
    expect(cls.enrollments.totalCount).toBe(students.length);
    expect(cls.enrollments.edges).toHaveLength(2);
    for (const { node } of cls.enrollments.edges) {
      expect(node.role).toBe('STUDENT');
      expect(students.map((p) => ({ givenName: p.givenName, familyName: p.familyName, grades: p.grades }))).toContainEqual(node.person);
    }
  });

  it('shows the analytics client a pseudonym and generalised values that fit a student of the district', () => {
    const { person } = ex.analyticsNode.node;
    expect(person.id).toMatch(/^p1_[A-Za-z0-9_-]{22}$/);
    expect(ex.analyticsQuery).not.toMatch(/schools|title|school/);
    const inBand = ds.list('person').filter((p) => p.data.roles.includes('student') && BANDS[p.data.grades?.[0] ?? ''] === person.gradeBand);
    expect(inBand.length, person.gradeBand).toBeGreaterThan(0);
    const years = new Set(ds.list('demographics').filter((d) => inBand.some((p) => p.key === d.data.personKey)).map((d) => Number(d.data.birthDate!.slice(0, 4))));
    expect(years).toContain(person.demographics.birthYear);
    const [lo, hi] = (person.demographics.ageBand as string).split('-').map(Number);
    expect(hi! - lo!).toBe(2);
  });
});
