/**
 * OneRoster REST 1.1 and 1.2 (as ClassLink serves it), registered as `type: oneroster`.
 * See README.md beside this file for the mapping and how to point it at a Roster Server.
 */
import type { ConnectorDefinition } from '../types.ts';
import { ONEROSTER_DELIVERS } from './mapping.ts';
import { oneRosterConfigSchema, type OneRosterConfig } from './config.ts';
import { OneRosterConnector } from './connector.ts';
import { ONEROSTER_SANDBOX_CLIENT_ID, ONEROSTER_SANDBOX_CLIENT_SECRET, oneRosterSandboxApp, V11, V12 } from './sandbox.ts';

export { ONEROSTER_SANDBOX_CLIENT_ID, ONEROSTER_SANDBOX_CLIENT_SECRET, oneRosterSandbox, V11, V12 } from './sandbox.ts';

/** The config block of a source reading the OneRoster sandbox mounted at `sandboxBase` (…/oneroster). */
export function sandboxSourceConfig(sandboxBase: string, version: '1.1' | '1.2' = '1.2') {
  return {
    type: 'oneroster' as const,
    version,
    baseUrl: `${sandboxBase}${version === '1.1' ? V11 : V12}`,
    tokenUrl: `${sandboxBase}/token`,
    clientId: ONEROSTER_SANDBOX_CLIENT_ID,
    clientSecret: ONEROSTER_SANDBOX_CLIENT_SECRET,
  };
}

export const oneRosterDefinition: ConnectorDefinition<OneRosterConfig> = {
  type: 'oneroster',
  configSchema: oneRosterConfigSchema,
  create: (config, ctx) => new OneRosterConnector(config, ctx),
  sandbox: oneRosterSandboxApp,
  demoSource: ({ sandboxUrl }) => sandboxSourceConfig(sandboxUrl('/oneroster'), '1.2'),
  delivers: ONEROSTER_DELIVERS,
};
