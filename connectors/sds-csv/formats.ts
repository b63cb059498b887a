/**
 * School Data Sync CSV formats: v2.1 (orgs, users, roles, classes, enrollments, academicSessions,
 * courses, demographics, userFlags, relationships), classic v1 (School, Section, Student, Teacher,
 * StudentEnrollment, TeacherRoster, and the parent add-on user/guardianrelationship), and v1's UK
 * variant, which renames the id columns (DfE Number, ID, School DfE Number, Section ID, Postal Code).
 */

export type SdsFormat = 'v2.1' | 'v1' | 'v1-uk';

export interface SdsFile {
  columns: string[];
  required: string[];
  optional?: boolean;
}

export const V21: Record<string, SdsFile> = {
  'orgs.csv': { columns: ['sourcedId', 'name', 'type', 'parentSourcedId'], required: ['sourcedId', 'name', 'type'] },
  'users.csv': { columns: ['sourcedId', 'username', 'givenName', 'familyName', 'password', 'activeDirectoryMatchId', 'email', 'phone', 'sms'], required: ['sourcedId', 'username'] },
  'roles.csv': { columns: ['userSourcedId', 'orgSourcedId', 'role', 'sessionSourcedId', 'grade', 'isPrimary', 'roleStartDate', 'roleEndDate'], required: ['userSourcedId', 'orgSourcedId', 'role'] },
  'classes.csv': { columns: ['sourcedId', 'orgSourcedId', 'title', 'sessionSourcedIds', 'courseSourcedId', 'code'], required: ['sourcedId', 'orgSourcedId', 'title'], optional: true },
  'enrollments.csv': { columns: ['classSourcedId', 'userSourcedId', 'role'], required: ['classSourcedId', 'userSourcedId', 'role'], optional: true },
  'academicSessions.csv': { columns: ['sourcedId', 'title', 'type', 'schoolYear', 'startDate', 'endDate'], required: ['sourcedId', 'title', 'type'], optional: true },
  'courses.csv': { columns: ['sourcedId', 'orgSourcedId', 'title', 'code', 'schoolYearSourcedId', 'subject', 'grade'], required: ['sourcedId', 'title'], optional: true },
  'demographics.csv': { columns: ['userSourcedId', 'sex', 'birthDate', 'birthCity', 'birthState', 'birthCountry', 'ethnicityCodes', 'raceCodes'], required: ['userSourcedId'], optional: true },
  'userFlags.csv': { columns: ['userSourcedId', 'flag'], required: ['userSourcedId', 'flag'], optional: true },
  'relationships.csv': { columns: ['userSourcedId', 'relationshipUserSourcedId', 'relationshipRole'], required: ['userSourcedId', 'relationshipUserSourcedId'], optional: true },
};

const V1_BASE: Record<string, SdsFile> = {
  'School.csv': {
    columns: ['SIS ID', 'Name', 'School Number', 'School NCES_ID', 'State ID', 'Grade Low', 'Grade High', 'Principal SIS ID', 'Principal Name', 'Principal Secondary Email', 'Address', 'City', 'State', 'Country', 'Zip', 'Phone', 'Zone'],
    required: ['SIS ID', 'Name'],
  },
  'Section.csv': {
    columns: ['SIS ID', 'School SIS ID', 'Section Name', 'Section Number', 'Term SIS ID', 'Term Name', 'Term StartDate', 'Term EndDate', 'Course SIS ID', 'Course Name', 'Course Number', 'Course Description', 'Course Subject', 'Periods', 'Status'],
    required: ['SIS ID', 'School SIS ID', 'Section Name'],
  },
  'Student.csv': {
    columns: ['SIS ID', 'School SIS ID', 'First Name', 'Last Name', 'Username', 'Password', 'State ID', 'Secondary Email', 'Student Number', 'Middle Name', 'Grade', 'Status', 'Birthdate', 'Graduation Year'],
    required: ['SIS ID', 'School SIS ID', 'Username'],
  },
  'Teacher.csv': {
    columns: ['SIS ID', 'School SIS ID', 'First Name', 'Last Name', 'Username', 'Password', 'State ID', 'Teacher Number', 'Status', 'Middle Name', 'Secondary Email', 'Title', 'Qualification'],
    required: ['SIS ID', 'School SIS ID', 'Username'],
  },
  'StudentEnrollment.csv': { columns: ['Section SIS ID', 'SIS ID'], required: ['Section SIS ID', 'SIS ID'] },
  'TeacherRoster.csv': { columns: ['Section SIS ID', 'SIS ID'], required: ['Section SIS ID', 'SIS ID'] },
  'user.csv': { columns: ['Email', 'First Name', 'Last Name', 'Phone', 'SIS ID'], required: ['Email'], optional: true },
  'guardianrelationship.csv': { columns: ['SIS ID', 'Email', 'Role'], required: ['SIS ID', 'Email', 'Role'], optional: true },
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
    Object.entries(V1_BASE).map(([f, spec]) => [f, { ...spec, columns: spec.columns.map((c) => ukName(f, c)), required: spec.required.map((c) => ukName(f, c)) }]),
  );
}
