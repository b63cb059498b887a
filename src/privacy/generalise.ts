/**
 * Generalised forms of quasi-identifiers: coarser values that keep analytic use while making a
 * person harder to single out. Declared in the schema with @generalises; computed here, in one
 * place, for the GraphQL resolvers, for the change log (which records whether a generalised value
 * changed, so a purpose that receives only the coarse form sees no event when only the exact value
 * moved) and for the extract hierarchies that coarsen them further.
 */
import type { EntityType } from '../model/records.ts';

export function birthYear(birthDate: unknown): number | null {
  if (typeof birthDate !== 'string' || !/^\d{4}-/.test(birthDate)) return null;
  return Number(birthDate.slice(0, 4));
}

/**
 * Age bands of three years (3-5, 6-8, …, 15-17) and 18+, of the age reached in the current calendar
 * year. From the birth year alone: a band computed from the full date would move on each person's
 * birthday, and next to birthYear it would narrow the birth date to the days around that change.
 * Everyone's band moves on 1 January instead.
 */
export function ageBand(birthDate: unknown, today: Date = new Date()): string | null {
  const year = birthYear(birthDate);
  if (year === null) return null;
  const age = today.getUTCFullYear() - year;
  if (age < 0) return null;
  if (age >= 18) return '18+';
  if (age < 3) return '0-2';
  const lo = Math.floor(age / 3) * 3;
  return `${lo}-${lo + 2}`;
}

/** One level coarser than ageBand, for k-anonymity: 0-8, 9-14, 15-17 (18+ stays). */
export function coarserAgeBand(band: unknown): unknown {
  if (typeof band !== 'string' || !/^\d+-\d+$/.test(band)) return band;
  const lo = Number(band.split('-')[0]);
  return lo < 9 ? '0-8' : lo < 15 ? '9-14' : '15-17';
}

/** Grade bands, each with the school level one step coarser (for k-anonymity). */
const BANDS: { band: string; grades: string[]; level: string }[] = [
  { band: 'PK', grades: ['IT', 'PR', 'PK', 'TK'], level: 'PK-5' },
  { band: 'K-2', grades: ['KG', '01', '02'], level: 'PK-5' },
  { band: '3-5', grades: ['03', '04', '05'], level: 'PK-5' },
  { band: '6-8', grades: ['06', '07', '08'], level: '6-12' },
  { band: '9-12', grades: ['09', '10', '11', '12'], level: '6-12' },
];

export function gradeBand(grades: unknown): string | null {
  if (!Array.isArray(grades) || grades.length === 0) return null;
  const bands = new Set(grades.map((g) => BANDS.find((b) => b.grades.includes(String(g)))?.band ?? 'other'));
  return bands.size === 1 ? [...bands][0]! : 'mixed';
}

/** One level coarser than gradeBand: PK-5 or 6-12 ('mixed' and 'other' stay). */
export function coarserGradeBand(band: unknown): unknown {
  return BANDS.find((b) => b.band === band)?.level ?? band;
}

export function postalArea(postalCode: unknown): string | null {
  if (typeof postalCode !== 'string' || postalCode.length < 3) return null;
  return postalCode.slice(0, 3);
}

export interface Generaliser {
  /** The stored field of the same record it is computed from (the schema's @generalises(field:)). */
  from: string;
  of(value: unknown, today: Date): unknown;
}

/**
 * Every generalised field, by record type. The schema declares the same pairs with @generalises;
 * `checkGeneralisers` refuses to start when the two disagree.
 */
export const GENERALISED: { readonly [T in EntityType]?: Readonly<Record<string, Generaliser>> } = {
  person: { gradeBand: { from: 'grades', of: gradeBand } },
  demographics: {
    birthYear: { from: 'birthDate', of: birthYear },
    ageBand: { from: 'birthDate', of: ageBand },
    postalArea: { from: 'postalCode', of: postalArea },
  },
};

/** The value of a generalised field of a stored record, today. */
export function generalisedValue(type: EntityType, field: string, data: Record<string, unknown>, today = new Date()): unknown {
  const g = GENERALISED[type]?.[field];
  if (!g) throw new Error(`${type}.${field} is not a generalised field`);
  return g.of(data[g.from], today);
}

/**
 * For an update whose stored fields `changed`: the generalised fields whose value changed with
 * them (sorted), or undefined when no changed field feeds one. A birth date moved within its year
 * changes birthDate but not birthYear.
 */
export function changedGeneralisations(
  type: EntityType, changed: readonly string[], before: Record<string, unknown>, after: Record<string, unknown>, today: Date,
): string[] | undefined {
  const fed = Object.entries(GENERALISED[type] ?? {}).filter(([, g]) => changed.includes(g.from));
  if (fed.length === 0) return undefined;
  return fed.filter(([, g]) => g.of(before[g.from], today) !== g.of(after[g.from], today)).map(([f]) => f).sort();
}

/**
 * Start-up check that the schema's @generalises pairs (coordinate → exact field, as classified)
 * are exactly the ones computed here. `typeOf` maps a schema type name to its record type.
 */
export function checkGeneralisers(declared: { coordinate: string; type: string; field: string; generalises: string }[], typeOf: (graphqlType: string) => EntityType | undefined): void {
  const problems: string[] = [];
  const seen = new Set<string>();
  for (const d of declared) {
    const type = typeOf(d.type);
    const g = type && GENERALISED[type]?.[d.field];
    if (type) seen.add(`${type}.${d.field}`);
    if (!g) problems.push(`${d.coordinate} is declared @generalises(field: "${d.generalises}") but src/privacy/generalise.ts does not compute it`);
    else if (g.from !== d.generalises) problems.push(`${d.coordinate} is declared @generalises(field: "${d.generalises}") but src/privacy/generalise.ts computes it from ${g.from}`);
  }
  for (const [type, fields] of Object.entries(GENERALISED)) {
    for (const f of Object.keys(fields ?? {})) if (!seen.has(`${type}.${f}`)) problems.push(`src/privacy/generalise.ts computes ${type}.${f}, which the schema does not declare with @generalises`);
  }
  if (problems.length) throw new Error(problems.join('; '));
}
