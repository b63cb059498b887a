/**
 * Extracts for data teams: a dataset streamed as CSV or NDJSON through the client's purpose view —
 * a projection compiled from the purpose schema (./projection.ts) that makes each value with the
 * resolvers GraphQL uses, so an extract and a query agree value for value and nothing the purpose
 * may not see can slip in. Memory stays flat: pages are written and dropped (the next one is read
 * meanwhile); the k-anonymity pass keeps only counts of distinct quasi-identifier tuples.
 *
 * Under k-anonymity, two passes over one read of the store: the first projects every row, counts
 * quasi-identifier tuples and keeps the pages in a private spill file (./spill.ts); the plan of
 * generalisation/suppression follows from the counts; the second writes the spilled pages, counting
 * the groups it writes. What is written is what was counted, so a sync running meanwhile cannot
 * shrink a written group below k (the written groups are still checked, and the extract fails
 * rather than hand out rows that break the check). Without quasi-identifiers, one pass.
 */
import { Readable, type Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createHash, randomUUID } from 'node:crypto';
import { RostergateError } from '../errors.ts';
import type { Privacy } from '../graphql/privacy.ts';
import type { Store } from '../store/types.ts';
import type { SourceType } from '../../connectors/types.ts';
import { columnsFor, type Column, type Dataset } from './columns.ts';
import { compileProjection, projectedPages, type ListRange, type ProjectedPage } from './projection.ts';
import { Spill, SpillFolder, type SpillPart } from './spill.ts';
import { csvLines } from './csv.ts';
import { formatRows, type ExtractFormat } from './format.ts';
import { KeyMemo } from '../graphql/loaders.ts';
import type { GraphQLContext } from '../graphql/context.ts';
import { orderOf } from '../graphql/order.ts';
import { extractThreads, inOrder, listRanges, listTypeOf, rowsPerThreadRange, type Job, type RangeJob, type RangeResult } from './parallel.ts';
import { countTuples, planK, recodePage, type KPolicy, type Value } from './kanonymity.ts';

export { FORMATS, protectCell, type ExtractFormat } from './format.ts';

export interface ExtractReport {
  dataset: Dataset;
  client: string;
  purpose: string;
  format: ExtractFormat;
  columns: string[];
  /** Rows read in the writing pass (before suppression), and rows written. */
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

export interface ExtractRequest {
  client: string;
  dataset: Dataset;
  format: ExtractFormat;
  /** Raises the purpose's k for this extract; lowering it is refused. */
  k?: number;
}

export interface ExtractOptions extends ExtractRequest {
  store: Store;
  privacy: Privacy;
  sourceTypes: ReadonlyMap<string, SourceType>;
  /** Written to, not ended: the caller ends it (the HTTP route adds the report as a trailer first). */
  out: Writable;
  pageSize?: number;
  /** Called after each page with the rows read so far in the current pass (counts only). */
  onProgress?: (e: { pass: ExtractPass; rows: number }) => void;
  /**
   * Worker threads to project the pages on (./parallel.ts); 1 (the default) keeps the extract on
   * this thread. Used from `parallelFrom` rows on, on a store another thread can open (not SQLite
   * in memory); under k-anonymity for both passes (each thread spills the ranges it checked).
   */
  threads?: number;
  /** Rows from which `threads` are used (default PARALLEL_FROM): below it, starting threads costs more than they save. */
  parallelFrom?: number;
}

/**
 * See ExtractOptions.parallelFrom. Threads start in about 1.2 s (compiled) and saved about 5 µs a row
 * on two cores (./parallel.ts): they pay from about 250,000 rows there, sooner on more cores. At
 * 50,000 students the enrollments (about 320,000 rows) go parallel, the people (117,000) do not.
 */
export const PARALLEL_FROM = 200_000;

/** The k-anonymity check reads every row once before the rows are written in a second pass. */
export type ExtractPass = 'check' | 'write';

/** A page on its way to the writing pass: cells in column order, the people it disclosed, and (people dataset, k check) its rows' ids. */
type Page = Pick<ProjectedPage, 'cells'> & { people: Iterable<string>; ids?: string[] };

/**
 * What the check pass keeps in memory of a page for the writing pass: the people it disclosed and,
 * for the people dataset, its rows' ids (a suppressed row takes its person out of the disclosed set).
 */
export function heldOf(dataset: Dataset, page: Pick<ProjectedPage, 'rows' | 'people'>): { ids?: string[]; people: string[] } {
  return { ...(dataset === 'people' ? { ids: page.rows.map((r) => r.id) } : {}), people: [...page.people] };
}

/**
 * Rows per page read from the store: big enough that per-page costs vanish, small enough to stay
 * flat. SQLite reads in this process, and a page's rows, cells and promises then outlive fewer young
 * collections at 1,000 rows than at 2,000 (10–15 % less CPU for an enrollments extract, measured
 * side by side in one process); PostgreSQL pays a round trip and the server's ordered walk per page,
 * so there 2,000 (1,000 took 25–30 % longer in wall-clock time).
 */
export function pageSizeFor(store: Pick<Store, 'kind'>): number {
  return store.kind === 'sqlite' ? 1000 : 2000;
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

/**
 * Everything about an extract that can be refused before a byte is written: the client, its
 * extract rights, the dataset in its purpose's schema, and k.
 */
export function prepareExtract(privacy: Privacy, r: ExtractRequest) {
  const purpose = privacy.clientPurpose(r.client);
  if (!purpose) throw new RostergateError('NOT_FOUND', `no client "${r.client}" in the config`);
  if (!purpose.extracts) throw new RostergateError('FORBIDDEN', `client ${r.client} (purpose ${purpose.id}) has no extract rights: set extracts: true on the purpose`);
  const policy: KPolicy = { k: purpose.kAnonymity.k, onViolation: purpose.kAnonymity.onViolation, maxSuppressShare: purpose.kAnonymity.maxSuppressShare };
  if (r.k !== undefined) {
    if (!Number.isInteger(r.k) || r.k < policy.k) {
      throw new RostergateError('CONFIG_INVALID', `k must be a whole number ≥ ${policy.k}, the k of purpose ${purpose.id}: an extract may raise k, never lower it`);
    }
    policy.k = r.k;
  }
  const ps = privacy.schemas.get(purpose.id)!;
  const { columns, selection } = columnsFor(ps.schema, r.dataset, { tenant: privacy.seesTenants(r.client) });
  const category = (c: Column) => privacy.classification.get(c.coordinate)?.category;
  return { purpose, ps, columns, selection, policy, qi: columns.filter((c) => category(c) === 'QUASI'), direct: columns.filter((c) => category(c) === 'DIRECT') };
}

/**
 * A dataset's list as the purpose reads it: its type and order, and whether it is walked through its
 * people's pseudonyms (enrollments, guardianships in pseudonym order). Read from the purpose, not the store.
 */
type ListOrder = Awaited<ReturnType<typeof listOrder>>;
async function listOrder(dataset: Dataset, newContext: () => Promise<GraphQLContext>) {
  const type = listTypeOf(dataset);
  const order = orderOf(await newContext(), type);
  return { type, throughPeople: !!order && type !== 'person', q: { type, ...(order ? { order } : {}) } };
}

/**
 * What cutting the list into ranges needs besides: its rows, and how many leading keys there are per
 * row (a walk through people is cut between people: so many people per row).
 */
type ListShape = Awaited<ReturnType<typeof listShape>>;
async function listShape(store: Store, list: ListOrder) {
  const counts = await store.counts(list.type === 'person' ? [list.type] : [list.type, 'person']);
  const rows = counts[list.type];
  return { ...list, rows, leadRatio: list.throughPeople ? counts.person / Math.max(1, rows) : 1 };
}

/**
 * The threads and ranges of a parallel extract; undefined where it would not pay or cannot be (see
 * ExtractOptions.threads). `jobs` makes a pass's jobs over the ranges, `results` runs them in list order.
 */
async function parallelPlan(o: ExtractOptions, names: string[], listed: () => Promise<ListShape>, pageSize: number) {
  const threads = o.threads ?? 1;
  const where = o.store.location();
  if (threads < 2 || !where) return undefined;
  const shape = await listed();
  if (shape.rows < (o.parallelFrom ?? PARALLEL_FROM)) return undefined;
  const ranges = await listRanges(o.store, shape.q, rowsPerThreadRange(shape.rows, pageSize, threads), shape.leadRatio);
  const pool = extractThreads({ store: where, privacy: o.privacy.threadRecipe(), sourceTypes: [...o.sourceTypes] }, threads);
  return {
    pool,
    jobs(check?: RangeJob['check']): RangeJob[] {
      const extractId = randomUUID();
      return ranges.map((range) => ({ extractId, client: o.client, dataset: o.dataset, format: o.format, pageSize, range, names, ...(check ? { check } : {}) }));
    },
    results: (jobs: Job[]) => inOrder(pool, jobs, 2 * pool.size),
  };
}

/**
 * The ranges an extract on this thread reads its list in (projectedPages), or undefined to read it
 * in one chain of pages. Only on PostgreSQL, for a list of more than two pages walked through its
 * people's pseudonyms (enrollments, guardianships for a pseudonymising purpose). There each page's
 * listing is a walk of some 15 ms of the server's time that starts from the last key of the page
 * before: the listings are the extract's critical path, while the server has a core to spare. In
 * ranges of about a page, the next range's first page is listed beside this one's. Elsewhere it
 * did not pay (docs/extract-engine.md): a list in id order is one index range a page, cheaper than
 * cutting it into ranges (classes: 0.38× against 0.46× the floor); the people list took as long
 * and 15 % more CPU (pages waiting longer outlive more collections). SQLite reads on this thread:
 * nothing to overlap.
 */
async function pipelinedRanges(
  o: ExtractOptions, ordering: () => Promise<ListOrder>, listed: () => Promise<ListShape>, pageSize: number,
): Promise<ListRange[] | undefined> {
  // Nothing is counted for a list that would not be cut.
  if (o.store.kind !== 'postgres' || !(await ordering()).throughPeople) return undefined;
  const shape = await listed();
  if (shape.rows <= 2 * pageSize) return undefined;
  return pageRanges(o.store, shape, pageSize);
}

/**
 * A list cut into ranges of nine tenths of a page on average, so that few of them (those a little
 * denser than the average) need a second listing for their last rows.
 */
const pageRanges = (store: Store, shape: ListShape, pageSize: number) => listRanges(store, shape.q, Math.floor(0.9 * pageSize), shape.leadRatio);

/** The ranges a pipelined extract of `dataset` reads with pages of `pageSize` (see pipelinedRanges), on any store: for tests. */
export async function pageRangesOf(store: Store, dataset: Dataset, newContext: () => Promise<GraphQLContext>, pageSize: number): Promise<ListRange[]> {
  return pageRanges(store, await listShape(store, await listOrder(dataset, newContext)), pageSize);
}

/** A parallel pass's result of the kind it asked for (a thread that answered otherwise is a bug, named as such). */
function answered<K extends RangeResult['kind']>(r: RangeResult, kind: K, dataset: Dataset): Extract<RangeResult, { kind: K }> {
  if (r.kind !== kind) throw new RostergateError('STORE', `extract ${dataset}: a worker thread answered a ${kind} job with ${r.kind}`);
  return r as Extract<RangeResult, { kind: K }>;
}

export async function runExtract(o: ExtractOptions): Promise<ExtractReport> {
  const startedAt = new Date().toISOString();
  const { purpose, ps, columns, selection, policy, qi, direct } = prepareExtract(o.privacy, o);
  const cls = o.privacy.classification;
  const applicable = direct.length === 0;
  const people = new Set<string>();
  const pageSize = o.pageSize ?? pageSizeFor(o.store);
  // A fresh context per page: its loaders' caches (and pseudonyms) are dropped with the page; only
  // the keys of related records found (bounded) carry over, so a class is not looked up on every page.
  const keyMemo = new KeyMemo();
  const newContext = () => o.privacy.context(o.store, o.sourceTypes, { client: o.client, purpose }, { sharedCache: false, keyMemo });

  const names = columns.map((c) => c.name);
  const qiNames = qi.map((c) => c.name);
  const qiAt = qi.map((c) => columns.indexOf(c));
  const projection = compileProjection(ps.schema, o.dataset, columns);
  // The list's order and size, each read once and only where a plan asks for it.
  let ordered: Promise<ListOrder> | undefined;
  let shape: Promise<ListShape> | undefined;
  const ordering = () => (ordered ??= listOrder(o.dataset, newContext));
  const listed = () => (shape ??= ordering().then((list) => listShape(o.store, list)));
  const parallel = await parallelPlan(o, names, listed, pageSize);
  const ranges = parallel ? undefined : await pipelinedRanges(o, ordering, listed, pageSize);
  const fromStore = () => projectedPages(projection, newContext, pageSize, ranges);

  // Pass 1 (only when there is something to protect): the one read of the store, every column
  // projected; counts of quasi-identifier tuples, the pages spilled to a private file (./spill.ts)
  // for the writing pass. Gateway ids stay in memory: the disclosed people per page, and for the
  // people dataset the row ids, so a suppressed row can take its person out of the disclosed set.
  // On threads: the same counts and pages' people, each thread spilling its ranges to a file of its
  // own in a private folder (`parts` says where each range lies).
  const tuples = new Map<string, number>();
  let spill: Spill<Value[][]> | undefined;
  let folder: SpillFolder | undefined;
  const parts: SpillPart[] = [];
  const held: { ids?: string[]; people: string[] }[] = [];
  const checking = applicable && qi.length > 0;
  if (checking) {
    try {
      let checked = 0;
      if (parallel) {
        folder = await SpillFolder.create();
        for await (const result of parallel.results(parallel.jobs({ qiAt, folder: folder.path }))) {
          const r = answered(result, 'check', o.dataset);
          for (const [key, n] of r.tuples) tuples.set(key, (tuples.get(key) ?? 0) + n);
          parts.push(r.part);
          held.push(...r.pages);
          checked += r.rows;
          o.onProgress?.({ pass: 'check', rows: checked });
        }
      } else {
        spill = await Spill.create<Value[][]>();
        for await (const page of fromStore()) {
          countTuples(tuples, page.cells, qiAt);
          await spill.write(page.cells);
          held.push(heldOf(o.dataset, page));
          checked += page.cells.length;
          o.onProgress?.({ pass: 'check', rows: checked });
        }
      }
    } catch (e) {
      await spill?.remove();
      await folder?.remove();
      throw e;
    }
  }
  const plan = checking ? planK(tuples, qiNames, policy) : undefined;
  tuples.clear();
  const recoding = plan && { levels: plan.levels, qi: qiNames, qiAt };
  const suppress = (group: string) => (plan!.groups.get(group) ?? 0) < policy.k;
  async function* fromSpill(s: Spill<Value[][]>): AsyncGenerator<Page> {
    let i = 0;
    for await (const cells of s.pages()) {
      const page = held[i]!;
      held[i++] = { people: [] };
      yield { cells, ...page };
    }
  }
  /** The people a page disclosed, less the rows the writing pass left out (only people carry quasi-identifiers). */
  const disclosed = (page: Omit<Page, 'cells'>, dropped: readonly number[]) => {
    // The audit log and disclosure ledger count the people sent, so not those suppressed: a
    // suppressed row is one person, rendered in no other row.
    const out = page.ids && dropped.length ? new Set(dropped.map((i) => page.ids![i]!)) : undefined;
    for (const id of page.people) if (!out?.has(id)) people.add(id);
  };

  // Pass 2: write, counting the groups actually written.
  let written = 0;
  let seen = 0;
  const writtenGroups = new Map<string, number>();
  async function* text(): AsyncGenerator<string> {
    if (o.format === 'csv') yield csvLines([names]);
    if (parallel && checking) {
      // Read back, recoded and formatted on the threads; the plan goes to each of them first.
      const extractId = randomUUID();
      parallel.pool.share(extractId, { ...recoding!, suppress: [...plan!.groups.keys()].filter(suppress), format: o.format, names });
      const jobs = parts.map((part) => ({ extractId, recode: part }));
      let h = 0;
      for await (const result of parallel.results(jobs)) {
        const r = answered(result, 'recoded', o.dataset);
        for (const dropped of r.dropped) {
          disclosed(held[h]!, dropped);
          held[h++] = { people: [] };
        }
        for (const [key, n] of r.groups) writtenGroups.set(key, (writtenGroups.get(key) ?? 0) + n);
        seen += r.rows;
        written += r.written;
        o.onProgress?.({ pass: 'write', rows: seen });
        if (r.text) yield r.text;
      }
      return;
    }
    if (parallel && !checking) {
      // Projected and formatted on the threads.
      for await (const result of parallel.results(parallel.jobs())) {
        const r = answered(result, 'text', o.dataset);
        for (const id of r.people) people.add(id);
        seen += r.rows;
        written += r.rows;
        o.onProgress?.({ pass: 'write', rows: seen });
        if (r.text) yield r.text;
      }
      return;
    }
    for await (const page of spill ? fromSpill(spill) : (fromStore() as AsyncIterable<Page>)) {
      const { cells } = page;
      seen += cells.length;
      const { kept, dropped } = recoding ? recodePage(cells, recoding, suppress, writtenGroups) : { kept: cells, dropped: [] };
      disclosed(page, dropped);
      written += kept.length;
      o.onProgress?.({ pass: 'write', rows: seen });
      if (!kept.length) continue;
      yield formatRows(o.format, names, kept);
    }
  }

  const coords = [...new Set(columns.map((c) => c.coordinate))].sort();
  const categories: Record<string, number> = {};
  for (const c of coords) {
    const cat = cls.get(c)?.category;
    if (cat) categories[cat] = (categories[cat] ?? 0) + 1;
  }
  let complete = false;
  try {
    // pipeline: backpressure from the file or socket, and a consumer that goes away ends the read.
    await pipeline(Readable.from(text()), o.out, { end: false });
    const kReached = plan ? (writtenGroups.size ? Math.min(...writtenGroups.values()) : null) : null;
    if (kReached !== null && kReached < policy.k) {
      throw new RostergateError('STORE', `the roster changed while the extract was written (a sync ran): a group of ${kReached} < k=${policy.k} would be disclosed; run the extract again`, {}, { retryable: true });
    }
    complete = true;
    return {
      dataset: o.dataset, client: o.client, purpose: purpose.id, format: o.format, columns: columns.map((c) => c.name),
      rows: seen, written, suppressed: seen - written,
      kAnonymity: {
        applicable,
        ...(applicable ? {} : { reason: `the extract carries direct identifiers (${direct.map((c) => c.name).join(', ')}), so grouping cannot protect anyone` }),
        k: policy.k,
        kReached,
        quasiIdentifiers: qiNames,
        generalised: Object.fromEntries(Object.entries(plan?.levels ?? {}).filter(([, l]) => l > 0)),
        equivalenceClasses: writtenGroups.size,
      },
      startedAt,
      endedAt: new Date().toISOString(),
    };
  } finally {
    await spill?.remove();
    await folder?.remove();
    // Audited whether or not it completed: rows that went out before a failure were disclosed.
    if (complete || people.size) {
      await o.privacy.auditLog(o.store).record(
        {
          at: new Date().toISOString(), client: o.client, purpose: purpose.id, kind: 'extract',
          operation: `extract:${o.dataset}:${o.format}${complete ? '' : ':incomplete'}`,
          operationHash: createHash('sha256').update(selection).digest('hex').slice(0, 32), categories, fields: coords, people: people.size,
        },
        [...people],
      );
    }
  }
}
