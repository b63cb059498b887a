/**
 * School Data Sync CSV formats: v2.1 (orgs, users, roles, classes, enrollments, academicSessions,
 * courses, demographics, userFlags, relationships), classic v1 (School, Section, Student, Teacher,
 * StudentEnrollment, TeacherRoster, and the parent add-on user/guardianrelationship), and v1's UK
 * variant, which renames the id columns (DfE Number, ID, School DfE Number, Section ID, Postal Code).
 */

export type SdsFormat = 'v2.1' | 'v1' | 'v1-uk';

export interface SdsFile {
  /** Every column SDS defines for the file; only `required` ones must be in the header. */
  columns: string[];
  /** Columns the header must have (values may still be blank where SDS allows it). */
  required: string[];
  /** Ids and references: a row with one of these blank cannot be stored, in any mode. */
  keys: string[];
  /** The drop may leave the file out. */
  optional?: boolean;
}

export const V21: Record<string, SdsFile> = {
  'orgs.csv': { columns: ['sourcedId', 'name', 'type', 'parentSourcedId'], required: ['sourcedId', 'name', 'type'], keys: ['sourcedId'] },
  'users.csv': { columns: ['sourcedId', 'username', 'givenName', 'familyName', 'password', 'activeDirectoryMatchId', 'email', 'phone', 'sms'], required: ['sourcedId', 'username'], keys: ['sourcedId'] },
  'roles.csv': { columns: ['userSourcedId', 'orgSourcedId', 'role', 'sessionSourcedId', 'grade', 'isPrimary', 'roleStartDate', 'roleEndDate'], required: ['userSourcedId', 'orgSourcedId', 'role'], keys: ['userSourcedId', 'orgSourcedId'] },
  'classes.csv': { columns: ['sourcedId', 'orgSourcedId', 'title', 'sessionSourcedIds', 'courseSourcedId', 'code'], required: ['sourcedId', 'orgSourcedId', 'title'], keys: ['sourcedId'], optional: true },
  'enrollments.csv': { columns: ['classSourcedId', 'userSourcedId', 'role'], required: ['classSourcedId', 'userSourcedId', 'role'], keys: ['classSourcedId', 'userSourcedId'], optional: true },
  'academicSessions.csv': { columns: ['sourcedId', 'title', 'type', 'schoolYear', 'startDate', 'endDate'], required: ['sourcedId', 'title', 'type'], keys: ['sourcedId'], optional: true },
  'courses.csv': { columns: ['sourcedId', 'orgSourcedId', 'title', 'code', 'schoolYearSourcedId', 'subject', 'grade'], required: ['sourcedId', 'title'], keys: ['sourcedId'], optional: true },
  'demographics.csv': { columns: ['userSourcedId', 'sex', 'birthDate', 'birthCity', 'birthState', 'birthCountry', 'ethnicityCodes', 'raceCodes'], required: ['userSourcedId'], keys: ['userSourcedId'], optional: true },
  'userFlags.csv': { columns: ['userSourcedId', 'flag'], required: ['userSourcedId', 'flag'], keys: ['userSourcedId'], optional: true },
  'relationships.csv': { columns: ['userSourcedId', 'relationshipUserSourcedId', 'relationshipRole'], required: ['userSourcedId', 'relationshipUserSourcedId'], keys: ['userSourcedId', 'relationshipUserSourcedId'], optional: true },
};

/** Classic v1: the current docs require only School, Student and Teacher; sections and rosters come when classes are managed. */
const V1_BASE: Record<string, SdsFile> = {
  'School.csv': {
    columns: ['SIS ID', 'Name', 'School Number', 'School NCES_ID', 'State ID', 'Grade Low', 'Grade High', 'Principal SIS ID', 'Principal Name', 'Principal Secondary Email', 'Address', 'City', 'State', 'Country', 'Zip', 'Phone', 'Zone'],
    required: ['SIS ID', 'Name'],
    keys: ['SIS ID'],
  },
  'Section.csv': {
    columns: ['SIS ID', 'School SIS ID', 'Section Name', 'Section Number', 'Term SIS ID', 'Term Name', 'Term StartDate', 'Term EndDate', 'Course SIS ID', 'Course Name', 'Course Number', 'Course Description', 'Course Subject', 'Periods', 'Status'],
    required: ['SIS ID', 'School SIS ID', 'Section Name'],
    keys: ['SIS ID'],
    optional: true,
  },
  'Student.csv': {
    columns: ['SIS ID', 'School SIS ID', 'First Name', 'Last Name', 'Username', 'Password', 'State ID', 'Secondary Email', 'Student Number', 'Middle Name', 'Grade', 'Status', 'Birthdate', 'Graduation Year'],
    required: ['SIS ID', 'School SIS ID', 'Username'],
    keys: ['SIS ID', 'School SIS ID'],
  },
  'Teacher.csv': {
    columns: ['SIS ID', 'School SIS ID', 'First Name', 'Last Name', 'Username', 'Password', 'State ID', 'Teacher Number', 'Status', 'Middle Name', 'Secondary Email', 'Title', 'Qualification'],
    required: ['SIS ID', 'School SIS ID', 'Username'],
    keys: ['SIS ID', 'School SIS ID'],
  },
  'StudentEnrollment.csv': { columns: ['Section SIS ID', 'SIS ID'], required: ['Section SIS ID', 'SIS ID'], keys: ['Section SIS ID', 'SIS ID'], optional: true },
  'TeacherRoster.csv': { columns: ['Section SIS ID', 'SIS ID'], required: ['Section SIS ID', 'SIS ID'], keys: ['Section SIS ID', 'SIS ID'], optional: true },
  'user.csv': { columns: ['Email', 'First Name', 'Last Name', 'Phone', 'SIS ID'], required: ['Email'], keys: ['Email'], optional: true },
  // Role may be blank, but its column must be there.
  'guardianrelationship.csv': { columns: ['SIS ID', 'Email', 'Role'], required: ['SIS ID', 'Email', 'Role'], keys: ['SIS ID', 'Email'], optional: true },
};

/** The UK variant's names for the v1 columns. */
export function ukName(file: string, column: string): string {
  if (file === 'School.csv') return column === 'SIS ID' ? 'DfE Number' : column === 'Zip' ? 'Postal Code' : column;
  if (file === 'user.csv' || file === 'guardianrelationship.csv') return column;
  return column === 'SIS ID' ? 'ID' : column === 'School SIS ID' ? 'School DfE Number' : column === 'Section SIS ID' ? 'Section ID' : column;
}

export function filesOf(format: SdsFormat): Record<string, SdsFile> {
  if (format === 'v2.1') return V21;
  if (format === 'v1') return V1_BASE;
  return Object.fromEntries(
    Object.entries(V1_BASE).map(([f, spec]) => [f, { ...spec, columns: spec.columns.map((c) => ukName(f, c)), required: spec.required.map((c) => ukName(f, c)), keys: spec.keys.map((c) => ukName(f, c)) }]),
  );
}
