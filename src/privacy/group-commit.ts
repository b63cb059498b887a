/**
 * Group commit: callers hand items to a committer and wait; the committer writes every item queued
 * while the previous write ran in ONE call of `write` (one transaction), then settles each caller.
 *
 * Why: every keyed GraphQL request appends an audit entry and ledger rows. Committed one by one,
 * N concurrent requests make N transactions on the single writer (and on SQLite each commit
 * empties the reader connection's page cache); grouped, they share one, while each request still
 * answers only after its own entry is durable — so a crash or kill -9 loses no disclosure that a
 * client received.
 *
 * No timer: a write starts at the end of the event-loop turn in which its first item arrived
 * (`setImmediate`), so the items handed over in that turn — the requests that finished in the same
 * round of I/O callbacks — share it; items arriving while a write runs go into the next, which starts
 * at the end of the turn that write finishes in. On a quiet gateway that turn ends at once.
 * Why not at once: a SQLite commit takes microseconds, so a write started at once almost never
 * overlapped the next request and batches stayed at one entry under load — a BEGIN, a chain-head
 * read and a COMMIT (a WAL append on the event loop) per request; ending the turn first shares them
 * among ~7 (docs/serving.md). What waits meanwhile must be small: the gateway holds a request's
 * finished answer (its text), not its execution (src/server/gateway.ts, `holdAnswer`).
 * A failed write fails every caller of that batch with its error; later items get a fresh attempt.
 * Hand-written (some 60 lines) rather than a library: what it must guarantee (settle only after the
 * write, in order, drain on shutdown) is the whole of it, and a generic batching library (DataLoader's
 * batch function, for one) settles on a tick schedule and caches, which is not what a log needs.
 */
import { endOfTurn } from '../kernel/yield-turn.ts';

interface Pending<T, R> {
  item: T;
  resolve(r: R): void;
  reject(e: unknown): void;
}

export class GroupCommitter<T, R> {
  private queue: Pending<T, R>[] = [];
  private running: Promise<void> | undefined;

  /**
   * @param write commits a batch (in the order given) and returns one result per item, in order;
   *   it must be all or nothing (one transaction).
   * @param maxBatch bounds one transaction's size (and how long it holds the write lock).
   */
  constructor(
    private readonly write: (items: T[]) => Promise<R[]>,
    private readonly maxBatch = 500,
  ) {}

  /** Queues an item; resolves with its result once the batch holding it is committed. */
  append(item: T): Promise<R> {
    return new Promise<R>((resolve, reject) => {
      this.queue.push({ item, resolve, reject });
      this.kick();
    });
  }

  /** Starts a writer unless one runs; one that finds items queued as it stops starts the next. */
  private kick(): void {
    if (this.running || this.queue.length === 0) return;
    this.running = this.run().finally(() => {
      this.running = undefined;
      this.kick();
    });
  }

  /** Items queued and not yet settled (tests, metrics). */
  get pending(): number {
    return this.queue.length;
  }

  /** Resolves once everything appended so far is committed or failed (never rejects). */
  async drain(): Promise<void> {
    while (this.running) await this.running;
  }

  private async run(): Promise<void> {
    while (this.queue.length) {
      await endOfTurn();
      const batch = this.queue.splice(0, this.maxBatch);
      let results: R[];
      try {
        results = await this.write(batch.map((p) => p.item));
        if (results.length !== batch.length) throw new Error(`group commit: ${results.length} results for ${batch.length} items`);
      } catch (e) {
        for (const p of batch) p.reject(e);
        continue;
      }
      batch.forEach((p, i) => p.resolve(results[i]!));
    }
  }
}
