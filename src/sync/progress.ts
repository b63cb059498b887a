/**
 * Sync progress for people: on a terminal, one bar per resource (cli-progress) with its pages and
 * records — filled against the listing's size where the source tells it (OneRoster's
 * X-Total-Count, the rows of a CSV file), a plain counter where it does not (Clever); periodic log
 * lines otherwise (CI, pipes). Counts only — never record contents.
 */
import cliProgress from 'cli-progress';
import type { Logger } from '../log.ts';
import type { SyncHooks, SyncSummary } from './runner.ts';
import { reportCounts } from './report.ts';

const WITH_TOTAL = ' {source} {resource} {bar} {percentage}% | {pages} pages | {value}/{total} records';
const WITHOUT_TOTAL = ' {source} {resource} {pages} pages | {value} records';

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
  const bars = new Map<string, { bar: cliProgress.SingleBar; pages: number; records: number }>();
  return {
    pageDidStore: (e) => {
      multi ??= new cliProgress.MultiBar(
        { stream, format: WITHOUT_TOTAL, hideCursor: true, clearOnComplete: false, barsize: 24 },
        cliProgress.Presets.shades_classic,
      );
      const id = `${e.source}/${e.resource}`;
      let b = bars.get(id);
      if (!b) {
        const payload = { source: e.source.padEnd(16), resource: e.resource.padEnd(18), pages: 0 };
        b = { bar: multi.create(e.total ?? 0, 0, payload, { format: e.total !== undefined ? WITH_TOTAL : WITHOUT_TOTAL }), pages: 0, records: 0 };
        bars.set(id, b);
      }
      b.pages++;
      b.records += e.records;
      // A total can grow while a listing is paged (records added meanwhile) or be absent (Clever).
      b.bar.setTotal(Math.max(e.total ?? 0, b.records));
      b.bar.update(b.records, { pages: b.pages });
    },
    syncDidEnd: () => {
      multi?.stop();
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
  ].filter(Boolean);
  return [head, ...extra.map((x) => `  ${x}`), ...(s.error ? [`  ${s.error}`] : [])].join('\n');
}
