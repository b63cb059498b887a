/**
 * Which schema fields a stored field feeds, so the change feed can tell whether an update is
 * visible to a purpose: `birthDate` feeds Demographics.birthDate, .birthYear and .ageBand;
 * `schoolId` feeds Class.school. A change whose fields feed nothing the purpose receives is not an
 * event for it. A generalised field counts as changed only when its own value changed (the change
 * log records which did), so a birth date moved within its year is no event for a purpose that
 * receives only the birth year.
 */
import type { EntityType } from '../model/records.ts';
import { GRAPHQL_TYPE } from '../model/names.ts';
import type { Classification } from './classification.ts';
import { checkGeneralisers } from './generalise.ts';

/** GraphQL relation fields and the stored reference field behind each. */
const REFERENCE_FIELDS: Record<string, string> = {
  'Organization.parent': 'parentId',
  'AcademicSession.parent': 'parentId',
  'AcademicSession.organization': 'orgId',
  'Course.organization': 'orgId',
  'Course.schoolYear': 'schoolYearId',
  'Class.school': 'schoolId',
  'Class.course': 'courseId',
  'Class.terms': 'termIds',
  'Person.organizations': 'orgIds',
  'Person.primaryOrganization': 'primaryOrgId',
  'Enrollment.class': 'classId',
  'Enrollment.person': 'personId',
  'Enrollment.school': 'schoolId',
  'Guardianship.guardian': 'guardianId',
  'Guardianship.student': 'studentId',
};

const TYPE_OF_GRAPHQL = Object.fromEntries(Object.entries(GRAPHQL_TYPE).map(([e, g]) => [g, e])) as Record<string, EntityType>;

/** Stored fields of a record type that hold ids of other records (e.g. an enrollment's classId). */
export function referenceFields(type: EntityType): string[] {
  return Object.entries(REFERENCE_FIELDS).filter(([coord]) => TYPE_OF_GRAPHQL[coord.slice(0, coord.indexOf('.'))] === type).map(([, f]) => f);
}

/** A schema field a stored field feeds; `generalised` when it is a coarser form computed from it. */
export interface FedField {
  coordinate: string;
  generalised: boolean;
}
export type FieldFeeds = Map<string, Map<string, FedField[]>>;

/** type name → stored field → the schema fields it feeds. Refuses a schema whose @generalises the code does not compute. */
export function fieldFeeds(cls: Classification): FieldFeeds {
  checkGeneralisers(
    [...cls.values()].flatMap((f) => (f.generalises ? [{ ...f, generalises: f.generalises }] : [])),
    (t) => TYPE_OF_GRAPHQL[t],
  );
  const out: FieldFeeds = new Map();
  for (const f of cls.values()) {
    const stored = REFERENCE_FIELDS[f.coordinate] ?? f.generalises ?? f.field;
    const byField = out.get(f.type) ?? out.set(f.type, new Map()).get(f.type)!;
    byField.set(stored, [...(byField.get(stored) ?? []), { coordinate: f.coordinate, generalised: !!f.generalises }]);
  }
  return out;
}

/**
 * The changed GraphQL fields a purpose receives, or [] when the change is invisible to it.
 * `generalised`: the generalised fields whose value changed, as the change log recorded them; when
 * absent (changes logged before it was recorded) a generalised field counts as changed whenever
 * its exact field did.
 */
export function visibleFields(
  feeds: FieldFeeds, type: EntityType, storedFields: string[], received: Set<string> | undefined, generalised?: readonly string[],
): string[] {
  const byField = feeds.get(GRAPHQL_TYPE[type]);
  const out = new Set<string>();
  for (const sf of storedFields) {
    for (const fed of byField?.get(sf) ?? []) {
      if (received && !received.has(fed.coordinate)) continue;
      const name = fed.coordinate.slice(fed.coordinate.indexOf('.') + 1);
      if (fed.generalised && generalised && !generalised.includes(name)) continue;
      out.add(type === 'demographics' ? `demographics.${name}` : name);
    }
  }
  return [...out].sort();
}
