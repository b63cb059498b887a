/**
 * Admin operations on webhooks (GraphQL, admin purposes only: the fields carry @admin and are
 * absent from every other purpose's schema).
 */
import { randomBytes } from 'node:crypto';
import { GraphQLError } from 'graphql';
import type { GraphQLContext } from './context.ts';
import type { WebhookRow } from '../store/types.ts';
import type { AdminServices, TenantAdmin, TenantView } from './admin-services.ts';
import { checkEndpoint, newWebhookSecret } from '../privacy/webhook-endpoints.ts';
import { checkEventTypes, eventTypesOfRecordTypes } from '../model/event-types.ts';
import { isRostergateError } from '../errors.ts';
import { erasePerson } from '../privacy/erasure.ts';

function services(ctx: GraphQLContext): AdminServices {
  if (!ctx.admin) throw new GraphQLError('webhooks need purposes and clients configured (not available with server.openAccess)', { extensions: { code: 'FORBIDDEN' } });
  return ctx.admin;
}

const view = (w: WebhookRow) => ({ id: w.id, client: w.client, url: w.url, events: w.events, createdAt: w.createdAt, _row: w });

const badInput = (message: string) => new GraphQLError(message, { extensions: { code: 'BAD_USER_INPUT' } });

/** A subscription's event types from `events:` or its shorthand `types:` (record types, as `<type>.*`). */
function eventTypesOf(args: { types?: string[] | null; events?: string[] | null }): string[] {
  if (args.types?.length && args.events?.length) throw badInput('give either events or types (a shorthand for events: ["<type>.*"]), not both');
  if (args.types?.length) return eventTypesOfRecordTypes(args.types);
  try {
    return checkEventTypes(args.events ?? []);
  } catch (e) {
    throw badInput((e as Error).message);
  }
}

function tenantAdmin(ctx: GraphQLContext): TenantAdmin {
  const t = services(ctx).tenants;
  if (!t) throw new GraphQLError('tenant management is not available in this deployment', { extensions: { code: 'FORBIDDEN' } });
  return t;
}

/** Runs a tenant operation, its refusals as GraphQL errors with their codes (CONFIG_INVALID, NOT_FOUND, SYNC_BUSY). */
async function tenantOp<T>(fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (e) {
    if (isRostergateError(e)) throw new GraphQLError(e.message, { extensions: { code: e.code === 'CONFIG_INVALID' ? 'BAD_USER_INPUT' : e.code } });
    throw e;
  }
}

const tenantView = (t: TenantView) => ({
  ...t, status: t.status, sources: t.sources.map((s) => ({ id: s.id, type: s.type, config: JSON.stringify(s) })),
});

export const adminResolvers = {
  DeliveryStatus: { PENDING: 'pending', DELIVERED: 'delivered', DEAD: 'dead' },
  TenantStatus: { ACTIVE: 'active', PAUSED: 'paused' },
  Query: {
    webhooks: async (_: unknown, __: unknown, ctx: GraphQLContext) => (await services(ctx).store.webhooks.list()).map(view),
    tenants: async (_: unknown, __: unknown, ctx: GraphQLContext) => (await tenantOp(() => tenantAdmin(ctx).list())).map(tenantView),
  },
  Webhook: {
    pending: async (w: { id: string }, _: unknown, ctx: GraphQLContext) => (await services(ctx).store.webhooks.counts(w.id)).pending,
    delivered: async (w: { id: string }, _: unknown, ctx: GraphQLContext) => (await services(ctx).store.webhooks.counts(w.id)).delivered,
    dead: async (w: { id: string }, _: unknown, ctx: GraphQLContext) => (await services(ctx).store.webhooks.counts(w.id)).dead,
    deliveries: async (w: { id: string }, args: { status?: 'pending' | 'delivered' | 'dead'; first?: number }, ctx: GraphQLContext) =>
      (await services(ctx).store.webhooks.deliveries(w.id, args.status, Math.min(args.first ?? 50, 500))).map((d) => ({
        ...d, id: String(d.id), messageId: d.msgId, nextAttemptAt: d.status === 'pending' ? d.nextAttemptAt : null,
      })),
  },
  Mutation: {
    createWebhook: async (_: unknown, args: { client: string; url: string; types?: string[] | null; events?: string[] | null }, ctx: GraphQLContext) => {
      const s = services(ctx);
      if (!s.privacy.clientPurpose(args.client)) throw badInput(`no client "${args.client}"`);
      const events = eventTypesOf(args);
      try {
        await checkEndpoint(args.url, s.webhooks);
      } catch (e) {
        throw badInput((e as Error).message);
      }
      const secret = newWebhookSecret();
      const row: WebhookRow = {
        id: `wh_${randomBytes(9).toString('base64url')}`, client: args.client, url: args.url, events,
        secret: s.privacy.keyring.sealCursor('webhook-secrets', secret), cursorSeq: await s.store.headSeq(), createdAt: new Date().toISOString(),
      };
      await s.store.webhooks.create(row);
      return { webhook: view(row), secret };
    },
    deleteWebhook: async (_: unknown, args: { id: string }, ctx: GraphQLContext) => services(ctx).store.webhooks.delete(args.id),
    replayWebhook: async (_: unknown, args: { id: string; since?: string | Date | null }, ctx: GraphQLContext) => {
      const s = services(ctx);
      const w = await s.store.webhooks.get(args.id);
      if (!w) throw new GraphQLError(`no webhook ${args.id}`, { extensions: { code: 'NOT_FOUND' } });
      const since = args.since instanceof Date ? args.since.toISOString() : args.since;
      const from = since ? Math.max((await s.store.webhooks.seqAt(since)) - 1, await s.store.purgedThroughSeq()) : await s.store.purgedThroughSeq();
      await s.store.webhooks.setCursor(w.id, from);
      return view({ ...w, cursorSeq: from });
    },
    retryDeadLetters: async (_: unknown, args: { id: string }, ctx: GraphQLContext) => services(ctx).store.webhooks.retryDead(args.id, new Date().toISOString()),
    addTenant: async (_: unknown, args: { id: string; name: string; sources?: string | null }, ctx: GraphQLContext) =>
      tenantView(await tenantOp(() => tenantAdmin(ctx).add({ id: args.id, name: args.name, sources: args.sources ?? undefined }))),
    updateTenant: async (_: unknown, args: { id: string; name?: string | null; sources?: string | null }, ctx: GraphQLContext) =>
      tenantView(await tenantOp(() => tenantAdmin(ctx).update(args.id, { name: args.name ?? undefined, sources: args.sources ?? undefined }))),
    pauseTenant: async (_: unknown, args: { id: string }, ctx: GraphQLContext) => tenantView(await tenantOp(() => tenantAdmin(ctx).update(args.id, { status: 'paused' }))),
    resumeTenant: async (_: unknown, args: { id: string }, ctx: GraphQLContext) => tenantView(await tenantOp(() => tenantAdmin(ctx).update(args.id, { status: 'active' }))),
    removeTenant: async (_: unknown, args: { id: string }, ctx: GraphQLContext) => {
      await tenantOp(() => tenantAdmin(ctx).remove(args.id, `admin client ${ctx.client?.id ?? 'admin'}`));
      return true;
    },
    erasePerson: async (_: unknown, args: { id: string }, ctx: GraphQLContext) => {
      const s = services(ctx);
      const personId = await ctx.resolvePersonId(args.id);
      if (!personId) throw new GraphQLError(`no person ${args.id}`, { extensions: { code: 'NOT_FOUND' } });
      const client = ctx.client?.id ?? 'admin';
      try {
        const r = await erasePerson({ store: s.store, privacy: s.privacy, personId, sources: s.sources ?? [], requestedBy: { client, name: `admin client ${client}` } });
        return { ref: r.ref, records: r.records, suppressed: r.suppressed, notified: r.notified };
      } catch (e) {
        if (isRostergateError(e)) throw new GraphQLError(e.message, { extensions: { code: e.code } });
        throw e;
      }
    },
  },
};
