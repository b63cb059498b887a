import { loadConfig, type Config } from '../config/config.ts';
import { RostergateError } from '../errors.ts';
import { errorForLog, log } from '../log.ts';
import { serveStore } from '../runtime.ts';
import { isPostgresUrl, openStore } from '../store/open.ts';
import { KeyRing } from '../privacy/pseudonym.ts';
import type { Store } from '../store/types.ts';
import { existsSync } from 'node:fs';
import { assertCanListen } from '../server/gateway.ts';
import { CatalogTenants } from '../tenants/catalog-tenants.ts';
import { tenantAdmin } from '../tenants/admin.ts';
import { stopTracing } from '../kernel/tracing.ts';
import type { Tenants } from '../tenants/tenants.ts';
import { lazyKeyRing } from '../tenants/home-tenant.ts';
import { startInProcessSchedule, type InProcessSchedule } from '../jobs/in-process.ts';
import { syncJobRunner } from '../jobs/sync-job.ts';

export async function serveCommand(opts: { config?: string; port?: number; host?: string }): Promise<void> {
  const cfg = loadConfig(opts.config, 'serve');
  // With scheduled sources the schedule fills a new store; without, a missing one is most likely a wrong path.
  if (!isPostgresUrl(cfg.store) && !existsSync(cfg.store) && !cfg.sources.some((s) => s.schedule)) {
    throw new RostergateError('DATA_FOLDER', `no store at ${cfg.store}: run \`rostergate sync\` first (or \`npm start\` for the demo)`);
  }
  // A port that is taken fails before the store is opened and its start-up work (migrations, view times) runs.
  await assertCanListen(opts.port ?? cfg.server.port, opts.host ?? cfg.server.host);
  const store = await openStore(cfg);
  // Every tenant of the deployment: the config's own and the catalog's, added and removed at run time.
  const tenants = servedTenants(cfg, store);
  const gw = await serveStore(store, cfg, log, { port: opts.port, host: opts.host, tenants, tenantAdmin: tenantAdmin(tenants) });
  const schedule = await scheduleInProcess(cfg, tenants);
  const metrics = gw.metricsUrl ? `  metrics: ${gw.metricsUrl}/metrics\n` : '';
  process.stdout.write(`rostergate serving ${storeForDisplay(cfg.store)}\n  GraphQL: ${gw.url}/graphql\n  console: ${gw.url}/\n${metrics}`);
  onShutdown(async () => {
    await schedule?.stop();
    await gw.close();
    await tenants.close();
    await store.close();
  });
}

/** The store as printed: a PostgreSQL URL without its password (container logs are widely read). */
export function storeForDisplay(store: string): string {
  if (!isPostgresUrl(store)) return store;
  try {
    const u = new URL(store);
    if (u.password) u.password = '***';
    return u.toString();
  } catch {
    return 'the PostgreSQL store';
  }
}

/**
 * Scheduled syncs (`sources[].schedule`) inside `serve` when the store is SQLite: one process owns
 * the file, so no queue. On PostgreSQL `rostergate worker` runs them, on as many machines as needed.
 */
async function scheduleInProcess(cfg: Config, tenants: Tenants): Promise<InProcessSchedule | undefined> {
  if (isPostgresUrl(cfg.store)) {
    if ((await tenants.list()).some((t) => t.sources.some((s) => s.schedule))) log.info('sources have schedules: on PostgreSQL, `rostergate worker` runs them (docs/scheduling.md)');
    return undefined;
  }
  // Always started on SQLite: a tenant added later with scheduled sources is picked up by the tick.
  return startInProcessSchedule({ tenants, run: syncJobRunner({ cfg, tenants, log }), cfg: cfg.worker, log });
}

/**
 * The tenants of a deployment (`serve`, `worker`): the catalog's (src/tenants/catalog-tenants.ts),
 * whose home tenant is the config's own over the configured store. The master key is read now, so
 * a missing one stops the command at start; under open access nothing pseudonymises, so it is read
 * only if something needs it (a catalog tenant's key ring).
 */
export function servedTenants(cfg: Config, store: Store): CatalogTenants {
  const keyring = cfg.server.openAccess ? lazyKeyRing(cfg) : KeyRing.load({ tenant: cfg.privacy.tenant, file: cfg.privacy.masterKeyFile });
  return new CatalogTenants({
    storeLocation: cfg.store, homeStore: store, home: { id: cfg.privacy.tenant, sources: cfg.sources }, keyring,
  });
}

/** Graceful shutdown on SIGTERM/SIGINT: finish in-flight requests, close the store, exit 0. */
export function onShutdown(fn: () => Promise<void>): void {
  let stopping = false;
  const stop = (signal: string) => {
    if (stopping) return;
    stopping = true;
    log.info({ signal }, 'shutting down');
    fn().then(stopTracing).then(
      () => process.exit(0),
      (e) => {
        log.error(errorForLog(e), 'shutdown failed');
        process.exit(1);
      },
    );
  };
  process.once('SIGTERM', () => stop('SIGTERM'));
  process.once('SIGINT', () => stop('SIGINT'));
}
