/**
 * A connector that reads the demo dataset straight from memory, with no vendor format in between.
 * Used by store and engine tests that are about the engine, not about a vendor; the demo itself
 * syncs through the vendor sandboxes.
 */
import type { Connector, ConnectorState, Page } from '../../connectors/types.ts';
import { ENTITY_TYPES, type SourceRecord } from '../model/records.ts';
import type { RosterDataset } from './dataset.ts';

export function directConnector(sourceId: string, dataset: RosterDataset, opts: { pageSize?: number } = {}): Connector {
  const pageSize = opts.pageSize ?? 500;
  return {
    sourceId,
    type: 'oneroster-csv',
    async *read(state: ConnectorState | null): AsyncIterable<Page> {
      let t = (state?.typeIndex as number | undefined) ?? 0;
      let offset = (state?.offset as number | undefined) ?? 0;
      if (state?.done) {
        t = 0;
        offset = 0;
      }
      for (; t < ENTITY_TYPES.length; t++, offset = 0) {
        const type = ENTITY_TYPES[t]!;
        const rows = dataset.list(type);
        do {
          const slice = rows.slice(offset, offset + pageSize);
          offset += slice.length;
          const last = offset >= rows.length;
          const lastOfAll = last && t === ENTITY_TYPES.length - 1;
          yield {
            resource: type,
            records: slice.map((r) => ({ type, key: r.key, data: r.data, lastModified: r.lastModified }) as SourceRecord),
            state: lastOfAll ? { done: true } : last ? { typeIndex: t + 1, offset: 0 } : { typeIndex: t, offset },
            completes: last ? [type] : undefined,
          };
        } while (offset < rows.length);
      }
    },
  };
}
