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
 * - A tenant is prepared (key check, missing pseudonyms, view times) once, the first time it is
 *   served or its webhooks run; the home tenant at start-up, so a wrong key still stops `serve`.
 * - Webhooks and retention run per tenant, over each tenant's own store, on one timer each: a
 *   dispatcher per tenant with the delivery connections shared.
 */
import type { IncomingMessage } from 'node:http';
import type { Agent } from 'undici';
import type { Config } from '../config/config.ts';
import { RostergateError } from '../errors.ts';
import { errorForLog, type Logger } from '../log.ts';
import type { Store } from '../store/types.ts';
import type { SourceType } from '../../connectors/types.ts';
import { buildUnifiedSchema } from '../graphql/schema.ts';
import { setupPrivacy, type Privacy, type Who } from '../graphql/privacy.ts';
import type { GraphQLContext } from '../graphql/context.ts';
import { assertStoreKey } from '../privacy/store-key.ts';
import { explainDenied } from '../privacy/purpose-schema.ts';
import { runRetention } from '../privacy/retention.ts';
import { extractRoute, type ExtractScope } from '../extract/http.ts';
import { deliveryAgent, WebhookDispatcher } from '../feeds/webhooks.ts';
import { startPollLoop, type PollLoop } from '../feeds/poll-loop.ts';
import { startGateway, type RunningGateway, type ServedSchema } from '../server/gateway.ts';
import type { ConsoleExample, DemoKey } from '../server/landing.ts';
import { clientRateLimits, RateLimiter } from '../server/rate-limit.ts';
import { checkClientTenants, requestTenant, tenantHeader } from './request-tenant.ts';
import type { Tenant, Tenants } from './tenants.ts';
import type { TenantAdmin } from '../graphql/admin-services.ts';
import { noteRequestCaller } from '../kernel/request-context.ts';
import type { MetricsAccess } from '../server/metrics-endpoint.ts';

/** /metrics on the API port, behind `server.metrics.token`; none without a token (docs/observability.md). */
export function metricsAccess(cfg: Pick<Config, 'server'>): MetricsAccess | undefined {
  return cfg.server.metrics?.token ? { token: cfg.server.metrics.token } : undefined;
}

/** A tenant ready to serve: its privacy (key ring, audit log) and its sources' types. */
interface Prepared {
  privacy: Privacy;
  sourceTypes: ReadonlyMap<string, SourceType>;
}

/** Prepares each tenant once (per store: a tenant removed and added again is prepared again). */
class PreparedTenants {
  private readonly byStore = new WeakMap<Store, Promise<Prepared>>();

  constructor(private readonly privacy: Privacy, private readonly log: Logger) {}

  get(t: Tenant): Promise<Prepared> {
    let p = this.byStore.get(t.store);
    if (!p) {
      p = this.prepare(t);
      this.byStore.set(t.store, p);
      // A failure (a store that was unreachable) is tried again by the next request, not remembered.
      p.catch(() => this.byStore.delete(t.store));
    }
    return p;
  }

  private async prepare(t: Tenant): Promise<Prepared> {
    const privacy = this.privacy.forTenant(t.id, t.keyring);
    await assertStoreKey(t.store, t.keyring);
    await privacy.pseudonymiser.backfillAll(t.store);
    // Each purpose's updatedAt / updatedSince: computed for purposes and records that have none yet,
    // recomputed for a purpose whose policy changed (src/graphql/view-times.ts).
    for (const v of await privacy.viewTimes.backfill(t.store)) {
      if (v.records) this.log.info({ tenant: t.id, purpose: v.view, records: v.records, rebuilt: v.rebuilt }, 'view times computed from the change log');
    }
    return { privacy, sourceTypes: new Map(t.sources.map((s) => [s.id, s.type])) };
  }
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
}

/** Serves the tenants to the configured clients (purposes and clients required: open access has no tenants). */
export async function serveTenants(tenants: Tenants, cfg: Config, log: Logger, opts: ServeTenantsOptions = {}): Promise<RunningGateway> {
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
    const p = await prepared.get(tenant);
    return { who, tenant, store: tenant.store, privacy: p.privacy, sourceTypes: p.sourceTypes };
  };
  // Ready when the home store answers reads (a replica that lost its database is taken out of
  // rotation) and takes writes: a full or read-only store cannot record an audit entry.
  const ready = async () => (await home.store.headSeq(), await home.store.writable(), true);
  const gw = await startGateway<GraphQLContext>({
    port: opts.port ?? cfg.server.port, host: opts.host ?? cfg.server.host, log, ready, drainMs: cfg.server.drainSeconds * 1000,
    demoKeys: opts.demoKeys, examples: opts.examples, metrics: metricsAccess(cfg),
    routes: [extractRoute(scope, log)],
    schemas,
    context: async (req, signal) => {
      const s = await scope(req);
      return s.privacy.context(s.store, s.sourceTypes, s.who, { signal, sources: s.tenant.sources.map((x) => x.id) });
    },
    schemaFor: (ctx) => ctx.client!.purpose,
  });
  const webhooks = new TenantWebhooks(tenants, prepared, cfg, log);
  if (opts.webhooks !== false) webhooks.start();
  const retention = scheduleTenantRetention(tenants, cfg, log);
  return {
    ...gw,
    async close() {
      await retention.stop();
      await webhooks.stop();
      await gw.close();
      // Requests answer only after their audit entry commits, so little can be left; whatever is goes in before the stores close.
      await privacy.drainAudit();
    },
  };
}

/** Every active tenant, opened (a tenant removed between listing and opening is skipped). */
async function activeTenants(tenants: Tenants, all = false): Promise<Tenant[]> {
  const out: Tenant[] = [];
  for (const info of await tenants.list()) {
    if (!all && info.status !== 'active') continue;
    const t = await tenants.open(info.id);
    if (t) out.push(t);
  }
  return out;
}

/**
 * The webhook dispatchers of every active tenant, on one timer: each round, every tenant's
 * subscriptions in turn (a paused tenant's wait until it is resumed). One tenant failing is logged
 * and the others go on.
 */
class TenantWebhooks {
  private readonly agent: Agent;
  private readonly dispatchers = new WeakMap<Store, WebhookDispatcher>();
  private loop?: PollLoop;

  constructor(private readonly tenants: Tenants, private readonly prepared: PreparedTenants, private readonly cfg: Pick<Config, 'webhooks'>, private readonly log: Logger) {
    this.agent = deliveryAgent(cfg.webhooks);
  }

  start(): void {
    this.loop = startPollLoop(() => this.tick(), this.cfg.webhooks.pollMs, (e) => this.log.error(errorForLog(e), 'webhook dispatcher tick failed'));
  }

  async tick(now = new Date()): Promise<void> {
    for (const t of await activeTenants(this.tenants)) {
      if (this.loop?.stopped) return;
      try {
        await (await this.dispatcher(t)).tick(now);
      } catch (e) {
        this.log.error({ tenant: t.id, ...errorForLog(e) }, 'webhooks of a tenant failed this round');
      }
    }
  }

  private async dispatcher(t: Tenant): Promise<WebhookDispatcher> {
    let d = this.dispatchers.get(t.store);
    if (!d) {
      const p = await this.prepared.get(t);
      d = new WebhookDispatcher(t.store, p.privacy, p.sourceTypes, this.cfg.webhooks, this.log, { agent: this.agent });
      this.dispatchers.set(t.store, d);
    }
    return d;
  }

  async stop(): Promise<void> {
    await this.loop?.stop();
    await this.agent.close();
  }
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
