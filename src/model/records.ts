/**
 * The unified roster record model: what every connector produces and what the store ingests.
 *
 * A connector turns a vendor's wire format into `SourceRecord`s. References between records are
 * the *source's own keys* (`schoolKey`, `personKey`, …) — the store resolves them to gateway ids,
 * so a connector never needs to know what is already stored.
 *
 * Field names follow OneRoster where it has one (it is the most complete of the four models);
 * each connector documents how its vendor's fields map onto these.
 */

export const ENTITY_TYPES = [
  'org',
  'academicSession',
  'course',
  'person',
  'demographics',
  'class',
  'enrollment',
  'guardianship',
] as const;
/** Entity types in dependency order: a record only refers to types listed before it. */
export type EntityType = (typeof ENTITY_TYPES)[number];

export type OrgType = 'district' | 'school' | 'department' | 'local' | 'state' | 'national' | 'other';
export type SessionType = 'schoolYear' | 'semester' | 'term' | 'gradingPeriod';
export type PersonRole = 'student' | 'teacher' | 'staff' | 'administrator' | 'guardian';
export type EnrollmentRole = 'student' | 'teacher' | 'administrator' | 'aide' | 'proctor';
export type Sex = 'male' | 'female' | 'other' | 'unspecified';
export type FreeReducedLunch = 'free' | 'reduced' | 'paid' | 'other';
export type GuardianRelation =
  | 'parent'
  | 'guardian'
  | 'grandparent'
  | 'relative'
  | 'sibling'
  | 'aunt_uncle'
  | 'self'
  | 'other';

/** Dates are ISO `YYYY-MM-DD`; timestamps ISO 8601 with zone. */
export type IsoDate = string;
export type IsoDateTime = string;

export interface Address {
  street?: string;
  city?: string;
  state?: string;
  postalCode?: string;
  country?: string;
}

export interface OrgData {
  name: string;
  type: OrgType;
  // Ids of the organisation itself, one field per kind of id as for a person (none is personal):
  // vendors carry different kinds, so a connector fills each only with what its field really is.
  /** The official id given by the national authority: the NCES id (US), the DfE number (England). */
  identifier?: string;
  /** The district student information system's own id for it (Clever `sis_id`, Graph `externalId`, SDS `SIS ID`). */
  sisId?: string;
  /** The id the state (or region) assigned to it (Clever `state_id`, SDS v1 `State ID`). */
  stateId?: string;
  /** The district's own school number, unique only within the district. */
  schoolNumber?: string;
  parentKey?: string;
  lowGrade?: string;
  highGrade?: string;
  phone?: string;
  address?: Address;
}

export interface AcademicSessionData {
  title: string;
  type: SessionType;
  startDate?: IsoDate;
  endDate?: IsoDate;
  /** The calendar year in which the school year ends, e.g. "2026". */
  schoolYear?: string;
  parentKey?: string;
  orgKey?: string;
}

export interface CourseData {
  title: string;
  courseCode?: string;
  orgKey?: string;
  schoolYearKey?: string;
  subjects?: string[];
  grades?: string[];
  description?: string;
}

export interface ClassData {
  title: string;
  classCode?: string;
  classType?: 'homeroom' | 'scheduled';
  schoolKey?: string;
  courseKey?: string;
  termKeys?: string[];
  periods?: string[];
  subjects?: string[];
  grades?: string[];
  location?: string;
}

export interface PersonData {
  givenName: string;
  familyName: string;
  middleName?: string;
  preferredGivenName?: string;
  email?: string;
  username?: string;
  phone?: string;
  sms?: string;
  photoUrl?: string;
  roles: PersonRole[];
  /** The district's student information system id (the usual cross-source match key). */
  sisId?: string;
  stateId?: string;
  studentNumber?: string;
  teacherNumber?: string;
  /** Orgs (schools, district) the person belongs to. */
  orgKeys?: string[];
  primaryOrgKey?: string;
  /** Grade levels as OneRoster/CEDS codes: "KG", "01" … "13", "PK", "PS", "UG", "Other". */
  grades?: string[];
  graduationYear?: string;
  title?: string;
  enabled?: boolean;
}

export interface DemographicsData {
  personKey: string;
  birthDate?: IsoDate;
  sex?: Sex;
  americanIndianOrAlaskaNative?: boolean;
  asian?: boolean;
  blackOrAfricanAmerican?: boolean;
  nativeHawaiianOrOtherPacificIslander?: boolean;
  white?: boolean;
  twoOrMoreRaces?: boolean;
  hispanicOrLatino?: boolean;
  englishLanguageLearner?: boolean;
  iep?: boolean;
  section504?: boolean;
  gifted?: boolean;
  freeReducedLunch?: FreeReducedLunch;
  homeLanguage?: string;
  countryOfBirth?: string;
  postalCode?: string;
}

export interface EnrollmentData {
  classKey: string;
  personKey: string;
  schoolKey?: string;
  role: EnrollmentRole;
  primary?: boolean;
  beginDate?: IsoDate;
  endDate?: IsoDate;
}

export interface GuardianshipData {
  guardianKey: string;
  studentKey: string;
  relation?: GuardianRelation;
  /** Contact types a vendor records (Clever: Parent/Guardian, Emergency, Primary, …). */
  contactType?: string;
  emergencyContact?: boolean;
}

export interface EntityData {
  org: OrgData;
  academicSession: AcademicSessionData;
  course: CourseData;
  person: PersonData;
  demographics: DemographicsData;
  class: ClassData;
  enrollment: EnrollmentData;
  guardianship: GuardianshipData;
}

/** One record as a source delivers it: an upsert, or a deletion of a key. */
export type SourceRecord<T extends EntityType = EntityType> = T extends EntityType
  ? UpsertRecord<T> | DeleteRecord<T>
  : never;

export interface UpsertRecord<T extends EntityType = EntityType> {
  type: T;
  /** The source's own stable key for the record (sourcedId, Clever id, Graph id, …). */
  key: string;
  data: EntityData[T];
  deleted?: false;
  /** When the source last changed it, if the source says. */
  lastModified?: IsoDateTime;
  /**
   * Set when the record carries the complete list of some records that depend on it (a OneRoster
   * student's agents, a Clever contact's student_relationships, a Clever section's rosters): records
   * of this source linked to it through `rel` (e.g. "guardianship.student") whose keys are not in
   * `keys` are gone. This is how an incremental read learns that a relationship ended.
   */
  owns?: { rel: string; keys: string[] }[];
  /**
   * Fields this delivery does not carry (a OneRoster 1.2 CSV delta row whose roles.csv rows are
   * not in the drop): the values this source delivered last time stand.
   */
  keep?: string[];
}

export interface DeleteRecord<T extends EntityType = EntityType> {
  type: T;
  key: string;
  deleted: true;
  lastModified?: IsoDateTime;
}

/** Fields of each entity type that hold references to other records, and the type they point at. */
export const REFERENCES: { [T in EntityType]: Partial<Record<keyof EntityData[T], EntityType>> } = {
  org: { parentKey: 'org' },
  academicSession: { parentKey: 'academicSession', orgKey: 'org' },
  course: { orgKey: 'org', schoolYearKey: 'academicSession' },
  person: { orgKeys: 'org', primaryOrgKey: 'org' },
  demographics: { personKey: 'person' },
  class: { schoolKey: 'org', courseKey: 'course', termKeys: 'academicSession' },
  enrollment: { classKey: 'class', personKey: 'person', schoolKey: 'org' },
  guardianship: { guardianKey: 'person', studentKey: 'person' },
};

export function isDeletion(r: SourceRecord): r is DeleteRecord {
  return r.deleted === true;
}
