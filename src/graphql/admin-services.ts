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
}
