/** School Data Sync CSV (v2.1, classic v1, UK), registered as `type: sds-csv`. See README.md beside this file. */
import type { ConnectorDefinition } from '../types.ts';
import { sdsCsvConfigSchema, type SdsCsvConfig } from './config.ts';
import { SdsCsvConnector } from './connector.ts';

export { writeSdsDrop } from './writer.ts';
export { SdsCsvConnector } from './connector.ts';

export function sandboxSourceConfig(path: string) {
  return { type: 'sds-csv' as const, path, mode: 'strict' as const };
}

export const sdsCsvDefinition: ConnectorDefinition<SdsCsvConfig> = {
  type: 'sds-csv',
  configSchema: sdsCsvConfigSchema,
  create: (config, ctx) => new SdsCsvConnector(config, ctx),
  delivers: {
    org: ['address', 'highGrade', 'identifier', 'lowGrade', 'name', 'parentKey', 'phone', 'schoolNumber', 'sisId', 'stateId', 'type'],
    academicSession: ['endDate', 'schoolYear', 'startDate', 'title', 'type'],
    course: ['courseCode', 'description', 'grades', 'orgKey', 'schoolYearKey', 'subjects', 'title'],
    person: ['email', 'familyName', 'givenName', 'grades', 'graduationYear', 'middleName', 'orgKeys', 'phone', 'primaryOrgKey', 'roles', 'sisId', 'sms', 'stateId', 'studentNumber', 'teacherNumber', 'title', 'username'],
    demographics: ['americanIndianOrAlaskaNative', 'asian', 'birthDate', 'blackOrAfricanAmerican', 'countryOfBirth', 'englishLanguageLearner', 'freeReducedLunch', 'hispanicOrLatino', 'iep', 'personKey', 'section504', 'sex', 'twoOrMoreRaces', 'white'],
    class: ['classCode', 'courseKey', 'periods', 'schoolKey', 'termKeys', 'title'],
    enrollment: ['classKey', 'personKey', 'primary', 'role'],
    guardianship: ['guardianKey', 'relation', 'studentKey'],
  },
};
