/**
 * Retention: how long each kind of kept data stays, and the run that removes what is past its
 * period. One run is one store transaction — the change log, finished webhook deliveries and old
 * audit entries go together, and the run's own audit entry (with the counts) commits with them.
 *
 * The audit log is append-only and hash-chained, so old entries cannot simply be deleted: the run
 * first appends a checkpoint entry naming the last removed entry and its hash, then removes the
 * entries through it (the store lifts its append-only trigger inside that one transaction only).
 * `AuditLog.verify` then starts from the first remaining entry, whose link must be the hash a
 * checkpoint on the chain recorded: cutting more entries from the start is still detected.
 *
 * People no longer delivered by any source are deleted by the sync that stops seeing them; what
 * remains of them is their tombstone in the change log, so the change-log period covers them.
 */
import { z } from 'zod';
import type { StoreTx, Store } from '../store/types.ts';
import { appendAudit, checkpointText } from './audit.ts';

/** Documented floors: a shorter period is refused at config load, with the reason. */
export const RETENTION_MINIMUMS = {
  /** Feed clients need time to catch up after an outage before their cursor expires. */
  changeLogDays: 1,
  /** Accountability: a school must be able to see who received what over at least half a year. */
  auditMonths: 6,
  /** An operator needs a day to look at a dead letter before it goes. */
  webhookDeliveryDays: 1,
} as const;

export const retentionConfigSchema = z
  .object({
    /** Change log and its tombstones (and so what is left of people no source delivers any more). Default: changeFeed.retentionDays (30). */
    changeLogDays: z.number().int().min(RETENTION_MINIMUMS.changeLogDays, `shorter than the minimum of ${RETENTION_MINIMUMS.changeLogDays} day (feed clients need time to catch up)`).optional(),
    auditMonths: z.number().int().min(RETENTION_MINIMUMS.auditMonths, `shorter than the minimum of ${RETENTION_MINIMUMS.auditMonths} months (the audit log must cover at least half a year of disclosures)`).default(13),
    /** Delivered and dead webhook deliveries; pending ones are still owed and never removed. */
    webhookDeliveryDays: z.number().int().min(RETENTION_MINIMUMS.webhookDeliveryDays, `shorter than the minimum of ${RETENTION_MINIMUMS.webhookDeliveryDays} day (an operator needs time to look at dead letters)`).default(30),
    /** How often `serve` runs retention itself (hours); 0 turns the scheduled run off. */
    runEveryHours: z.number().min(0).max(24 * 7).default(24),
  })
  .strict();

export interface RetentionPeriods {
  changeLogDays: number;
  auditMonths: number;
  webhookDeliveryDays: number;
}

export interface RetentionResult {
  changeLog: number;
  auditLog: number;
  webhookDeliveries: number;
  /** Cut-off times used, ISO. */
  before: { changeLog: string; auditLog: string; webhookDeliveries: string };
  dryRun: boolean;
}

const DAY_MS = 86_400_000;

/** Calendar months back from `now` (UTC), so "13 months" means the same date 13 months ago. */
export function monthsBefore(now: Date, months: number): Date {
  const d = new Date(now.getTime());
  d.setUTCMonth(d.getUTCMonth() - months);
  return d;
}

export function cutoffs(p: RetentionPeriods, now: Date): RetentionResult['before'] {
  return {
    changeLog: new Date(now.getTime() - p.changeLogDays * DAY_MS).toISOString(),
    auditLog: monthsBefore(now, p.auditMonths).toISOString(),
    webhookDeliveries: new Date(now.getTime() - p.webhookDeliveryDays * DAY_MS).toISOString(),
  };
}

class DryRun extends Error {
  constructor(readonly result: RetentionResult) {
    super('dry run');
  }
}

/**
 * Removes what is past its period and records the run in the audit log. With `dryRun` the same
 * work is done and rolled back, so the counts are exactly what a real run would remove now.
 */
export async function runRetention(store: Store, auditKey: Buffer, periods: RetentionPeriods, opts: { now?: Date; dryRun?: boolean } = {}): Promise<RetentionResult> {
  const now = opts.now ?? new Date();
  const before = cutoffs(periods, now);
  try {
    return await store.transaction(async (tx) => {
      const changeLog = await tx.purgeChangesBefore(before.changeLog);
      const webhookDeliveries = await tx.purgeWebhookDeliveriesBefore(before.webhookDeliveries);
      const auditLog = await cutAudit(tx, auditKey, before.auditLog, now);
      const result: RetentionResult = { changeLog, auditLog, webhookDeliveries, before, dryRun: !!opts.dryRun };
      await appendAudit(tx, auditKey, {
        at: now.toISOString(), client: 'operator', purpose: 'retention', kind: 'retention', operation: 'retention run',
        operationHash: null, categories: { changeLog, auditLog, webhookDeliveries }, fields: [], people: 0,
      });
      if (opts.dryRun) throw new DryRun(result);
      return result;
    });
  } catch (e) {
    if (e instanceof DryRun) return e.result;
    throw e;
  }
}

/** Checkpoint first (at the head of the chain, so never itself removed now), then the cut. */
async function cutAudit(tx: StoreTx, key: Buffer, beforeIso: string, now: Date): Promise<number> {
  const last = await tx.auditLastBefore(beforeIso);
  if (!last) return 0;
  await appendAudit(tx, key, {
    at: now.toISOString(), client: 'operator', purpose: 'retention', kind: 'checkpoint', operation: checkpointText(last.seq, last.hash),
    operationHash: null, categories: {}, fields: [], people: 0,
  });
  return tx.deleteAuditThrough(last.seq);
}
