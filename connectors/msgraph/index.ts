/**
 * Microsoft Graph Education (SDS-provisioned tenants), registered as `type: msgraph`.
 * See README.md beside this file.
 */
import type { ConnectorDefinition } from '../types.ts';
import { msGraphConfigSchema, type MsGraphConfig } from './config.ts';
import { MsGraphConnector } from './connector.ts';
import { MSGRAPH_SANDBOX_CLIENT_ID, MSGRAPH_SANDBOX_CLIENT_SECRET, MSGRAPH_SANDBOX_TENANT, graphSandboxApp } from './sandbox.ts';

export { MSGRAPH_SANDBOX_CLIENT_ID, MSGRAPH_SANDBOX_CLIENT_SECRET, MSGRAPH_SANDBOX_TENANT, graphSandbox, graphId } from './sandbox.ts';

/** A source reading the Graph sandbox mounted at `sandboxBase` (…/msgraph). */
export function sandboxSourceConfig(sandboxBase: string) {
  return {
    type: 'msgraph' as const, tenantId: MSGRAPH_SANDBOX_TENANT, clientId: MSGRAPH_SANDBOX_CLIENT_ID, clientSecret: MSGRAPH_SANDBOX_CLIENT_SECRET,
    baseUrl: `${sandboxBase}/v1.0`, authorityUrl: sandboxBase,
  };
}

export const msGraphDefinition: ConnectorDefinition<MsGraphConfig> = {
  type: 'msgraph',
  configSchema: msGraphConfigSchema,
  create: (config, ctx) => new MsGraphConnector(config, ctx),
  sandbox: graphSandboxApp,
  demoSource: ({ sandboxUrl }) => sandboxSourceConfig(sandboxUrl('/msgraph')),
  delivers: {
    org: ['address', 'highGrade', 'lowGrade', 'name', 'parentKey', 'phone', 'schoolNumber', 'sisId', 'type'],
    academicSession: ['endDate', 'startDate', 'title', 'type'],
    course: ['courseCode', 'description', 'subjects', 'title'],
    person: ['email', 'enabled', 'familyName', 'givenName', 'grades', 'graduationYear', 'middleName', 'orgKeys', 'phone', 'primaryOrgKey', 'roles', 'sisId', 'studentNumber', 'teacherNumber', 'username'],
    demographics: ['birthDate', 'personKey', 'sex'],
    class: ['classCode', 'courseKey', 'grades', 'schoolKey', 'termKeys', 'title'],
    enrollment: ['classKey', 'personKey', 'primary', 'role'],
  },
};
