/**
 * Which schema fields a stored field feeds, so the change feed can tell whether an update is
 * visible to a purpose: `birthDate` feeds Demographics.birthDate, .birthYear and .ageBand;
 * `schoolId` feeds Class.school. A change whose fields feed nothing the purpose receives is not an
 * event for it.
 */
import type { EntityType } from '../model/records.ts';
import type { Classification } from '../privacy/classification.ts';

export const GRAPHQL_TYPE: Record<EntityType, string> = {
  org: 'Organization', academicSession: 'AcademicSession', course: 'Course', person: 'Person',
  demographics: 'Demographics', class: 'Class', enrollment: 'Enrollment', guardianship: 'Guardianship',
};

export const RECORD_TYPE: Record<Exclude<EntityType, 'demographics'>, string> = {
  org: 'ORGANIZATION', academicSession: 'ACADEMIC_SESSION', course: 'COURSE', person: 'PERSON',
  class: 'CLASS', enrollment: 'ENROLLMENT', guardianship: 'GUARDIANSHIP',
};
export const ENTITY_OF_RECORD_TYPE = Object.fromEntries(Object.entries(RECORD_TYPE).map(([e, r]) => [r, e])) as Record<string, EntityType>;

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

export type FieldFeeds = Map<string, Map<string, string[]>>;

/** type name → stored field → the coordinates it feeds. */
export function fieldFeeds(cls: Classification): FieldFeeds {
  const out: FieldFeeds = new Map();
  for (const f of cls.values()) {
    const stored = REFERENCE_FIELDS[f.coordinate] ?? f.generalises ?? f.field;
    const byField = out.get(f.type) ?? out.set(f.type, new Map()).get(f.type)!;
    byField.set(stored, [...(byField.get(stored) ?? []), f.coordinate]);
  }
  return out;
}

/** The changed GraphQL fields a purpose receives, or [] when the change is invisible to it. */
export function visibleFields(feeds: FieldFeeds, type: EntityType, storedFields: string[], received: Set<string> | undefined): string[] {
  const byField = feeds.get(GRAPHQL_TYPE[type]);
  const out = new Set<string>();
  for (const sf of storedFields) {
    for (const coord of byField?.get(sf) ?? []) {
      if (received && !received.has(coord)) continue;
      const name = coord.slice(coord.indexOf('.') + 1);
      out.add(type === 'demographics' ? `demographics.${name}` : name);
    }
  }
  return [...out].sort();
}
