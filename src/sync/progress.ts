/**
 * Sync progress for people: bars per resource on a terminal (cli-progress), periodic log lines
 * otherwise (CI, pipes). Counts only — never record contents.
 */
import cliProgress from 'cli-progress';
import type { Logger } from '../log.ts';
import type { SyncHooks, SyncSummary } from './runner.ts';

export function progressHooks(log: Logger, stream: NodeJS.WriteStream = process.stderr): SyncHooks {
  if (!stream.isTTY) {
    let last = 0;
    return {
      syncWillStart: (e) => log.info(e, 'sync started'),
      pageDidStore: (e) => {
        if (Date.now() - last > 2000) {
          last = Date.now();
          log.info({ source: e.source, resource: e.resource, ...e.counters }, 'sync progress');
        }
      },
    };
  }
  const multi = new cliProgress.MultiBar(
    { stream, format: ' {source} {resource} | {pages} pages | {value} records', hideCursor: true, clearOnComplete: false },
    cliProgress.Presets.shades_classic,
  );
  const bars = new Map<string, { bar: cliProgress.SingleBar; pages: number; records: number }>();
  return {
    pageDidStore: (e) => {
      const id = `${e.source}/${e.resource}`;
      let b = bars.get(id);
      if (!b) {
        b = { bar: multi.create(0, 0, { source: e.source.padEnd(16), resource: e.resource.padEnd(18), pages: 0 }), pages: 0, records: 0 };
        bars.set(id, b);
      }
      b.pages++;
      b.records += e.records;
      b.bar.setTotal(b.records);
      b.bar.update(b.records, { pages: b.pages });
    },
    syncDidEnd: () => multi.stop(),
  };
}

export function formatSummary(s: SyncSummary): string {
  const c = s.counters;
  const head = `${s.source}: ${s.status} (${s.mode}, run ${s.runId}) — ${s.pages} pages, ${s.records} records; ` +
    `${c.created} created, ${c.updated} updated, ${c.deleted} deleted, ${c.unchanged} unchanged`;
  const extra = [
    c.linked ? `${c.linked} people linked across sources` : '',
    c.conflicts ? `${c.conflicts} identity conflicts (see \`rostergate identity conflicts\`)` : '',
    s.unresolved ? `${s.unresolved} records wait for references that never arrived` : '',
    s.dropped?.length ? `not stored (no purpose may receive them): ${s.dropped.join(', ')}` : '',
  ].filter(Boolean);
  return [head, ...extra.map((x) => `  ${x}`), ...(s.error ? [`  ${s.error}`] : [])].join('\n');
}
