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
import { SqliteStore } from './store/sqlite.ts';
import { PostgresStore } from './store/postgres.ts';
import type { Store } from './store/types.ts';
import { syncSource, type SyncHooks, type SyncSummary } from './sync/runner.ts';
import { buildUnifiedSchema } from './graphql/schema.ts';
import { createContext } from './graphql/context.ts';
import { startGateway, type RunningGateway, type ServedSchema } from './server/gateway.ts';
import type { ConsoleExample, DemoKey } from './server/landing.ts';
import { setupPrivacy, type Privacy } from './graphql/privacy.ts';
import { assertStoreKey } from './privacy/store-key.ts';
import { explainDenied } from './privacy/purpose-schema.ts';
import { classify } from './privacy/classification.ts';
import { withCategoryNotes } from './privacy/field-notes.ts';
import type { GraphQLContext } from './graphql/context.ts';
import type { TenantAdmin } from './graphql/admin-services.ts';
import { extractRoute } from './extract/http.ts';
import { clientRateLimits, RateLimiter } from './server/rate-limit.ts';
import type { IncomingMessage } from 'node:http';
import { WebhookDispatcher } from './feeds/webhooks.ts';
import { runRetention } from './privacy/retention.ts';
import { noteRequestCaller } from './kernel/request-context.ts';
import { startMetricsServer } from './server/metrics-endpoint.ts';

const LOOPBACK = new Set(['127.0.0.1', '::1', 'localhost']);

export function isPostgresUrl(store: string): boolean {
  return store.startsWith('postgres://') || store.startsWith('postgresql://');
}

/** A `postgres://` URL opens PostgreSQL; anything else is a SQLite file path. */
export async function openStore(cfg: Pick<Config, 'store'>): Promise<Store> {
  return isPostgresUrl(cfg.store) ? PostgresStore.open(cfg.store) : SqliteStore.open(cfg.store);
}

export function createConnector(source: SourceConfig, log: Logger): { connector: Connector; http: HttpClient } {
  const def = definitionOf(source.type);
  if (!def) throw new RostergateError('CONFIG_INVALID', `source ${source.id}: unknown type ${source.type}`);
  const http = new HttpClient({ sourceId: source.id, log, ...def.defaultHttp, ...source.http });
  return { connector: def.create(source, { http, log }), http };
}

export function sourceTypes(cfg: Pick<Config, 'sources'>): Map<string, SourceType> {
  return new Map(cfg.sources.map((s) => [s.id, s.type]));
}

/**
 * Syncs the configured sources in config order (earlier sources take precedence in merges). A
 * failing source throws, unless `keepGoing`: then its summary says 'failed' and the others still run.
 */
export async function syncAll(
  store: Store,
  cfg: Config,
  log: Logger,
  opts: {
    only?: string; full?: boolean; allowMassDelete?: boolean; hooks?: SyncHooks; privacy?: Privacy; keepGoing?: boolean;
    /** Wait for another run of a source to finish instead of skipping it. */
    wait?: boolean;
    /** With keepGoing: told of a source another run holds (SYNC_BUSY), which is then skipped. */
    onBusy?: (e: RostergateError) => void;
    /** Stops the run between pages (a worker shutting down hands its job back). */
    signal?: AbortSignal;
  } = {},
): Promise<SyncSummary[]> {
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
 * The gateway of `serveStore`, with its separate metrics listener when `server.metrics.port` is set
 * (closed with it). /metrics on the API port is the gateway's own (behind `server.metrics.token`).
 */
export async function serveStore(
  store: Store,
  cfg: Config,
  log: Logger,
  opts: Parameters<typeof serveGateway>[3] = {},
): Promise<RunningGateway & { metricsUrl?: string }> {
  const m = cfg.server.metrics;
  const metrics = m?.port !== undefined ? await startMetricsServer({ port: m.port, host: m.host, token: m.token }, log) : undefined;
  try {
    const gw = await serveGateway(store, cfg, log, opts);
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

async function serveGateway(
  store: Store,
  cfg: Config,
  log: Logger,
  opts: {
    port?: number; host?: string; demoKeys?: DemoKey[]; examples?: ConsoleExample[]; privacy?: Privacy;
    /** false: do not start the webhook dispatcher (tests drive it themselves). */
    webhooks?: boolean;
    /** Tenant management for admin purposes (src/tenants/admin.ts), when the deployment has a tenant catalog. */
    tenantAdmin?: TenantAdmin;
  } = {},
): Promise<RunningGateway> {
  const base = buildUnifiedSchema();
  // An unclassified field stops start-up in every mode: open access would otherwise meet it only at the first request.
  const classification = classify(base);
  const types = sourceTypes(cfg);
  // Ready when the store answers reads (a replica that lost its database is taken out of rotation)
  // and takes writes: a full or read-only store cannot apply a sync or record an audit entry.
  const ready = async () => (await store.headSeq(), await store.writable(), true);
  const common = { port: opts.port ?? cfg.server.port, host: opts.host ?? cfg.server.host, log, ready, drainMs: cfg.server.drainSeconds * 1000, demoKeys: opts.demoKeys, examples: opts.examples, metrics: cfg.server.metrics?.token ? { token: cfg.server.metrics.token } : undefined };
  if (cfg.server.openAccess) {
    // Everything to anyone, unauthenticated: tolerable on this machine only.
    if (!LOOPBACK.has(common.host)) {
      throw new RostergateError('CONFIG_INVALID', `server.openAccess serves every field to anyone without a key, so only on a loopback host (127.0.0.1, ::1, localhost), not ${common.host}: configure purposes and clients instead`);
    }
    log.warn('server.openAccess is on: every request gets the whole unified schema without a key');
    return startGateway({ ...common, schemas: { default: { schema: withCategoryNotes(base, classification) } }, context: async (_req, signal) => createContext(store, types, { signal }) });
  }
  if (cfg.clients.length === 0) {
    throw new RostergateError('CONFIG_INVALID', 'no clients configured: add `purposes:` and `clients:` (see docs/privacy.md, "Purposes: who gets what") or set server.openAccess for a local experiment');
  }
  const privacy = opts.privacy ?? setupPrivacy(cfg, base, { apiKeyCacheMs: cfg.server.apiKeyCacheSeconds * 1000, tenantAdmin: opts.tenantAdmin });
  await assertStoreKey(store, privacy.keyring);
  await privacy.pseudonymiser.backfillAll(store);
  // Each purpose's updatedAt / updatedSince: computed for purposes and records that have none yet,
  // recomputed for a purpose whose policy changed (src/graphql/view-times.ts).
  const views = await privacy.viewTimes.backfill(store);
  for (const v of views) if (v.records) log.info({ purpose: v.view, records: v.records, rebuilt: v.rebuilt }, 'view times computed from the change log');
  const schemas: Record<string, ServedSchema<GraphQLContext>> = {};
  for (const [id, ps] of privacy.schemas) {
    const purpose = privacy.purposes.get(id)!;
    schemas[id] = {
      schema: ps.schema,
      plugins: [privacy.auditPlugin(purpose, ps.schema)],
      explain: (m) => explainDenied(m, id, undefined, privacy.classification, ps.withheld),
      limits: purpose.limits,
      purpose: id,
    };
  }
  const dispatcher = new WebhookDispatcher(store, privacy, types, cfg.webhooks, log);
  // Every authenticated request counts against its client's limit: /graphql and /extracts alike (health probes are never authenticated).
  const limiter = new RateLimiter(clientRateLimits(cfg.clients, cfg.server.rateLimit));
  const authenticate = async (req: IncomingMessage) => {
    const who = await privacy.authenticate(store, req);
    // Metrics count the request under its client and purpose (configured names), also when the limiter refuses it.
    noteRequestCaller({ client: who.client, purpose: who.purpose.id });
    limiter.take(who.client);
    return who;
  };
  const gw = await startGateway<GraphQLContext>({
    ...common,
    routes: [extractRoute(store, privacy, types, log, authenticate)],
    schemas,
    context: async (req, signal) => privacy.context(store, types, await authenticate(req), { signal }),
    schemaFor: (ctx) => ctx.client!.purpose,
  });
  if (opts.webhooks !== false) dispatcher.start();
  const retention = scheduleRetention(store, privacy.keyring.auditKey(), cfg, log);
  return {
    ...gw,
    async close() {
      await retention.stop();
      await dispatcher.stop();
      await gw.close();
      // Requests answer only after their audit entry commits, so little can be left; whatever is goes in before the store closes.
      await privacy.drainAudit();
    },
  };
}

/**
 * The scheduled retention run inside `serve`: every `retention.runEveryHours` (0: never), the
 * same run as `rostergate retention run`. Several replicas may each run it: a run is one
 * transaction, so a second finds nothing more due. `stop` waits for a run in progress.
 */
export function scheduleRetention(store: Store, auditKey: Buffer, cfg: Pick<Config, 'retention'>, log: Logger): { stop(): Promise<void> } {
  const hours = cfg.retention.runEveryHours;
  if (!hours) return { stop: async () => undefined };
  let running: Promise<void> = Promise.resolve();
  const timer = setInterval(() => {
    running = running.then(async () => {
      try {
        const r = await runRetention(store, auditKey, cfg.retention);
        log.info({ changeLog: r.changeLog, auditLog: r.auditLog, webhookDeliveries: r.webhookDeliveries }, 'retention run');
      } catch (e) {
        log.error(errorForLog(e), 'retention run failed');
      }
    });
  }, hours * 3_600_000);
  timer.unref();
  return {
    async stop() {
      clearInterval(timer);
      await running;
    },
  };
}
