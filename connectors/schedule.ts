/**
 * A source's schedule (`sources[].schedule`): when a sync of it is due. One of
 *   schedule: { every: 15m }                               — an interval (s, m, h or d; at least a minute)
 *   schedule: { cron: "0 3 * * *", timezone: Europe/Berlin } — a five-field cron expression (time zone default UTC)
 *
 * Both define *slots*: the instants a sync is due. Interval slots are multiples of the interval
 * counted from the Unix epoch, so every process (a worker's tick on any machine, `serve`'s
 * in-process schedule) computes the same slot without talking to the others — the slot is what
 * the job queue deduplicates on (src/jobs/queue.ts). A sync is due when the latest slot at or
 * before now has not been taken yet; slots missed while nothing ran are caught up by one run,
 * not one per missed slot.
 *
 * Beside the source configs (connectors/config-base.ts) because every source type's schema —
 * the config file's and a tenant's sources alike — validates it. Cron parsing is croner's
 * (maintained, no dependencies, IANA time zones with DST handling, Node ≥ 18).
 */
import { Cron } from 'croner';
import { z } from 'zod';

const UNIT_MS = { s: 1_000, m: 60_000, h: 3_600_000, d: 86_400_000 } as const;
const MIN_INTERVAL_MS = 60_000;

/**
 * As written in the config, kept unparsed so a validated source config validates again unchanged
 * (a tenant's sources are stored validated and read back through the same schema).
 */
export interface Schedule {
  every?: string;
  cron?: string;
  timezone?: string;
}

/** `15m` → 900000, or undefined when it is not a whole number with a unit. */
export function intervalMs(text: string): number | undefined {
  const m = /^(\d+)\s*([smhd])$/.exec(text.trim());
  return m ? Number(m[1]) * UNIT_MS[m[2] as keyof typeof UNIT_MS] : undefined;
}

function cronOf(expr: string, timezone: string): Cron {
  // paused: a pattern to evaluate, never a timer of its own.
  return new Cron(expr, { timezone, mode: '5-part', paused: true });
}

function validTimeZone(tz: string): boolean {
  try {
    new Intl.DateTimeFormat('en', { timeZone: tz });
    return true;
  } catch {
    return false;
  }
}

export const scheduleSchema = z
  .object({
    /** An interval: a whole number and a unit, s, m, h or d (`15m`, `6h`, `1d`); at least one minute. */
    every: z.string().optional(),
    /** A cron expression of five fields (minute hour day-of-month month day-of-week), or a nickname such as `@daily`. */
    cron: z.string().optional(),
    /** IANA time zone the cron expression is read in (default UTC); only with `cron`. */
    timezone: z.string().optional(),
  })
  .strict()
  .superRefine((s, ctx) => {
    const issue = (message: string, path: string[] = []) => ctx.addIssue({ code: 'custom', message, path });
    if ((s.every === undefined) === (s.cron === undefined)) return issue('give either `every` (an interval such as 15m) or `cron` (such as "0 3 * * *"), not both or neither');
    if (s.every !== undefined) {
      if (s.timezone !== undefined) return issue('`timezone` applies to `cron` only: an interval counts from the Unix epoch', ['timezone']);
      const ms = intervalMs(s.every);
      if (ms === undefined) return issue(`"${s.every}" is not an interval: a whole number and a unit, s, m, h or d (e.g. 15m, 6h, 1d)`, ['every']);
      if (ms < MIN_INTERVAL_MS) return issue(`"${s.every}" is shorter than the minimum of one minute`, ['every']);
      return;
    }
    const timezone = s.timezone ?? 'UTC';
    if (!validTimeZone(timezone)) return issue(`"${timezone}" is not an IANA time zone (e.g. UTC, Europe/Berlin, America/Chicago)`, ['timezone']);
    try {
      cronOf(s.cron!, timezone);
    } catch (e) {
      return issue(`"${s.cron}" is not a cron expression: ${(e as Error).message.replace(/^CronPattern: /, '')}`, ['cron']);
    }
  });

/** The latest slot at or before `now` (undefined only for a cron expression that never matched). */
export function latestSlot(schedule: Schedule, now: Date): Date | undefined {
  const every = schedule.every === undefined ? undefined : intervalMs(schedule.every);
  if (every) return new Date(Math.floor(now.getTime() / every) * every);
  // previousRuns looks strictly before the reference: a slot exactly at `now` counts as due.
  const at = new Date(now.getTime() + 1);
  return cronOf(schedule.cron!, schedule.timezone ?? 'UTC').previousRuns(1, at)[0];
}

/** The first slot after `after`. */
export function nextSlot(schedule: Schedule, after: Date): Date | undefined {
  const every = schedule.every === undefined ? undefined : intervalMs(schedule.every);
  if (every) return new Date((Math.floor(after.getTime() / every) + 1) * every);
  return cronOf(schedule.cron!, schedule.timezone ?? 'UTC').nextRun(after) ?? undefined;
}

/** The slot to run now, if it is later than the last one taken. */
export function dueSlot(schedule: Schedule, lastTaken: Date | undefined, now: Date): Date | undefined {
  const slot = latestSlot(schedule, now);
  return slot && (!lastTaken || slot.getTime() > lastTaken.getTime()) ? slot : undefined;
}
