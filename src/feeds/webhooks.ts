/**
 * Signed webhooks for LMS backends, Standard Webhooks style: each change event a client's purpose
 * can see is delivered as JSON with `webhook-id`, `webhook-timestamp` and `webhook-signature`
 * (v1, HMAC-SHA256 over "id.timestamp.body" with the subscription's whsec_ secret).
 *
 * At-least-once: events are first queued (payload rendered once, so retries are byte-identical and
 * keep their webhook-id), then delivered in order per subscription with jittered backoff; after the
 * last retry a delivery becomes a dead letter and the queue moves on. The dispatcher runs on its
 * own timer with timeouts on every request, so a consumer that hangs or fails never holds up a sync.
 */
import { startPollLoop, type PollLoop } from './poll-loop.ts';
import { randomBytes } from 'node:crypto';
import { Agent, request } from 'undici';
import { execute, isObjectType, parse } from 'graphql';
import { z } from 'zod';
import { RostergateError } from '../errors.ts';
import { errorForLog, type Logger } from '../log.ts';
import type { Privacy } from '../graphql/privacy.ts';
import type { DeliveryRow, Store, WebhookRow } from '../store/types.ts';
import type { SourceType } from '../../connectors/types.ts';
import { recordSelection, cleanRecord, idSelection } from './render.ts';
import { eventType } from '../model/event-types.ts';
import { checkEndpoint, endpointRulesShape, publicOnlyLookup, sign } from '../privacy/webhook-endpoints.ts';
import { tenantLabel, webhookDeliveries } from '../kernel/metrics.ts';

export const webhookConfigSchema = z
  .object({
    ...endpointRulesShape,
    maxAttempts: z.number().int().min(1).max(50).default(8),
    /** Waits before each retry, in seconds; the last repeats. Jittered by ±20%. */
    retrySeconds: z.array(z.number().min(0)).min(1).default([5, 30, 120, 600, 3600, 21600]),
    timeoutMs: z.number().int().positive().default(10_000),
    pollMs: z.number().int().positive().default(2_000),
  })
  .strict();
export type WebhookConfig = z.infer<typeof webhookConfigSchema>;

export type AttemptOutcome = { status: 'delivered' } | { status: 'pending'; retryInMs: number } | { status: 'dead' };

/** Retry-After as seconds (delta-seconds or an HTTP date), or undefined when absent or unreadable. */
function retryAfterSeconds(v: string | undefined, now: number): number | undefined {
  if (!v) return undefined;
  if (/^\d+$/.test(v.trim())) return Number(v.trim());
  const at = Date.parse(v);
  return Number.isNaN(at) ? undefined : Math.max(0, (at - now) / 1000);
}

/**
 * What follows an attempt, as one pure function: 2xx is delivered; 410 Gone means the consumer
 * wants no more, so the delivery goes straight to the dead letters; anything else is retried after
 * the configured wait for this attempt, jittered by ±20% (or the consumer's Retry-After when longer,
 * capped at the longest configured wait) until maxAttempts, then it is a dead letter.
 */
export function afterAttempt(
  res: { status: number | null; retryAfter?: string },
  attempts: number,
  cfg: Pick<WebhookConfig, 'maxAttempts' | 'retrySeconds'>,
  random: () => number = Math.random,
  now = Date.now(),
): AttemptOutcome {
  if (res.status !== null && res.status >= 200 && res.status < 300) return { status: 'delivered' };
  if (res.status === 410 || attempts >= cfg.maxAttempts) return { status: 'dead' };
  const base = cfg.retrySeconds[Math.min(attempts - 1, cfg.retrySeconds.length - 1)]!;
  const asked = retryAfterSeconds(res.retryAfter, now);
  const wait = Math.max(base * (0.8 + random() * 0.4), Math.min(asked ?? 0, Math.max(...cfg.retrySeconds)));
  return { status: 'pending', retryInMs: Math.round(wait * 1000) };
}

/** The connections deliveries go through: unless private networks are allowed, every lookup is checked. */
export function deliveryAgent(cfg: Pick<WebhookConfig, 'allowPrivateNetworks'>): Agent {
  return new Agent(cfg.allowPrivateNetworks ? {} : { connect: { lookup: publicOnlyLookup() } });
}

export class WebhookDispatcher {
  private loop?: PollLoop;
  /** Connections for deliveries; unless private networks are allowed, every lookup is checked. */
  private readonly agent: Agent;
  private readonly ownAgent: boolean;

  /**
   * `privacy`: the store's tenant's (Privacy.forTenant). `agent`: connections shared with the
   * dispatchers of other tenants (see `deliveryAgent`), closed by whoever made it; by default the
   * dispatcher makes and closes its own.
   */
  constructor(
    private readonly store: Store,
    private readonly privacy: Privacy,
    private readonly sourceTypes: ReadonlyMap<string, SourceType>,
    private readonly cfg: WebhookConfig,
    private readonly log: Logger,
    opts: { agent?: Agent } = {},
  ) {
    this.ownAgent = !opts.agent;
    this.agent = opts.agent ?? deliveryAgent(cfg);
  }

  start(): void {
    // By kind and place only: a message may quote the value it failed on.
    this.loop = startPollLoop(() => this.tick(), this.cfg.pollMs, (e) => this.log.error(errorForLog(e), 'webhook dispatcher tick failed'));
  }

  /** Stops the timer, waits for the tick in flight and closes the delivery connections. */
  async stop(): Promise<void> {
    await this.loop?.stop();
    if (this.ownAgent) await this.agent.close();
  }

  /**
   * One round: queue new events for every subscription, then deliver what is due. A subscription
   * that fails is logged and left for the next round; the others go on.
   */
  async tick(now = new Date()): Promise<void> {
    for (const w of await this.store.webhooks.list()) {
      try {
        await this.enqueue(w, now);
        await this.deliver(w, now);
      } catch (e) {
        this.log.error({ webhook: w.id, ...errorForLog(e) }, 'webhook subscription failed this round');
      }
    }
  }

  /** Renders new change events for the subscription's client and queues them. */
  private async enqueue(w: WebhookRow, now: Date): Promise<void> {
    const purpose = this.privacy.clientPurpose(w.client);
    if (!purpose) return;
    const ps = this.privacy.schemas.get(purpose.id)!;
    const sel = recordSelection(ps.schema);
    // A merge's deletion names the survivor (by id or pseudonym), so the consumer can re-point.
    const change = ps.schema.getType('Change');
    const merged = isObjectType(change) && change.getFields().mergedInto ? `mergedInto { ${idSelection(ps.schema)} }` : '';
    const source = `query($after: Cursor) { changes(after: $after, first: 200) {
      pageInfo { hasNextPage endCursor } edges { node { op type at fields record { ${sel} } ${merged} } } } }`;
    const doc = parse(source);
    const tenant = this.privacy.seesTenants(w.client) ? this.privacy.tenant : undefined;
    for (let cursorSeq = w.cursorSeq, page = 0; page < 20; page++) {
      const ctx = await this.privacy.context(this.store, this.sourceTypes, { client: w.client, purpose });
      // Only the subscribed event types are rendered (and so disclosed).
      if (w.events.length) ctx.events = w.events;
      const after = ctx.cursors.encode(`#${cursorSeq}`);
      const res = await execute({ schema: ps.schema, document: doc, contextValue: ctx, variableValues: { after } });
      if (res.errors?.length) throw new RostergateError('STORE', `webhook ${w.id}: ${res.errors[0]!.message}`);
      const conn = (res.data as { changes: { pageInfo: { hasNextPage: boolean; endCursor: string }; edges: { node: Record<string, unknown> }[] } }).changes;
      const endSeq = Number(ctx.cursors.decode(conn.pageInfo.endCursor)!.slice(1));
      // An erasure's tombstone is announced by the erasure itself, to exactly the clients that
      // received the person (src/privacy/erasure.ts): other subscriptions never hear of them.
      const deliveries = conn.edges.filter(({ node }) => !(node.op === 'DELETED' && (node.fields as string[]).includes('erased'))).map(({ node }, i) => {
        const type = eventType(String(node.type), String(node.op));
        const msgId = `msg_${w.id}_${cursorSeq}_${i}_${randomBytes(4).toString('hex')}`;
        const { mergedInto, ...rest } = node;
        const payload = JSON.stringify({
          type, timestamp: node.at,
          // A client of several tenants is told whose change this is; a one-tenant client's payloads stay as they were.
          data: { ...rest, ...(tenant ? { tenant } : {}), record: cleanRecord(node.record), ...(mergedInto ? { mergedInto: cleanRecord(mergedInto) } : {}) },
        });
        return { webhookId: w.id, seq: endSeq, msgId, eventType: type, payload, nextAttemptAt: now.toISOString(), createdAt: now.toISOString() };
      });
      if (endSeq === cursorSeq) return;
      // Someone moved the cursor meanwhile (a replay, another replica): leave it to the next tick.
      if (!(await this.store.webhooks.enqueue(w.id, deliveries, cursorSeq, endSeq))) return;
      if (deliveries.length) {
        // The disclosure ledger: webhook payloads disclose people like responses do.
        await this.privacy.recordDisclosure(this.store, w.client, purpose.id, [...ctx.people], 'webhook', deliveries.length, { schema: ps.schema, document: doc, source });
      }
      cursorSeq = endSeq;
      if (!conn.pageInfo.hasNextPage) return;
    }
  }

  /** Delivers due deliveries in order; stops at the first one that has to wait. */
  private async deliver(w: WebhookRow, now: Date): Promise<void> {
    const secret = this.privacy.keyring.openCursor('webhook-secrets', w.secret);
    if (!secret) {
      this.log.error({ webhook: w.id }, 'webhook secret cannot be opened (master key changed?)');
      return;
    }
    for (let n = 0; n < 500; n++) {
      const d = await this.store.webhooks.nextPending(w.id);
      if (!d || d.nextAttemptAt > now.toISOString()) return;
      const ok = await this.attempt(w, d, secret, now);
      if (!ok) return;
    }
  }

  private async attempt(w: WebhookRow, d: DeliveryRow, secret: string, now: Date): Promise<boolean> {
    const ts = Math.floor(Date.now() / 1000);
    let status: number | null = null;
    let retryAfter: string | undefined;
    let error: string | null = null;
    try {
      await checkEndpoint(w.url, this.cfg);
      const res = await request(w.url, {
        method: 'POST',
        dispatcher: this.agent,
        headers: { 'content-type': 'application/json', 'webhook-id': d.msgId, 'webhook-timestamp': String(ts), 'webhook-signature': sign(secret, d.msgId, ts, d.payload), 'user-agent': 'rostergate-webhooks' },
        body: d.payload,
        headersTimeout: this.cfg.timeoutMs,
        bodyTimeout: this.cfg.timeoutMs,
      });
      status = res.statusCode;
      const ra = res.headers['retry-after'];
      retryAfter = Array.isArray(ra) ? ra[0] : ra;
      // The status is the answer; the body is discarded within the time limit, so a consumer that
      // answers and then trickles its body for ever cannot hold up the dispatcher (bodyTimeout only
      // notices silence). Cut short, it still counts as the status it gave.
      await res.body.dump({ limit: 64 * 1024, signal: AbortSignal.timeout(this.cfg.timeoutMs) }).catch(() => undefined);
    } catch (e) {
      error = (e as { code?: string }).code ?? (e as Error).message.slice(0, 200);
    }
    const attempts = d.attempts + 1;
    const next = afterAttempt({ status, retryAfter }, attempts, this.cfg);
    webhookDeliveries.inc({ tenant: tenantLabel(), outcome: next.status === 'pending' ? 'retry' : next.status === 'dead' ? 'failed' : 'delivered' });
    if (next.status === 'delivered') {
      await this.store.webhooks.update({ id: d.id, status: 'delivered', attempts, nextAttemptAt: d.nextAttemptAt, lastStatus: status, lastError: null, deliveredAt: new Date().toISOString() });
      return true;
    }
    const dead = next.status === 'dead';
    await this.store.webhooks.update({
      id: d.id, status: next.status, attempts, nextAttemptAt: new Date(now.getTime() + (dead ? 0 : next.retryInMs)).toISOString(),
      lastStatus: status, lastError: error ?? `HTTP ${status}`, deliveredAt: null,
    });
    this.log.warn({ webhook: w.id, delivery: d.id, status, attempts, dead }, dead ? 'webhook delivery is a dead letter' : 'webhook delivery failed, will retry');
    // A dead letter no longer holds up the queue.
    return dead;
  }
}
