/**
 * Relay-style connections. Cursors are opaque (base64url of the last row's position: its id, or in
 * a pseudonymising purpose's pseudonym order its sort key, see order.ts) and keyset-based, so a
 * client paging while a sync runs never sees a row twice or skips one that existed throughout.
 */
import { GraphQLError } from 'graphql';
import type { EntityRow, ListResult } from '../store/types.ts';

export const MAX_PAGE = 1000;

/** Turns ids into cursors and back. Purposes with a key ring seal them (see KeyRing.sealCursor). */
export interface CursorCodec {
  encode(id: string): string;
  decode(cursor: string | null | undefined): string | undefined;
}

export const invalid = () =>
  new GraphQLError('invalid cursor: pass an endCursor or edge cursor returned by this API to the same client', { extensions: { code: 'BAD_USER_INPUT' } });

export const plainCursors: CursorCodec = {
  encode: (id) => Buffer.from(`c1:${id}`, 'utf8').toString('base64url'),
  decode(cursor) {
    if (cursor === null || cursor === undefined) return undefined;
    const text = Buffer.from(cursor, 'base64url').toString('utf8');
    if (!text.startsWith('c1:') || text.length < 4) throw invalid();
    return text.slice(3);
  },
};

export function sealedCursors(seal: (plain: string) => string, open: (sealed: string) => string | undefined): CursorCodec {
  return {
    encode: (id) => seal(`c1:${id}`),
    decode(cursor) {
      if (cursor === null || cursor === undefined) return undefined;
      const text = open(cursor);
      if (!text?.startsWith('c1:')) throw invalid();
      return text.slice(3);
    },
  };
}

export function checkFirst(first: number | null | undefined): number {
  const n = first ?? 50;
  if (!Number.isInteger(n) || n < 0 || n > MAX_PAGE) {
    throw new GraphQLError(`first must be between 0 and ${MAX_PAGE}`, { extensions: { code: 'BAD_USER_INPUT' } });
  }
  return n;
}

export interface Connection<T> {
  edges: { node: T; cursor: string }[];
  pageInfo: { hasNextPage: boolean; endCursor: string | null };
  /** Resolved only when selected (GraphQL calls a function-valued field). */
  totalCount: () => Promise<number>;
}

/** What the roster connections' resolvers return (codegen maps every *Connection of records to it). */
export type EntityConnection = Connection<EntityRow>;

export function fromList(r: ListResult, cursors: CursorCodec): Connection<EntityRow> {
  return toConnection(r, (row) => cursors.encode(row.id));
}

/** A connection whose cursors `cursorOf` makes from a row and its index in the page. */
export function toConnection(r: Pick<ListResult, 'rows' | 'hasNext' | 'count'>, cursorOf: (row: EntityRow, index: number) => string): Connection<EntityRow> {
  // Cursors are computed only when selected: sealing one costs an AES-GCM operation.
  const edges = r.rows.map((node, i) => ({
    node,
    get cursor() {
      return cursorOf(node, i);
    },
  }));
  const lastIndex = r.rows.length - 1;
  return {
    edges,
    pageInfo: {
      hasNextPage: r.hasNext,
      get endCursor() {
        return lastIndex >= 0 ? cursorOf(r.rows[lastIndex]!, lastIndex) : null;
      },
    },
    totalCount: () => r.count(),
  };
}

/** A page of an id list already in memory (nested connections batched through loaders). */
export function sliceIds(ids: string[], first: number, after?: string): { ids: string[]; hasNext: boolean; total: number } {
  const sorted = [...ids].sort();
  const start = after === undefined ? 0 : sorted.findIndex((id) => id > after);
  const from = start < 0 ? sorted.length : start;
  return { ids: sorted.slice(from, from + first), hasNext: from + first < sorted.length, total: sorted.length };
}

export function fromRows(rows: EntityRow[], hasNext: boolean, total: number, cursors: CursorCodec): Connection<EntityRow> {
  return fromList({ rows, hasNext, count: async () => total }, cursors);
}
