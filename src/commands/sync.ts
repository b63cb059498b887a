import { chmodSync, writeFileSync } from 'node:fs';
import { log } from '../log.ts';
import { openStore, syncAll } from '../runtime.ts';
import { formatSummary, progressHooks } from '../sync/progress.ts';
import { loadConfig } from './serve.ts';
import { RostergateError } from '../errors.ts';
import { EXIT } from '../exit-codes.ts';
import { privacyForSync } from '../graphql/privacy.ts';
import { buildUnifiedSchema } from '../graphql/schema.ts';
import type { SyncSummary } from '../sync/runner.ts';

/**
 * Exit codes (src/exit-codes.ts): 0 every source complete; 1 a source failed; 2 bad config (no
 * sources, no purposes); 3 the mass-deletion guard stopped one; 4 another run (process or machine)
 * was syncing one, which was skipped. The first that applies, in the order 1, 4, 3.
 */
export async function syncCommand(opts: { config?: string; source?: string; full?: boolean; allowMassDelete?: boolean; wait?: boolean; report?: string }): Promise<number> {
  const cfg = loadConfig(opts.config, 'sync');
  if (cfg.sources.length === 0) throw new RostergateError('CONFIG_INVALID', `${cfg.file}: no sources configured: add a \`sources:\` list (docs/connectors.md)`);
  // Ingest minimisation and pseudonyms (which need the master key), or a refusal before the store is opened.
  const privacy = privacyForSync(cfg, buildUnifiedSchema());
  if (!privacy) log.warn('server.openAccess without purposes: every field is stored as delivered and no pseudonyms are made');
  const store = await openStore(cfg);
  try {
    // One failing source does not keep the others from syncing: each has its own cursor, and a
    // failed one resumes where it stopped on the next run.
    const busy: RostergateError[] = [];
    const summaries = await syncAll(store, cfg, log, {
      wait: opts.wait,
      onBusy: (e) => busy.push(e),
      privacy,
      only: opts.source,
      full: opts.full,
      allowMassDelete: opts.allowMassDelete,
      hooks: progressHooks(log),
      keepGoing: true,
    });
    for (const s of summaries) process.stdout.write(formatSummary(s, { reportFile: opts.report }) + '\n');
    if (opts.report) {
      // Owner-only, like every file rostergate writes that names records (source keys can be SIS ids).
      writeFileSync(opts.report, JSON.stringify(reportDocument(summaries), null, 2) + '\n', { mode: 0o600 });
      chmodSync(opts.report, 0o600);
    }
    const failed = summaries.filter((s) => s.status === 'failed');
    const guarded = summaries.filter((s) => s.status === 'guarded');
    // What stopped a source (the failing source, resource and reason, or the guard's finding), as
    // the last lines a script or a person sees.
    for (const s of [...guarded, ...failed]) process.stderr.write(`rostergate: ${s.error ?? `source ${s.source}: ${s.status}`}\n`);
    for (const e of busy) process.stderr.write(`rostergate: ${e.message}\n`);
    return failed.length ? EXIT.FAILED : busy.length ? EXIT.BUSY : guarded.length ? EXIT.GUARDED : EXIT.OK;
  } finally {
    await store.close();
  }
}

/** The `--report FILE` document: per source, its run and every entry of its report. */
export function reportDocument(summaries: SyncSummary[]): unknown {
  return {
    sources: summaries.map((s) => ({
      source: s.source, runId: s.runId, mode: s.mode, status: s.status, startedAt: s.startedAt, endedAt: s.endedAt,
      ...(s.error ? { error: s.error } : {}),
      counts: s.report.counts,
      entries: s.report.entries,
    })),
  };
}
