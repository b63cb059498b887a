/**
 * Which tenant a request reads (issue 15). A client may use the tenants its config lists
 * (`clients[].tenants`: ids, or ["*"] for all — a vendor's own backend), by default only the home
 * tenant; an API key may be narrowed further to one of them (`keys create --tenant`). A request
 * whose client has exactly one tenant reads that one; otherwise it names one in the
 * `x-rostergate-tenant` header (JWT clients too: the header, not a claim, so one token serves a
 * backend's every tenant like one API key does).
 *
 * A tenant the client may not use and a tenant that does not exist get the same refusal, word for
 * word and status for status: a client cannot learn which schools a deployment serves by asking.
 * Only then is a paused tenant told apart (503), to a client that may use it.
 */
import { RostergateError } from '../errors.ts';
import { TENANT_ID, type Tenant, type Tenants } from './tenants.ts';

export const TENANT_HEADER = 'x-rostergate-tenant';

/**
 * Refuses `clients[].tenants` entries that are not tenant ids (checked here, where tenant ids are
 * defined, when `serve` starts). "*" (every tenant) stands alone.
 */
export function checkClientTenants(cfg: { file?: string; clients: readonly { id: string; tenants?: string[] }[] }): void {
  cfg.clients.forEach((c, i) => {
    if (!c.tenants || (c.tenants.length === 1 && c.tenants[0] === '*')) return;
    const bad = c.tenants.find((t) => !TENANT_ID.test(t));
    if (bad !== undefined) {
      throw new RostergateError('CONFIG_INVALID', `${cfg.file ?? 'config'}: clients[${i}] (${c.id}).tenants: "${bad.slice(0, 70)}" is not a tenant id (lower-case letters, digits and "-"), and "*" (every tenant) stands alone`);
    }
  });
}

/** The client's tenants as the privacy layer reads its config (Privacy.clientTenants), and the key's narrowing. */
export interface TenantGrant {
  client: string;
  /** ids, or '*' for every tenant of the deployment. */
  tenants: readonly string[] | '*';
  /** The one tenant the API key was created for, if it was narrowed. */
  keyTenant?: string;
}

function refused(named: string | undefined): RostergateError {
  // Repeated only when it has the shape of a tenant id: the header is the client's free text.
  const which = named !== undefined && TENANT_ID.test(named) ? `"${named}" ` : '';
  return new RostergateError('TENANT_REFUSED', `no tenant ${which}that this client may read: name one of its tenants in the ${TENANT_HEADER} header`);
}

/** The tenants a request may read: the client's, narrowed by its key ([] when the key names a tenant the client may no longer use). */
export function grantedTenants(g: TenantGrant): readonly string[] | '*' {
  if (g.keyTenant === undefined) return g.tenants;
  return g.tenants === '*' || g.tenants.includes(g.keyTenant) ? [g.keyTenant] : [];
}

/** The value of the tenant header, if the request sent one (a repeated header is refused as no tenant id). */
export function tenantHeader(headers: Record<string, string | string[] | undefined>): string | undefined {
  const v = headers[TENANT_HEADER];
  if (v === undefined) return undefined;
  return Array.isArray(v) ? v.join(',') : v.trim();
}

/**
 * The tenant a request reads, opened; throws TENANT_REFUSED (403), TENANT_REQUIRED (400) or
 * TENANT_PAUSED (503), which the gateway answers like its other refusals (src/errors.ts).
 */
export async function requestTenant(tenants: Tenants, grant: TenantGrant, header: string | undefined): Promise<Tenant> {
  const may = grantedTenants(grant);
  let id = header;
  if (id === undefined) {
    if (may === '*' || may.length > 1) {
      throw new RostergateError('TENANT_REQUIRED', `this client may read several tenants: name the one this request is for in the ${TENANT_HEADER} header`);
    }
    id = may[0];
  }
  if (id === undefined || (may !== '*' && !may.includes(id)) || !TENANT_ID.test(id)) throw refused(header);
  const tenant = await tenants.open(id);
  if (!tenant) throw refused(header);
  if (tenant.status === 'paused') {
    throw new RostergateError('TENANT_PAUSED', `tenant "${id}" is paused: it is neither synced nor served until an operator resumes it`, {}, { retryable: true });
  }
  return tenant;
}
