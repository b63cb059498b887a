/**
 * Pseudonym order on the GraphQL side (the rule and its sort keys: src/store/order.ts): which of a
 * request's lists follow it, their keyset cursors, and the same order for lists cut in memory, so
 * `Class.enrollments` or `Organization.people` cannot be paired by position either. Nested lists
 * are ordered by the store (`store.linkedPages`, test/e2e/nested-order-sql.test.ts holds it to
 * `sortKeys` + `sliceKeyed`); these two still cut `updatedSince` pages and `Person.guardianships`.
 *
 * A cursor in pseudonym order carries the list, the key version it was issued under and the sort
 * key of its row, sealed per domain like every cursor of a purpose with a key ring. A sync that
 * runs meanwhile adds or removes rows around it but never moves it: the key of a row never changes
 * within a version. After `keys rotate` the order of the domain is a different one, so a cursor
 * of the previous version is refused (CURSOR_EXPIRED) rather than resumed at an unrelated place.
 */
import { GraphQLError } from 'graphql';
import type { EntityType } from '../model/records.ts';
import type { EntityRow } from '../store/types.ts';
import {
  compareKeys, isPseudonymOrdered, KEY_PARTS, peopleOrderedBy, sortKeyOf, type PseudonymOrder, type PseudonymOrderedType,
} from '../store/order.ts';
import { invalid } from './connection.ts';
import type { GraphQLContext } from './context.ts';

/** Payloads of pseudonym-order cursors start with this; gateway ids and feed positions never do. */
const MARK = '~';

/** The order a list of `type` follows in this request: pseudonym order, or undefined for id order. */
export function orderOf(ctx: GraphQLContext, type: EntityType): (PseudonymOrder & { type: PseudonymOrderedType }) | undefined {
  return ctx.listOrder && isPseudonymOrdered(type) ? { ...ctx.listOrder, type } : undefined;
}

export function encodeKeyCursor(ctx: GraphQLContext, type: PseudonymOrderedType, key: readonly string[]): string {
  return ctx.cursors.encode(`${MARK}${type}:v${ctx.listOrder!.version}:${JSON.stringify(key)}`);
}

/** The sort key a pseudonym-order cursor points after; refuses one of another list, order or key version. */
export function decodeKeyCursor(ctx: GraphQLContext, type: PseudonymOrderedType, cursor: string | null | undefined): string[] | undefined {
  const text = ctx.cursors.decode(cursor);
  if (text === undefined) return undefined;
  const m = /^~(\w+):v(\d+):(.*)$/s.exec(text);
  if (!m || m[1] !== type) throw invalid();
  const version = Number(m[2]);
  checkKeyVersion(ctx, version);
  let key: unknown;
  try {
    key = JSON.parse(m[3]!);
  } catch {
    throw invalid();
  }
  if (!Array.isArray(key) || key.length !== KEY_PARTS[type] || !key.every((k) => typeof k === 'string')) throw invalid();
  return key as string[];
}

/**
 * Refuses a position in pseudonym order taken under another key version than the request's (a
 * cursor, or an extract's last sort key when a rotation lands between its pages): after `keys
 * rotate` the old position means nothing in the new order.
 */
export function checkKeyVersion(ctx: GraphQLContext, version: number): void {
  const current = ctx.listOrder!.version;
  if (version !== current) {
    throw new GraphQLError(
      `this cursor was issued under pseudonym key version ${version}, and the purpose's pseudonyms are now at version ${current} (the keys were rotated): ` +
        'lists here are ordered by pseudonym, so the old position means nothing in the new order; page again from the start (without after)',
      { extensions: { code: 'CURSOR_EXPIRED' } },
    );
  }
}

/** The id an id-order cursor points after; a pseudonym-order cursor passed here is refused, not misread. */
export function decodeIdCursor(ctx: GraphQLContext, cursor: string | null | undefined): string | undefined {
  const id = ctx.cursors.decode(cursor);
  if (id?.startsWith(MARK)) throw invalid();
  return id;
}

/**
 * Sort keys of records already known by id (a nested list), through the request's loaders: one
 * batched read of the records (people need none; a caller that holds the rows passes them) and one
 * of the pseudonyms they order by — only of those the process does not hold already (most, once
 * warm: a nested list of a few dozen people then costs no promise per person). Records without a
 * key (their person has no pseudonym in this version) are absent, as in the store's lists.
 */
export async function sortKeys(
  ctx: GraphQLContext, type: PseudonymOrderedType, ids: readonly string[], known?: readonly EntityRow[],
): Promise<Map<string, string[]>> {
  const rows: readonly { id: string; data: unknown }[] =
    type === 'person'
      ? ids.map((id) => ({ id, data: {} }))
      : known ?? (await ctx.loaders.entity.loadMany(ids)).filter((r): r is EntityRow => !!r && !(r instanceof Error));
  const pseudonyms = new Map<string, string>();
  const missing: string[] = [];
  for (const r of rows) {
    for (const id of peopleOrderedBy(type, r)) {
      if (pseudonyms.has(id)) continue;
      const v = ctx.loaders.pseudonymNow(id);
      if (v === undefined) missing.push(id);
      else pseudonyms.set(id, v);
    }
  }
  if (missing.length) {
    const people = [...new Set(missing)];
    const values = await ctx.loaders.pseudonym.loadMany(people);
    people.forEach((id, i) => {
      const v = values[i];
      if (typeof v === 'string') pseudonyms.set(id, v);
    });
  }
  const out = new Map<string, string[]>();
  const pseudonymOf = (id: string) => pseudonyms.get(id);
  for (const r of rows) {
    const key = sortKeyOf(type, r, pseudonymOf);
    if (key) out.set(r.id, key);
  }
  return out;
}

/** A page of keyed ids in memory: sorted by key, those after `after`. */
export function sliceKeyed(keys: Map<string, string[]>, first: number, after?: readonly string[]): { ids: string[]; hasNext: boolean; total: number } {
  const sorted = [...keys].sort((a, b) => compareKeys(a[1], b[1])).map(([id]) => id);
  const start = after === undefined ? 0 : sorted.findIndex((id) => compareKeys(keys.get(id)!, after) > 0);
  const from = start < 0 ? sorted.length : start;
  return { ids: sorted.slice(from, from + first), hasNext: from + first < sorted.length, total: sorted.length };
}
