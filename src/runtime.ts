/**
 * The composition root: turns a validated config into a store, connectors and a gateway. Commands
 * (serve, sync, demo) and end-to-end tests build the gateway the same way through here.
 */
import { HttpClient } from '../connectors/http.ts';
import { definitionOf } from '../connectors/registry.ts';
import type { Connector, SourceType } from '../connectors/types.ts';
import type { Config, SourceConfig } from './config/config.ts';
import { RostergateError, isRostergateError } from './errors.ts';
import { errorForLog, type Logger } from './log.ts';
import type { Store } from './store/types.ts';
import { syncSource, type SyncHooks, type SyncSummary } from './sync/runner.ts';
import { buildUnifiedSchema } from './graphql/schema.ts';
import { createContext } from './graphql/context.ts';
import { startGateway, type RunningGateway } from './server/gateway.ts';
import type { Privacy } from './graphql/privacy.ts';
import { everyHours, metricsAccess, serveTenants, type ServeTenantsOptions } from './tenants/serving.ts';
import { homeTenants } from './tenants/home-tenant.ts';
import type { Tenants } from './tenants/tenants.ts';
import { assertStoreKey } from './privacy/store-key.ts';
import { classify } from './privacy/classification.ts';
import { withCategoryNotes } from './privacy/field-notes.ts';
import { runRetention } from './privacy/retention.ts';
import { startMetricsServer } from './server/metrics-endpoint.ts';
import { runForTenant } from './kernel/tenant-scope.ts';
import { noteRequestCaller } from './kernel/request-context.ts';

const LOOPBACK = new Set(['127.0.0.1', '::1', 'localhost']);

export function createConnector(source: SourceConfig, log: Logger): { connector: Connector; http: HttpClient } {
  const def = definitionOf(source.type);
  if (!def) throw new RostergateError('CONFIG_INVALID', `source ${source.id}: unknown type ${source.type}`);
  const http = new HttpClient({ sourceId: source.id, log, ...def.defaultHttp, ...source.http });
  return { connector: def.create(source, { http, log }), http };
}

export function sourceTypes(cfg: Pick<Config, 'sources'>): Map<string, SourceType> {
  return new Map(cfg.sources.map((s) => [s.id, s.type]));
}

export interface SyncAllOptions {
  only?: string; full?: boolean; allowMassDelete?: boolean; hooks?: SyncHooks; privacy?: Privacy; keepGoing?: boolean;
  /** Wait for another run of a source to finish instead of skipping it. */
  wait?: boolean;
  /** With keepGoing: told of a source another run holds (SYNC_BUSY), which is then skipped. */
  onBusy?: (e: RostergateError) => void;
  /** Stops the run between pages (a worker shutting down hands its job back). */
  signal?: AbortSignal;
}

/**
 * Syncs the configured sources in config order (earlier sources take precedence in merges). A
 * failing source throws, unless `keepGoing`: then its summary says 'failed' and the others still run.
 */
export async function syncAll(store: Store, cfg: Config, log: Logger, opts: SyncAllOptions = {}): Promise<SyncSummary[]> {
  // Its runs, records and vendor requests are counted under the tenant synced (cfg.privacy.tenant:
  // the config's own, or a catalog tenant's, src/tenants/sync-tenant.ts).
  return runForTenant(cfg.privacy.tenant, () => syncSources(store, cfg, log, opts));
}

async function syncSources(store: Store, cfg: Config, log: Logger, opts: SyncAllOptions): Promise<SyncSummary[]> {
  const chosen = opts.only ? cfg.sources.filter((s) => s.id === opts.only) : cfg.sources;
  if (opts.only && chosen.length === 0) {
    throw new RostergateError('CONFIG_INVALID', `no source with id "${opts.only}" (configured: ${cfg.sources.map((s) => s.id).join(', ') || 'none'})`);
  }
  // A different master key would give every person new match keys, so none would meet again.
  if (opts.privacy) await assertStoreKey(store, opts.privacy.keyring);
  const summaries: SyncSummary[] = [];
  for (const source of chosen) {
    const { connector, http } = createConnector(source, log);
    const ingest = opts.privacy ? await opts.privacy.ingest(store) : undefined;
    try {
      const summary = await syncSource(store, connector, {
          full: opts.full,
          allowMassDelete: opts.allowMassDelete,
          maxDeleteShare: cfg.sync.maxDeleteShare,
          workShare: cfg.sync.workShare,
          precedence: cfg.sources.map((s) => s.id),
          matchRules: cfg.identity.match,
          orgMatchRules: cfg.identity.matchOrgs,
          hooks: opts.hooks,
          minimise: ingest?.minimise,
          hashMatchKey: ingest?.hashMatchKey,
          personCreated: ingest?.personCreated,
          changeLogged: ingest?.changeLogged,
          suppressionKey: ingest?.suppressionKey,
          onFailure: opts.keepGoing ? 'return' : 'throw',
          lease: { wait: opts.wait },
          signal: opts.signal,
      });
      if (ingest) summary.dropped = [...ingest.minimiser.dropped].sort();
      summaries.push(summary);
    } catch (e) {
      // Another run holds this source: the others still run.
      if (!(opts.keepGoing && opts.onBusy && isRostergateError(e, 'SYNC_BUSY'))) throw e;
      opts.onBusy(e);
    } finally {
      await http.close();
    }
  }
  // People created while a domain was being rotated get their new-version pseudonyms here. (View
  // times need no such pass: the hooks keep them, and a gateway computes missing ones as it starts.)
  if (opts.privacy) await opts.privacy.pseudonymiser.backfillAll(store);
  // The change feed keeps its retention window: older changes (and their tombstones) go.
  const purged = await store.purgeChanges(new Date(Date.now() - cfg.retention.changeLogDays * 86_400_000).toISOString());
  if (purged) log.info({ purged, retentionDays: cfg.retention.changeLogDays }, 'change log purged past the retention window');
  return summaries;
}

/**
 * Serves the deployment's tenants (`opts.tenants`; left out, the config's own home tenant over
 * `store`, as a single-district deployment has always been served) through `serveTenants`
 * (src/tenants/serving.ts), or the one store under open access. With `server.metrics.port`, the
 * separate metrics listener starts and closes with the gateway.
 */
export async function serveStore(
  store: Store,
  cfg: Config,
  log: Logger,
  opts: ServeTenantsOptions & { tenants?: Tenants } = {},
): Promise<RunningGateway & { metricsUrl?: string }> {
  const m = cfg.server.metrics;
  const metrics = m?.port !== undefined ? await startMetricsServer({ port: m.port, host: m.host, token: m.token }, log) : undefined;
  try {
    const gw = cfg.server.openAccess
      ? await serveOpenAccess(store, cfg, log, opts)
      : await serveTenants(opts.tenants ?? homeTenants(cfg, store, opts.privacy?.keyring), cfg, log, opts);
    return {
      ...gw,
      metricsUrl: metrics?.url,
      async close() {
        await gw.close();
        await metrics?.close();
      },
    };
  } catch (e) {
    await metrics?.close();
    throw e;
  }
}

/** Everything to anyone, unauthenticated, from the one store: tolerable on this machine only. */
async function serveOpenAccess(store: Store, cfg: Config, log: Logger, opts: ServeTenantsOptions): Promise<RunningGateway> {
  const base = buildUnifiedSchema();
  // An unclassified field stops start-up in every mode: open access would otherwise meet it only at the first request.
  const classification = classify(base);
  const types = sourceTypes(cfg);
  const host = opts.host ?? cfg.server.host;
  if (!LOOPBACK.has(host)) {
    throw new RostergateError('CONFIG_INVALID', `server.openAccess serves every field to anyone without a key, so only on a loopback host (127.0.0.1, ::1, localhost), not ${host}: configure purposes and clients instead`);
  }
  log.warn('server.openAccess is on: every request gets the whole unified schema without a key');
  // Ready when the store answers reads and takes writes.
  const ready = async () => (await store.headSeq(), await store.writable(), true);
  return startGateway({
    port: opts.port ?? cfg.server.port, host, log, ready, drainMs: cfg.server.drainSeconds * 1000, demoKeys: opts.demoKeys, examples: opts.examples, metrics: metricsAccess(cfg),
    schemas: { default: { schema: withCategoryNotes(base, classification) } },
    context: async (_req, signal) => {
      noteRequestCaller({ tenant: cfg.privacy.tenant });
      return createContext(store, types, { signal, tenant: cfg.privacy.tenant });
    },
  });
}

/**
 * The scheduled retention run of one store: every `retention.runEveryHours` (0: never), the same
 * run as `rostergate retention run`. `serve` runs it for every tenant (scheduleTenantRetention).
 */
export function scheduleRetention(store: Store, auditKey: Buffer, cfg: Pick<Config, 'retention'>, log: Logger): { stop(): Promise<void> } {
  return everyHours(cfg.retention.runEveryHours, async () => {
    try {
      const r = await runRetention(store, auditKey, cfg.retention);
      log.info({ changeLog: r.changeLog, auditLog: r.auditLog, webhookDeliveries: r.webhookDeliveries }, 'retention run');
    } catch (e) {
      log.error(errorForLog(e), 'retention run failed');
    }
  }, log);
}
