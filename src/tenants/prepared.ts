/**
 * Tenants prepared for serving: each tenant's store checked against the master key, its missing
 * pseudonyms made and its view times computed, once per store (a tenant removed and added again
 * is prepared again). A request or a webhook round prepares its tenant if nobody has yet; the
 * warm-up (`startWarmUp`) prepares every active tenant in the background after `serve` starts, and
 * each tenant the catalog adds later, so that a district's first request does not pay for it.
 */
import { errorForLog, type Logger } from '../log.ts';
import type { Store } from '../store/types.ts';
import type { SourceType } from '../../connectors/types.ts';
import type { Privacy } from '../graphql/privacy.ts';
import { assertStoreKey } from '../privacy/store-key.ts';
import { startPollLoop, type PollLoop } from '../feeds/poll-loop.ts';
import { Slots } from '../kernel/slots.ts';
import type { Tenant, Tenants } from './tenants.ts';

/** A tenant ready to serve: its privacy (key ring, audit log) and its sources' types. */
export interface Prepared {
  privacy: Privacy;
  sourceTypes: ReadonlyMap<string, SourceType>;
}

export class PreparedTenants {
  private readonly byStore = new WeakMap<Store, Promise<Prepared>>();
  /** The store each tenant was last prepared on, by tenant id: what readiness checks (./readiness.ts). */
  private readonly done = new Map<string, Store>();

  constructor(private readonly privacy: Privacy, private readonly log: Logger) {}

  get(t: Tenant): Promise<Prepared> {
    let p = this.byStore.get(t.store);
    if (!p) {
      p = this.prepare(t);
      this.byStore.set(t.store, p);
      // A failure (a store that was unreachable) is tried again by the next request or warm-up round, not remembered.
      p.then(() => this.done.set(t.id, t.store), () => this.byStore.delete(t.store));
    }
    return p;
  }

  /** Whether tenant `id` has been prepared (read-only: tests, and whoever wants to know the warm-up's progress). */
  isPrepared(id: string): boolean {
    return this.done.has(id);
  }

  /** The prepared tenants' stores, by tenant id (a removed tenant's stays until the id is prepared again). */
  stores(): ReadonlyMap<string, Store> {
    return this.done;
  }

  private async prepare(t: Tenant): Promise<Prepared> {
    const privacy = this.privacy.forTenant(t.id, t.keyring);
    await assertStoreKey(t.store, t.keyring);
    await privacy.pseudonymiser.backfillAll(t.store);
    // Each purpose's updatedAt / updatedSince: computed for a purpose new to the store, recomputed
    // for one whose policy changed (src/graphql/view-times.ts); until then it has no times to read.
    for (const v of await privacy.viewTimes.backfill(t.store)) {
      if (v.records) this.log.info({ tenant: t.id, purpose: v.view, records: v.records, rebuilt: v.rebuilt }, 'view times computed from the change log');
    }
    return { privacy, sourceTypes: new Map(t.sources.map((s) => [s.id, s.type])) };
  }
}

/** Tenants prepared at once by the warm-up: enough to overlap store round-trips, few enough to leave requests the CPU and the pool. */
export const WARM_UP_CONCURRENCY = 2;
/** How often the warm-up looks for active tenants not prepared yet (the catalog's new ones). */
export const WARM_UP_EVERY_MS = 10_000;

/**
 * Prepares every active tenant in the background: at once, then every `everyMs` again, which
 * prepares the ones not prepared yet (a tenant the catalog added, one whose store failed before). A failure is logged
 * once per tenant until it is prepared — by kind and code, with no id but the tenant's — and never
 * stops `serve`: the tenant's first request prepares it (or answers the error) as before.
 */
export function startWarmUp(tenants: Tenants, prepared: PreparedTenants, log: Logger, everyMs = WARM_UP_EVERY_MS): PollLoop {
  const slots = new Slots(WARM_UP_CONCURRENCY);
  const failing = new Set<string>();
  let loop: PollLoop | undefined;
  const round = async () => {
    const active = (await tenants.list()).filter((t) => t.status === 'active');
    // A prepared tenant costs a lookup here (its store is open, its preparation remembered).
    await slots.forEach(active, async ({ id }) => {
      if (loop?.stopped) return;
      try {
        const t = await tenants.open(id);
        if (!t) return;
        await prepared.get(t);
        if (failing.delete(id)) log.info({ tenant: id }, 'tenant prepared after an earlier failure');
      } catch (e) {
        if (!failing.has(id)) log.warn({ tenant: id, ...errorForLog(e) }, 'tenant could not be prepared in the background: its first request will try again');
        failing.add(id);
      }
    });
  };
  loop = startPollLoop(round, everyMs, (e) => log.warn(errorForLog(e), 'tenant warm-up round failed (the catalog could not be read)'));
  return loop;
}
