/**
 * Clever Data API v3.0/v3.1 JSON, as the official swagger (Clever/swagger-api) defines it — only
 * the parts rostergate reads. Every field may be absent or "" on the wire.
 */

export interface CleverLink {
  rel: 'next' | 'prev' | 'self' | string;
  uri: string;
}

export interface CleverList<T> {
  data: { data: T; uri?: string }[];
  links?: CleverLink[];
}

export interface CleverName {
  first?: string;
  middle?: string;
  last?: string;
}

export interface CleverDistrict {
  id: string;
  name?: string;
  nces_id?: string;
  mdr_number?: string;
}

export interface CleverLocation {
  address?: string;
  city?: string;
  state?: string;
  zip?: string;
}

export interface CleverSchool {
  id: string;
  district?: string;
  name?: string;
  sis_id?: string;
  school_number?: string;
  state_id?: string;
  nces_id?: string;
  phone?: string;
  low_grade?: string;
  high_grade?: string;
  location?: CleverLocation;
  last_modified?: string;
}

export interface CleverTerm {
  id: string;
  district?: string;
  name?: string;
  start_date?: string;
  end_date?: string;
}

export interface CleverCourse {
  id: string;
  district?: string;
  name?: string;
  number?: string;
}

export interface CleverCredentials {
  district_username?: string;
}

export interface CleverStudentRole {
  sis_id?: string;
  state_id?: string;
  student_number?: string;
  credentials?: CleverCredentials;
  school?: string;
  schools?: string[];
  grade?: string;
  graduation_year?: string;
  dob?: string;
  gender?: 'M' | 'F' | 'X' | '';
  race?: string;
  hispanic_ethnicity?: 'Y' | 'N' | '';
  ell_status?: 'Y' | 'N' | '';
  frl_status?: 'Free' | 'Reduced' | 'Paid' | 'Other' | '';
  iep_status?: string;
  section_504_status?: 'Y' | 'N' | '';
  gifted_status?: 'Y' | 'N' | '';
  home_language?: string;
  home_language_code?: string;
  location?: CleverLocation;
  preferred_name?: CleverName;
}

export interface CleverTeacherRole {
  sis_id?: string;
  state_id?: string;
  teacher_number?: string;
  title?: string;
  credentials?: CleverCredentials;
  school?: string;
  schools?: string[];
}

export interface CleverStaffRole {
  staff_id?: string;
  title?: string;
  credentials?: CleverCredentials;
  schools?: string[];
}

export interface CleverContactRole {
  sis_id?: string;
  phone?: string;
  phone_type?: string;
  student_relationships?: { student: string; relationship?: string; type?: string }[];
}

export interface CleverUser {
  id: string;
  district?: string;
  email?: string;
  name?: CleverName;
  created?: string;
  last_modified?: string;
  roles?: {
    student?: CleverStudentRole;
    teacher?: CleverTeacherRole;
    staff?: CleverStaffRole;
    district_admin?: { title?: string };
    contact?: CleverContactRole;
  };
}

export interface CleverSection {
  id: string;
  district?: string;
  school?: string;
  course?: string;
  term_id?: string;
  name?: string;
  period?: string;
  section_number?: string;
  sis_id?: string;
  subject?: string;
  grade?: string;
  teacher?: string;
  teachers?: string[];
  students?: string[];
  last_modified?: string;
}

export interface CleverEvent {
  id: string;
  type: string;
  created?: string;
  data: { object: Record<string, unknown>; previous_attributes?: Record<string, unknown> };
  /** The swagger places it here; the only real wire sample puts it inside `data`. Both are read. */
  previous_attributes?: Record<string, unknown>;
}
