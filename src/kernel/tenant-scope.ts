/**
 * The tenant whose background work is running — a sync of its sources, a round of its webhooks —
 * so that what that work records (sync runs, records, vendor requests, webhook deliveries) is
 * counted under its tenant without every layer threading the id through its signatures: the
 * connectors' HTTP client and the webhook dispatcher know nothing of tenants. Requests keep theirs
 * on their own record (./request-context.ts), set once the request has resolved to a tenant.
 *
 * Only ids of tenants the deployment has (the config's own, the catalog's) enter here, never a
 * value a caller sent: metric series are made from them.
 */
import { AsyncLocalStorage } from 'node:async_hooks';

const storage = new AsyncLocalStorage<string>();

/** Runs `work` as work of `tenant`: everything it starts, synchronously or not, sees that tenant. */
export function runForTenant<T>(tenant: string, work: () => T): T {
  return storage.run(tenant, work);
}

/** The tenant of the background work running now, if any. */
export function currentTenant(): string | undefined {
  return storage.getStore();
}
