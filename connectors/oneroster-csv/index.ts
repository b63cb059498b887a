/**
 * OneRoster CSV 1.1/1.2 drops (zip or folder), registered as `type: oneroster-csv`.
 * See README.md beside this file.
 */
import { join } from 'node:path';
import type { ConnectorDefinition } from '../types.ts';
import { ONEROSTER_DELIVERS } from '../oneroster/mapping.ts';
import { oneRosterCsvConfigSchema, type OneRosterCsvConfig } from './config.ts';
import { OneRosterCsvConnector } from './connector.ts';
import { writeOneRosterDrop } from './writer.ts';

export { writeOneRosterDrop } from './writer.ts';
export { OneRosterCsvConnector } from './connector.ts';

export function sandboxSourceConfig(path: string) {
  return { type: 'oneroster-csv' as const, path, mode: 'strict' as const };
}

export const oneRosterCsvDefinition: ConnectorDefinition<OneRosterCsvConfig> = {
  type: 'oneroster-csv',
  configSchema: oneRosterCsvConfigSchema,
  create: (config, ctx) => new OneRosterCsvConnector(config, ctx),
  demoSource: ({ dataset, workDir }) => sandboxSourceConfig(writeOneRosterDrop(dataset, join(workDir, 'oneroster-csv'), { mode: 'bulk', version: '1.2', zip: true })),
  delivers: ONEROSTER_DELIVERS,
};
