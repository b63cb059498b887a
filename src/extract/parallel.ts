/**
 * Parallel extracts: a list cut into ranges of its leading sort key, each range projected and
 * formatted on a worker thread (./extract-worker.ts), the text written in list order by the
 * extracting thread. What it buys: the projection (resolver chains, the related records' reads,
 * formatting) runs on as many cores as there are threads; SQLite reads on each thread's own
 * connection, PostgreSQL serves each thread's reads on a backend of its own.
 *
 * Under k-anonymity the threads make both passes. In the check pass each thread spills the
 * projected pages of its ranges to a file of its own (./spill.ts) and sends back where they lie,
 * with the counts of their quasi-identifier tuples and each page's people; the extracting thread
 * adds the counts up and plans the generalisation (./extract.ts). In the writing pass the threads
 * read the ranges back, recode them under the plan (`recodePage`, ./kanonymity.ts) and format them.
 * What stays on the extracting thread: the plan, the order of the output, the audit entry and the
 * disclosure ledger (gateway ids never leave memory: the threads send back the people each page
 * disclosed, and which rows the writing pass left out).
 *
 * Where it pays. A thread has to load the code, open the store and build the purpose schemas
 * before its first range: measured 1.2 s compiled and 2.4 s from the TypeScript sources through tsx
 * (5,000-student SQLite store, 2 cores). On two cores two threads made extracts 1.15–1.35× faster
 * (docs/extract-engine.md), about 5 µs saved a row, so a one-off extract runs in parallel only from
 * `parallelFrom` rows on (PARALLEL_FROM in ./extract.ts), and the threads stay up for the next
 * extract of the same store and privacy for `IDLE_MS` (a script's or a bench's extracts), unref'd,
 * so they never keep a process alive.
 *
 * Consistency is that of a one-thread extract: pages were never one snapshot (./projection.ts).
 * Every range is cut under the pseudonym key version the extract began with, and a range read
 * after a rotation fails the extract as a stale cursor would.
 */
import { createHash } from 'node:crypto';
import { createRequire } from 'node:module';
import { pathToFileURL } from 'node:url';
import { Worker } from 'node:worker_threads';
import { RostergateError, type ErrorCode } from '../errors.ts';
import type { PrivacyRecipe } from '../graphql/privacy.ts';
import type { SourceType } from '../../connectors/types.ts';
import type { EntityType } from '../model/records.ts';
import type { PseudonymOrder } from '../store/order.ts';
import type { Store, StoreLocation } from '../store/types.ts';
import { DATASETS, type Dataset } from './columns.ts';
import type { ExtractFormat } from './format.ts';
import type { ListRange } from './projection.ts';
import type { Recoding } from './kanonymity.ts';
import type { SpillPart } from './spill.ts';

/** Everything a worker needs to open the store and build the privacy: structured-cloneable, in memory only. */
export interface ThreadRecipe {
  store: StoreLocation;
  privacy: PrivacyRecipe;
  sourceTypes: [string, SourceType][];
}

export interface RangeJob {
  /** One extract's ranges share the related keys found (KeyMemo) on each thread. */
  extractId: string;
  client: string;
  dataset: Dataset;
  format: ExtractFormat;
  pageSize: number;
  range: ListRange;
  /** The extract's column names: a thread that made others refuses (it would write other cells). */
  names: string[];
  /**
   * The k-anonymity check pass (./extract.ts) instead of text: the range's pages spilled to this
   * thread's file in `folder`, with the counts of the quasi-identifier tuples (the cells at `qiAt`)
   * and each page's people.
   */
  check?: { qiAt: number[]; folder: string };
}

/**
 * The writing pass of a range under k-anonymity: its spilled pages recoded under the plan shared
 * for `extractId` (ExtractThreads.share) and formatted.
 */
export interface RecodeJob {
  extractId: string;
  recode: SpillPart;
}

/** The plan a writing pass shares with every thread: how to recode, which groups to leave out, how to format. */
export interface SharedRecoding extends Recoding {
  /** The groups (groupKey) below k: their rows are left out. */
  suppress: string[];
  format: ExtractFormat;
  names: string[];
}

export type RangeResult =
  | {
    kind: 'text';
    text: string;
    rows: number;
    /** Gateway ids of the people the range disclosed. */
    people: string[];
  }
  | {
    kind: 'check';
    /** Where the range's pages were spilled: one JSON line of cells per page (Spill's format). */
    part: SpillPart;
    rows: number;
    /** Distinct quasi-identifier tuples (groupKey) and how many rows had each. */
    tuples: [string, number][];
    /** Per page, in order: the people it disclosed and (people dataset) its rows' ids. */
    pages: { ids?: string[]; people: string[] }[];
  }
  | {
    kind: 'recoded';
    text: string;
    /** Rows read back, and how many of them were written. */
    rows: number;
    written: number;
    /** The groups written and their rows. */
    groups: [string, number][];
    /** Per page, in order: the positions of the rows left out. */
    dropped: number[][];
  };

export type Job = RangeJob | RecodeJob;
export type WorkerRequest = { id: number; job: Job } | { done: string } | { share: string; recoding: SharedRecoding };
export type WorkerReply =
  | { ready: true }
  | { id: number; result: RangeResult }
  | { id: number; error: { code: string; message: string; retryable: boolean } };

/** How long idle threads wait for the next extract of the same store and privacy. */
export const IDLE_MS = 30_000;

/** Threads a parallel extract uses when not told: the cores, at most 4 (1, none, on a single core). */
export function defaultThreads(cores: number): number {
  return cores < 2 ? 1 : Math.min(4, cores);
}

/** What marks a worker as an extract thread (./extract-worker.ts does nothing when loaded otherwise). */
export const THREAD_ROLE = 'rostergate-extract-thread';

function startWorker(recipe: ThreadRecipe): Worker {
  const here = import.meta.url;
  // No node options of the process: flags for its main module (--input-type, an entry's loader) do
  // not apply to this one, and some refuse to start a worker at all; the thread sets itself up.
  const options = { workerData: { role: THREAD_ROLE, recipe }, execArgv: [] };
  if (!here.endsWith('.ts')) return new Worker(new URL('./extract-worker.js', here), options);
  // From the TypeScript sources: a worker does not inherit the loader, so its first module registers tsx.
  // The ESM entry of tsx's API (a test runner's import.meta may lack resolve: then the package's
  // require entry, whose ESM sibling its exports name).
  const tsx = import.meta.resolve?.('tsx/esm/api') ?? pathToFileURL(createRequire(here).resolve('tsx/esm/api').replace(/\.cjs$/, '.mjs')).href;
  const target = new URL('./extract-worker.ts', here).href;
  const boot = `const { register } = await import(${JSON.stringify(tsx)}); register(); await import(${JSON.stringify(target)});`;
  return new Worker(new URL(`data:text/javascript,${encodeURIComponent(boot)}`), options);
}

interface Thread {
  worker: Worker;
  busy: number;
}

/** A pool of extract threads for one store and privacy. */
export class ExtractThreads {
  private readonly threads: Thread[];
  private readonly pending = new Map<number, { thread: Thread; resolve: (r: RangeResult) => void; reject: (e: Error) => void }>();
  private next = 0;
  private idle: NodeJS.Timeout | undefined;
  private broken: Error | undefined;

  constructor(recipe: ThreadRecipe, size: number, private readonly onClose: () => void) {
    this.threads = Array.from({ length: size }, () => {
      const t: Thread = { worker: startWorker(recipe), busy: 0 };
      t.worker.unref();
      t.worker.on('message', (m: WorkerReply) => this.reply(m));
      // A thread that could not start or died: every range it holds fails, and the pool is not reused.
      const fail = (e: Error) => this.fail(new RostergateError('STORE', `parallel extract: a worker thread stopped (${e.name}: ${e.message.split('\n')[0]})`));
      t.worker.on('error', fail);
      t.worker.on('exit', (code) => fail(new Error(`exit code ${code}`)));
      return t;
    });
    this.armIdle();
  }

  get size(): number {
    return this.threads.length;
  }

  run(job: Job): Promise<RangeResult> {
    if (this.broken) return Promise.reject(this.broken);
    clearTimeout(this.idle);
    const thread = this.threads.reduce((a, b) => (b.busy < a.busy ? b : a));
    if (thread.busy++ === 0) thread.worker.ref();
    const id = this.next++;
    return new Promise<RangeResult>((resolve, reject) => {
      this.pending.set(id, { thread, resolve, reject });
      thread.worker.postMessage({ id, job } satisfies WorkerRequest);
    });
  }

  /** Hands every thread the plan of a writing pass, before its jobs (a port delivers in order). */
  share(extractId: string, recoding: SharedRecoding): void {
    for (const t of this.threads) t.worker.postMessage({ share: extractId, recoding } satisfies WorkerRequest);
  }

  /** The extract is over: the threads drop what they kept for it. */
  done(extractId: string): void {
    for (const t of this.threads) t.worker.postMessage({ done: extractId } satisfies WorkerRequest);
  }

  async close(): Promise<void> {
    clearTimeout(this.idle);
    this.broken ??= new RostergateError('STORE', 'parallel extract: the threads were closed');
    this.onClose();
    await Promise.all(this.threads.map((t) => t.worker.terminate()));
  }

  private reply(m: WorkerReply) {
    if ('ready' in m) return;
    const p = this.pending.get(m.id);
    if (!p) return;
    this.pending.delete(m.id);
    if (--p.thread.busy === 0) p.thread.worker.unref();
    if (this.pending.size === 0) this.armIdle();
    if ('result' in m) p.resolve(m.result);
    else p.reject(new RostergateError(m.error.code as ErrorCode, m.error.message, {}, { retryable: m.error.retryable }));
  }

  private fail(e: Error) {
    if (this.broken) return;
    this.broken = e;
    this.onClose();
    for (const p of this.pending.values()) p.reject(e);
    this.pending.clear();
    for (const t of this.threads) void t.worker.terminate();
  }

  /** Starts the idle time again: a pool handed to an extract is not closed before its first range. */
  keepAlive(): void {
    if (this.pending.size === 0) this.armIdle();
  }

  private armIdle() {
    clearTimeout(this.idle);
    this.idle = setTimeout(() => void this.close(), IDLE_MS);
    this.idle.unref();
  }
}

/** Pools by store and privacy: a recipe's hash (it holds the master key, so only its hash is kept as a name). */
const pools = new Map<string, ExtractThreads>();

export function extractThreads(recipe: ThreadRecipe, size: number): ExtractThreads {
  const key = createHash('sha256').update(JSON.stringify([recipe.store, recipe.privacy.config, recipe.privacy.tenant, recipe.privacy.keyTenant, recipe.sourceTypes]))
    .update(recipe.privacy.master).update(String(size)).digest('hex');
  let pool = pools.get(key);
  if (!pool) {
    const made: ExtractThreads = new ExtractThreads(recipe, size, () => {
      if (pools.get(key) === made) pools.delete(key);
    });
    pools.set(key, (pool = made));
  }
  pool.keepAlive();
  return pool;
}

/** Stops every pool's threads (tests; a process that wants its threads gone before the idle time). */
export async function closeExtractThreads(): Promise<void> {
  await Promise.all([...pools.values()].map((p) => p.close()));
}

/**
 * Rows per range for `threads`: about `rows / (threads × 8)` (so every thread gets several and a
 * slow one holds up little), at least half a page and at most four pages.
 */
export function rowsPerThreadRange(rows: number, pageSize: number, threads: number): number {
  return Math.min(4 * pageSize, Math.max(Math.ceil(pageSize / 2), Math.ceil(rows / (threads * 8))));
}

/**
 * The consecutive ranges a list is cut into, of about `perRange` rows each. `leadRatio` is how many
 * leading keys there are per row (people per enrollment for a list in a person's pseudonym order; 1
 * where the key is the row's own): a range is cut between leading keys, so its rows are counted
 * through them.
 */
export async function listRanges(
  store: Pick<Store, 'leadBoundaries'>, q: { type: EntityType; order?: PseudonymOrder & { version: number } }, perRange: number, leadRatio: number,
): Promise<ListRange[]> {
  const every = Math.max(1, Math.round(perRange * leadRatio));
  const bounds = await store.leadBoundaries({ type: q.type, ...(q.order ? { order: q.order } : {}), every });
  const version = q.order?.version;
  const at = (lead: ListRange['lead']): ListRange => (version === undefined ? { lead } : { lead, version });
  return [...bounds.map((upTo, i) => at(i === 0 ? { upTo } : { above: bounds[i - 1]!, upTo })), at(bounds.length ? { above: bounds.at(-1)! } : {})];
}

/**
 * The ranges' results in list order, `window` of them in flight (so memory stays bounded: a range's
 * text waits only for those before it). However it ends (a range failed, the caller stopped
 * reading), the ranges still on the threads end before it does: none of them reads the store or
 * writes to the extract's spill folder after the extract has failed and removed that folder, and
 * the threads are free for the next extract. At most `window` ranges, their outcome dropped.
 */
export async function* inOrder(pool: Pick<ExtractThreads, 'run' | 'done'>, jobs: Job[], window: number): AsyncGenerator<RangeResult> {
  const inFlight: Promise<RangeResult>[] = [];
  let next = 0;
  const fill = () => {
    while (next < jobs.length && inFlight.length < window) {
      const p = pool.run(jobs[next++]!);
      p.catch(() => {}); // awaited in order below; a later one failing first is not unhandled
      inFlight.push(p);
    }
  };
  try {
    fill();
    while (inFlight.length) {
      const r = await inFlight.shift()!;
      fill();
      yield r;
    }
  } finally {
    await Promise.allSettled(inFlight);
    if (jobs[0]) pool.done(jobs[0].extractId);
  }
}

/** The entity type of a dataset's rows (its list). */
export const listTypeOf = (dataset: Dataset): EntityType => DATASETS[dataset].entity as EntityType;
