import { z } from 'zod';
import { sourceBase } from '../config-base.ts';
import { secret } from '../../src/secret.ts';

/** `type: msgraph` — Microsoft Graph Education (School Data Sync tenants), app-only client credentials. */
export const msGraphConfigSchema = sourceBase
  .extend({
    type: z.literal('msgraph'),
    tenantId: z.string().min(1),
    clientId: secret,
    clientSecret: secret,
    baseUrl: z.string().url().default('https://graph.microsoft.com/v1.0'),
    authorityUrl: z.string().url().default('https://login.microsoftonline.com'),
    /** Page size: `$top` on lists, `Prefer: odata.maxpagesize` on delta (Graph clamps what it does not allow). */
    pageSize: z.number().int().min(1).max(999).default(999),
    /** Name of the district org standing for the tenant. */
    districtName: z.string().default('Microsoft 365 tenant'),
  })
  .strict();
export type MsGraphConfig = z.infer<typeof msGraphConfigSchema>;
