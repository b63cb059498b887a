import { chmodSync, writeFileSync } from 'node:fs';
import { log } from '../log.ts';
import { lowerCpuPriority } from '../kernel/cpu-priority.ts';
import { syncAll } from '../runtime.ts';
import { openStore } from '../store/open.ts';
import { formatSummary, progressHooks } from '../sync/progress.ts';
import { loadConfig } from '../config/config.ts';
import { RostergateError } from '../errors.ts';
import { EXIT } from '../exit-codes.ts';
import { privacyForSync, type Privacy } from '../graphql/privacy.ts';
import { buildUnifiedSchema } from '../graphql/schema.ts';
import type { SyncSummary } from '../sync/runner.ts';
import type { Config } from '../config/config.ts';
import { KeyRing } from '../privacy/pseudonym.ts';
import type { Store } from '../store/types.ts';
import { CatalogTenants } from '../tenants/catalog-tenants.ts';
import { assertActive, privacyPerTenant, tenantConfig } from '../tenants/sync-tenant.ts';

/**
 * Exit codes (src/exit-codes.ts): 0 every source complete; 1 a source failed; 2 bad config (no
 * sources, no purposes); 3 the mass-deletion guard stopped one; 4 another run (process or machine)
 * was syncing one, which was skipped; 5 the tenant (--tenant) is paused. The first that applies, in
 * the order 1, 4, 3.
 *
 * Without --tenant the config file's own tenant is synced, as before tenants existed; --tenant ID
 * syncs a catalog tenant's sources into its store with its key ring; --all-tenants every active
 * tenant, the config file's own first (paused ones are named and skipped).
 */
export async function syncCommand(opts: {
  config?: string; source?: string; full?: boolean; allowMassDelete?: boolean; wait?: boolean; report?: string; tenant?: string; allTenants?: boolean;
}): Promise<number> {
  const cfg = loadConfig(opts.config, 'sync');
  log.debug({ nice: lowerCpuPriority(cfg.sync.nice, (m) => log.warn(m)) }, 'CPU priority of this sync process (sync.nice)');
  if (opts.tenant && opts.allTenants) throw new RostergateError('CONFIG_INVALID', 'give --tenant or --all-tenants, not both');
  if (!opts.tenant && !opts.allTenants) return syncHome(cfg, opts);
  if ((opts.report || opts.source) && opts.allTenants) throw new RostergateError('CONFIG_INVALID', '--report and --source are for one tenant\'s sync: use them with --tenant');
  // The master key is needed (each tenant's key ring derives from it), or a refusal before anything is opened.
  privacyForSync(cfg, buildUnifiedSchema());
  const keyring = KeyRing.load({ tenant: cfg.privacy.tenant, file: cfg.privacy.masterKeyFile });
  const home = await openStore(cfg);
  const tenants = new CatalogTenants({ storeLocation: cfg.store, homeStore: home, home: { id: cfg.privacy.tenant, sources: cfg.sources }, keyring });
  // The purpose schemas built once, each tenant's privacy bound to its own key ring.
  const privacyFor = privacyPerTenant(cfg);
  try {
    if (opts.tenant) {
      const tenant = await tenants.open(opts.tenant);
      if (!tenant) throw new RostergateError('NOT_FOUND', `no tenant "${opts.tenant}" (rostergate tenants list)`);
      assertActive(tenant);
      const tcfg = tenantConfig(cfg, tenant, tenants.home);
      return await syncOne(tenant.store, tcfg, opts, privacyFor(tenant));
    }
    const codes: number[] = [];
    for (const info of await tenants.list()) {
      if (info.status === 'paused') {
        process.stderr.write(`rostergate: tenant ${info.id} is paused: skipped\n`);
        continue;
      }
      const tenant = (await tenants.open(info.id))!;
      const tcfg = tenantConfig(cfg, tenant, tenants.home);
      if (tcfg.sources.length === 0) continue;
      process.stdout.write(`tenant ${tenant.id}\n`);
      codes.push(await syncOne(tenant.store, tcfg, opts, privacyFor(tenant)));
    }
    return [EXIT.FAILED, EXIT.BUSY, EXIT.GUARDED].find((c) => codes.includes(c)) ?? EXIT.OK;
  } finally {
    await tenants.close();
    await home.close();
  }
}

async function syncHome(cfg: Config, opts: SyncOptions): Promise<number> {
  if (cfg.sources.length === 0) throw new RostergateError('CONFIG_INVALID', `${cfg.file}: no sources configured: add a \`sources:\` list (docs/connectors.md)`);
  // Ingest minimisation and pseudonyms (which need the master key), or a refusal before the store is opened.
  const privacy = privacyForSync(cfg, buildUnifiedSchema());
  const store = await openStore(cfg);
  try {
    return await syncOne(store, cfg, opts, privacy);
  } finally {
    await store.close();
  }
}

interface SyncOptions { source?: string; full?: boolean; allowMassDelete?: boolean; wait?: boolean; report?: string }

/** One tenant's sources into its store (cfg: the config as that tenant's sync sees it); the exit code. */
async function syncOne(store: Store, cfg: Config, opts: SyncOptions, privacy: Privacy | undefined): Promise<number> {
  if (!privacy) log.warn('server.openAccess without purposes: every field is stored as delivered and no pseudonyms are made');
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
}

/** The `--report FILE` document: per source, its run and every entry of its report. */
export function reportDocument(summaries: SyncSummary[]): unknown {
  return {
    sources: summaries.map((s) => ({
      source: s.source, runId: s.runId, mode: s.mode, status: s.status, startedAt: s.startedAt, endedAt: s.endedAt,
      ...(s.restedMs ? { restedMs: s.restedMs } : {}),
      timesMs: s.times,
      ...(s.error ? { error: s.error } : {}),
      counts: s.report.counts,
      entries: s.report.entries,
    })),
  };
}
