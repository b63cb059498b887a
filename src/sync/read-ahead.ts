/**
 * Pages read from a source ahead of the store, up to a bound in records: while the store applies
 * one group of pages, the next group's pages arrive, so a source that keeps up fills groups and a
 * commit covers many pages. Reading a single page ahead (as before) left a store slower than its
 * source committing page by page: after a long apply only one page was waiting, and the page
 * after it was not there yet. At 50,000 students, where a commit rewrites index pages spread over
 * the whole store, that made a sync over HTTP 2.6× slower than the same sync fed directly.
 *
 * Requests stay sequential (one `next()` at a time, as the connectors' paging and the vendors'
 * rate limits expect), in order; a source's failure is kept and raised after the pages read
 * before it, so what was read is still applied.
 *
 * On SQLite a group's apply blocks the thread, so nothing arrives meanwhile but the one response
 * already on its way, and the next page takes a round trip after it: the runner waits a short
 * grace for it (`ready`) before it takes the group as complete.
 */
import type { Page } from '../../connectors/types.ts';

export interface ReadAhead {
  /** The next page in order, undefined at the end; throws the source's failure after the pages before it. */
  take(): Promise<Page | undefined>;
  /** Whether the next page (or the end, or a failure) is there, waiting for it at most `graceMs`. */
  ready(graceMs: number): Promise<boolean>;
  /** Stops reading; the source is told (not awaited: a page in flight would hold it up to its deadline). */
  close(): void;
}

export function readAhead(pages: AsyncIterator<Page>, next: (pages: AsyncIterator<Page>) => Promise<IteratorResult<Page>>, maxRecords: number): ReadAhead {
  const buffer: Page[] = [];
  let buffered = 0;
  let ended = false;
  let failure: { error: unknown } | undefined;
  let stopped = false;
  const waiting = new Set<() => void>();
  let drained: (() => void) | undefined;
  const wake = () => {
    for (const w of waiting) w();
    waiting.clear();
  };
  const arrival = () => new Promise<void>((r) => waiting.add(r));

  void (async () => {
    try {
      while (!stopped) {
        // The bound holds while the store works; the page that crosses it is still kept.
        while (buffered >= maxRecords && !stopped) await new Promise<void>((r) => (drained = r));
        if (stopped) break;
        const r = await next(pages);
        if (r.done) break;
        buffer.push(r.value);
        buffered += r.value.records.length;
        wake();
      }
    } catch (e) {
      failure = { error: e };
    } finally {
      ended = true;
      wake();
    }
  })();

  const there = () => buffer.length > 0 || ended;
  return {
    async take() {
      while (!there()) await arrival();
      const page = buffer.shift();
      if (page) {
        buffered -= page.records.length;
        drained?.();
        drained = undefined;
        return page;
      }
      if (failure) throw failure.error;
      return undefined;
    },
    async ready(graceMs) {
      if (there()) return true;
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([arrival(), new Promise<void>((r) => (timer = setTimeout(r, graceMs)))]);
      clearTimeout(timer);
      return there();
    },
    close() {
      stopped = true;
      drained?.();
      pages.return?.(undefined).catch(() => undefined);
    },
  };
}
