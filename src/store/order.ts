/**
 * Pseudonym order: how a pseudonymising purpose's lists of people, and of records that lead to a
 * person (enrollments, guardianships), are ordered.
 *
 * Ordered by gateway id, two purposes with different pseudonym domains — or one domain before and
 * after `keys rotate` — would list the same people at the same positions, and pairing rows by
 * position would link every pseudonym across domains and versions without any key. So in such a
 * purpose these lists are ordered by the pseudonym of the person in the request's own (domain,
 * version): an HMAC under a key no other domain or version shares, so the order of one domain says
 * nothing about the order of another.
 *
 * Sort keys (compared part by part, in byte order — SQLite's BINARY, PostgreSQL's COLLATE "C"):
 * - person:       [pseudonym]                — unique within (domain, version), no tiebreak needed;
 * - enrollment:   [person's pseudonym, class id, enrollment id]
 * - guardianship: [student's pseudonym, guardian's pseudonym, guardianship id]
 * The tiebreaks cannot link: the class id only orders one person's enrollments by class, and which
 * classes a person is in is what the purpose already reads off those very rows; the guardian's
 * pseudonym is of the same domain and version. The record id, last, orders only rows that tie on
 * everything before it — several enrollments of one person in one class, or several guardianship
 * records of one student–guardian pair. Their relative order is the same in every domain, but it can
 * only pair such a row with a row of the same person in the other domain, i.e. after that person was
 * already linked; it cannot single out which person of another domain is which.
 */
import type { EntityType } from '../model/records.ts';

/** The (domain, version) whose pseudonyms order a list. */
export interface PseudonymOrder {
  domain: string;
  version: number;
}

/** Record types a pseudonymising purpose lists in pseudonym order; every other type keeps id order. */
export const PSEUDONYM_ORDERED = ['person', 'enrollment', 'guardianship'] as const;
export type PseudonymOrderedType = (typeof PSEUDONYM_ORDERED)[number];

export function isPseudonymOrdered(t: EntityType): t is PseudonymOrderedType {
  return (PSEUDONYM_ORDERED as readonly string[]).includes(t);
}

/** How many parts a sort key of the type has. */
export const KEY_PARTS: Record<PseudonymOrderedType, number> = { person: 1, enrollment: 3, guardianship: 3 };

/** Byte order of ASCII text (pseudonyms and gateway ids are ASCII), as the stores sort. */
function compareText(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

export function compareKeys(a: readonly string[], b: readonly string[]): number {
  for (let i = 0; i < Math.max(a.length, b.length); i++) {
    const c = compareText(a[i] ?? '', b[i] ?? '');
    if (c) return c;
  }
  return 0;
}

/**
 * A member of a record's data as a sort key's part: its text where it is a string, '' for anything
 * else (a number, a boolean, an object, null, absent). The stores' SQL says the same (the dialect's
 * `keyText`), so a list in SQL and a list sorted here order alike.
 */
export function keyTextOf(v: unknown): string {
  return typeof v === 'string' ? v : '';
}

/**
 * The sort key of a record in pseudonym order, from its data and the pseudonyms of the people it
 * names; undefined when a person it orders by has no pseudonym in the order's version (a person
 * created while a rotation ran, until the backfill): such rows are left out, as the store's lists
 * leave them out, since their person could not be shown in this version anyway.
 */
export function sortKeyOf(
  type: PseudonymOrderedType, row: { id: string; data: unknown }, pseudonymOf: (personId: string) => string | undefined,
): string[] | undefined {
  // Called for every row of a nested list in pseudonym order: no closure or array made per row
  // beyond the key itself.
  const d = row.data as Record<string, unknown>;
  switch (type) {
    case 'person': {
      const own = pseudonymOf(row.id);
      return own === undefined ? undefined : [own];
    }
    case 'enrollment': {
      const person = typeof d.personId === 'string' ? pseudonymOf(d.personId) : undefined;
      return person === undefined ? undefined : [person, keyTextOf(d.classId), row.id];
    }
    case 'guardianship': {
      const student = typeof d.studentId === 'string' ? pseudonymOf(d.studentId) : undefined;
      const guardian = typeof d.guardianId === 'string' ? pseudonymOf(d.guardianId) : undefined;
      return student === undefined || guardian === undefined ? undefined : [student, guardian, row.id];
    }
  }
}

/** The person ids a record's sort key needs pseudonyms of. */
export function peopleOrderedBy(type: PseudonymOrderedType, row: { id: string; data: unknown }): string[] {
  if (type === 'person') return [row.id];
  const d = row.data as Record<string, unknown>;
  const out: string[] = [];
  if (type === 'enrollment') {
    if (typeof d.personId === 'string') out.push(d.personId);
  } else {
    if (typeof d.studentId === 'string') out.push(d.studentId);
    if (typeof d.guardianId === 'string') out.push(d.guardianId);
  }
  return out;
}

/**
 * The people whose pseudonyms a sort key of a store's list holds, with those pseudonyms: a list in
 * pseudonym order thereby tells them without another read. `leader` is the person the store read
 * the key's first part for (the pseudonyms row's own entity id, `ListResult.keyPeople`), so that
 * pair is a row of the pseudonyms table whatever link led to it: a person's own pseudonym, an
 * enrollment's or a guardianship's student. A guardianship's guardian is taken by its data, where the
 * store took it too; nothing is paired with a person id the row's data merely names.
 */
export function pseudonymsInKey(
  type: PseudonymOrderedType, row: { id: string; data: unknown }, key: readonly string[], leader: string | undefined,
): [personId: string, pseudonym: string][] {
  const out: [string, string][] = [];
  if (leader !== undefined && key[0] !== undefined) out.push([leader, key[0]]);
  if (type === 'guardianship') {
    const guardian = (row.data as Record<string, unknown>).guardianId;
    if (typeof guardian === 'string' && key[1] !== undefined) out.push([guardian, key[1]]);
  }
  return out;
}
