import { describe, expect, it } from 'vitest';
import { generalise, groupKey, planK } from '../../src/extract/kanonymity.ts';
import { protectCell } from '../../src/extract/extract.ts';

const count = (rows: unknown[][]) => {
  const m = new Map<string, number>();
  for (const r of rows) m.set(groupKey(r as never), (m.get(groupKey(r as never)) ?? 0) + 1);
  return m;
};

describe('k-anonymity planning', () => {
  const qi = ['demographics.birthYear', 'gradeBand'];
  // 40 rows spread thinly over birth years: many groups below k=5.
  const rows = Array.from({ length: 40 }, (_, i) => [2010 + (i % 9), i % 2 ? '3-5' : 'K-2']);

  it('generalises along the hierarchies until every group left has k rows, suppressing at most the allowed share', () => {
    const plan = planK(count(rows), qi, { k: 5, onViolation: 'generalise', maxSuppressShare: 0.05 });
    expect(plan.levels['demographics.birthYear']).toBeGreaterThan(0);
    expect(plan.suppressedRows).toBeLessThanOrEqual(2);
    const kept = [...plan.groups.values()].filter((n) => n >= 5);
    expect(kept.reduce((a, b) => a + b, 0)).toBe(40 - plan.suppressedRows);
    expect(generalise([2012, 'K-2'], qi, { 'demographics.birthYear': 1 })).toEqual(['2010-2014', 'K-2']);
  });

  it('with onViolation: suppress, leaves values as they are and suppresses small groups', () => {
    const plan = planK(count(rows), qi, { k: 5, onViolation: 'suppress', maxSuppressShare: 0 });
    expect(Object.values(plan.levels).every((l) => l === 0)).toBe(true);
    expect(plan.suppressedRows).toBe(40);
  });

  it('a dataset already k-anonymous is left alone', () => {
    const even = Array.from({ length: 50 }, (_, i) => [2012, i % 2 ? '3-5' : 'K-2']);
    const plan = planK(count(even), qi, { k: 5, onViolation: 'generalise', maxSuppressShare: 0.05 });
    expect(plan.levels).toEqual({ 'demographics.birthYear': 0, gradeBand: 0 });
    expect(plan.suppressedRows).toBe(0);
  });
});

describe('CSV formula injection', () => {
  it('prefixes cells a spreadsheet would evaluate', () => {
    for (const v of ['=1+1', '+SUM(A1)', '-2+3', '@cmd', '\tx', '\rx', '\0=1', '＝1+1', '＋1', '＠SUM(A1)']) expect(protectCell(v)).toBe(`'${v}`);
    for (const v of ['Maths', 'p1_abc', 12, -3, null, '', ' =x', "'=already"]) expect(protectCell(v as never)).toBe(v);
  });
});
