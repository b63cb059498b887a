import { z } from 'zod';
import { sourceBase } from '../config-base.ts';
import { csvLimitOptions } from '../csv-kit.ts';

/** `type: oneroster-csv` — a OneRoster 1.1/1.2 CSV drop: a .zip or a folder, bulk or delta per manifest.csv. */
export const oneRosterCsvConfigSchema = sourceBase
  .extend({
    type: z.literal('oneroster-csv'),
    path: z.string().min(1),
    /** strict: every deviation from the binding is an error; tolerant: real-world defects are warnings. */
    mode: z.enum(['strict', 'tolerant']).default('tolerant'),
    ...csvLimitOptions,
  })
  .strict();
export type OneRosterCsvConfig = z.infer<typeof oneRosterCsvConfigSchema>;
