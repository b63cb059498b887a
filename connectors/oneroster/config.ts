import { z } from 'zod';
import { sourceBase } from '../config-base.ts';
import { secret } from '../../src/secret.ts';

export const ONEROSTER_12_SCOPES = [
  'https://purl.imsglobal.org/spec/or/v1p2/scope/roster-core.readonly',
  'https://purl.imsglobal.org/spec/or/v1p2/scope/roster.readonly',
  'https://purl.imsglobal.org/spec/or/v1p2/scope/roster-demographics.readonly',
].join(' ');

/** `type: oneroster` — OneRoster REST 1.1 (OAuth 1.0a) or 1.2 (OAuth 2 client credentials). */
export const oneRosterConfigSchema = sourceBase
  .extend({
    type: z.literal('oneroster'),
    version: z.enum(['1.1', '1.2']).default('1.1'),
    /** …/ims/oneroster/v1p1 or …/ims/oneroster/rostering/v1p2 */
    baseUrl: z.string().url(),
    clientId: secret,
    clientSecret: secret,
    /** 1.2 token endpoint; default: the base URL's origin + /token (ClassLink's form is unverified: set it when known). */
    tokenUrl: z.string().url().optional(),
    scope: z.string().default(ONEROSTER_12_SCOPES),
    pageSize: z.number().int().min(1).max(10_000).default(1000),
    /** Incremental reads ask for changes since the previous run started minus this overlap (clock skew). */
    deltaOverlapSeconds: z.number().int().min(0).default(300),
  })
  .strict();
export type OneRosterConfig = z.infer<typeof oneRosterConfigSchema>;
