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
};
