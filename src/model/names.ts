/**
 * What each record type is called where it leaves the gateway: its GraphQL object type, and the
 * RecordType enum value the change feed and webhook event types use. One table, read by the
 * resolvers, the purpose schemas, minimisation, the change feed and the privacy report.
 */
import type { EntityType } from './records.ts';

export const GRAPHQL_TYPE: Record<EntityType, string> = {
  org: 'Organization', academicSession: 'AcademicSession', course: 'Course', person: 'Person',
  demographics: 'Demographics', class: 'Class', enrollment: 'Enrollment', guardianship: 'Guardianship',
};

export const RECORD_TYPE: Record<Exclude<EntityType, 'demographics'>, string> = {
  org: 'ORGANIZATION', academicSession: 'ACADEMIC_SESSION', course: 'COURSE', person: 'PERSON',
  class: 'CLASS', enrollment: 'ENROLLMENT', guardianship: 'GUARDIANSHIP',
};
export const ENTITY_OF_RECORD_TYPE = Object.fromEntries(Object.entries(RECORD_TYPE).map(([e, r]) => [r, e])) as Record<string, EntityType>;
