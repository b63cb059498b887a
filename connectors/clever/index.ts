/**
 * Clever (Data API v3.0/v3.1 with the Events API), registered as `type: clever`.
 * See README.md beside this file for the field mapping and how to point it at Clever.
 */
import type { ConnectorDefinition } from '../types.ts';
import { cleverConfigSchema, type CleverConfig } from './config.ts';
import { CleverConnector } from './connector.ts';
import { CLEVER_SANDBOX_TOKEN, cleverSandboxApp } from './sandbox.ts';

export { CLEVER_SANDBOX_TOKEN, CLEVER_SANDBOX_CLIENT_ID, CLEVER_SANDBOX_CLIENT_SECRET, cleverSandbox, cleverId } from './sandbox.ts';

/** The config block of a source reading the Clever sandbox at `baseUrl`. */
export function sandboxSourceConfig(baseUrl: string) {
  return { type: 'clever' as const, baseUrl, token: CLEVER_SANDBOX_TOKEN, apiVersion: '3.1' as const };
}

export const cleverDefinition: ConnectorDefinition<CleverConfig> = {
  type: 'clever',
  configSchema: cleverConfigSchema,
  create: (config, ctx) => new CleverConnector(config, ctx),
  // Clever allows 1200 requests per minute per token.
  defaultHttp: { requestsPerMinute: 1200 },
  sandbox: cleverSandboxApp,
  demoSource: ({ sandboxUrl }) => sandboxSourceConfig(sandboxUrl('/clever')),
  delivers: {
    org: ['address', 'highGrade', 'identifier', 'lowGrade', 'name', 'parentKey', 'phone', 'schoolNumber', 'sisId', 'stateId', 'type'],
    academicSession: ['endDate', 'orgKey', 'startDate', 'title', 'type'],
    course: ['courseCode', 'orgKey', 'title'],
    person: ['email', 'familyName', 'givenName', 'grades', 'graduationYear', 'middleName', 'orgKeys', 'phone', 'preferredGivenName', 'primaryOrgKey', 'roles', 'sisId', 'stateId', 'studentNumber', 'teacherNumber', 'title', 'username'],
    demographics: ['americanIndianOrAlaskaNative', 'asian', 'birthDate', 'blackOrAfricanAmerican', 'englishLanguageLearner', 'freeReducedLunch', 'gifted', 'hispanicOrLatino', 'homeLanguage', 'iep', 'nativeHawaiianOrOtherPacificIslander', 'personKey', 'postalCode', 'section504', 'sex', 'twoOrMoreRaces', 'white'],
    class: ['classCode', 'courseKey', 'grades', 'periods', 'schoolKey', 'subjects', 'termKeys', 'title'],
    enrollment: ['classKey', 'personKey', 'primary', 'role', 'schoolKey'],
    guardianship: ['contactType', 'emergencyContact', 'guardianKey', 'relation', 'studentKey'],
  },
};
