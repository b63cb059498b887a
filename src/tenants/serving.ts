/**
 * `serve` over many tenants (issue 15): one gateway, one set of purposes and clients, and per
 * request the store, key ring and audit log of the tenant it reads (./request-tenant.ts picks it).
 *
 * What is shared and what is per tenant, and why:
 * - Purpose schemas, classification and client authentication are built once (setupPrivacy) and
 *   shared: they depend on the config, not on the tenant, and a deployment may hold hundreds of
 *   tenants. API keys live in the home tenant's store.
 * - Pseudonyms, match keys, sealed cursors, webhook secrets and the audit chain derive from the
 *   tenant's key ring (Privacy.forTenant): a cursor sealed for tenant A does not open under B's
 *   keys, so it is refused there rather than misread.
 * - A tenant is prepared (key check, missing pseudonyms, view times) once (./prepared.ts): the
 *   home tenant at start-up, so a wrong key still stops `serve`; the others in the background
 *   right after (and the catalog's new ones as they come), or by their first request if sooner.
 * - Webhooks and retention run per tenant, over each tenant's own store, on one timer each: a
 *   dispatcher per tenant with the delivery connections shared, a few tenants at a time
 *   (./tenant-webhooks.ts).
 * - /readyz: the home store and the catalog decide; a tenant's store only marks it degraded
 *   (./readiness.ts).
 */
import type { IncomingMessage } from 'node:http';
import type { Config } from '../config/config.ts';
import { RostergateError } from '../errors.ts';
import { errorForLog, type Logger } from '../log.ts';
import { buildUnifiedSchema } from '../graphql/schema.ts';
import { setupPrivacy, type Privacy, type Who } from '../graphql/privacy.ts';
import type { GraphQLContext } from '../graphql/context.ts';
import { explainDenied } from '../privacy/purpose-schema.ts';
import { runRetention } from '../privacy/retention.ts';
import { extractRoute, type ExtractScope } from '../extract/http.ts';
import { startGateway, type RunningGateway, type ServedSchema } from '../server/gateway.ts';
import type { ConsoleExample, DemoKey } from '../server/landing.ts';
import { clientRateLimits, RateLimiter } from '../server/rate-limit.ts';
import { checkClientTenants, requestTenant, tenantHeader } from './request-tenant.ts';
import { activeTenants, type Tenant, type Tenants } from './tenants.ts';
import { PreparedTenants, startWarmUp } from './prepared.ts';
import { TenantWebhooks } from './tenant-webhooks.ts';
import { tenantsReadiness } from './readiness.ts';
import type { TenantAdmin } from '../graphql/admin-services.ts';
import { noteRequestCaller } from '../kernel/request-context.ts';
import type { MetricsAccess } from '../server/metrics-endpoint.ts';

/** /metrics on the API port, behind `server.metrics.token`; none without a token (docs/observability.md). */
export function metricsAccess(cfg: Pick<Config, 'server'>): MetricsAccess | undefined {
  return cfg.server.metrics?.token ? { token: cfg.server.metrics.token } : undefined;
}

export interface ServeTenantsOptions {
  port?: number;
  host?: string;
  demoKeys?: DemoKey[];
  examples?: ConsoleExample[];
  /** The privacy layer, already set up (tests, the demo); default: from the config with the home tenant's key ring. */
  privacy?: Privacy;
  /** false: do not start the webhook dispatchers (tests drive them themselves). */
  webhooks?: boolean;
  /** Tenant management for admin clients of every tenant (src/tenants/admin.ts), when the deployment has a tenant catalog. */
  tenantAdmin?: TenantAdmin;
  /** How often the background warm-up looks for tenants to prepare (default 10 s; tests shorten it). */
  warmUpEveryMs?: number;
  /** How often /readyz re-checks the opened tenants' stores (default 5 s; tests use 0: every probe). */
  tenantCheckEveryMs?: number;
}

/** The gateway, and which tenants are prepared (read-only; tests watch the warm-up with it). */
export interface RunningTenantsGateway extends RunningGateway {
  isPrepared(tenant: string): boolean;
}

/** Serves the tenants to the configured clients (purposes and clients required: open access has no tenants). */
export async function serveTenants(tenants: Tenants, cfg: Config, log: Logger, opts: ServeTenantsOptions = {}): Promise<RunningTenantsGateway> {
  checkClientTenants(cfg);
  const home = await tenants.open(tenants.home);
  if (!home) throw new RostergateError('CONFIG_INVALID', `the home tenant ${tenants.home} cannot be opened`);
  if (cfg.clients.length === 0) {
    throw new RostergateError('CONFIG_INVALID', 'no clients configured: add `purposes:` and `clients:` (see docs/privacy.md, "Purposes: who gets what") or set server.openAccess for a local experiment');
  }
  const privacy = opts.privacy ?? setupPrivacy(cfg, buildUnifiedSchema(), { keyring: home.keyring, apiKeyCacheMs: cfg.server.apiKeyCacheSeconds * 1000, tenantAdmin: opts.tenantAdmin });
  const prepared = new PreparedTenants(privacy, log);
  await prepared.get(home);

  const schemas: Record<string, ServedSchema<GraphQLContext>> = {};
  for (const [id, ps] of privacy.schemas) {
    const purpose = privacy.purposes.get(id)!;
    schemas[id] = {
      schema: ps.schema,
      // Shared by every tenant: each request's entry goes to its own tenant's log (the context's).
      plugins: [privacy.auditPlugin(purpose, ps.schema)],
      explain: (m) => explainDenied(m, id, undefined, privacy.classification, ps.withheld),
      limits: purpose.limits,
      purpose: id,
    };
  }
  // Every authenticated request counts against its client's limit: /graphql and /extracts alike (health probes are never authenticated).
  const limiter = new RateLimiter(clientRateLimits(cfg.clients, cfg.server.rateLimit));
  /** Who asks (keys are the home store's), then which tenant they read. */
  const scope = async (req: IncomingMessage): Promise<ExtractScope & { who: Who; tenant: Tenant }> => {
    const who = await privacy.authenticate(home.store, req);
    // Metrics count the request under its client and purpose (configured names), also when the limiter refuses it.
    noteRequestCaller({ client: who.client, purpose: who.purpose.id });
    limiter.take(who.client);
    const tenant = await requestTenant(tenants, { client: who.client, tenants: privacy.clientTenants(who.client), keyTenant: who.keyTenant }, tenantHeader(req.headers));
    // Counted under the tenant it resolved to: a deployment's own id, never the header as sent.
    noteRequestCaller({ tenant: tenant.id });
    const p = await prepared.get(tenant);
    return { who, tenant, store: tenant.store, privacy: p.privacy, sourceTypes: p.sourceTypes };
  };
  // Ready when the home store answers reads (a replica that lost its database is taken out of
  // rotation) and takes writes (a full or read-only store cannot record an audit entry), and the
  // catalog can be read; a tenant's store failing only degrades (./readiness.ts).
  const ready = tenantsReadiness(tenants, home.store, prepared, log, opts.tenantCheckEveryMs);
  const gw = await startGateway<GraphQLContext>({
    port: opts.port ?? cfg.server.port, host: opts.host ?? cfg.server.host, log, ready, drainMs: cfg.server.drainSeconds * 1000,
    demoKeys: opts.demoKeys, examples: opts.examples, metrics: metricsAccess(cfg),
    routes: [extractRoute(scope, log, cfg.server.extracts)],
    schemas,
    context: async (req, signal) => {
      const s = await scope(req);
      return s.privacy.context(s.store, s.sourceTypes, s.who, { signal, sources: s.tenant.sources.map((x) => x.id) });
    },
    schemaFor: (ctx) => ctx.client!.purpose,
    // Nothing is answered before its audit entry is committed (the audit plugin sets `audited`).
    holdAnswer: (ctx) => (ctx.audited.length ? Promise.all(ctx.audited) : undefined),
  });
  // The other tenants are prepared in the background, now that requests are being answered.
  const warmUp = startWarmUp(tenants, prepared, log, opts.warmUpEveryMs);
  const webhooks = new TenantWebhooks(tenants, prepared, cfg, log);
  if (opts.webhooks !== false) webhooks.start();
  const retention = scheduleTenantRetention(tenants, cfg, log);
  return {
    ...gw,
    isPrepared: (tenant) => prepared.isPrepared(tenant),
    async close() {
      await warmUp.stop();
      await retention.stop();
      await webhooks.stop();
      await gw.close();
      // Requests answer only after their audit entry commits, so little can be left; whatever is goes in before the stores close.
      await privacy.drainAudit();
    },
  };
}

/**
 * The scheduled retention run inside `serve`, for every tenant (paused ones too: what is kept is
 * kept for no longer than the periods), each over its own store with its own audit key.
 */
export function scheduleTenantRetention(tenants: Tenants, cfg: Pick<Config, 'retention'>, log: Logger): { stop(): Promise<void> } {
  return everyHours(cfg.retention.runEveryHours, async () => {
    for (const t of await activeTenants(tenants, true)) {
      try {
        const r = await runRetention(t.store, t.keyring.auditKey(), cfg.retention);
        log.info({ tenant: t.id, changeLog: r.changeLog, auditLog: r.auditLog, webhookDeliveries: r.webhookDeliveries }, 'retention run');
      } catch (e) {
        log.error({ tenant: t.id, ...errorForLog(e) }, 'retention run failed');
      }
    }
  }, log);
}

/**
 * Runs `work` every `hours` (0: never). Several replicas may each run it: a retention run is one
 * transaction, so a second finds nothing more due. `stop` waits for a run in progress.
 */
export function everyHours(hours: number, work: () => Promise<void>, log: Logger): { stop(): Promise<void> } {
  if (!hours) return { stop: async () => undefined };
  let running: Promise<void> = Promise.resolve();
  const timer = setInterval(() => {
    running = running.then(work).catch((e) => log.error(errorForLog(e), 'scheduled run failed'));
  }, hours * 3_600_000);
  timer.unref();
  return {
    async stop() {
      clearInterval(timer);
      await running;
    },
  };
}
