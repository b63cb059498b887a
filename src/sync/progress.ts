/**
 * Sync progress for people: on a terminal, one bar per resource (cli-progress) with its pages and
 * records — filled against the listing's size where the source tells it (OneRoster's
 * X-Total-Count, the rows of a CSV file), a plain counter where it does not (Clever); periodic log
 * lines otherwise (CI, pipes). Counts only — never record contents.
 *
 * The bar counts the vendor's records (`listed`, the unit of its total), not the unified records
 * they map to: one OneRoster user with two guardians is three records, and counting those against
 * X-Total-Count filled the users bar at page 4 of 6. Every line fits 80 columns (see BAR_LINE), and
 * while the bars are shown log lines are printed above them rather than into them.
 */
import { SYNC_PHASES, type SyncTimes } from './phase-clock.ts';
import cliProgress from 'cli-progress';
import { divertLogLines, type Logger } from '../log.ts';
import type { SyncHooks, SyncSummary } from './runner.ts';
import { reportCounts } from './report.ts';

/** Width of the "source resource" label; longer source ids are shortened with "…". */
export const LABEL_WIDTH = 22;
const BAR_SIZE = 12;
/**
 * At most 79 columns with 4-digit page counts and 6-digit record counts:
 * 1 + 22 + 1 + 12 + 1 + "100%" + " | 9999 pages | " + "999999/999999" + " records".
 */
const WITH_TOTAL = ' {label} {bar} {percentage}% | {pages} pages | {value}/{total} records';
const WITHOUT_TOTAL = ' {label} {pages} pages | {value} records';

/** "source resource", shortened from the source's end so the resource stays whole. */
export function progressLabel(source: string, resource: string, width = LABEL_WIDTH): string {
  const room = width - resource.length - 1;
  if (room >= source.length) return `${source} ${resource}`.padEnd(width);
  if (room >= 4) return `${source.slice(0, room - 1)}… ${resource}`;
  return `${source.slice(0, 3)}… ${resource}`.slice(0, width - 1) + '…';
}

export function progressHooks(log: Logger, stream: NodeJS.WriteStream = process.stderr): SyncHooks {
  if (!stream.isTTY) {
    let last = 0;
    const tally = new Map<string, { pages: number; records: number }>();
    return {
      syncWillStart: (e) => log.info(e, 'sync started'),
      pageDidStore: (e) => {
        const t = tally.get(`${e.source}/${e.resource}`) ?? { pages: 0, records: 0 };
        t.pages++;
        t.records += e.records;
        tally.set(`${e.source}/${e.resource}`, t);
        if (Date.now() - last > 2000) {
          last = Date.now();
          log.info({ source: e.source, resource: e.resource, ...t, total: e.total, ...e.counters }, 'sync progress');
        }
      },
    };
  }
  // One block of bars per source: a stopped MultiBar keeps its final lines on screen and the next
  // source starts a fresh block below it.
  let multi: cliProgress.MultiBar | undefined;
  let restoreLog: (() => void) | undefined;
  const bars = new Map<string, { bar: cliProgress.SingleBar; pages: number; listed: number; records: number }>();
  return {
    pageDidStore: (e) => {
      if (!multi) {
        const m = new cliProgress.MultiBar(
          // forceRedraw: a bar is drawn again below a log line even when its count has not moved.
          { stream, format: WITHOUT_TOTAL, hideCursor: true, clearOnComplete: false, barsize: BAR_SIZE, forceRedraw: true },
          cliProgress.Presets.shades_classic,
        );
        multi = m;
        // MultiBar.log prints a line above the bars at the next redraw.
        restoreLog = divertLogLines((line) => m.log(line.endsWith('\n') ? line : `${line}\n`));
      }
      const id = `${e.source}/${e.resource}`;
      let b = bars.get(id);
      if (!b) {
        const payload = { label: progressLabel(e.source, e.resource), pages: 0 };
        b = { bar: multi.create(e.total ?? 0, 0, payload, { format: e.total !== undefined ? WITH_TOTAL : WITHOUT_TOTAL }), pages: 0, listed: 0, records: 0 };
        bars.set(id, b);
      }
      b.pages++;
      b.listed += e.listed;
      b.records += e.records;
      if (e.total !== undefined) {
        // A total can grow while a listing is paged (records added meanwhile).
        b.bar.setTotal(Math.max(e.total, b.listed));
        b.bar.update(b.listed, { pages: b.pages });
      } else {
        b.bar.update(b.records, { pages: b.pages });
      }
      // Redraw now rather than on the timer: a page is the unit a person watches, and every state
      // shown is a true one.
      multi.update();
    },
    syncDidEnd: () => {
      if (multi) {
        multi.update(); // prints log lines still waiting for a redraw
        multi.stop();
      }
      restoreLog?.();
      restoreLog = undefined;
      multi = undefined;
      bars.clear();
    },
  };
}

function linkedText(people: number, orgs: number): string {
  const o = orgs ? `${orgs} ${orgs === 1 ? 'organisation' : 'organisations'}` : '';
  const p = people ? `${people} people` : '';
  return [p, o].filter(Boolean).join(' and ');
}

/** The first few records still waiting, by source key (vendor ids, never names). */
function waiting(s: SyncSummary): string {
  const held = s.report.entries.filter((e) => e.kind === 'dangling-reference' && e.message.includes('held back'));
  const names = [...new Set(held.map((e) => `${e.record} (${e.field})`))];
  return names.length > 3 ? `${names.slice(0, 3).join(', ')} and ${names.length - 3} more` : names.join(', ');
}

export function formatSummary(s: SyncSummary, opts: { reportFile?: string } = {}): string {
  const c = s.counters;
  const resources = Object.entries(s.byResource).map(([r, x]) => `${r} ${x.records} in ${x.pages} page${x.pages === 1 ? '' : 's'}`);
  const head = `${s.source}: ${s.status} (${s.mode}, run ${s.runId}) — ${s.pages} pages, ${s.records} records; ` +
    `${c.created} created, ${c.updated} updated, ${c.deleted} deleted, ${c.unchanged} unchanged`;
  const extra = [
    resources.length ? `by resource: ${resources.join(', ')}` : '',
    c.linked || c.linkedOrgs ? `${linkedText(c.linked, c.linkedOrgs)} linked across sources` : '',
    c.conflicts ? `${c.conflicts} identity conflicts (see \`rostergate identity conflicts\`)` : '',
    c.suppressed ? `${c.suppressed} records not stored: erased on request (see \`rostergate erase --lift\`)` : '',
    s.unresolved ? `${s.unresolved} records wait for references that never arrived: ${waiting(s)}` : '',
    s.report.entries.length ? `report: ${reportCounts(s.report.counts)} (${opts.reportFile ? `every entry in ${opts.reportFile}` : 'every entry with --report FILE'})` : '',
    s.dropped?.length ? `not stored (no purpose may receive them): ${s.dropped.join(', ')}` : '',
    s.restedMs ? `rested ${(s.restedMs / 1000).toFixed(1)} s between groups (sync.workShare)` : '',
    timesText(s.times),
  ].filter(Boolean);
  return [head, ...extra.map((x) => `  ${x}`), ...(s.error ? [`  ${s.error}`] : [])].join('\n');
}

/**
 * Where the run's time went (src/sync/phase-clock.ts), phases of a tenth of a second or more:
 * "time 41.2 s: source 0.3, load 6.2, plan 18.1, write 16.4". Empty for a run shorter than that.
 */
export function timesText(times: SyncTimes): string {
  const total = SYNC_PHASES.reduce((n, p) => n + times[p], 0);
  if (total < 100) return '';
  const parts = SYNC_PHASES.filter((p) => times[p] >= 100).map((p) => `${p} ${(times[p] / 1000).toFixed(1)}`);
  return `time ${(total / 1000).toFixed(1)} s: ${parts.join(', ')}`;
}
