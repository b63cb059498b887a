import { log } from '../log.ts';
import { openStore, syncAll } from '../runtime.ts';
import { formatSummary, progressHooks } from '../sync/progress.ts';
import { loadConfig } from './serve.ts';
import { RostergateError } from '../errors.ts';
import { setupPrivacy } from '../privacy/setup.ts';
import { buildUnifiedSchema } from '../graphql/schema.ts';

export async function syncCommand(opts: { config?: string; source?: string; full?: boolean; allowMassDelete?: boolean }): Promise<number> {
  const cfg = loadConfig(opts.config);
  if (cfg.sources.length === 0) throw new RostergateError('CONFIG_INVALID', 'no sources configured: add a `sources:` list to the config file');
  // With purposes configured, ingest minimisation and pseudonyms apply (and need the master key).
  const privacy = Object.keys(cfg.purposes).length ? setupPrivacy(cfg, buildUnifiedSchema()) : undefined;
  if (!privacy) log.warn('no purposes configured: nothing is minimised at ingest and no pseudonyms are made');
  const store = await openStore(cfg);
  try {
    const summaries = await syncAll(store, cfg, log, {
      privacy,
      only: opts.source,
      full: opts.full,
      allowMassDelete: opts.allowMassDelete,
      hooks: progressHooks(log),
    });
    for (const s of summaries) process.stdout.write(formatSummary(s) + '\n');
    return summaries.some((s) => s.status !== 'complete') ? 3 : 0;
  } finally {
    await store.close();
  }
}
