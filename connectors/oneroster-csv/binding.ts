/**
 * The OneRoster CSV binding (1.1 and 1.2): files, column order, required columns, and how a row
 * becomes the OneRoster JSON shape the shared mapping reads. Only rostering files are read;
 * gradebook and resources files are accepted and ignored.
 */
import { multi } from '../csv-kit.ts';
import type { OrRole, OrUser } from '../oneroster/wire.ts';

const HEAD = ['sourcedId', 'status', 'dateLastModified'];

export interface FileSpec {
  columns: string[];
  required: string[];
}

export const FILES: Record<'1.1' | '1.2', Record<string, FileSpec>> = {
  '1.1': {
    orgs: { columns: [...HEAD, 'name', 'type', 'identifier', 'parentSourcedId'], required: ['sourcedId', 'name', 'type'] },
    academicSessions: { columns: [...HEAD, 'title', 'type', 'startDate', 'endDate', 'parentSourcedId', 'schoolYear'], required: ['sourcedId', 'title', 'type', 'startDate', 'endDate'] },
    courses: { columns: [...HEAD, 'schoolYearSourcedId', 'title', 'courseCode', 'grades', 'orgSourcedId', 'subjects', 'subjectCodes'], required: ['sourcedId', 'title', 'orgSourcedId'] },
    classes: { columns: [...HEAD, 'title', 'grades', 'courseSourcedId', 'classCode', 'classType', 'location', 'schoolSourcedId', 'termSourcedIds', 'subjects', 'subjectCodes', 'periods'], required: ['sourcedId', 'title', 'courseSourcedId', 'classType', 'schoolSourcedId', 'termSourcedIds'] },
    enrollments: { columns: [...HEAD, 'classSourcedId', 'schoolSourcedId', 'userSourcedId', 'role', 'primary', 'beginDate', 'endDate'], required: ['sourcedId', 'classSourcedId', 'schoolSourcedId', 'userSourcedId', 'role'] },
    demographics: {
      columns: [...HEAD, 'birthDate', 'sex', 'americanIndianOrAlaskaNative', 'asian', 'blackOrAfricanAmerican', 'nativeHawaiianOrOtherPacificIslander', 'white', 'demographicRaceTwoOrMoreRaces', 'hispanicOrLatinoEthnicity', 'countryOfBirthCode', 'stateOfBirthAbbreviation', 'cityOfBirth', 'publicSchoolResidenceStatus'],
      required: ['sourcedId'],
    },
    users: {
      columns: [...HEAD, 'enabledUser', 'orgSourcedIds', 'role', 'username', 'userIds', 'givenName', 'familyName', 'middleName', 'identifier', 'email', 'sms', 'phone', 'agentSourcedIds', 'grades', 'password'],
      required: ['sourcedId', 'enabledUser', 'orgSourcedIds', 'role', 'username', 'givenName', 'familyName'],
    },
  },
  '1.2': {} as Record<string, FileSpec>,
};
FILES['1.2'] = {
  ...FILES['1.1'],
  users: {
    columns: [...HEAD, 'enabledUser', 'username', 'userIds', 'givenName', 'familyName', 'middleName', 'identifier', 'email', 'sms', 'phone', 'agentSourcedIds', 'grades', 'password', 'userMasterIdentifier', 'resourceSourcedIds', 'preferredGivenName', 'preferredMiddleName', 'preferredFamilyName', 'primaryOrgSourcedId', 'pronouns'],
    required: ['sourcedId', 'enabledUser', 'username', 'givenName', 'familyName'],
  },
  roles: { columns: [...HEAD, 'userSourcedId', 'roleType', 'role', 'beginDate', 'endDate', 'orgSourcedId', 'userProfileSourcedId'], required: ['sourcedId', 'userSourcedId', 'roleType', 'role', 'orgSourcedId'] },
};

/** Every file name a manifest may list (1.2 superset), read or not. */
export const ALL_FILES = [
  'academicSessions', 'categories', 'classes', 'classResources', 'courses', 'courseResources', 'demographics', 'enrollments', 'lineItems', 'orgs',
  'resources', 'results', 'users', 'lineItemLearningObjectiveIds', 'lineItemScoreScales', 'resultLearningObjectiveIds', 'resultScoreScales', 'roles',
  'scoreScales', 'userProfiles', 'userResources',
];

/** The order rostering files are applied in: what a record refers to comes first. */
export const ORDER = ['orgs', 'academicSessions', 'courses', 'users', 'demographics', 'classes', 'enrollments'];

const ref = (v: string | undefined) => (v && v.trim() ? { sourcedId: v.trim() } : undefined);
const base = (r: Record<string, string>) => ({ sourcedId: r.sourcedId ?? '', status: r.status || 'active', dateLastModified: r.dateLastModified || undefined });

/** `{LDAP:12},{SIS:S100}` → [{type, identifier}] */
export function userIds(v: string | undefined): { type: string; identifier: string }[] {
  return [...(v ?? '').matchAll(/\{([^:}]+):([^}]*)\}/g)].map((m) => ({ type: m[1]!.trim(), identifier: m[2]!.trim() }));
}

/** A row as the OneRoster JSON object of its file. */
export function toJson(fileName: string, r: Record<string, string>, roles?: OrRole[]): Record<string, unknown> {
  switch (fileName) {
    case 'orgs':
      return { ...base(r), name: r.name, type: r.type, identifier: r.identifier, parent: ref(r.parentSourcedId) };
    case 'academicSessions':
      return { ...base(r), title: r.title, type: r.type, startDate: r.startDate, endDate: r.endDate, parent: ref(r.parentSourcedId), schoolYear: r.schoolYear };
    case 'courses':
      return { ...base(r), title: r.title, courseCode: r.courseCode, grades: multi(r.grades), subjects: multi(r.subjects), org: ref(r.orgSourcedId), schoolYear: ref(r.schoolYearSourcedId) };
    case 'classes':
      return {
        ...base(r), title: r.title, classCode: r.classCode, classType: r.classType, location: r.location, grades: multi(r.grades), subjects: multi(r.subjects),
        course: ref(r.courseSourcedId), school: ref(r.schoolSourcedId), terms: multi(r.termSourcedIds).map((x) => ({ sourcedId: x })), periods: multi(r.periods),
      };
    case 'enrollments':
      return {
        ...base(r), class: ref(r.classSourcedId), school: ref(r.schoolSourcedId), user: ref(r.userSourcedId), role: r.role, primary: r.primary,
        beginDate: r.beginDate, endDate: r.endDate,
      };
    case 'demographics':
      return { ...base(r), ...Object.fromEntries(Object.entries(r).filter(([k]) => !['sourcedId', 'status', 'dateLastModified'].includes(k))) };
    case 'users': {
      const u: OrUser = {
        ...base(r), enabledUser: r.enabledUser, username: r.username, userIds: userIds(r.userIds), givenName: r.givenName, familyName: r.familyName,
        middleName: r.middleName, identifier: r.identifier, email: r.email, sms: r.sms, phone: r.phone, grades: multi(r.grades),
        agents: multi(r.agentSourcedIds).map((x) => ({ sourcedId: x })), preferredFirstName: r.preferredGivenName,
        // 1.1 carries role and orgs on the row; 1.2 in roles.csv.
        role: r.role || undefined, orgs: multi(r.orgSourcedIds).map((x) => ({ sourcedId: x })), roles,
        primaryOrg: ref(r.primaryOrgSourcedId), userMasterIdentifier: r.userMasterIdentifier,
      };
      return u as unknown as Record<string, unknown>;
    }
    default:
      return base(r);
  }
}
