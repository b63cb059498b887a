/**
 * The configured privacy policy as the privacy layer's own operations read it (erasure, the privacy
 * report, the admin API's webhook and erasure mutations): purposes, classification, keys, and what
 * each purpose's schema receives. The assembled privacy (src/graphql/privacy.ts) extends it with
 * serving — contexts, authentication, the audit plugin — which needs the GraphQL layer above this one.
 */
import type { Classification } from './classification.ts';
import type { Purpose } from './policy.ts';
import type { PurposeSchema } from './purpose-schema.ts';
import type { KeyRing } from './pseudonym.ts';
import type { Store } from '../store/types.ts';
import type { IngestPolicy } from '../store/ingest-policy.ts';

export interface PrivacyPolicy {
  keyring: KeyRing;
  classification: Classification;
  purposes: Map<string, Purpose>;
  schemas: Map<string, PurposeSchema>;
  /** Coordinates received by at least one purpose. */
  received: Set<string>;
  /** The purpose of a configured client that may read this policy's tenant (undefined for any other). */
  clientPurpose(clientId: string): Purpose | undefined;
  /** The tenant this policy's keys are derived for (issue 15); absent where tenants play no part. */
  readonly tenant?: string;
  /** Whether a client reads several tenants, so what it is sent says whose it is. */
  seesTenants?(clientId: string): boolean;
  /**
   * The ingest policy every write to the change log carries (src/store/ingest-policy.ts): erasure
   * logs its tombstone through a page unit with it, like sync.
   */
  ingest(store: Store): Promise<IngestPolicy>;
}
