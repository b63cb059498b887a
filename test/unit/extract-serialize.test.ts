import { describe, expect, it, vi } from 'vitest';
import { GraphQLString } from 'graphql';
import { servedOnce } from '../../src/extract/projection.ts';
import { DateScalar, EmailAddressScalar } from '../../src/graphql/scalars.ts';

// An extract completes each leaf with the schema's serialize; servedOnce remembers the custom
// scalars' answers per value. These check that it answers exactly as serialize does.
describe('servedOnce: a leaf serialize remembered per value', () => {
  it('gives what serialize gives, and calls it once per distinct date', () => {
    const spy = vi.spyOn(DateScalar, 'serialize');
    try {
      const serialize = servedOnce(DateScalar);
      const dates = ['2026-08-15', '2026-12-20', '2026-08-15', '2026-12-20', '2026-08-15'];
      expect(dates.map(serialize)).toEqual(dates.map((d) => DateScalar.serialize(d)));
      // Two distinct values remembered, plus the five comparison calls above.
      expect(spy).toHaveBeenCalledTimes(2 + 5);
    } finally {
      spy.mockRestore();
    }
  });

  it('refuses an invalid value every time, never remembering a refusal', () => {
    const serialize = servedOnce(DateScalar);
    expect(() => serialize('2026-02-30')).toThrow(/invalid date-string/);
    expect(() => serialize('2026-02-30')).toThrow(/invalid date-string/);
    expect(serialize('2026-02-28')).toBe('2026-02-28');
  });

  it('leaves values that are not text to serialize each time', () => {
    const serialize = servedOnce(DateScalar);
    const d = new Date(Date.UTC(2026, 0, 6));
    expect(serialize(d)).toBe('2026-01-06');
    d.setUTCDate(7);
    // The same object with another date: remembered by object it would wrongly say the 6th.
    expect(serialize(d)).toBe('2026-01-07');
  });

  it('stays exact past the values it keeps (a column of e-mail addresses)', () => {
    const serialize = servedOnce(EmailAddressScalar);
    const emails = Array.from({ length: 600 }, (_, i) => `user${i}@example.org`);
    expect(emails.map(serialize)).toEqual(emails);
    expect(emails.map(serialize)).toEqual(emails);
    expect(() => serialize('not an address')).toThrow();
  });

  it('hands the built-in scalars straight to their serialize', () => {
    const serialize = servedOnce(GraphQLString);
    expect(serialize(12)).toBe('12');
    expect(serialize(true)).toBe('true');
  });
});
