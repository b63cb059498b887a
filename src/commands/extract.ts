import { createWriteStream, existsSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { once } from 'node:events';
import { availableParallelism } from 'node:os';
import { RostergateError } from '../errors.ts';
import { buildUnifiedSchema } from '../graphql/schema.ts';
import { setupPrivacy } from '../graphql/privacy.ts';
import { assertStoreKey } from '../privacy/store-key.ts';
import { sourceTypes } from '../runtime.ts';
import { isPostgresUrl, openStore } from '../store/open.ts';
import { datasetOf } from '../extract/columns.ts';
import { FORMATS, humanSummary, prepareExtract, runExtract, type ExtractFormat } from '../extract/extract.ts';
import { extractProgress } from '../extract/progress.ts';
import { closeExtractThreads, defaultThreads } from '../extract/parallel.ts';
import { loadConfig } from '../config/config.ts';

/**
 * `rostergate extract`: writes to OUT.partial and renames when complete, so a failed extract
 * leaves no half file behind; the report goes to OUT.report.json.
 */
export async function extractCommand(opts: { config?: string; client: string; dataset: string; format: string; out: string; force?: boolean; k?: string; threads?: number }): Promise<void> {
  const dataset = datasetOf(opts.dataset);
  if (!FORMATS.includes(opts.format as ExtractFormat)) throw new RostergateError('CONFIG_INVALID', `unknown format "${opts.format}" (formats: ${FORMATS.join(', ')})`);
  const reportPath = `${opts.out}.report.json`;
  for (const f of [opts.out, reportPath]) {
    if (existsSync(f) && !opts.force) throw new RostergateError('CONFIG_INVALID', `${f} exists: refusing to overwrite (pass --force)`);
  }
  const cfg = loadConfig(opts.config, 'extract');
  if (!isPostgresUrl(cfg.store) && !existsSync(cfg.store)) throw new RostergateError('DATA_FOLDER', `no store at ${cfg.store}: run \`rostergate sync\` first`);
  const privacy = setupPrivacy(cfg, buildUnifiedSchema());
  if (!privacy.clientPurpose(opts.client)) throw new RostergateError('CONFIG_INVALID', `no client "${opts.client}" in the config`);
  const request = { client: opts.client, dataset, format: opts.format as ExtractFormat, k: opts.k === undefined ? undefined : Number(opts.k) };
  prepareExtract(privacy, request);
  const store = await openStore(cfg);
  try {
    await assertStoreKey(store, privacy.keyring);
  } catch (e) {
    await store.close();
    throw e;
  }
  const partial = `${opts.out}.partial`;
  // `mode` applies only to a file being created: a stale partial (or, with --force, an old report)
  // of a wider mode is removed first, so the extract and its report are always owner-only.
  rmSync(partial, { force: true });
  const out = createWriteStream(partial, { mode: 0o600, flags: 'wx' });
  const progress = extractProgress(dataset, await store.counts());
  try {
    const threads = opts.threads ?? defaultThreads(availableParallelism());
    const report = await runExtract({ ...request, store, privacy, sourceTypes: sourceTypes(cfg), out, onProgress: progress.onProgress, threads });
    progress.stop();
    out.end();
    await once(out, 'finish');
    renameSync(partial, opts.out);
    rmSync(reportPath, { force: true });
    writeFileSync(reportPath, JSON.stringify(report, null, 2) + '\n', { mode: 0o600, flag: 'wx' });
    process.stdout.write(humanSummary(report) + `\nwrote ${opts.out} and ${reportPath}\n`);
  } catch (e) {
    progress.stop();
    out.destroy();
    rmSync(partial, { force: true });
    throw e;
  } finally {
    await closeExtractThreads();
    await store.close();
  }
}
