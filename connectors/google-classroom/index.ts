/** Google Classroom API v1 (service account, domain-wide delegation), registered as `type: google-classroom`. */
import type { ConnectorDefinition } from '../types.ts';
import { googleConfigSchema, type GoogleConfig } from './config.ts';
import { GoogleClassroomConnector } from './connector.ts';
import { GOOGLE_SANDBOX_ADMIN, googleSandboxApp, sandboxServiceAccountKey } from './sandbox.ts';

export { defaultCourseState, GOOGLE_SANDBOX_ADMIN, googleId, googleSandbox, sandboxServiceAccountKey } from './sandbox.ts';

/** A source reading the Classroom sandbox mounted at `sandboxBase` (…/google). */
export function sandboxSourceConfig(sandboxBase: string) {
  return {
    type: 'google-classroom' as const, baseUrl: sandboxBase, subject: GOOGLE_SANDBOX_ADMIN,
    serviceAccountKey: JSON.stringify(sandboxServiceAccountKey(`${sandboxBase}/token`)),
  };
}

export const googleClassroomDefinition: ConnectorDefinition<GoogleConfig> = {
  type: 'google-classroom',
  configSchema: googleConfigSchema as never,
  create: (config, ctx) => new GoogleClassroomConnector(config, ctx),
  // Classroom's default quota: 1200 queries per minute per user (the impersonated admin).
  defaultHttp: { requestsPerMinute: 1200 },
  sandbox: googleSandboxApp,
  demoSource: ({ sandboxUrl }) => sandboxSourceConfig(sandboxUrl('/google')),
  delivers: {
    org: ['name', 'type'],
    person: ['email', 'familyName', 'givenName', 'orgKeys', 'photoUrl', 'primaryOrgKey', 'roles'],
    class: ['classCode', 'location', 'schoolKey', 'title'],
    enrollment: ['classKey', 'personKey', 'primary', 'role', 'schoolKey'],
    guardianship: ['guardianKey', 'studentKey'],
  },
};
