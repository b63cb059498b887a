/**
 * Table rows → the Store interface's rows, once for both stores: the dialect decodes what the two
 * keep differently (JSON text or jsonb, 0/1 or boolean). Plain functions over plain objects, called
 * once per row in the hot reads (getEntities, list), so nothing here allocates more than the row.
 */
import type { Selectable } from 'kysely';
import type { Database } from '../db.ts';
import type { StoreDialect } from '../dialect.ts';
import type { AuditRow, ChangeRow, DeliveryRow, EntityRow, SourceRecordRow, SyncStateRow, WebhookRow } from '../types.ts';

type Row<T extends keyof Database> = Selectable<Database[T]>;

export function toEntity(d: StoreDialect, r: Row<'entities'>): EntityRow {
  return { id: r.id, type: r.type, data: d.fromJson(r.data), updatedAt: r.updated_at, updatedSeq: r.updated_seq };
}

/** The entities table's columns in the order `entityOfColumns` reads them from a row given as an array. */
export const ENTITY_COLUMNS = ['id', 'type', 'data', 'updated_at', 'updated_seq'] as const;

/** `toEntity` of a row read as an array of ENTITY_COLUMNS (QueryStore.executeReadArrays). */
export function entityOfColumns(d: StoreDialect, r: readonly unknown[]): EntityRow {
  return entityWithData(r, d.fromJson(r[2]));
}

/** The same with its data decoded already (a list's partial or recorded records: src/store/partial-data.ts). */
export function entityWithData(r: readonly unknown[], data: unknown): EntityRow {
  return { id: r[0] as string, type: r[1] as EntityRow['type'], data: data as EntityRow['data'], updatedAt: r[3] as string, updatedSeq: r[4] as number };
}

export function toSource(d: StoreDialect, r: Row<'source_records'>): SourceRecordRow {
  return {
    source: r.source, type: r.type, key: r.key, entityId: r.entity_id, data: d.fromJson(r.data), hash: r.hash, lastModified: r.last_modified, seenRun: r.seen_run,
  };
}

export function toChange(d: StoreDialect, r: Row<'change_log'>): ChangeRow {
  return {
    seq: r.seq, at: r.at, entityId: r.entity_id, type: r.type, op: r.op, fields: d.fromJson(r.fields), source: r.source,
    ...(r.before !== null && r.before !== undefined ? { before: d.fromJson(r.before) } : {}),
    ...(r.generalised !== null && r.generalised !== undefined ? { generalised: d.fromJson(r.generalised) } : {}),
  };
}

export function toSync(d: StoreDialect, r: Row<'sync_state'>): SyncStateRow {
  return {
    source: r.source, state: d.fromJson(r.state), runId: r.run_id, runStatus: r.run_status as SyncStateRow['runStatus'], runFull: r.run_full === true || r.run_full === 1,
    startedAt: r.started_at, updatedAt: r.updated_at, error: r.error,
  };
}

export function toAudit(d: StoreDialect, r: Row<'audit_log'>): AuditRow & { seq: number } {
  return {
    seq: r.seq, at: r.at, client: r.client, purpose: r.purpose, kind: r.kind, operation: r.operation, operationHash: r.operation_hash,
    categories: d.fromJson(r.categories), fields: d.fromJson(r.fields), people: r.people, prevHash: r.prev_hash, hash: r.hash,
  };
}

export function toWebhook(d: StoreDialect, r: Row<'webhooks'>): WebhookRow {
  return { id: r.id, client: r.client, url: r.url, events: d.fromJson(r.events), secret: r.secret, cursorSeq: r.cursor_seq, createdAt: r.created_at };
}

export function toDelivery(r: Row<'webhook_deliveries'>): DeliveryRow {
  return {
    id: r.id, webhookId: r.webhook_id, seq: r.seq, msgId: r.msg_id, eventType: r.event_type, payload: r.payload, status: r.status,
    attempts: r.attempts, nextAttemptAt: r.next_attempt_at, lastStatus: r.last_status, lastError: r.last_error, createdAt: r.created_at, deliveredAt: r.delivered_at,
  };
}

/** JSON text for a JSON column (both stores accept text: SQLite keeps it, PostgreSQL casts it to jsonb). */
export const json = (v: unknown): string => JSON.stringify(v);
/** JSON text, or NULL for an absent value. */
export const jsonOrNull = (v: unknown): string | null => (v === undefined ? null : JSON.stringify(v));
