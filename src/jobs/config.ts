/**
 * The `worker:` section of the config file: how `rostergate worker` (and `serve`'s in-process
 * schedule on SQLite) take and run scheduled syncs. Every key has a default fit for production;
 * tests shorten them.
 */
import { z } from 'zod';

export const workerConfigSchema = z
  .object({
    /** How often each process looks for syncs that are due and enqueues them (any number may; each slot is enqueued once). */
    tickSeconds: z.number().min(1).max(3600).default(30),
    /** Jobs one worker process runs at once (`--concurrency` overrides it). */
    concurrency: z.number().int().min(1).max(64).default(1),
    /**
     * A running job renews its claim every third of this; one not renewed for this long (its worker
     * was killed or lost the database) is handed to another worker.
     */
    jobTimeoutSeconds: z.number().int().min(2).max(3600).default(120),
    /** How often the queue looks for such abandoned jobs (one process does it per period). */
    maintenanceSeconds: z.number().int().min(1).max(3600).default(30),
    /** How often an idle worker asks the queue for a job. */
    pollSeconds: z.number().min(0.5).max(60).default(2),
    /** Further attempts after a failed sync of a slot; later slots run regardless. */
    retryLimit: z.number().int().min(0).max(20).default(5),
    /** The first retry's delay; each further one doubles it (with jitter). */
    retryDelaySeconds: z.number().int().min(1).max(86_400).default(60),
    /** On SIGTERM, how long a running sync may go on before it is stopped and its job handed back to the queue. */
    shutdownGraceSeconds: z.number().min(0).max(3600).default(60),
  })
  .strict();

export type WorkerConfig = z.infer<typeof workerConfigSchema>;
