/**
 * The GraphQL-driven reference for extracts: a dataset's rows as a GraphQL execution of the purpose
 * schema returns them — the root list paged with `first`/`after`, each page a fresh request context,
 * every column's cell read off the result nodes. This is how extracts were produced before they
 * were compiled to projections (src/extract/projection.ts); test/e2e/extract-projection.test.ts
 * holds the projection to it column by column.
 */
import { execute, parse } from 'graphql';
import { cell, columnsFor, DATASETS, type Dataset } from '../../src/extract/columns.ts';
import type { Value } from '../../src/extract/kanonymity.ts';
import type { Privacy } from '../../src/graphql/privacy.ts';
import type { Store } from '../../src/store/types.ts';

export interface ReferenceRows {
  columns: string[];
  cells: Value[][];
  /** Gateway ids of the people the executions rendered (what the audit and ledger count). */
  people: Set<string>;
}

export async function graphqlExtract(store: Store, privacy: Privacy, client: string, dataset: Dataset, pageSize = 50, schema = privacy.schemas.get(privacy.clientPurpose(client)!.id)!.schema): Promise<ReferenceRows> {
  const purpose = privacy.clientPurpose(client)!;
  const { columns, selection } = columnsFor(schema, dataset);
  const root = DATASETS[dataset].root;
  const document = parse(
    `query Extract($after: Cursor, $first: Int) { ${root}(first: $first, after: $after) { pageInfo { hasNextPage endCursor } edges { node { ${selection} } } } }`,
  );
  const out: ReferenceRows = { columns: columns.map((c) => c.name), cells: [], people: new Set() };
  let after: string | null = null;
  for (;;) {
    const ctx = await privacy.context(store, new Map(), { client, purpose }, { sharedCache: false });
    const res = await execute({ schema, document, contextValue: ctx, variableValues: { after, first: pageSize } });
    if (res.errors?.length) throw new Error(`${dataset} for ${client}: ${res.errors[0]!.message}`);
    const conn = (res.data as Record<string, { edges: { node: Record<string, unknown> }[]; pageInfo: { hasNextPage: boolean; endCursor: string } }>)[root]!;
    for (const e of conn.edges) out.cells.push(columns.map((c) => cell(e.node, c)));
    for (const id of ctx.people) out.people.add(id);
    if (!conn.pageInfo.hasNextPage) return out;
    after = conn.pageInfo.endCursor;
  }
}
