/**
 * The webhook dispatchers of every active tenant inside `serve`, on one timer (a paused tenant's
 * subscriptions wait until it is resumed). Tenants are visited `TENANT_WEBHOOK_CONCURRENCY` at a
 * time, and a round does not wait for a tenant still busy from an earlier one: a consumer endpoint
 * that hangs holds its own tenant's slot for up to `webhooks.timeoutMs` per delivery, while the
 * other tenants are delivered to in the other slots, round after round. A tenant is never in two
 * rounds at once (its deliveries stay in order). One tenant failing is logged and the others go on.
 */
import type { Agent } from 'undici';
import type { Config } from '../config/config.ts';
import { errorForLog, type Logger } from '../log.ts';
import type { Store } from '../store/types.ts';
import { deliveryAgent, WebhookDispatcher } from '../feeds/webhooks.ts';
import { startPollLoop, type PollLoop } from '../feeds/poll-loop.ts';
import { Slots } from '../kernel/slots.ts';
import { runForTenant } from '../kernel/tenant-scope.ts';
import type { PreparedTenants } from './prepared.ts';
import { activeTenants, type Tenant, type Tenants } from './tenants.ts';

/**
 * Tenants whose webhooks are dispatched at once. Small and fixed: deliveries are network waits, so
 * a few slots keep a hanging endpoint from delaying everyone, and the delivery connections and the
 * store pool are shared by all tenants.
 */
export const TENANT_WEBHOOK_CONCURRENCY = 4;

export class TenantWebhooks {
  private readonly agent: Agent;
  private readonly dispatchers = new WeakMap<Store, WebhookDispatcher>();
  private readonly slots = new Slots(TENANT_WEBHOOK_CONCURRENCY);
  /** The dispatch of each tenant under way, by tenant id. */
  private readonly busy = new Map<string, Promise<void>>();
  private loop?: PollLoop;

  constructor(private readonly tenants: Tenants, private readonly prepared: PreparedTenants, private readonly cfg: Pick<Config, 'webhooks'>, private readonly log: Logger) {
    this.agent = deliveryAgent(cfg.webhooks);
  }

  start(): void {
    this.loop = startPollLoop(() => this.round(), this.cfg.webhooks.pollMs, (e) => this.log.error(errorForLog(e), 'webhook dispatcher tick failed'));
  }

  /**
   * Starts the dispatch of every active tenant not still busy, each in a slot; ends once all have
   * started (waiting for a slot when every one is taken), not when they end.
   */
  private async round(): Promise<void> {
    for (const t of await activeTenants(this.tenants)) {
      if (this.loop?.stopped) return;
      if (this.busy.has(t.id)) continue;
      const release = await this.slots.take();
      if (this.loop?.stopped) return release();
      // Its deliveries are counted under its tenant (src/kernel/tenant-scope.ts).
      const run = runForTenant(t.id, () => this.dispatch(t)).finally(() => {
        this.busy.delete(t.id);
        release();
      });
      this.busy.set(t.id, run);
    }
  }

  private async dispatch(t: Tenant): Promise<void> {
    try {
      await (await this.dispatcher(t)).tick(new Date());
    } catch (e) {
      this.log.error({ tenant: t.id, ...errorForLog(e) }, 'webhooks of a tenant failed this round');
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

  /** Stops the rounds and waits for every tenant's dispatch under way, then closes the connections. */
  async stop(): Promise<void> {
    await this.loop?.stop();
    await Promise.all(this.busy.values());
    await this.agent.close();
  }
}
