/** Microsoft Graph v1.0 education JSON (the subset read), per the CSDL in shared/external/microsoft. */
export interface ODataPage<T> {
  '@odata.context'?: string;
  '@odata.nextLink'?: string;
  '@odata.deltaLink'?: string;
  value: T[];
}

export interface PhysicalAddress {
  city?: string | null;
  countryOrRegion?: string | null;
  postalCode?: string | null;
  state?: string | null;
  street?: string | null;
}

export interface EduSchool {
  id: string;
  displayName?: string;
  externalId?: string | null;
  schoolNumber?: string | null;
  lowestGrade?: string | null;
  highestGrade?: string | null;
  phone?: string | null;
  address?: PhysicalAddress | null;
}

export interface EduUser {
  id: string;
  displayName?: string | null;
  givenName?: string | null;
  surname?: string | null;
  middleName?: string | null;
  mail?: string | null;
  userPrincipalName?: string | null;
  mobilePhone?: string | null;
  accountEnabled?: boolean | null;
  primaryRole?: 'student' | 'teacher' | 'none' | string;
  student?: { birthDate?: string | null; externalId?: string | null; gender?: string | null; grade?: string | null; graduationYear?: string | null; studentNumber?: string | null } | null;
  teacher?: { externalId?: string | null; teacherNumber?: string | null } | null;
  '@removed'?: { reason: string };
}

export interface EduTerm {
  displayName?: string | null;
  startDate?: string | null;
  endDate?: string | null;
  externalId?: string | null;
}

export interface EduCourse {
  courseNumber?: string | null;
  description?: string | null;
  displayName?: string | null;
  externalId?: string | null;
  subject?: string | null;
}

export interface EduClass {
  id: string;
  displayName?: string;
  classCode?: string | null;
  externalId?: string | null;
  grade?: string | null;
  term?: EduTerm | null;
  course?: EduCourse | null;
  '@removed'?: { reason: string };
}

export const USER_SELECT = 'id,displayName,givenName,surname,middleName,mail,userPrincipalName,mobilePhone,accountEnabled,primaryRole,student,teacher';
export const CLASS_SELECT = 'id,displayName,classCode,externalId,grade,term,course';
export const SCHOOL_SELECT = 'id,displayName,externalId,schoolNumber,lowestGrade,highestGrade,phone,address';
