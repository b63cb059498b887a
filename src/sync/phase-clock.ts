/**
 * Where a sync run's time goes, phase by phase: waiting for the source's pages, checking them at
 * the mapping boundary, waiting for the store's write lock, loading what a group reads, planning
 * it in this process, waiting for the store to write and commit it, resting (sync.workShare). The
 * sync report, the metrics and `bench sync` show it, so an operator can tell a slow vendor from a
 * slow database from a busy gateway.
 *
 * The clock is in exactly one phase at any moment, so the phases add up to the run's time. It
 * follows the runner's own flow only: pages fetched ahead while a group is planned are the source
 * working beside the run, not the run waiting for it.
 */
export const SYNC_PHASES = ['source', 'check', 'lock', 'load', 'plan', 'write', 'rest'] as const;
export type SyncPhase = (typeof SYNC_PHASES)[number];

/** Milliseconds per phase. */
export type SyncTimes = Record<SyncPhase, number>;

export class PhaseClock {
  private phase: SyncPhase;
  private since: number;
  private readonly ms: SyncTimes = { source: 0, check: 0, lock: 0, load: 0, plan: 0, write: 0, rest: 0 };

  constructor(first: SyncPhase, private readonly now: () => number = () => performance.now()) {
    this.phase = first;
    this.since = now();
  }

  /** Ends the current phase and starts `phase`; returns the phase it ended. */
  enter(phase: SyncPhase): SyncPhase {
    const t = this.now();
    this.ms[this.phase] += t - this.since;
    this.since = t;
    const was = this.phase;
    this.phase = phase;
    return was;
  }

  /** Runs `fn` in `phase`, then goes back to the phase before (whether `fn` succeeds or fails). */
  async during<T>(phase: SyncPhase, fn: () => Promise<T>): Promise<T> {
    const was = this.enter(phase);
    try {
      return await fn();
    } finally {
      this.enter(was);
    }
  }

  /** The time of each phase so far, in whole milliseconds (the current phase up to now). */
  totals(): SyncTimes {
    this.enter(this.phase);
    const out = { ...this.ms };
    for (const p of SYNC_PHASES) out[p] = Math.round(out[p]);
    return out;
  }
}
