/**
 * The store's tables as Kysely sees them: one `Database` type for both stores, column names as the
 * migrations (src/store/migrations.ts) create them. Queries written against it (src/store/queries/)
 * are checked by the compiler — a misspelt column or a wrong value type fails `tsc`, not a test.
 *
 * Where the two stores keep a column differently the type says what both accept:
 * - JSON columns are TEXT in SQLite and jsonb in PostgreSQL: written as JSON text (both accept it),
 *   read back as `unknown` and decoded by the dialect (src/store/dialect.ts `fromJson`);
 * - booleans are INTEGER 0/1 in SQLite and boolean in PostgreSQL: the dialect encodes them.
 * Timestamps are ISO text in both, so they compare alike.
 */
import type { Generated } from 'kysely';
import type { EntityType } from '../model/records.ts';

/** A JSON column: JSON text when written, the dialect's raw value (text or parsed) when read. */
export type JsonColumn = unknown;
/** A boolean column: 0/1 in SQLite, boolean in PostgreSQL (see StoreDialect.bool). */
export type BoolColumn = number | boolean;

export interface Database {
  /** `k`: the store's own key of the entity, in insertion order; never leaves the store (the public id is `id`). */
  entities: { k: Generated<number>; id: string; type: EntityType; data: JsonColumn; updated_at: string; updated_seq: number };
  /** Keyed by the linking entity's `k` (deleted with it); the target stays a public id, since links to a record outlive it. */
  links: { from_k: number; rel: string; to_id: string };
  source_records: {
    source: string; type: EntityType; key: string; entity_id: string | null; data: JsonColumn; hash: string; last_modified: string | null; seen_run: number;
  };
  change_log: {
    seq: Generated<number>; at: string; entity_id: string; type: EntityType; op: 'created' | 'updated' | 'deleted';
    fields: JsonColumn; source: string | null; before: JsonColumn | null; generalised: JsonColumn | null;
  };
  sync_state: {
    source: string; state: JsonColumn; run_id: number; run_status: string; run_full: BoolColumn; started_at: string; updated_at: string; error: string | null;
  };
  match_keys: { kind: string; value: string; entity_id: string };
  identity_conflicts: {
    id: Generated<number>; at: string; source: string; type: EntityType; key: string; reason: string; candidates: JsonColumn;
    resolved_at: string | null; resolution: string | null;
  };
  api_keys: { hash: string; client: string; created_at: string; revoked_at: string | null; tenant: string | null };
  pseudonym_domains: { domain: string; version: number; rotated_at: string };
  pseudonyms: { domain: string; version: number; entity_id: string; value: string };
  audit_log: {
    seq: Generated<number>; at: string; client: string; purpose: string; kind: string; operation: string | null; operation_hash: string | null;
    categories: JsonColumn; fields: JsonColumn; people: number; prev_hash: string; hash: string;
  };
  disclosures: { client: string; entity_id: string; first_at: string; last_at: string };
  meta: { key: string; value: string };
  webhooks: { id: string; client: string; url: string; events: JsonColumn; secret: string; cursor_seq: number; created_at: string };
  webhook_deliveries: {
    id: Generated<number>; webhook_id: string; seq: number; msg_id: string; event_type: string; payload: string;
    status: 'pending' | 'delivered' | 'dead'; attempts: Generated<number>; next_attempt_at: string; last_status: number | null;
    last_error: string | null; created_at: string; delivered_at: string | null;
  };
  /** Keyed by the entity's `k`: a view's rows are written with every change, at the end of the table, not all over it. */
  entity_views: { entity_k: number; view: string; type: EntityType; updated_at: string; updated_seq: number };
  view_fingerprints: { view: string; fingerprint: string; built_at: string };
  identity_overrides: { source: string; type: EntityType; key: string; entity_id: string; decided_at: string };
  sync_leases: {
    key: string; token: string; holder_host: string; holder_pid: number; acquired_at: string; heartbeat_at: string; expires_at: string;
  };
  suppressions: { source: string; type: EntityType; key_hash: string; erasure: string; created_at: string };
  tenants: { id: string; name: string; status: 'active' | 'paused'; sources: JsonColumn; created_at: string; updated_at: string };
  tenant_removals: { id: Generated<number>; tenant_id: string; name: string; removed_at: string; removed_by: string };
}
