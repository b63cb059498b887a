import { z } from 'zod';
import { sourceBase } from '../config-base.ts';
import { csvLimitOptions } from '../csv-kit.ts';

/** `type: sds-csv` — a School Data Sync CSV drop (v2.1, classic v1 or its UK variant), folder or zip. */
export const sdsCsvConfigSchema = sourceBase
  .extend({
    type: z.literal('sds-csv'),
    path: z.string().min(1),
    /** Detected from the file names and School.csv header when not given. */
    format: z.enum(['v2.1', 'v1', 'v1-uk']).optional(),
    mode: z.enum(['strict', 'tolerant']).default('tolerant'),
    ...csvLimitOptions,
  })
  .strict();
export type SdsCsvConfig = z.infer<typeof sdsCsvConfigSchema>;
