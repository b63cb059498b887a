/**
 * Ingest minimisation: what no purpose may receive in any form never reaches the store, and the
 * sync summary says what was left out.
 */
import { describe, expect, it } from 'vitest';
import Database from 'better-sqlite3';
import { buildUnifiedSchema } from '../../src/graphql/schema.ts';
import { classify } from '../../src/privacy/classification.ts';
import { createMinimiser } from '../../src/privacy/minimise.ts';
import { buildPurposeSchema } from '../../src/privacy/purpose-schema.ts';
import { DEMO_PURPOSES } from '../../src/demo/demo-policy.ts';
import { privateGateway } from '../support/privacy.ts';

const cls = classify(buildUnifiedSchema());
const receivedBy = (...purposes: { categories: object; fields?: object }[]) =>
  new Set(purposes.flatMap((p) => [...buildPurposeSchema(buildUnifiedSchema(), cls, { id: 'p', categories: p.categories, fields: p.fields ?? {} } as never).received]));

describe('ingest minimisation', () => {
  it('with only the analytics purpose, keeps what it reads (also through generalised forms) and drops the rest', () => {
    const m = createMinimiser(cls, receivedBy(DEMO_PURPOSES.analytics));
    const person = m('person', {
      givenName: 'Ana', familyName: 'Lee', email: 'ana@example.org', sisId: 'S1', roles: ['student'], grades: ['03'],
      orgKeys: ['sch-1'], primaryOrgKey: 'sch-1', graduationYear: '2035', enabled: true,
    });
    // grades feeds gradeBand; references keep the roster's structure; NONE fields stay.
    expect(person).toEqual({ roles: ['student'], grades: ['03'], orgKeys: ['sch-1'], primaryOrgKey: 'sch-1', enabled: true });
    const demo = m('demographics', { personKey: 'p1', birthDate: '2015-03-02', sex: 'female', postalCode: '12345', iep: true, asian: false });
    // birthDate feeds birthYear and ageBand; postalArea is not granted, so postalCode goes.
    expect(demo).toEqual({ personKey: 'p1', birthDate: '2015-03-02' });
    expect([...m.dropped].sort()).toEqual([
      'demographics.asian', 'demographics.iep', 'demographics.postalCode', 'demographics.sex',
      'person.email', 'person.familyName', 'person.givenName', 'person.graduationYear', 'person.sisId',
    ]);
  });

  it('drops a field the schema does not know, since no purpose can receive it', () => {
    const m = createMinimiser(cls, receivedBy(DEMO_PURPOSES['roster-sync'], DEMO_PURPOSES.admin));
    expect(m('person', { givenName: 'Ana', familyName: 'Lee', roles: [], nationalInsuranceNumber: 'QQ123456C' })).toEqual({ givenName: 'Ana', familyName: 'Lee', roles: [] });
    expect([...m.dropped]).toEqual(['person.nationalInsuranceNumber']);
  });

  it('a synced store holds no special-category data under the demo purposes, and the summary lists it', async () => {
    const g = await privateGateway({ students: 60, teachers: 4, classes: 4, schools: 1 });
    try {
      const someone = g.dataset.list('person').find((p) => p.data.roles.includes('student'))!;
      g.dataset.upsert('person', someone.key, { passportNumber: 'X-PASSPORT-4711' } as never);
      const summary = await g.resync();
      expect(g.summary.dropped).toEqual(expect.arrayContaining(['demographics.iep', 'demographics.freeReducedLunch', 'demographics.englishLanguageLearner', 'demographics.asian']));
      expect(summary.dropped).toContain('person.passportNumber');
      expect(g.summary.dropped!.some((f) => f.startsWith('person.'))).toBe(false);
      // The whole database, every table: no special-category key and no unknown field's value.
      const db = new Database(g.config.store, { readonly: true });
      const tables = (db.prepare(`SELECT name FROM sqlite_master WHERE type = 'table'`).all() as { name: string }[]).map((t) => t.name);
      const dump = tables.map((t) => JSON.stringify(db.prepare(`SELECT * FROM "${t}"`).all())).join('\n');
      db.close();
      for (const key of ['iep', 'section504', 'freeReducedLunch', 'englishLanguageLearner', 'asian', 'white', 'hispanicOrLatino', 'homeLanguage', 'passportNumber']) {
        expect(dump).not.toMatch(new RegExp(`\\\\?"${key}\\\\?"`));
      }
      expect(dump).not.toContain('X-PASSPORT-4711');
      // The check can fail: fields a purpose receives are there.
      expect(dump).toMatch(/\\?"birthDate\\?"/);
    } finally {
      await g.close();
    }
  });
});
