/**
 * The config keys the privacy layer owns (the `privacy:` section), and what the privacy layer reads
 * of the whole config. The assembly (src/config/config.ts) combines these schemas with the other
 * layers' into the schema of the config file; code here names only the parts it reads, so it does
 * not depend on the assembly.
 */
import { z } from 'zod';
import type { SourceType } from '../../connectors/types.ts';
import type { JwtConfig } from './jwt.ts';
import type { ClientConfig, PurposeConfig } from './policy.ts';
import type { RetentionPeriods } from './retention.ts';
import type { EndpointRules } from './webhook-endpoints.ts';

const party = z.object({ name: z.string().min(1), contact: z.string().min(1) }).strict();

/** Keys under `privacy:` that say what the report cannot derive. All optional; the report says when one is missing. */
export const reportConfigShape = {
  /** Who decides on the processing: the school or school board. */
  controller: party.optional(),
  /** Who runs the gateway for the controller, with its data protection officer. */
  processor: party.extend({ dpo: z.string().min(1).optional() }).strict().optional(),
  /** Where the gateway and its store run, e.g. "Amsterdam, Netherlands (EU)". */
  processingLocations: z.array(z.string().min(1)).optional(),
  /** Other parties that process the data for the processor (hosting, backups, …). */
  subProcessors: z.array(z.object({ name: z.string().min(1), purpose: z.string().min(1), location: z.string().min(1) }).strict()).optional(),
};

export const privacySectionSchema = z
  .object({
    /** Tenant label mixed into every derived key: two deployments with one master key stay unlinkable. */
    tenant: z.string().min(1).default('default'),
    /** File holding the master key (mode 0600). ROSTERGATE_MASTER_KEY in the environment wins. */
    masterKeyFile: z.string().optional(),
    /** controller, processor, processingLocations, subProcessors: what the privacy report cannot derive. */
    ...reportConfigShape,
  })
  .strict()
  .default({ tenant: 'default' });
export type PrivacySection = z.infer<typeof privacySectionSchema>;

/** What assembling the privacy layer reads of the config (src/graphql/privacy.ts). */
export interface PrivacyConfig {
  file?: string;
  privacy: Pick<PrivacySection, 'tenant' | 'masterKeyFile'>;
  purposes: Record<string, PurposeConfig>;
  clients: ClientConfig[];
  auth: { jwt?: JwtConfig };
  /** Handed to the admin API, which checks a new webhook's endpoint against them. */
  webhooks: EndpointRules;
  sources: readonly { id: string }[];
  server: { openAccess: boolean };
}

/** What the privacy report reads of the config (./report.ts). */
export interface ReportConfig {
  file?: string;
  privacy: PrivacySection;
  sources: readonly { id: string; type: SourceType }[];
  clients: readonly Pick<ClientConfig, 'id' | 'purpose' | 'description'>[];
  retention: RetentionPeriods & { runEveryHours: number };
  webhooks: { maxAttempts: number };
}
