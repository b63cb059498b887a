/**
 * A parallel extract's worker thread (./parallel.ts). It opens the same store and builds the same
 * privacy as the extracting thread (from a recipe handed over in memory), then answers ranges of a
 * list: their pages projected through the purpose schema (./projection.ts) and formatted
 * (./format.ts), with the people each range disclosed. Under k-anonymity it spills the checked
 * ranges to a file of its own in the extract's private folder and, in the writing pass, recodes
 * ranges read back from any thread's file. It writes nothing else: the extracting thread writes the
 * text in list order and keeps the audit entry and the disclosure ledger.
 */
import { parentPort, threadId, workerData, type MessagePort } from 'node:worker_threads';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import pg from 'pg';
import { RostergateError } from '../errors.ts';
import { buildUnifiedSchema } from '../graphql/schema.ts';
import { privacyFromRecipe, type Privacy } from '../graphql/privacy.ts';
import { KeyMemo } from '../graphql/loaders.ts';
import { SqliteStore } from '../store/sqlite.ts';
import { PostgresStore } from '../store/postgres.ts';
import type { Store, StoreLocation } from '../store/types.ts';
import { heldOf, prepareExtract } from './extract.ts';
import { compileProjection, projectedPages, type Projection } from './projection.ts';
import { formatRows } from './format.ts';
import { readPart, Spill, SpillAppender } from './spill.ts';
import { countTuples, recodePage, type Value } from './kanonymity.ts';
import {
  THREAD_ROLE, type Job, type RangeJob, type RangeResult, type RecodeJob, type SharedRecoding, type ThreadRecipe, type WorkerReply, type WorkerRequest,
} from './parallel.ts';
import type { SourceType } from '../../connectors/types.ts';

async function openStore(where: StoreLocation): Promise<Store> {
  if (where.kind === 'sqlite') {
    // Never a new, empty store in its place (SqliteStore.open would make one): that would be an empty extract.
    if (!existsSync(where.path)) throw new RostergateError('DATA_FOLDER', `parallel extract: no store at ${where.path} any more`);
    return SqliteStore.open(where.path);
  }
  if (where.schema === undefined) return PostgresStore.open(where.url);
  // A pool this thread owns for the tenant's schema; closed with the thread.
  const pool = new pg.Pool({ connectionString: where.url, max: 2 });
  pool.on('error', () => undefined);
  return PostgresStore.openInSchema(pool, where.schema);
}

/** Set up when this module runs as an extract thread (./parallel.ts starts it so); loaded anywhere else, it does nothing. */
function thread(): { recipe: ThreadRecipe; port: MessagePort } | undefined {
  const data = workerData as { role?: string; recipe?: ThreadRecipe } | null;
  return parentPort && data?.role === THREAD_ROLE ? { recipe: data.recipe!, port: parentPort } : undefined;
}

/**
 * Per extract: the compiled projection, the related keys found so far (as the extracting thread
 * keeps them) and, in a check pass, this thread's spill file.
 */
const extracts = new Map<string, { projection: Projection; names: string[]; memo: KeyMemo; spill?: SpillAppender }>();
/** Per writing pass: the plan the extracting thread shared. */
const recodings = new Map<string, SharedRecoding & { suppressed: Set<string> }>();

/** The writing pass of one range: read back, recoded under the shared plan, formatted. */
function recode(job: RecodeJob): RangeResult {
  const r = recodings.get(job.extractId);
  if (!r) throw new RostergateError('STORE', 'parallel extract: a range of a writing pass came before its plan');
  const groups = new Map<string, number>();
  const suppress = (key: string) => r.suppressed.has(key);
  let text = '';
  let rows = 0;
  let written = 0;
  const dropped: number[][] = [];
  for (const cells of readPart<Value[][]>(job.recode)) {
    const page = recodePage(cells, r, suppress, groups);
    rows += cells.length;
    written += page.kept.length;
    dropped.push(page.dropped);
    if (page.kept.length) text += formatRows(r.format, r.names, page.kept);
  }
  return { kind: 'recoded', text, rows, written, groups: [...groups], dropped };
}

async function run(ready: Promise<{ store: Store; privacy: Privacy }>, sourceTypes: ReadonlyMap<string, SourceType>, job: Job) {
  if ('recode' in job) return recode(job);
  const { store, privacy } = await ready;
  let e = extracts.get(job.extractId);
  if (!e) {
    const { ps, columns } = prepareExtract(privacy, job);
    const names = columns.map((c) => c.name);
    if (names.join('\0') !== job.names.join('\0')) throw new RostergateError('STORE', `extract ${job.dataset}: a worker thread made other columns than the extract's`);
    extracts.set(job.extractId, (e = { projection: compileProjection(ps.schema, job.dataset, columns), names, memo: new KeyMemo() }));
  }
  const purpose = privacy.clientPurpose(job.client)!;
  const memo = e.memo;
  const newContext = () => privacy.context(store, sourceTypes, { client: job.client, purpose }, { sharedCache: false, keyMemo: memo });
  const pages = projectedPages(e.projection, newContext, job.pageSize, job.range);
  let rows = 0;
  if (job.check) {
    const { qiAt, folder } = job.check;
    let spill = '';
    const tuples = new Map<string, number>();
    const held: { ids?: string[]; people: string[] }[] = [];
    for await (const page of pages) {
      countTuples(tuples, page.cells, qiAt);
      spill += Spill.line(page.cells);
      held.push(heldOf(job.dataset, page));
      rows += page.cells.length;
    }
    e.spill ??= new SpillAppender(join(folder, `thread-${threadId}.ndjson`));
    return { kind: 'check', part: e.spill.append(spill), rows, tuples: [...tuples], pages: held } satisfies RangeResult;
  }
  let text = '';
  const people = new Set<string>();
  for await (const page of pages) {
    text += formatRows(job.format, e.names, page.cells);
    rows += page.cells.length;
    for (const id of page.people) people.add(id);
  }
  return { kind: 'text', text, rows, people: [...people] } satisfies RangeResult;
}

const self = thread();
if (self) {
  const { recipe, port } = self;
  // Opened once, used by every range; a failure here fails each range with its error (below).
  const ready = (async () => ({ store: await openStore(recipe.store), privacy: privacyFromRecipe(recipe.privacy, buildUnifiedSchema()) }))();
  ready.catch(() => {});
  const sourceTypes = new Map(recipe.sourceTypes);
  port.on('message', (m: WorkerRequest) => {
    if ('done' in m) {
      extracts.get(m.done)?.spill?.close();
      extracts.delete(m.done);
      recodings.delete(m.done);
      return;
    }
    if ('share' in m) {
      recodings.set(m.share, { ...m.recoding, suppressed: new Set(m.recoding.suppress) });
      return;
    }
    run(ready, sourceTypes, m.job).then(
      (result) => port.postMessage({ id: m.id, result } satisfies WorkerReply),
      (err: unknown) => {
        // Named by kind, not by the driver's message, which may quote a stored value (as projectedPages does).
        const error = err instanceof RostergateError
          ? { code: err.code, message: err.message, retryable: err.retryable }
          : { code: 'STORE', message: `extract${'dataset' in m.job ? ` ${m.job.dataset}` : ''}: a worker thread failed (${(err as Error)?.name ?? 'error'})`, retryable: false };
        port.postMessage({ id: m.id, error } satisfies WorkerReply);
      },
    );
  });
  port.postMessage({ ready: true } satisfies WorkerReply);
}
