/**
 * OneRoster 1.1 / 1.2 rostering JSON, as 1EdTech defines it and ClassLink serves it (with the
 * quirks noted in the reference: booleans as strings, zero-padded grades, empty strings). The CSV
 * connector turns its rows into these shapes too, so both share one mapping.
 */

export interface GUIDRef {
  sourcedId: string;
  href?: string;
  type?: string;
}

export type Bool = boolean | string;

interface Base {
  sourcedId: string;
  status?: 'active' | 'tobedeleted' | string;
  dateLastModified?: string;
}

export interface OrOrg extends Base {
  name?: string;
  type?: string;
  identifier?: string;
  parent?: GUIDRef | null;
}

export interface OrAcademicSession extends Base {
  title?: string;
  type?: string;
  startDate?: string;
  endDate?: string;
  parent?: GUIDRef | null;
  schoolYear?: string;
}

export interface OrCourse extends Base {
  title?: string;
  courseCode?: string;
  schoolYear?: GUIDRef | null;
  org?: GUIDRef | null;
  grades?: string[];
  subjects?: string[];
}

export interface OrClass extends Base {
  title?: string;
  classCode?: string;
  classType?: string;
  location?: string;
  grades?: string[];
  subjects?: string[];
  course?: GUIDRef | null;
  school?: GUIDRef | null;
  terms?: GUIDRef[];
  /** A string in 1.1, an array in 1.2 (and on ClassLink's 1.1). */
  periods?: string | string[];
}

export interface OrRole {
  roleType?: 'primary' | 'secondary' | string;
  role: string;
  org?: GUIDRef;
  beginDate?: string;
  endDate?: string;
}

export interface OrUser extends Base {
  username?: string;
  userIds?: { type: string; identifier: string }[];
  enabledUser?: Bool;
  givenName?: string;
  familyName?: string;
  middleName?: string;
  preferredFirstName?: string;
  identifier?: string;
  email?: string;
  sms?: string;
  phone?: string;
  agents?: GUIDRef[];
  grades?: string[];
  /** 1.1 */
  role?: string;
  orgs?: GUIDRef[];
  /** 1.2 (some 1.1 tenants send it too) */
  roles?: OrRole[];
  primaryOrg?: GUIDRef | null;
  userMasterIdentifier?: string;
}

export interface OrDemographics extends Base {
  birthDate?: string;
  sex?: string;
  americanIndianOrAlaskaNative?: Bool;
  asian?: Bool;
  blackOrAfricanAmerican?: Bool;
  nativeHawaiianOrOtherPacificIslander?: Bool;
  white?: Bool;
  demographicRaceTwoOrMoreRaces?: Bool;
  hispanicOrLatinoEthnicity?: Bool;
  countryOfBirthCode?: string;
}

export interface OrEnrollment extends Base {
  user?: GUIDRef;
  class?: GUIDRef;
  school?: GUIDRef;
  role?: string;
  primary?: Bool;
  beginDate?: string;
  endDate?: string;
}

/** Envelope key of each list resource ({"users": [...]}). */
export const ENVELOPE: Record<string, string> = {
  orgs: 'orgs', academicSessions: 'academicSessions', courses: 'courses', users: 'users', demographics: 'demographics', classes: 'classes', enrollments: 'enrollments',
};
