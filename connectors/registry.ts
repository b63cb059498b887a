/**
 * Every source type the gateway can read, in one place. Adding a vendor means adding its
 * definition here; config validation, the CLI, the sandbox server and the demo all read this list.
 */
import type { ConnectorDefinition, SourceType } from './types.ts';
import { cleverDefinition } from './clever/index.ts';
import { oneRosterDefinition } from './oneroster/index.ts';
import { oneRosterCsvDefinition } from './oneroster-csv/index.ts';
import { msGraphDefinition } from './msgraph/index.ts';
import { sdsCsvDefinition } from './sds-csv/index.ts';
import { googleClassroomDefinition } from './google-classroom/index.ts';

// eslint-disable-next-line @typescript-eslint/no-explicit-any
type AnyDefinition = ConnectorDefinition<any>;

export const CONNECTORS: AnyDefinition[] = [cleverDefinition, oneRosterDefinition, oneRosterCsvDefinition, msGraphDefinition, sdsCsvDefinition, googleClassroomDefinition];

export function definitionOf(type: string): AnyDefinition | undefined {
  return CONNECTORS.find((d) => d.type === type);
}

export const SOURCE_TYPES: SourceType[] = ['clever', 'oneroster', 'oneroster-csv', 'msgraph', 'sds-csv', 'google-classroom'];
