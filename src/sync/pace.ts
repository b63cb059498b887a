/**
 * Pacing a sync to a share of the machine (`sync.workShare`): after each group of pages it applied,
 * a run rests for as long as that work took × (1 / share − 1), so over the run it spends at most
 * `share` of the wall-clock time applying records. Its groups are smaller by the same share
 * (src/sync/runner.ts), so work and rests alternate in short steps.
 *
 * Why, beside `sync.nice`: a lower CPU priority helps only against the sync's own process. On
 * PostgreSQL most of a sync's cost is the server's work on its statements (about three quarters at
 * 50,000 students, docs/benchmarks.md "the statement floor"), in server processes that run at the
 * server's priority, and on a small machine that work takes the cores a gateway beside it needs. A
 * rest between groups holds back both, the way PostgreSQL's own cost-based vacuum delay does for
 * its background work. Only the time applying records (planning and the store's statements) is
 * paced: reading from the source goes on during the rests, up to the read-ahead's group.
 */

/** Rests in proportion to the work timed since the last rest. */
export interface Pacer {
  /** Starts timing a piece of work. */
  begin(): void;
  /** Rests for the work timed since `begin` (at once if the share is 1, or on abort). */
  rest(): Promise<void>;
  /** Milliseconds rested so far. */
  readonly restedMs: number;
}

export interface PacerDeps {
  now(): number;
  sleep(ms: number, signal?: AbortSignal): Promise<void>;
}

const realDeps: PacerDeps = {
  now: () => performance.now(),
  sleep: (ms, signal) => new Promise<void>((resolve) => {
    if (signal?.aborted) return resolve();
    const done = () => {
      clearTimeout(timer);
      signal?.removeEventListener('abort', done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal?.addEventListener('abort', done, { once: true });
  }),
};

/** A pacer for `share` (0 < share ≤ 1) of the wall-clock time; an abort cuts a rest short (the caller then stops). */
export function pacer(share: number, signal?: AbortSignal, deps: PacerDeps = realDeps): Pacer {
  if (!(share > 0 && share <= 1)) throw new RangeError(`a work share is more than 0 and at most 1, not ${share}`);
  let began: number | undefined;
  let restedMs = 0;
  return {
    begin() {
      began = deps.now();
    },
    async rest() {
      if (began === undefined) return;
      const worked = deps.now() - began;
      began = undefined;
      if (share >= 1 || worked <= 0) return;
      const ms = worked * (1 / share - 1);
      const from = deps.now();
      await deps.sleep(ms, signal);
      restedMs += deps.now() - from;
    },
    get restedMs() {
      return restedMs;
    },
  };
}
