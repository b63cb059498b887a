/**
 * Generalised forms of quasi-identifiers: coarser values that keep analytic use while making a
 * person harder to single out. Declared in the schema with @generalises; computed on read.
 */

export function birthYear(birthDate: unknown): number | null {
  if (typeof birthDate !== 'string' || !/^\d{4}-/.test(birthDate)) return null;
  return Number(birthDate.slice(0, 4));
}

/** Age bands of three years (3-5, 6-8, …, 15-17) and 18+, on the given day. */
export function ageBand(birthDate: unknown, today: Date = new Date()): string | null {
  if (typeof birthDate !== 'string' || !/^\d{4}-\d{2}-\d{2}$/.test(birthDate)) return null;
  const [y, m, d] = birthDate.split('-').map(Number) as [number, number, number];
  let age = today.getUTCFullYear() - y;
  if (today.getUTCMonth() + 1 < m || (today.getUTCMonth() + 1 === m && today.getUTCDate() < d)) age--;
  if (age < 0) return null;
  if (age >= 18) return '18+';
  if (age < 3) return '0-2';
  const lo = Math.floor(age / 3) * 3;
  return `${lo}-${lo + 2}`;
}

const BANDS: [string, string[]][] = [
  ['PK', ['IT', 'PR', 'PK', 'TK']],
  ['K-2', ['KG', '01', '02']],
  ['3-5', ['03', '04', '05']],
  ['6-8', ['06', '07', '08']],
  ['9-12', ['09', '10', '11', '12']],
];

export function gradeBand(grades: unknown): string | null {
  if (!Array.isArray(grades) || grades.length === 0) return null;
  const bands = new Set(grades.map((g) => BANDS.find(([, gs]) => gs.includes(String(g)))?.[0] ?? 'other'));
  return bands.size === 1 ? [...bands][0]! : 'mixed';
}

export function postalArea(postalCode: unknown): string | null {
  if (typeof postalCode !== 'string' || postalCode.length < 3) return null;
  return postalCode.slice(0, 3);
}
