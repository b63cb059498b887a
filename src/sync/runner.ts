/**
 * The sync runner: drives one connector through a run and commits each page together with the
 * connector state that follows it, in one transaction. A run killed at any moment resumes from the
 * last committed page with the same run id, so "seen in this run" marks survive the crash.
 *
 * Lifecycle hooks (syncWillStart → pageDidStore* → syncDidEnd) feed progress bars and logs.
 */
import type { Connector, ConnectorState, Page } from '../../connectors/types.ts';
import type { EntityType } from '../model/records.ts';
import { RostergateError, isRostergateError, oneLine } from '../errors.ts';
import type { Store, SyncStateRow } from '../store/types.ts';
import { DEFAULT_MATCH_RULES, DEFAULT_ORG_MATCH_RULES, type MatchRule, type OrgMatchRule } from './identity.ts';
import { applyRecord, keepHeldBack, newCounters, prefetchRecords, resolvePending, sweepUnseen, type IngestContext, type IngestCounters } from './ingest.ts';
import { openPageUnit, type PageUnit } from '../store/page-unit.ts';
import { RunMemo } from '../store/run-memo.ts';
import { ingestPolicy, type PolicyParts } from '../store/ingest-policy.ts';
import { SyncReport, type ReportEntry, type ReportKind } from './report.ts';
import { readAhead } from './read-ahead.ts';
import { acquireSourceLease, type LeaseOptions } from '../store/lease.ts';
import { secondsSince, syncDuration, syncPhaseSeconds, syncRecords, syncRuns, tenantLabel } from '../kernel/metrics.ts';
import { PhaseClock, SYNC_PHASES, type SyncTimes } from './phase-clock.ts';
import { failSpan, startSpan, withActive, withSpan, type Span } from '../kernel/tracing.ts';
import { pacer } from './pace.ts';

export interface SyncHooks {
  syncWillStart?(e: { source: string; runId: number; mode: RunMode }): void;
  /**
   * After each committed page; `total` is the listing's size when the source tells it, and `listed`
   * how many of its entries the page held, in the same unit (for progress bars).
   */
  pageDidStore?(e: { source: string; resource: string; records: number; listed: number; total?: number; counters: IngestCounters }): void;
  syncDidEnd?(summary: SyncSummary): void;
}

export type RunMode = 'full' | 'incremental' | 'resumed';

/**
 * The ingest policy's parts (src/store/ingest-policy.ts: minimise, hashMatchKey, personCreated,
 * changeLogged, suppressionKey) are options: Privacy.ingest() gives all of them; a part left out
 * does nothing (a deployment without purposes).
 */
/**
 * Records applied per transaction at most, in whole pages (a page larger than this is one group):
 * large enough that a commit's index writes are shared by many records, small enough that a
 * crash costs little refetching and a transaction holds the write lock briefly.
 */
export const GROUP_RECORDS = 5000;
/**
 * How long a group waits for its next page before it is committed without it: a source faster
 * than this (a file, a vendor's sandbox, a vendor on the same network) fills groups; a slower one
 * (a vendor over the internet: 100 ms a page and more) is committed page by page, so what it
 * delivered is kept without waiting for what it has not.
 */
export const NEXT_PAGE_GRACE_MS = 25;
/**
 * Where writes are pipelined (PostgreSQL), a group is written a slice of this many records at a
 * time, each while the next is planned (PageUnit.flushAhead): the server executes one slice's
 * statements while the process plans the next, where each waited for the other. A slice's writes
 * take the server longer than planning the next takes the process, so each slice boundary costs a
 * wait and a seal; measured at 20,000 students (docs/data-engine.md), 2,500 records a slice beat
 * 500, 1,000, 2,000 and a whole group.
 */
export const SLICE_RECORDS = 2500;
/**
 * How often planning hands the event loop back while a slice is being written: each statement of
 * the slice is sent, and each answer taken, only when the loop turns.
 */
const WRITING_YIELD_MS = 2;

export interface SyncOptions extends PolicyParts {
  /** Records applied per transaction, in whole pages (default GROUP_RECORDS; 1: a transaction per page). */
  groupRecords?: number;
  /**
   * Records planned between two writes of a group while the last are executed (default: SLICE_RECORDS
   * where the store pipelines writes, else the whole group in one write).
   */
  sliceRecords?: number;
  /** Force a full read even when an incremental cursor exists. */
  full?: boolean;
  /** Largest share of a source's records of a type a full sync may delete (default 0.2). */
  maxDeleteShare?: number;
  /** Let this run delete more than `maxDeleteShare` (after an operator has checked the source). */
  allowMassDelete?: boolean;
  precedence?: string[];
  matchRules?: MatchRule[];
  orgMatchRules?: OrgMatchRule[];
  hooks?: SyncHooks;
  /** 'return': a failed run resolves to its summary (status 'failed', `error` set) instead of throwing. */
  onFailure?: 'throw' | 'return';
  signal?: AbortSignal;
  now?: () => Date;
  /** The source's lease (one run per source at a time): wait for a holder instead of refusing, TTL, heartbeat. */
  lease?: LeaseOptions;
  /**
   * The share of wall-clock time the run may spend applying records (0 < share ≤ 1, default 1):
   * after each group it rests in proportion to the group's work (`sync.workShare`, src/sync/pace.ts).
   */
  workShare?: number;
}

export interface SyncSummary {
  source: string;
  runId: number;
  mode: RunMode;
  status: 'complete' | 'guarded' | 'failed';
  pages: number;
  records: number;
  byResource: Record<string, { pages: number; records: number }>;
  counters: IngestCounters;
  /** Records still waiting for a reference at the end of the run (e.g. an enrollment whose class never came). */
  unresolved: number;
  /** Mass-deletion guard findings, when it stopped deletions. */
  guarded?: { type: EntityType; wouldDelete: number; of: number }[];
  error?: string;
  /** Fields ingest minimisation kept out of the store (no purpose may receive them), as type.field. */
  dropped?: string[];
  /** Milliseconds the run rested between groups to keep to its work share (only when `workShare` < 1). */
  restedMs?: number;
  /** Where the run's time went, in milliseconds per phase; they add up to the run (src/sync/phase-clock.ts). */
  times: SyncTimes;
  /** What the run found wrong with the source's data, entry by entry (src/sync/report.ts), and its counts by kind. */
  report: { entries: ReportEntry[]; counts: Partial<Record<ReportKind, number>> };
  startedAt: string;
  endedAt: string;
}

/**
 * One run of a source, under the source's lease: a second run of the same source at the same time
 * (another process, another machine) throws SYNC_BUSY naming the holder — whatever `onFailure`
 * says, since it never started — or waits with `lease.wait`. Different sources run in parallel.
 */
export async function syncSource(store: Store, connector: Connector, opts: SyncOptions = {}): Promise<SyncSummary> {
  const lease = await acquireSourceLease(store, connector.sourceId, opts.lease);
  const started = process.hrtime.bigint();
  try {
    const signal = opts.signal ? AbortSignal.any([opts.signal, lease.lost]) : lease.lost;
    return await withSpan('sync.run', { 'rostergate.source': connector.sourceId }, async (span) => {
      const summary = await runSource(store, connector, { ...opts, signal }).catch((e: unknown) => {
        countRun(connector.sourceId, 'failed', started);
        throw e;
      });
      countRun(connector.sourceId, summary.status, started, summary.records, summary.times);
      const c = summary.counters;
      await store.refreshStatistics(c.created + c.updated + c.deleted);
      span?.setAttributes({ 'rostergate.sync.mode': summary.mode, 'rostergate.sync.status': summary.status, 'rostergate.sync.pages': summary.pages, 'rostergate.sync.records': summary.records });
      if (summary.status === 'failed') failSpan(span, { code: 'SYNC_FAILED' });
      return summary;
    });
  } finally {
    await lease.release();
  }
}

/** A run's metrics: how it ended, how long it took, how many records it stored (under the tenant syncing, see syncAll). */
function countRun(source: string, status: SyncSummary['status'], started: bigint, records = 0, times?: SyncTimes): void {
  const tenant = tenantLabel();
  syncRuns.inc({ tenant, source, status });
  syncDuration.observe({ source, status }, secondsSince(started));
  if (records) syncRecords.inc({ tenant, source }, records);
  for (const phase of SYNC_PHASES) if (times?.[phase]) syncPhaseSeconds.inc({ tenant, source, phase }, times[phase] / 1000);
}

/**
 * Asks the connector for its next page inside a `sync.page` span, so the vendor requests made for
 * it are the span's children; the span ends when the page arrives (pages are fetched ahead while
 * the previous group is applied, so it cannot simply wrap a block of code).
 */
function nextPage(pages: AsyncIterator<Page>): Promise<IteratorResult<Page>> {
  const span: Span | undefined = startSpan('sync.page', {});
  const next = withActive(span, () => pages.next());
  if (span) {
    next.then(
      (r) => {
        if (!r.done) span.setAttributes({ 'rostergate.resource': r.value.resource, 'rostergate.records': r.value.records.length });
        span.end();
      },
      (e: unknown) => {
        failSpan(span, e);
        span.end();
      },
    );
  }
  return next;
}

async function runSource(store: Store, connector: Connector, opts: SyncOptions): Promise<SyncSummary> {
  const source = connector.sourceId;
  const clock = opts.now ?? (() => new Date());
  const now = () => clock().toISOString();
  const prev = await store.getSyncState(source);
  // An interrupted run is resumed (same run id, so its "seen" marks still count) unless a full
  // sync is asked for, which starts over.
  const resuming = !opts.full && (prev?.runStatus === 'running' || prev?.runStatus === 'failed');
  const runId = resuming ? prev!.runId : (prev?.runId ?? 0) + 1;
  const full = resuming ? prev!.runFull : Boolean(opts.full || !prev || prev.runStatus === 'guarded');
  // A run that failed before committing a page left nothing to resume: the next one is what it
  // would have been (see the failure branch below, which records that by keeping `startedAt` empty).
  const resumesWork = resuming && prev!.startedAt !== '';
  const mode: RunMode = resumesWork ? 'resumed' : full ? 'full' : 'incremental';
  const startState: ConnectorState | null = resuming || !full ? ((prev?.state as ConnectorState | null) ?? null) : null;
  const startedAt = resumesWork ? prev!.startedAt : now();
  const counters = newCounters();
  const report = new SyncReport();
  const ctx: IngestContext = {
    source,
    runId,
    now,
    precedence: opts.precedence ?? [source],
    matchRules: opts.matchRules ?? DEFAULT_MATCH_RULES,
    orgMatchRules: opts.orgMatchRules ?? DEFAULT_ORG_MATCH_RULES,
    policy: ingestPolicy(opts),
    counters,
    dangling: (r, fields, heldBack) => report.dangling(r, fields, heldBack),
  };
  // Where the run's time goes (its phases add up to the run): in this process unless marked otherwise.
  const phases = new PhaseClock('plan');
  const summary: SyncSummary = {
    source, runId, mode, status: 'complete', pages: 0, records: 0, byResource: {}, counters, unresolved: 0, startedAt, endedAt: startedAt,
    report: { entries: report.entries, counts: {} }, times: phases.totals(),
  };
  const state = (s: Partial<SyncStateRow>): SyncStateRow => ({
    source, state: startState, runId, runStatus: 'running', runFull: full, startedAt, updatedAt: now(), error: null, ...s,
  });
  let lastState: ConnectorState | null = startState;
  phases.enter('lock');
  await store.transaction((tx) => {
    phases.enter('write');
    return tx.setSyncState(state({ state: lastState }));
  }, { scope: 'roster' });
  phases.enter('plan');
  opts.hooks?.syncWillStart?.({ source, runId, mode });

  const guarded: NonNullable<SyncSummary['guarded']> = [];
  try {
    // Consecutive pages are applied together, up to GROUP_RECORDS records, in one transaction
    // with the last page's cursor: a commit writes every index page the group touched once, where a
    // commit per small vendor page wrote the same pages again and again (random ids spread every
    // page's inserts over the whole index). A crash still resumes at a committed cursor; the group's
    // pages are fetched again. A page that completes a listing (its sweep may delete) closes a group.
    type Checked = ReturnType<SyncReport['checkPage']>;
    let group: { page: Page; checked: Checked }[] = [];
    let groupRecords = 0;
    const pace = pacer(opts.workShare ?? 1, opts.signal);
    // A group is applied in one transaction, unless another write waits for the writer (SQLite: a
    // served request's audit entry, which holds its answer until committed). Then the transaction
    // ends after the page being applied, with that page's cursor, and the rest of the group follows
    // in the next: a waiting answer waits for one page, not for the whole group. While writes keep
    // waiting (`contended`), the rest goes a page a transaction, so that each loads its own page's
    // records, not the whole rest of the group again; once a page ends with none waiting, the rest
    // goes together.
    let contended = false;
    // What the run's groups read and wrote, for the next group's references (and, on a source that
    // held no records when the run began, which of its records are absent): it holds while no other
    // writer moved the change log between them (src/store/run-memo.ts).
    const memo = new RunMemo({ source });
    const applyGroup = async () => {
      while (group.length) await applyPages();
    };
    const applyPages = async () => {
      pace.begin();
      let pages = contended ? group.slice(0, 1) : group;
      group = group.slice(pages.length);
      groupRecords = group.reduce((n, p) => n + p.page.records.length, 0);
      phases.enter('lock');
      await withSpan('sync.apply', { 'rostergate.pages': pages.length, 'rostergate.records': pages.reduce((n, p) => n + p.page.records.length, 0) }, () => store.transaction(async (tx) => {
        // The group as one unit of work: loaded in a few reads, planned in memory, flushed in
        // multi-row writes with the policy's rows, then its cursor — all in this transaction.
        phases.enter('load');
        await memo.check(tx);
        const unit = openPageUnit(tx, ctx.policy, memo);
        const slice = opts.sliceRecords ?? (tx.pipelined ? SLICE_RECORDS : Infinity);
        let planned = 0;
        await settlingFirst(unit, source, async () => {
          await prefetchRecords(unit, ctx, pages.flatMap((p) => p.checked.records), pages.flatMap((p) => p.checked.heldBack), memo);
          phases.enter('plan');
          for (const [at, { page, checked }] of pages.entries()) {
            for (const r of checked.heldBack) await keepHeldBack(unit, ctx, r.type, r.key);
            for (const r of checked.records) {
              // Planning a group is seconds of work without I/O at a large district: the pages read
              // ahead, the slice being written and anything else in the process get their turn meanwhile.
              await tx.yieldTurn(unit.writing ? WRITING_YIELD_MS : undefined);
              try {
                await applyRecord(unit, ctx, r);
              } catch (e) {
                throw new RostergateError('STORE', `could not store a ${r.type} record: ${oneLine(e)}`, { source, resource: page.resource, record: `${r.type} #${checked.records.indexOf(r)}` }, { cause: e });
              }
              if (++planned % slice === 0) await phases.during('write', () => flushNaming(unit, source, page.resource, { ahead: true }));
            }
            if (page.completes?.length) await sweepCompleted(unit, ctx, page, opts, guarded);
            contended = store.waitingWriters() > 0;
            if (contended && at < pages.length - 1) {
              group = [...pages.slice(at + 1), ...group];
              groupRecords = group.reduce((n, p) => n + p.page.records.length, 0);
              pages = pages.slice(0, at + 1);
              break;
            }
          }
          phases.enter('write');
          const known = unit.knownEntityIds();
          await flushNaming(unit, source, pages[pages.length - 1]!.page.resource);
          memo.stage(known, await tx.nextChangeSeq());
        });
        await tx.setSyncState(state({ state: pages[pages.length - 1]!.page.state }));
        // The roster's lock only: a keyed request's audit entry commits meanwhile (TransactionOptions).
      }, { scope: 'roster' }).then(() => memo.kept(), (e: unknown) => {
        memo.forget();
        throw e;
      }));
      // The COMMIT was the store's writing too; what follows is this process's.
      phases.enter('plan');
      for (const { page } of pages) {
        lastState = page.state;
        summary.pages++;
        summary.records += page.records.length;
        const br = (summary.byResource[page.resource] ??= { pages: 0, records: 0 });
        br.pages++;
        br.records += page.records.length;
        opts.hooks?.pageDidStore?.({ source, resource: page.resource, records: page.records.length, listed: page.listed ?? page.records.length, total: page.total, counters });
      }
      // Outside the transaction: the write lock is not held while the run rests.
      await phases.during('rest', () => pace.rest());
      if (opts.workShare !== undefined && opts.workShare < 1) summary.restedMs = Math.round(pace.restedMs);
    };
    // Pages are read ahead of the store, up to a group's worth of records (src/sync/read-ahead.ts),
    // so the source works while the store does. A group is committed when the next page is not
    // there within NEXT_PAGE_GRACE_MS (a slow source commits page by page, as before), when it is full,
    // or when a page completes a listing; and before a failure of the source is raised, so what
    // was read is kept.
    // A paced run commits smaller groups too, so its work comes in bursts a share as long, each
    // followed by its rest, rather than seconds of work and then longer seconds of nothing.
    const groupMax = opts.groupRecords ?? Math.max(1, Math.round(GROUP_RECORDS * (opts.workShare ?? 1)));
    const ahead = readAhead(connector.read(startState, { full: mode === 'full', signal: opts.signal })[Symbol.asyncIterator](), nextPage, groupMax);
    try {
      for (;;) {
        let page: Page | undefined;
        try {
          page = await phases.during('source', () => ahead.take());
        } catch (e) {
          if (group.length) await applyGroup();
          throw e;
        }
        if (!page) break;
        if (opts.signal?.aborted) throw isRostergateError(opts.signal.reason) ? opts.signal.reason : new RostergateError('SYNC_ABORTED', 'sync aborted', { source });
        // The mapping boundary: every record is checked against its unified types before it is stored.
        phases.enter('check');
        report.addNotes(page.resource, page.notes);
        group.push({ page, checked: report.checkPage(page.resource, page.records) });
        phases.enter('plan');
        groupRecords += page.records.length;
        if (groupRecords >= groupMax || page.completes?.length || !(await phases.during('source', () => ahead.ready(NEXT_PAGE_GRACE_MS)))) await applyGroup();
      }
      if (group.length) await applyGroup();
    } finally {
      ahead.close();
    }
    phases.enter('lock');
    await store.transaction(async (tx) => {
      phases.enter('plan');
      const unit = openPageUnit(tx, ctx.policy);
      summary.unresolved = await resolvePending(unit, ctx, { final: true });
      phases.enter('write');
      await flushNaming(unit, source);
      await tx.setSyncState(state({ state: lastState, runStatus: guarded.length ? 'guarded' : 'complete' }));
    }, { scope: 'roster' });
    phases.enter('plan');
    if (guarded.length) {
      summary.status = 'guarded';
      summary.guarded = guarded;
      summary.error = guardMessage(source, guarded, opts.maxDeleteShare ?? 0.2);
    }
  } catch (e) {
    summary.status = 'failed';
    // Every failure names its source, even one that did not come from a connector.
    summary.error = isRostergateError(e) && e.context.source ? oneLine(e) : `source ${source}: ${oneLine(e)}`;
    // Nothing committed by this run (and it resumed nothing): an empty start marks it, so the next
    // run is labelled full or incremental, not "resumed".
    const appliedNothing = summary.pages === 0 && !resumesWork;
    // A store that cannot write (full, read-only) cannot record the failure either: the run's own
    // error is what must surface, and the next run resumes from the state left 'running'. A run
    // that lost its lease leaves the state to the run that holds it now.
    if (!isRostergateError(e, 'SYNC_BUSY')) {
      await store.transaction((tx) => tx.setSyncState(state({ state: lastState, runStatus: 'failed', error: summary.error ?? null, ...(appliedNothing ? { startedAt: '' } : {}) })), { scope: 'roster' }).catch(() => undefined);
    }
    summary.endedAt = now();
    summary.times = phases.totals();
    summary.report.counts = report.counts();
    opts.hooks?.syncDidEnd?.(summary);
    if (opts.onFailure === 'return') return summary;
    throw e;
  }
  summary.endedAt = now();
  summary.times = phases.totals();
  summary.report.counts = report.counts();
  opts.hooks?.syncDidEnd?.(summary);
  return summary;
}

async function sweepCompleted(
  tx: PageUnit,
  ctx: IngestContext,
  page: Page,
  opts: SyncOptions,
  guarded: NonNullable<SyncSummary['guarded']>,
): Promise<void> {
  // Records referring to others that arrived in this run may still be waiting: settle them first
  // so they count as seen.
  await resolvePending(tx, ctx, { final: false });
  const share = opts.maxDeleteShare ?? 0.2;
  const types = page.completes!;
  for (const type of types) {
    const total = await tx.countSourceRecords(ctx.source, [type]);
    const unseen = (await tx.unseenSourceRecords(ctx.source, [type], ctx.runId)).length;
    if (unseen === 0) continue;
    if (!opts.allowMassDelete && total > 0 && unseen / total > share) {
      guarded.push({ type, wouldDelete: unseen, of: total });
      continue;
    }
    await sweepUnseen(tx, ctx, [type]);
  }
}

/**
 * Flushes a unit of work, naming the source (and resource) in what fails: the store's condition
 * errors (STORE_FULL …) keep that context when they wrap this one (src/store/conditions.ts).
 */
async function flushNaming(unit: PageUnit, source: string, resource?: string, opts: { ahead?: boolean } = {}): Promise<void> {
  try {
    await (opts.ahead ? unit.flushAhead() : unit.flush());
  } catch (e) {
    throw storeFailure(e, source, resource);
  }
}

function storeFailure(e: unknown, source: string, resource?: string): RostergateError {
  return new RostergateError('STORE', `could not store the page: ${oneLine(e)}`, { source, ...(resource ? { resource } : {}) }, { cause: e });
}

/**
 * Runs a group's work and, however it ends, waits for the writes it started ahead
 * (PageUnit.flushAhead) before the transaction may end: a ROLLBACK sent while they were still
 * being sent would leave the rest of them to run outside it. A failure of those writes is what
 * failed first, so it is the one raised; the error planning met after it is only its echo.
 */
async function settlingFirst(unit: PageUnit, source: string, work: () => Promise<void>): Promise<void> {
  try {
    await work();
  } catch (e) {
    try {
      await unit.settle();
    } catch (writeFailure) {
      throw storeFailure(writeFailure, source);
    }
    throw e;
  }
}

function guardMessage(source: string, g: NonNullable<SyncSummary['guarded']>, share: number): string {
  const parts = g.map((x) => `${x.wouldDelete} of ${x.of} ${x.type} records`);
  return `source ${source}: mass-deletion guard stopped the sync from deleting ${parts.join(', ')} (over ${Math.round(share * 100)}%). Nothing was deleted. If the source really lost these records, run again with --allow-mass-delete.`;
}
