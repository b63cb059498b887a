/**
 * One run per source at a time, across processes and machines: a lease in the store (table
 * sync_leases), taken before a run reads its sync state and given back when it ends. Two runs of
 * one source interleaving pages (cron plus a manual run) each saw only part of the listing as
 * "seen", and the mass-deletion guard fired — or, under its threshold, records were really deleted.
 *
 * The holder renews the lease with a heartbeat; a holder that crashed stops renewing, and its lease
 * expires `ttlMs` after the last heartbeat. A holder on this machine whose process is gone is taken
 * over at once (a killed `rostergate sync` must not block the next run for a minute). Times come from
 * the machines' clocks: skew between machines only has to stay well below the TTL (60 s by default).
 *
 * With the store rather than with sync: an erasure (src/privacy/erasure.ts) holds the same leases.
 */
import { randomUUID } from 'node:crypto';
import { hostname } from 'node:os';
import { setTimeout as sleep } from 'node:timers/promises';
import { RostergateError } from '../errors.ts';
import type { LeaseRow, Store } from './types.ts';

export interface LeaseOptions {
  /** Wait for the holder to finish (or its lease to expire) instead of refusing at once. */
  wait?: boolean;
  /** How long a lease outlives its last heartbeat (default 60 s). */
  ttlMs?: number;
  /** How often the holder renews it (default a third of the TTL). */
  heartbeatMs?: number;
  /** How often a waiting run looks again (default 2 s). */
  pollMs?: number;
  now?: () => Date;
}

export interface SourceLease {
  /** Aborted (with a SYNC_BUSY reason) if another run took the lease over: this run must stop. */
  readonly lost: AbortSignal;
  release(): Promise<void>;
}

export const DEFAULT_LEASE_TTL_MS = 60_000;

/** Takes the lease of `source`, or throws SYNC_BUSY naming the holder (after waiting, with `wait`). */
export async function acquireSourceLease(store: Store, source: string, opts: LeaseOptions = {}): Promise<SourceLease> {
  const ttl = opts.ttlMs ?? DEFAULT_LEASE_TTL_MS;
  const clock = opts.now ?? (() => new Date());
  const mine = { token: randomUUID(), holderHost: hostname(), holderPid: process.pid };
  for (;;) {
    const held = await store.transaction(async (tx) => {
      const cur = await tx.getLease(source);
      const now = clock();
      if (cur && cur.token !== mine.token && cur.expiresAt > now.toISOString() && !holderGone(cur)) return cur;
      const at = now.toISOString();
      await tx.putLease({ key: source, ...mine, acquiredAt: at, heartbeatAt: at, expiresAt: new Date(now.getTime() + ttl).toISOString() });
      return undefined;
    }, { scope: 'roster' });
    if (!held) break;
    if (!opts.wait) throw busyError(source, held);
    await sleep(opts.pollMs ?? 2_000);
  }
  return startHeartbeat(store, source, mine.token, ttl, opts.heartbeatMs ?? Math.max(10, Math.floor(ttl / 3)), clock);
}

function startHeartbeat(store: Store, source: string, token: string, ttl: number, every: number, clock: () => Date): SourceLease {
  const lost = new AbortController();
  let beating: Promise<void> = Promise.resolve();
  const timer = setInterval(() => {
    beating = store
      .transaction(async (tx) => {
        const cur = await tx.getLease(source);
        if (!cur || cur.token !== token) return cur ?? null;
        const now = clock();
        await tx.putLease({ ...cur, heartbeatAt: now.toISOString(), expiresAt: new Date(now.getTime() + ttl).toISOString() });
        return undefined;
      }, { scope: 'roster' })
      .then((other) => {
        if (other === undefined) return;
        clearInterval(timer);
        const why = other ? busyError(source, other, 'took the lease over (this run missed its heartbeats past the lease\'s expiry)') : undefined;
        lost.abort(why ?? new RostergateError('SYNC_BUSY', 'the run lost its lease (it was removed from the store)', { source }));
      })
      // A heartbeat the store refuses (full, read-only, unreachable) is tried again at the next beat;
      // the run's own writes fail with the reason meanwhile.
      .catch(() => undefined);
  }, every);
  timer.unref();
  return {
    lost: lost.signal,
    async release() {
      clearInterval(timer);
      await beating;
      await store.transaction((tx) => tx.deleteLease(source, token), { scope: 'roster' }).catch(() => undefined);
    },
  };
}

/** A holder on this machine whose process no longer exists (killed, crashed). */
function holderGone(l: LeaseRow): boolean {
  if (l.holderHost !== hostname() || l.holderPid === process.pid) return false;
  try {
    process.kill(l.holderPid, 0);
    return false;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'ESRCH';
  }
}

function busyError(source: string, l: LeaseRow, what = 'is syncing it'): RostergateError {
  return new RostergateError(
    'SYNC_BUSY',
    `another run (host ${l.holderHost}, pid ${l.holderPid}, since ${l.acquiredAt}) ${what}; its lease runs to ${l.expiresAt} unless renewed. ` +
      'Run again later, or pass --wait to wait for it.',
    { source },
  );
}
