/**
 * What an admin purpose's requests carry for the admin operations (./admin.ts): put in the context
 * by the assembled privacy (./privacy.ts). Its own file so the context can name it without importing
 * the admin resolvers, which import the context.
 */
import type { PrivacyPolicy } from '../privacy/privacy-policy.ts';
import type { EndpointRules } from '../privacy/webhook-endpoints.ts';
import type { Store } from '../store/types.ts';

export interface AdminServices {
  store: Store;
  privacy: PrivacyPolicy;
  webhooks: EndpointRules;
  /** Configured source ids: an erasure holds their sync leases. */
  sources?: readonly string[];
  /** Tenant management (src/tenants/ provides it; absent where the deployment has no tenant catalog). */
  tenants?: TenantAdmin;
}

/** A tenant as the admin API shows it: sources as kept, secrets only as references. */
export interface TenantView {
  id: string;
  name: string;
  status: 'active' | 'paused';
  home: boolean;
  sources: { id: string; type: string; [k: string]: unknown }[];
  createdAt: string;
  updatedAt: string;
}

/**
 * Tenant management for the admin purpose, implemented in src/tenants/ (which graphql/ may not
 * import) and handed in. Errors are RostergateErrors (CONFIG_INVALID, NOT_FOUND, SYNC_BUSY).
 */
export interface TenantAdmin {
  list(): Promise<TenantView[]>;
  /** `sources`: JSON or YAML text of a list of sources. */
  add(t: { id: string; name: string; sources?: string }): Promise<TenantView>;
  update(id: string, patch: { name?: string; sources?: string; status?: 'active' | 'paused' }): Promise<TenantView>;
  /** Erases the tenant's store and records the removal by `by`. */
  remove(id: string, by: string): Promise<void>;
}
