/**
 * Long synchronous work hands the event loop back at least every YIELD_EVERY_MS. A sync on SQLite
 * applies a group of pages in one transaction, and better-sqlite3 runs each statement on the
 * calling thread: the plan of 5,000 records, its multi-row writes and the commit take seconds at a
 * large district, and nothing else in the process runs meanwhile. The pages the runner reads ahead
 * (src/sync/read-ahead.ts) neither leave nor arrive, so the source sits idle while the store works,
 * and the next group finds too few pages and commits early; a gateway serving in the same process
 * stops answering. Handing back the turn (`setImmediate`) between statements and between pages lets
 * that I/O through, at the cost of one macrotask every YIELD_EVERY_MS.
 *
 * The clock measures only work that has kept the loop: a marker queued on the loop says whether a
 * turn has passed since the clock started, so the first call after the process was idle (or after
 * awaiting real I/O) restarts the clock instead of handing back a turn nobody is waiting for.
 * One clock for the process, since the turn handed back is the process's.
 */
export const YIELD_EVERY_MS = 20;

let since = 0;
let turned = true;

function restart(): void {
  since = performance.now();
  turned = false;
  setImmediate(() => {
    turned = true;
  });
}

/**
 * Hands the event loop back when the work since it last had a turn has run `everyMs` (default
 * YIELD_EVERY_MS) or more. Shorter when something waits on each turn: a sync that plans while its
 * last writes are executed sends each next statement only when the loop turns.
 */
export async function yieldIfBusy(everyMs = YIELD_EVERY_MS): Promise<void> {
  if (turned) return restart();
  if (performance.now() - since < everyMs) return;
  await endOfTurn();
  restart();
}

/** Resolves once the I/O callbacks of the current event-loop turn (and the microtasks they queued) have run. */
export function endOfTurn(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}
