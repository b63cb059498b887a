/**
 * The `changes` query: the change log in commit order, filtered and rendered through the client's
 * purpose. Demographics changes surface as updates of their person. A deleted record is rendered
 * from its last state (the tombstone), so it carries exactly what the purpose may see.
 */
import { GraphQLError } from 'graphql';
import type { GraphQLContext } from './context.ts';
import { checkFirst } from './connection.ts';
import type { EntityType } from '../model/records.ts';
import { mergedIntoOf, tombstoneOf, type ChangeRow, type EntityRow } from '../store/types.ts';
import { ENTITY_OF_RECORD_TYPE, RECORD_TYPE } from '../model/names.ts';
import { referenceFields, visibleFields, type FieldFeeds } from '../privacy/relevance.ts';
import { eventType, recordTypesOf, subscribed } from '../model/event-types.ts';

export const DEFAULT_RETENTION_DAYS = 30;
const SCAN_BATCH = 500;
const MAX_SCAN = 20_000;

export interface ChangeEvent {
  op: 'CREATED' | 'UPDATED' | 'DELETED';
  type: string;
  at: string;
  fields: string[];
  entityId: string;
  tombstone?: EntityRow;
  /** For a deletion by an operator's merge: the surviving entity's id. */
  mergedInto?: string;
  seq: number;
}

const personOfDemographics = (id: string) => `per_${id.slice(id.indexOf('_') + 1)}`;

/** One change-log row as an event for a purpose, or undefined when the purpose would not see it. */
export function toEvent(row: ChangeRow, feeds: FieldFeeds, received: Set<string> | undefined, typeVisible: (t: EntityType) => boolean): ChangeEvent | undefined {
  if (row.type === 'demographics') {
    const fields = row.op === 'updated'
      ? visibleFields(feeds, 'demographics', row.fields, received, row.generalised)
      : visibleFields(feeds, 'demographics', Object.keys((row.before as object) ?? {}).concat(row.fields), received);
    if (fields.length === 0 || !typeVisible('person')) return undefined;
    return { op: 'UPDATED', type: 'PERSON', at: row.at, fields, entityId: personOfDemographics(row.entityId), seq: row.seq };
  }
  if (!typeVisible(row.type)) return undefined;
  const op = row.op === 'created' ? 'CREATED' : row.op === 'updated' ? 'UPDATED' : 'DELETED';
  // A deletion lists no fields, except an erasure on request: `fields: ['erased']` tells the consumer why.
  const fields = row.op === 'updated' ? visibleFields(feeds, row.type, row.fields, received, row.generalised) : row.fields.includes('erased') ? ['erased'] : [];
  if (row.op === 'updated' && fields.length === 0) return undefined;
  const tombstone = row.op === 'deleted' ? tombstoneOf(row) : undefined;
  const mergedInto = mergedIntoOf(row);
  // Two literals rather than a spread: a sync's view times ask this of every change for every purpose.
  const type = RECORD_TYPE[row.type];
  return mergedInto
    ? { op, type, at: row.at, fields, entityId: row.entityId, tombstone, mergedInto, seq: row.seq }
    : { op, type, at: row.at, fields, entityId: row.entityId, tombstone, seq: row.seq };
}

export interface FeedPage {
  events: ChangeEvent[];
  /** Seq of the last change examined (events or not): where the next page starts. */
  lastSeq: number;
  hasNext: boolean;
}

/** Reads one page of events, skipping changes the purpose cannot see (bounded scan per call). */
export async function readFeed(
  ctx: Pick<GraphQLContext, 'store'>,
  q: { afterSeq: number; first: number; types?: string[]; events?: readonly string[] },
  view: { feeds: FieldFeeds; received: Set<string> | undefined; typeVisible: (t: EntityType) => boolean },
): Promise<FeedPage> {
  const purged = await ctx.store.purgedThroughSeq();
  if (q.afterSeq < purged) {
    throw new GraphQLError(
      `this cursor is older than the retained change window (changes up to #${purged} were purged): read everything again, starting from changesHead`,
      { extensions: { code: 'CHANGES_CURSOR_EXPIRED' } },
    );
  }
  // A cursor past the head comes from another gateway or from before a restore from backup: waiting
  // for the log to catch up would silently skip whatever the restored log gets next.
  if (q.afterSeq > 0) {
    const head = await ctx.store.headSeq();
    if (q.afterSeq > head) {
      throw new GraphQLError(
        `this cursor is ahead of the change log (#${q.afterSeq} past its head #${head}: the store was restored or replaced): read everything again, starting from changesHead`,
        { extensions: { code: 'CHANGES_CURSOR_EXPIRED' } },
      );
    }
  }
  const types = q.types?.length ? q.types : q.events && recordTypesOf(q.events);
  const entityTypes = types?.length ? types.map((t) => ENTITY_OF_RECORD_TYPE[t]!) : undefined;
  const storeTypes = entityTypes?.includes('person') ? [...entityTypes, 'demographics' as EntityType] : entityTypes;
  const events: ChangeEvent[] = [];
  let lastSeq = q.afterSeq;
  let scanned = 0;
  while (events.length < q.first && scanned < MAX_SCAN) {
    const rows = await ctx.store.changes({ afterSeq: lastSeq, limit: SCAN_BATCH, types: storeTypes });
    if (rows.length === 0) return { events, lastSeq, hasNext: false };
    for (const row of rows) {
      lastSeq = row.seq;
      scanned++;
      const ev = toEvent(row, view.feeds, view.received, view.typeVisible);
      if (ev && (!q.events || subscribed(q.events, eventType(ev.type, ev.op)))) events.push(ev);
      if (events.length === q.first) break;
    }
  }
  const more = await ctx.store.changes({ afterSeq: lastSeq, limit: 1, types: storeTypes });
  return { events, lastSeq, hasNext: more.length > 0 };
}

export function encodeSeq(ctx: GraphQLContext, seq: number): string {
  return ctx.cursors.encode(`#${seq}`);
}

export function decodeSeq(ctx: GraphQLContext, cursor: string | null | undefined): number | undefined {
  const v = ctx.cursors.decode(cursor);
  if (v === undefined) return undefined;
  if (!v.startsWith('#') || !Number.isInteger(Number(v.slice(1)))) {
    throw new GraphQLError('invalid change cursor: pass an endCursor from changes or changesHead', { extensions: { code: 'BAD_USER_INPUT' } });
  }
  return Number(v.slice(1));
}

/**
 * A tombstone's links to records deleted too (an enrollment of a deleted class or of a student who
 * left) are rendered from those records' own tombstones, so the link keeps its id or pseudonym: a
 * purpose without enrollment ids can still tell which enrollment went.
 */
async function primeLinkedTombstones(ctx: GraphQLContext, tombstones: EntityRow[]): Promise<void> {
  const refs = new Set<string>();
  for (const t of tombstones) {
    for (const f of referenceFields(t.type)) {
      const v = (t.data as Record<string, unknown>)[f];
      for (const id of Array.isArray(v) ? v : [v]) if (typeof id === 'string') refs.add(id);
    }
  }
  if (refs.size === 0) return;
  const ids = [...refs];
  const live = await ctx.loaders.entity.loadMany(ids);
  const gone = ids.filter((_, i) => !live[i] || live[i] instanceof Error);
  for (const row of await ctx.store.tombstones(gone)) ctx.loaders.entity.clear(row.id).prime(row.id, row);
}

/** Survivors of merges as they are now, or from their own tombstone if they went since. */
async function survivorsOf(ctx: GraphQLContext, ids: string[]): Promise<Map<string, EntityRow>> {
  const out = new Map<string, EntityRow>();
  if (ids.length === 0) return out;
  const live = await ctx.loaders.entity.loadMany(ids);
  ids.forEach((id, i) => {
    const r = live[i];
    if (r && !(r instanceof Error)) out.set(id, r);
  });
  for (const t of await ctx.store.tombstones(ids.filter((id) => !out.has(id)))) out.set(t.id, t);
  return out;
}

export async function changesResolver(
  ctx: GraphQLContext,
  args: { after?: string | null; first?: number | null; types?: string[] | null },
) {
  const afterSeq = decodeSeq(ctx, args.after) ?? (await ctx.store.purgedThroughSeq());
  const page = await readFeed(ctx, { afterSeq, first: checkFirst(args.first ?? 100), types: args.types ?? undefined, events: ctx.events }, ctx.view);
  await primeLinkedTombstones(ctx, page.events.flatMap((e) => (e.tombstone ? [e.tombstone] : [])));
  const live = await ctx.loaders.entity.loadMany(page.events.filter((e) => !e.tombstone).map((e) => e.entityId));
  const byId = new Map(live.filter((r): r is EntityRow => !!r && !(r instanceof Error)).map((r) => [r.id, r]));
  const survivors = await survivorsOf(ctx, page.events.flatMap((e) => (e.mergedInto ? [e.mergedInto] : [])));
  return {
    edges: page.events.map((e) => ({
      node: {
        op: e.op, type: e.type, at: e.at, fields: e.fields, tenant: ctx.tenant, record: e.tombstone ?? byId.get(e.entityId) ?? null,
        mergedInto: (e.mergedInto && survivors.get(e.mergedInto)) ?? null,
      },
      cursor: encodeSeq(ctx, e.seq),
    })),
    pageInfo: { hasNextPage: page.hasNext, endCursor: encodeSeq(ctx, page.lastSeq) },
  };
}
