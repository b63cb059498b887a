/**
 * The value check at the mapping boundary: what vendors really send is repaired when it has one
 * reading, dropped (or its record held back) otherwise, and whatever is kept is exactly what the
 * GraphQL scalars serialise. Every value here is made up.
 */
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { GraphQLScalarType } from 'graphql';
import { acceptsDate, acceptsDateTime, checkDate, checkDateTime, checkEmail, checkRecord, SCALARS } from '../../src/model/values.ts';
import type { SourceRecord } from '../../src/model/records.ts';
import { resolvers } from '../../src/graphql/resolvers.ts';
import { generateDistrict } from '../../src/demo/generator.ts';

const serialises = (scalar: keyof typeof SCALARS, v: string) => {
  try {
    SCALARS[scalar].serialize(v);
    return true;
  } catch {
    return false;
  }
};

describe('values at the mapping boundary', () => {
  it('GraphQL serves these fields with the very scalars the check uses (wrapped only to report refused input)', () => {
    // src/graphql/scalars.ts wraps the check's scalars so refused input is BAD_USER_INPUT: the
    // served scalar is another object, but its serialize (what every stored value goes through on
    // the way out, and what the check calls) is the check's own function.
    const served = { EmailAddress: resolvers.EmailAddress, Date: resolvers.Date, DateTime: resolvers.DateTime } as Record<keyof typeof SCALARS, GraphQLScalarType>;
    const samples = ['a.b@example.org', 'hauc"k.test@example.com', ' a.b@example.org', '2023-05-01', '15/06/2023', '2017-05-06T08:01:05Z', '2017-05-06 08:01:05', '', 42, null, { a: 1 }];
    for (const name of Object.keys(SCALARS) as (keyof typeof SCALARS)[]) {
      expect(served[name]).toBeInstanceOf(GraphQLScalarType);
      expect(served[name].name).toBe(SCALARS[name].name);
      expect(served[name].serialize).toBe(SCALARS[name].serialize);
      // Input: the same value wherever the check's scalar accepts it, BAD_USER_INPUT wherever it refuses.
      for (const v of samples) {
        let expected: { value: unknown } | undefined;
        try {
          expected = { value: SCALARS[name].parseValue(v) };
        } catch {
          expected = undefined;
        }
        if (expected) expect(served[name].parseValue(v)).toEqual(expected.value);
        else {
          let code: unknown;
          try {
            served[name].parseValue(v);
          } catch (e) {
            code = (e as { extensions?: { code?: unknown } }).extensions?.code;
          }
          expect(code, `${name} refuses ${JSON.stringify(v)}`).toBe('BAD_USER_INPUT');
        }
      }
    }
  });

  it('emails: a quote inside or no @ at all is dropped; blanks around are trimmed', () => {
    expect(checkEmail('hauc"k.test@example.com')).toEqual({ ok: false, problem: 'not a valid email address' });
    expect(checkEmail('seth_test.example.org')).toEqual({ ok: false, problem: 'not a valid email address' });
    expect(checkEmail(' a.b@example.org ')).toEqual({ ok: true, value: 'a.b@example.org', repaired: 'blanks trimmed' });
    expect(checkEmail('a.b@example.org')).toEqual({ ok: true, value: 'a.b@example.org' });
  });

  it('date-times: no zone is UTC (OneRoster), a date is midnight UTC, a day-first date only when the day is over 12', () => {
    expect(checkDateTime('2017-05-06 08:01:05')).toMatchObject({ ok: true, value: '2017-05-06T08:01:05Z' });
    expect(checkDateTime('2017-05-06T08:01')).toMatchObject({ ok: true, value: '2017-05-06T08:01:00Z' });
    expect(checkDateTime('2023-05-01')).toMatchObject({ ok: true, value: '2023-05-01T00:00:00Z' });
    expect(checkDateTime('15/06/2023')).toMatchObject({ ok: true, value: '2023-06-15T00:00:00Z' });
    expect(checkDateTime('06/15/2023')).toMatchObject({ ok: true, value: '2023-06-15T00:00:00Z' });
    expect(checkDateTime('06/05/2023')).toEqual({ ok: false, problem: 'an ambiguous date (day and month could be either way round)' });
    expect(checkDateTime('2017-05-06T08:01:05+02:00')).toEqual({ ok: true, value: '2017-05-06T08:01:05+02:00' });
    expect(checkDateTime('yesterday')).toEqual({ ok: false, problem: 'not an ISO 8601 date-time' });
    expect(checkDateTime('2023-02-30 10:00:00').ok).toBe(false);
  });

  it('dates: YYYYMMDD, a date-time and unambiguous slashed dates are rewritten; impossible days are refused', () => {
    expect(checkDate('20230601')).toMatchObject({ ok: true, value: '2023-06-01' });
    expect(checkDate('2023-06-01T00:00:00Z')).toMatchObject({ ok: true, value: '2023-06-01' });
    expect(checkDate('5/5/2023')).toMatchObject({ ok: true, value: '2023-05-05' });
    expect(checkDate('31/02/2023')).toEqual({ ok: false, problem: 'not a date' });
    expect(checkDate('2023-02-30').ok).toBe(false);
  });

  it('whatever the check keeps, the scalar serialises (any string)', () => {
    const vendorish = fc.oneof(
      fc.string(),
      fc.emailAddress(),
      fc.date({ noInvalidDate: true, min: new Date('1900-01-01'), max: new Date('2999-12-31') }).map((d) => d.toISOString()),
      fc.tuple(fc.integer({ min: 0, max: 40 }), fc.integer({ min: 0, max: 40 }), fc.integer({ min: 1900, max: 2100 })).map(([a, b, y]) => `${a}/${b}/${y}`),
      fc.tuple(fc.integer({ min: 1900, max: 2100 }), fc.integer({ min: 0, max: 13 }), fc.integer({ min: 0, max: 32 }), fc.integer({ min: 0, max: 25 }))
        .map(([y, m, d, h]) => `${y}-${String(m).padStart(2, '0')}-${String(d).padStart(2, '0')} ${String(h).padStart(2, '0')}:00:00`),
    );
    fc.assert(
      fc.property(vendorish, (v) => {
        const e = checkEmail(v);
        if (e.ok) expect(serialises('EmailAddress', e.value)).toBe(true);
        const d = checkDate(v);
        if (d.ok) expect(serialises('Date', d.value)).toBe(true);
        const t = checkDateTime(v);
        if (t.ok) expect(serialises('DateTime', t.value)).toBe(true);
      }),
      { numRuns: 2000 },
    );
  });

  it('remembered answers are the scalars\' answers, before the memo is full and after (asked twice each)', () => {
    // Dates and date-times, valid and not, more distinct texts than the memo keeps (4,096).
    const texts: string[] = [];
    for (let i = 0; i < 6000; i++) {
      const y = 1990 + (i % 40), m = (i % 14), d = (i * 7) % 33;
      texts.push(`${y}-${String(m).padStart(2, '0')}-${String(d).padStart(2, '0')}`, `${y}-${String(m).padStart(2, '0')}-${String(d).padStart(2, '0')}T0${i % 10}:00:00Z`);
    }
    texts.push('', ' 2023-05-01', '2023-02-29', '2024-02-29', 'not a date');
    for (const round of [1, 2]) {
      for (const v of texts) {
        expect(acceptsDate(v), `${v} (round ${round})`).toBe(serialises('Date', v));
        expect(acceptsDateTime(v), `${v} (round ${round})`).toBe(serialises('DateTime', v));
      }
    }
  });

  it('a record keeps its good values, loses the bad optional ones, and is held back without a required one', () => {
    const person: SourceRecord = {
      type: 'person', key: 'u-100', lastModified: '15/06/2023',
      data: { givenName: 'Test', familyName: 'Student', email: 'no-at.example.org', roles: ['Student', 'janitor'] as never },
    };
    const out = checkRecord(person);
    expect(out.record).toEqual({
      type: 'person', key: 'u-100', lastModified: '2023-06-15T00:00:00Z', data: { givenName: 'Test', familyName: 'Student', roles: ['student'] },
    });
    expect(out.issues).toEqual([
      { field: 'lastModified', problem: 'a date: midnight UTC', action: 'repaired' },
      { field: 'email', problem: 'not a valid email address', action: 'dropped' },
      { field: 'roles', problem: '1 value(s) not one of student, teacher, staff, administrator, guardian', action: 'dropped' },
    ]);
    // Issues never carry the value.
    expect(JSON.stringify(out.issues)).not.toContain('no-at');

    const enrollment: SourceRecord = { type: 'enrollment', key: 'e-1', data: { classKey: ' ', personKey: 'u-100', role: 'student' } };
    expect(checkRecord(enrollment)).toEqual({ record: null, issues: [{ field: 'classKey', problem: 'reference is blank', action: 'held-back' }] });
    const badRole: SourceRecord = { type: 'enrollment', key: 'e-2', data: { classKey: 'c-1', personKey: 'u-100', role: 'janitor' as never } };
    expect(checkRecord(badRole).record).toBeNull();
    const dropLm: SourceRecord = { type: 'org', key: 'o-1', deleted: true, lastModified: '06/05/2023' };
    expect(checkRecord(dropLm).record).toEqual({ type: 'org', key: 'o-1', deleted: true });
  });
});

describe('text that is not Unicode (a lone surrogate)', () => {
  it('is repaired to U+FFFD in any field, list or object, and the repair reported; a pair is kept', () => {
    const person: SourceRecord = {
      type: 'person', key: 'u-1',
      data: { givenName: 'Ann\ud800', familyName: 'Fine 😀', roles: ['student'], orgKeys: ['s-1', '\udc00s-2'], extra: { note: [{ n: 'x\ud800y' }], ok: 'z' } } as never,
    };
    const out = checkRecord(person);
    expect(out.record?.data).toEqual({
      givenName: 'Ann\ufffd', familyName: 'Fine 😀', roles: ['student'], orgKeys: ['s-1', '\ufffds-2'], extra: { note: [{ n: 'x\ufffdy' }], ok: 'z' },
    });
    expect(out.issues).toEqual(['givenName', 'orgKeys', 'extra'].map((field) => ({ field, problem: 'not Unicode text (a lone surrogate), replaced by U+FFFD', action: 'repaired' })));
    // What is made of it can be written as UTF-8 and read back the same.
    expect(Buffer.from(JSON.stringify(out.record), 'utf8').toString('utf8')).toBe(JSON.stringify(out.record));
    // Clean records are passed through unchanged, not copied field by field.
    const clean: SourceRecord = { type: 'person', key: 'u-2', data: { givenName: 'Bo', familyName: 'Lee', roles: ['teacher'] } };
    expect(checkRecord(clean)).toEqual({ record: clean, issues: [] });
  });

  it('in a key, holds the record back (repairing a key could make it another record), deletions too', () => {
    for (const r of [
      { type: 'person', key: 'u-\ud83d', data: { givenName: 'Cy', roles: ['student'] } },
      { type: 'person', key: 'u-\ud83d', deleted: true },
    ] as SourceRecord[]) {
      expect(checkRecord(r)).toEqual({ record: null, issues: [{ field: 'key', problem: 'not Unicode text (a lone surrogate)', action: 'held-back' }] });
    }
    expect(checkRecord({ type: 'person', key: 'u-😀', deleted: true }).record).not.toBeNull();
  });
});

describe('the demo district at the boundary', () => {
  it('passes untouched: the check finds nothing in clean data', () => {
    const d = generateDistrict({ students: 300 });
    const issues = Object.values(d).flat().flatMap((r) => checkRecord(r as SourceRecord).issues.map((i) => `${r.type}.${i.field}: ${i.problem}`));
    expect([...new Set(issues)]).toEqual([]);
  });
});
