/**
 * Re-identification risk check for extracts: k-anonymity over the quasi-identifier columns.
 * Rows are grouped by their quasi-identifier values; a group smaller than k singles people out.
 * Small groups are fixed by global recoding along per-column generalisation hierarchies (ARX
 * style: one column one level coarser for every row, so values stay comparable), then by
 * suppressing what is still below k — or, with `onViolation: suppress`, by suppression alone.
 */
import { coarserAgeBand, coarserGradeBand } from '../privacy/generalise.ts';

export type Value = string | number | boolean | null;
/** Level 0 is the value itself; each further level is coarser; the last is "*". */
export type Hierarchy = ((v: Value) => Value)[];

const star = () => '*';
const span = (width: number) => (v: Value) => {
  const n = Number(v);
  if (v === null || v === '' || !Number.isFinite(n)) return v;
  const lo = Math.floor(n / width) * width;
  return `${lo}-${lo + width - 1}`;
};

const HIERARCHIES: Record<string, Hierarchy> = {
  'demographics.birthYear': [span(5), star],
  'graduationYear': [span(5), star],
  'demographics.ageBand': [(v) => coarserAgeBand(v) as Value, star],
  'gradeBand': [(v) => coarserGradeBand(v) as Value, star],
  'demographics.postalArea': [(v) => (typeof v === 'string' ? v.slice(0, 2) : v), star],
  'demographics.postalCode': [(v) => (typeof v === 'string' ? v.slice(0, 3) : v), (v) => (typeof v === 'string' ? v.slice(0, 2) : v), star],
  'demographics.birthDate': [(v) => (typeof v === 'string' ? v.slice(0, 4) : v), (v) => span(5)(typeof v === 'string' ? Number(v.slice(0, 4)) : v), star],
};

export function hierarchyOf(column: string): Hierarchy {
  return HIERARCHIES[column] ?? [star];
}

export interface KPolicy {
  k: number;
  onViolation: 'generalise' | 'suppress';
  /** Largest share of rows that may be suppressed while generalising; above it, generalise further. */
  maxSuppressShare: number;
}

export interface KPlan {
  /** Generalisation level per quasi-identifier column (0 = as is). */
  levels: Record<string, number>;
  /** Group key → size, after generalisation. */
  groups: Map<string, number>;
  suppressedRows: number;
  rows: number;
}

export function generalise(values: Value[], qi: string[], levels: Record<string, number>): Value[] {
  return values.map((v, i) => {
    const lvl = levels[qi[i]!] ?? 0;
    let out = v;
    const h = hierarchyOf(qi[i]!);
    for (let l = 0; l < lvl; l++) out = h[l]!(out);
    return out;
  });
}

export const groupKey = (values: Value[]) => JSON.stringify(values);

/** Adds the quasi-identifier tuples (the cells at `qiAt`) of rows to `tuples`, the check pass's counts. */
export function countTuples(tuples: Map<string, number>, rows: readonly Value[][], qiAt: readonly number[]): void {
  for (const values of rows) {
    const key = groupKey(qiAt.map((i) => values[i]!));
    tuples.set(key, (tuples.get(key) ?? 0) + 1);
  }
}

/**
 * Chooses generalisation levels from the counts of the original quasi-identifier tuples (pass one
 * of an extract), without holding rows: only distinct tuples and their counts are in memory.
 */
export function planK(tuples: Map<string, number>, qi: string[], policy: KPolicy): KPlan {
  const levels: Record<string, number> = Object.fromEntries(qi.map((c) => [c, 0]));
  const rows = [...tuples.values()].reduce((a, b) => a + b, 0);
  const regroup = () => {
    const groups = new Map<string, number>();
    for (const [key, n] of tuples) {
      const g = groupKey(generalise(JSON.parse(key) as Value[], qi, levels));
      groups.set(g, (groups.get(g) ?? 0) + n);
    }
    return groups;
  };
  const small = (groups: Map<string, number>) => [...groups.values()].filter((n) => n < policy.k).reduce((a, b) => a + b, 0);
  let groups = regroup();
  if (policy.onViolation === 'generalise') {
    while (small(groups) > policy.maxSuppressShare * rows) {
      // Coarsen the column that most reduces the rows in small groups; stop when none can go further.
      let best: { col: string; groups: Map<string, number>; bad: number } | undefined;
      for (const col of qi) {
        if (levels[col]! >= hierarchyOf(col).length) continue;
        levels[col]!++;
        const g = regroup();
        const bad = small(g);
        levels[col]!--;
        if (!best || bad < best.bad) best = { col, groups: g, bad };
      }
      if (!best) break;
      levels[best.col]!++;
      groups = best.groups;
    }
  }
  return { levels, groups, suppressedRows: small(groups), rows };
}

/** What the writing pass applies to every page: the plan's levels on the quasi-identifier cells (at `qiAt`, named `qi`). */
export interface Recoding {
  levels: Record<string, number>;
  qi: string[];
  qiAt: number[];
}

/**
 * The writing pass over one page: each row's quasi-identifiers generalised to the plan's levels, the
 * row left out when its group is one to suppress, the groups written counted in `written`. The rows
 * kept (their cells recoded in place) and the positions of those left out. One definition for the
 * extracting thread and a parallel extract's threads (./parallel.ts), which must write the same.
 */
export function recodePage(
  cells: Value[][], r: Recoding, suppress: (group: string) => boolean, written: Map<string, number>,
): { kept: Value[][]; dropped: number[] } {
  const kept: Value[][] = [];
  const dropped: number[] = [];
  for (let i = 0; i < cells.length; i++) {
    const values = cells[i]!;
    const q = generalise(r.qiAt.map((at) => values[at]!), r.qi, r.levels);
    const key = groupKey(q);
    if (suppress(key)) {
      dropped.push(i);
      continue;
    }
    written.set(key, (written.get(key) ?? 0) + 1);
    r.qiAt.forEach((at, j) => (values[at] = q[j]!));
    kept.push(values);
  }
  return { kept, dropped };
}
