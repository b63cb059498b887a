/**
 * A OneRoster 1.1 bulk drop with the defects real exports carry, of our own making: every person,
 * id and address is made up. Used by the contract tests and the CLI test of `sync --report`.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { tempDir } from './stores.ts';

export const MANIFEST = (version = '1.1') => `propertyName,value
manifest.version,1.0
oneroster.version,${version}
file.academicSessions,bulk
file.classes,bulk
file.courses,bulk
file.demographics,absent
file.enrollments,bulk
file.orgs,bulk
file.users,bulk
`;

/** A OneRoster 1.1 bulk drop with the defects real exports carry. */
export const FILES: Record<string, string> = {
  'orgs.csv': `sourcedId,status,dateLastModified,name,type,identifier,parentSourcedId
org-d1,,,Test District,district,,
org-s1,,2017-05-06 08:01:05,Test School One,school,,org-d1
org-s2,,2023-05-01,Test School Two,school,,org-missing
org-s3,tobedeleted,,Closed School,school,,org-d1
org-s4,inactive,,Old School,school,,org-d1
`,
  'academicSessions.csv': `sourcedId,status,dateLastModified,title,type,startDate,endDate,parentSourcedId,schoolYear
term-1,,15/06/2023,Term One,term,2023-08-15,2023-12-20,,2024
term-2,,06/05/2023,Term Two,term,2024-01-08,2024-06-14,,2024
`,
  'courses.csv': `sourcedId,status,dateLastModified,schoolYearSourcedId,title,courseCode,grades,orgSourcedId,subjects,subjectCodes
crs-1,,,,Test Course,TC1,,org-s1,,
`,
  'classes.csv': `sourcedId,status,dateLastModified,title,grades,courseSourcedId,classCode,classType,location,schoolSourcedId,termSourcedIds,subjects,subjectCodes,periods
cls-1,,,Class One,,crs-1,C1,scheduled,,org-s1,term-1,,,
cls-2,,,Class Two,,crs-missing,C2,scheduled,,org-s1,term-missing,,,
cls-3,,,Class Three,,,C3,scheduled,,org-s1,term-1,,,
`,
  'users.csv': `sourcedId,status,dateLastModified,enabledUser,orgSourcedIds,role,username,userIds,givenName,familyName,middleName,identifier,email,sms,phone,agentSourcedIds,grades,password
usr-1,,,true,org-s1,student,test.one,,Testa,Onesie,,,"hauc""k.testa@example.com",,,,09,
usr-2,,,true,org-s1,student,test.two,,Testb,Twosie,,,seth_testb.example.org,,,,09,
usr-3,,,true,org-s1,teacher,test.three,,Testc,Threesie,,,testc.threesie@example.org,,,,,
usr-4,,,true,org-missing,student,test.four,,Testd,Foursie,,,,,,,09,
`,
  'enrollments.csv': `sourcedId,status,dateLastModified,classSourcedId,schoolSourcedId,userSourcedId,role,primary,beginDate,endDate
enr-1,,,cls-1,org-s1,usr-1,student,false,,
enr-2,,,cls-1,org-s1,usr-2,student,false,,
enr-3,,,cls-1,org-s1,usr-3,teacher,true,,
enr-4,,,cls-2,org-s1,usr-4,student,false,,
enr-5,,,cls-missing,org-s1,usr-1,student,false,,
`,
};

export function writeDrop(files: Record<string, string>, manifest = MANIFEST()): string {
  const dir = join(tempDir(), 'drop');
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'manifest.csv'), manifest);
  for (const [name, text] of Object.entries(files)) writeFileSync(join(dir, name), text);
  return dir;
}

