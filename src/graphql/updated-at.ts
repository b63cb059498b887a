/**
 * `updatedAt` and the `updatedSince` filter of nested lists, as the request's purpose sees them:
 * the last change of a record that purpose could see (src/graphql/view-times.ts), read through the
 * request's batched loader. Open access, and tombstones (whose time is their deletion, an event
 * for every purpose that sees the type), use the record's own time. Root lists filter in the
 * store (`ListQuery.view`).
 */
import { GraphQLError } from 'graphql';
import type { EntityRow } from '../store/types.ts';
import type { GraphQLContext } from './context.ts';

const usesOwnTime = (ctx: Pick<GraphQLContext, 'loaders'>, row: EntityRow) => !ctx.loaders.viewTime || row.tombstone;

export async function updatedAtOf(ctx: Pick<GraphQLContext, 'loaders'>, row: EntityRow): Promise<string> {
  if (usesOwnTime(ctx, row)) return row.updatedAt;
  const t = await ctx.loaders.viewTime!.load(row.id);
  // Failing closed: the record's own time would disclose changes the purpose does not see.
  if (!t) throw new GraphQLError('this record has no last-change time for this purpose yet: the gateway computes them at start-up and at each sync', { extensions: { code: 'NOT_MATERIALISED' } });
  return t.updatedAt;
}

/** The rows that changed at or after `since` for the request's purpose, in their order (one batched read). */
export async function changedSince(ctx: Pick<GraphQLContext, 'loaders'>, rows: EntityRow[], since: string): Promise<EntityRow[]> {
  const viewed = rows.filter((r) => !usesOwnTime(ctx, r));
  const times = viewed.length ? await ctx.loaders.viewTime!.loadMany(viewed.map((r) => r.id)) : [];
  const at = new Map(viewed.map((r, i) => [r.id, times[i]]));
  return rows.filter((r) => {
    if (usesOwnTime(ctx, r)) return r.updatedAt >= since;
    const t = at.get(r.id);
    return !!t && !(t instanceof Error) && t.updatedAt >= since;
  });
}
