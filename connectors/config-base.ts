/**
 * Config keys every source shares. Each connector's schema extends `sourceBase` with its own keys
 * and stays `.strict()`, so a misspelt key is a clear error rather than a silently ignored one.
 */
import { z } from 'zod';
import { scheduleSchema } from './schedule.ts';

export const httpOptions = z
  .object({
    /** Idle timeout: longest silence waiting for headers or between body chunks. */
    timeoutMs: z.number().int().positive().optional(),
    /** Overall deadline of one request, headers and whole body (default 120000). */
    requestDeadlineMs: z.number().int().positive().optional(),
    /** Largest response body accepted, in bytes (default 64 MiB); larger pages fail, retried like a 5xx. */
    maxBodyBytes: z.number().int().positive().optional(),
    maxRetries: z.number().int().min(0).max(20).optional(),
    requestsPerMinute: z.number().int().positive().optional(),
    /** Upper bound on requests in one sync run of this source. */
    budget: z.number().int().positive().optional(),
  })
  .strict();

export const sourceBase = z.object({
  /** Chosen by the user; unique across sources; appears in provenance, errors and the change log. */
  id: z.string().regex(/^[a-z0-9][a-z0-9._-]*$/i, 'use letters, digits, ".", "_" or "-"'),
  http: httpOptions.optional(),
  /** When a sync of this source is due (connectors/schedule.ts): run by `rostergate worker`, or by `serve` on SQLite. */
  schedule: scheduleSchema.optional(),
});
