/**
 * Extracts for data teams: a dataset streamed as CSV or NDJSON through the client's purpose view —
 * each page is a GraphQL execution against the purpose schema, so an extract and a query agree
 * value for value and nothing the purpose may not see can slip in. Memory stays flat: pages are
 * written and dropped; the k-anonymity pass keeps only counts of distinct quasi-identifier tuples.
 *
 * Two passes: the first counts quasi-identifier tuples and plans generalisation/suppression, the
 * second writes. Rows whose tuple was not seen in the first pass (a sync ran in between) are
 * suppressed rather than risked.
 */
import { once } from 'node:events';
import type { Writable } from 'node:stream';
import { createHash } from 'node:crypto';
import { execute, parse } from 'graphql';
import { stringify } from 'csv-stringify/sync';
import { RostergateError } from '../errors.ts';
import { fieldResolver } from '../graphql/schema.ts';
import type { Privacy } from '../privacy/setup.ts';
import { auditLogFor } from '../privacy/setup.ts';
import type { Store } from '../store/types.ts';
import type { SourceType } from '../../connectors/types.ts';
import { cell, columnsFor, DATASETS, type Column, type Dataset } from './columns.ts';
import { generalise, groupKey, planK, type KPolicy, type Value } from './kanonymity.ts';

export type ExtractFormat = 'csv' | 'ndjson';
export const FORMATS: ExtractFormat[] = ['csv', 'ndjson'];

export interface ExtractReport {
  dataset: Dataset;
  client: string;
  purpose: string;
  format: ExtractFormat;
  columns: string[];
  /** Rows in the dataset before suppression, and rows written. */
  rows: number;
  written: number;
  suppressed: number;
  kAnonymity: {
    applicable: boolean;
    reason?: string;
    k: number;
    /** Smallest group among written rows (≥ k when the check holds); null with no quasi-identifiers. */
    kReached: number | null;
    quasiIdentifiers: string[];
    /** Columns generalised, with the level applied (1 = one step coarser). */
    generalised: Record<string, number>;
    equivalenceClasses: number;
  };
  startedAt: string;
  endedAt: string;
}

export interface ExtractOptions {
  store: Store;
  privacy: Privacy;
  sourceTypes: ReadonlyMap<string, SourceType>;
  client: string;
  dataset: Dataset;
  format: ExtractFormat;
  out: Writable;
  k?: number;
  pageSize?: number;
}

/** Cells that a spreadsheet would run as a formula are prefixed with an apostrophe. */
export function protectCell(v: Value): Value {
  return typeof v === 'string' && /^[=+\-@\t\r]/.test(v) ? `'${v}` : v;
}

export function humanSummary(r: ExtractReport): string {
  const k = r.kAnonymity;
  const lines = [
    `extract ${r.dataset} for ${r.client} (purpose ${r.purpose}), ${r.format}: ${r.written} of ${r.rows} rows written, ${r.suppressed} suppressed`,
    k.applicable
      ? k.quasiIdentifiers.length
        ? `k-anonymity: k=${k.k} required, ${k.kReached ?? '—'} reached over ${k.quasiIdentifiers.join(', ')} (${k.equivalenceClasses} groups)`
        : `k-anonymity: no quasi-identifier columns in this extract`
      : `k-anonymity: not applicable — ${k.reason}`,
  ];
  const gen = Object.entries(k.generalised);
  if (gen.length) lines.push(`generalised: ${gen.map(([c, l]) => `${c} (level ${l})`).join(', ')}`);
  return lines.join('\n');
}

export async function runExtract(o: ExtractOptions): Promise<ExtractReport> {
  const startedAt = new Date().toISOString();
  const found = o.privacy.clientPurpose(o.client);
  if (!found) throw new RostergateError('NOT_FOUND', `no client "${o.client}" in the config`);
  const purpose = found;
  if (!purpose.extracts) throw new RostergateError('FORBIDDEN', `client ${o.client} (purpose ${purpose.id}) has no extract rights: set extracts: true on the purpose`);
  const ps = o.privacy.schemas.get(purpose.id)!;
  const { columns, selection } = columnsFor(ps.schema, o.dataset);
  const root = DATASETS[o.dataset].root;
  const document = parse(
    `query Extract($after: Cursor, $first: Int) { ${root}(first: $first, after: $after) { pageInfo { hasNextPage endCursor } edges { node { ${selection} } } } }`,
  );
  const cls = o.privacy.classification;
  const category = (c: Column) => cls.get(c.coordinate)?.category;
  const qi = columns.filter((c) => category(c) === 'QUASI');
  const direct = columns.filter((c) => category(c) === 'DIRECT');
  const policy: KPolicy = { k: o.k ?? purpose.kAnonymity.k, onViolation: purpose.kAnonymity.onViolation, maxSuppressShare: purpose.kAnonymity.maxSuppressShare };
  const applicable = direct.length === 0;
  const people = new Set<string>();

  /** Streams pages of result nodes through the purpose schema with a fresh context per page. */
  async function* pages(): AsyncGenerator<Record<string, unknown>[]> {
    let after: string | null = null;
    for (;;) {
      const ctx = await o.privacy.context(o.store, o.sourceTypes, { client: o.client, purpose });
      const res = await execute({ schema: ps.schema, document, contextValue: ctx, variableValues: { after, first: o.pageSize ?? 1000 }, fieldResolver });
      if (res.errors?.length) throw new RostergateError('STORE', `extract ${o.dataset}: ${res.errors[0]!.message}`);
      for (const id of ctx.people) people.add(id);
      const conn = (res.data as Record<string, { edges: { node: Record<string, unknown> }[]; pageInfo: { hasNextPage: boolean; endCursor: string } }>)[root]!;
      yield conn.edges.map((e) => e.node);
      if (!conn.pageInfo.hasNextPage) return;
      after = conn.pageInfo.endCursor;
    }
  }

  const qiValues = (node: Record<string, unknown>) => qi.map((c) => cell(node, c));
  // Pass 1: counts of quasi-identifier tuples (only when there is something to protect).
  const tuples = new Map<string, number>();
  let rows = 0;
  if (applicable && qi.length) {
    for await (const page of pages()) {
      for (const node of page) {
        rows++;
        const key = groupKey(qiValues(node));
        tuples.set(key, (tuples.get(key) ?? 0) + 1);
      }
    }
  }
  const qiNames = qi.map((c) => c.name);
  const plan = applicable && qi.length ? planK(tuples, qiNames, policy) : undefined;
  people.clear();

  // Pass 2: write.
  let written = 0;
  let seen = 0;
  let minGroup: number | null = null;
  const writeOut = async (text: string) => {
    if (!o.out.write(text)) await once(o.out, 'drain');
  };
  if (o.format === 'csv') await writeOut(stringify([columns.map((c) => c.name)]));
  for await (const page of pages()) {
    const out: Value[][] = [];
    for (const node of page) {
      seen++;
      let values = columns.map((c) => cell(node, c));
      if (plan) {
        const q = generalise(qiValues(node), qiNames, plan.levels);
        const size = plan.groups.get(groupKey(q)) ?? 0;
        if (size < policy.k) continue;
        minGroup = minGroup === null ? size : Math.min(minGroup, size);
        values = values.map((v, i) => {
          const j = qi.indexOf(columns[i]!);
          return j < 0 ? v : q[j]!;
        });
      }
      out.push(values);
    }
    written += out.length;
    if (o.format === 'csv') await writeOut(stringify(out.map((r) => r.map(protectCell))));
    else await writeOut(out.map((r) => JSON.stringify(Object.fromEntries(columns.map((c, i) => [c.name, r[i] ?? null])))).join('\n') + (out.length ? '\n' : ''));
  }
  if (!plan) rows = seen;

  const coords = [...new Set(columns.map((c) => c.coordinate))].sort();
  const categories: Record<string, number> = {};
  for (const c of coords) {
    const cat = cls.get(c)?.category;
    if (cat) categories[cat] = (categories[cat] ?? 0) + 1;
  }
  await auditLogFor(o.store, o.privacy.keyring).record(
    {
      at: new Date().toISOString(), client: o.client, purpose: purpose.id, kind: 'extract', operation: `extract:${o.dataset}:${o.format}`,
      operationHash: createHash('sha256').update(selection).digest('hex').slice(0, 32), categories, fields: coords, people: people.size,
    },
    [...people],
  );
  return {
    dataset: o.dataset, client: o.client, purpose: purpose.id, format: o.format, columns: columns.map((c) => c.name),
    rows, written, suppressed: rows - written,
    kAnonymity: {
      applicable,
      ...(applicable ? {} : { reason: `the extract carries direct identifiers (${direct.map((c) => c.name).join(', ')}), so grouping cannot protect anyone` }),
      k: policy.k,
      kReached: plan ? minGroup : null,
      quasiIdentifiers: qiNames,
      generalised: Object.fromEntries(Object.entries(plan?.levels ?? {}).filter(([, l]) => l > 0)),
      equivalenceClasses: plan ? [...plan.groups.values()].filter((n) => n >= policy.k).length : 0,
    },
    startedAt,
    endedAt: new Date().toISOString(),
  };
}

