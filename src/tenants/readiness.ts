/**
 * `/readyz` of a gateway serving many tenants. What takes a replica out of a load balancer, and
 * what does not (docs/tenants-serving.md, "Readiness"):
 * - **Not ready (503)** when the home store does not answer reads or refuses writes (API keys and
 *   the catalog live there: no request could be authenticated), or the tenant catalog cannot be
 *   read. Every replica shares these, so this is the deployment being down.
 * - **Ready (200), degraded** when the store of a tenant already opened and prepared does not
 *   answer: one district's store must not take every replica out of rotation, which would make its
 *   outage everyone's. The body counts such tenants (`tenants.degraded`); the log names them by id.
 *   The ids are not in the body: /readyz is unauthenticated, and which schools a deployment serves
 *   is not for every caller (the reason TENANT_REFUSED does not tell unknown from forbidden).
 *
 * Cheap: a tenant never opened is not opened by a probe, and the opened ones are checked at most
 * every `checkEveryMs` (a read and a rolled-back write each, `TENANT_CHECK_CONCURRENCY` at a time, each bounded in time),
 * whatever number of probes arrive; a probe waits for a due check briefly and otherwise answers
 * from the last one.
 */
import { errorForLog, type Logger } from '../log.ts';
import type { Store } from '../store/types.ts';
import type { Readiness } from '../server/gateway.ts';
import { Slots } from '../kernel/slots.ts';
import type { PreparedTenants } from './prepared.ts';
import type { Tenants } from './tenants.ts';

export const TENANT_CHECK_EVERY_MS = 5_000;
const TENANT_CHECK_CONCURRENCY = 4;
/** A tenant store slower than this to answer a read is degraded. */
const TENANT_CHECK_TIMEOUT_MS = 1_000;
/** How long a probe waits for a due check of the tenants before answering from the last one. */
const PROBE_WAIT_MS = 1_000;

interface TenantHealth {
  checked: number;
  degraded: Set<string>;
}

export function tenantsReadiness(tenants: Tenants, home: Store, prepared: PreparedTenants, log: Logger, checkEveryMs = TENANT_CHECK_EVERY_MS): () => Promise<Readiness> {
  const slots = new Slots(TENANT_CHECK_CONCURRENCY);
  let last: (TenantHealth & { at: number }) | undefined;
  let running: Promise<void> | undefined;

  const check = async (active: Set<string>): Promise<void> => {
    const health: TenantHealth = { checked: 0, degraded: new Set() };
    const opened = [...prepared.stores()].filter(([id]) => id !== tenants.home && active.has(id));
    await slots.forEach(opened, async ([id, store]) => {
      health.checked++;
      try {
        // Reads and writes: a tenant's every request commits an audit entry to its store.
        await withTimeout((async () => (await store.headSeq(), await store.writable()))(), TENANT_CHECK_TIMEOUT_MS);
      } catch (e) {
        health.degraded.add(id);
        if (!last?.degraded.has(id)) log.warn({ tenant: id, ...errorForLog(e) }, 'tenant store does not answer: /readyz counts it as degraded');
      }
    });
    for (const id of last?.degraded ?? []) if (!health.degraded.has(id) && active.has(id)) log.info({ tenant: id }, 'tenant store answers again');
    last = { ...health, at: Date.now() };
  };

  return async () => {
    // The deployment's own: any failure here throws, and the probe answers 503.
    await home.headSeq();
    await home.writable();
    const active = new Set((await tenants.list()).filter((t) => t.status === 'active').map((t) => t.id));
    if (!running && (!last || Date.now() - last.at >= checkEveryMs)) {
      running = check(active).finally(() => (running = undefined));
    }
    if (running) await Promise.race([running, new Promise((r) => setTimeout(r, PROBE_WAIT_MS).unref())]);
    const degraded = [...(last?.degraded ?? [])].filter((id) => active.has(id)).length;
    return { ready: true, detail: { tenants: { checked: last?.checked ?? 0, degraded } } };
  };
}

function withTimeout<T>(p: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(Object.assign(new Error(`no answer within ${ms} ms`), { code: 'TIMEOUT' })), ms);
  });
  return Promise.race([p, timeout]).finally(() => clearTimeout(timer));
}
