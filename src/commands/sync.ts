import { log } from '../log.ts';
import { openStore, syncAll } from '../runtime.ts';
import { formatSummary, progressHooks } from '../sync/progress.ts';
import { loadConfig } from './serve.ts';
import { RostergateError } from '../errors.ts';
import { setupPrivacy } from '../privacy/setup.ts';
import { buildUnifiedSchema } from '../graphql/schema.ts';

/** Exit codes: 0 every source complete; 1 a source failed; 3 the mass-deletion guard stopped one. */
export async function syncCommand(opts: { config?: string; source?: string; full?: boolean; allowMassDelete?: boolean }): Promise<number> {
  const cfg = loadConfig(opts.config);
  if (cfg.sources.length === 0) throw new RostergateError('CONFIG_INVALID', 'no sources configured: add a `sources:` list to the config file');
  // With purposes configured, ingest minimisation and pseudonyms apply (and need the master key).
  const privacy = Object.keys(cfg.purposes).length ? setupPrivacy(cfg, buildUnifiedSchema()) : undefined;
  if (!privacy) log.warn('no purposes configured: nothing is minimised at ingest and no pseudonyms are made');
  const store = await openStore(cfg);
  try {
    // One failing source does not keep the others from syncing: each has its own cursor, and a
    // failed one resumes where it stopped on the next run.
    const summaries = await syncAll(store, cfg, log, {
      privacy,
      only: opts.source,
      full: opts.full,
      allowMassDelete: opts.allowMassDelete,
      hooks: progressHooks(log),
      keepGoing: true,
    });
    for (const s of summaries) process.stdout.write(formatSummary(s) + '\n');
    const failed = summaries.filter((s) => s.status === 'failed');
    // The failing source, resource and reason, as the last lines a script or a person sees.
    for (const s of failed) process.stderr.write(`rostergate: ${s.error ?? `source ${s.source}: failed`}\n`);
    return failed.length ? 1 : summaries.some((s) => s.status === 'guarded') ? 3 : 0;
  } finally {
    await store.close();
  }
}
