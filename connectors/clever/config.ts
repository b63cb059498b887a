import { z } from 'zod';
import { sourceBase } from '../config-base.ts';
import { secret } from '../../src/secret.ts';

/** `type: clever` — a district-app (Secure Sync) bearer token against the Data API v3.0/v3.1. */
export const cleverConfigSchema = sourceBase
  .extend({
    type: z.literal('clever'),
    baseUrl: z.string().url().default('https://api.clever.com'),
    token: secret,
    apiVersion: z.enum(['3.0', '3.1']).default('3.1'),
    /** Records per page; Clever's maximum (and our default) is 10000, more is a 413. */
    pageSize: z.number().int().min(1).max(10_000).default(10_000),
  })
  .strict();
export type CleverConfig = z.infer<typeof cleverConfigSchema>;
