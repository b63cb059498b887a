/**
 * The embedded store: one SQLite file (better-sqlite3, WAL). Writes go through one connection in
 * explicit transactions; reads made while one is open use a second connection, so GraphQL requests
 * served while a sync runs see only committed pages.
 */
import Database from 'better-sqlite3';
import { closeSync, mkdirSync, openSync } from 'node:fs';
import { dirname } from 'node:path';
import type { EntityType } from '../model/records.ts';
import { ENTITY_TYPES } from '../model/records.ts';
import { RostergateError } from '../errors.ts';
import { SQLITE_MIGRATIONS, type RowRepair } from './migrations.ts';
import { storeConditionError } from './conditions.ts';
import { statfsSync } from 'node:fs';
import type {
  AuditRow,
  DeliveryRow,
  WebhookRow,
  WebhookStore,
  ChangeRow,
  EntityRow,
  IdentityConflict,
  LeaseRow,
  ListQuery,
  ListResult,
  SourceRecordRef,
  SourceRecordRow,
  Store,
  StoreTx,
  SuppressionRow,
  SyncStateRow,
  ViewTime,
  ViewTimeRow,
  SubjectRows,
} from './types.ts';
import { tombstoneOf } from './types.ts';
import { isPseudonymOrdered, type PseudonymOrderedType } from './order.ts';

type Db = Database.Database;

/** Room a store needs to be called writable: a page of any source fits many times over. */
const MIN_ROOM_BYTES = 1024 * 1024;
/** How long a write waits for another process's write lock. */
const BUSY_TIMEOUT_MS = 5000;

/**
 * Memory for each connection's page cache (64 MiB, SQLite's default is 2 MiB) and reads through a
 * memory map: a district's store runs to hundreds of MiB, and paging through it (extracts, the
 * change feed) otherwise decodes the same pages again and again.
 */
function tune(db: Db): void {
  db.pragma('cache_size = -65536');
  db.pragma('mmap_size = 268435456');
}

export class SqliteStore implements Store {
  readonly kind = 'sqlite' as const;
  private readonly writer: Db;
  private readonly reader: Db;
  private readonly path: string;
  private readonly readerStatements = new Map<string, Database.Statement>();
  private readonly writerStatements = new Map<string, Database.Statement>();
  private queue: Promise<unknown> = Promise.resolve();
  /** Read statements executed (tests assert loaders keep this bounded). */
  readCount = 0;
  readonly webhooks: WebhookStore;

  /** How errors name this store (its path; never anything secret). */
  private readonly label: string;

  private constructor(writer: Db, reader: Db, path: string) {
    this.label = `the SQLite store at ${path}`;
    this.path = path;
    this.writer = writer;
    this.reader = reader;
    this.webhooks = new SqliteWebhooks(this, writer, (sql, ...p) => this.all(sql, ...p));
  }

  static open(path: string): SqliteStore {
    if (path !== ':memory:') {
      // The store holds personal data: what the gateway creates is its owner's alone (folders 0700,
      // the file 0600). SQLite would create the file with the umask's 0644; it accepts an empty file
      // as a new database, and gives its -wal and -shm files the database file's mode. An existing
      // store keeps the mode its operator gave it.
      try {
        mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
      } catch (e) {
        throw new RostergateError('DATA_FOLDER', `cannot create the data folder for ${path}: ${(e as Error).message}`);
      }
      try {
        closeSync(openSync(path, 'wx', 0o600));
      } catch {
        // It exists (a store, or something SQLite will refuse with its own message below), or the
        // folder is not writable: then SQLite cannot create it either, and says so.
      }
    }
    let writer: Db;
    try {
      writer = new Database(path);
      writer.pragma('journal_mode = WAL');
      writer.pragma('synchronous = NORMAL');
      writer.pragma('foreign_keys = ON');
      writer.pragma(`busy_timeout = ${BUSY_TIMEOUT_MS}`);
      tune(writer);
      migrate(writer);
    } catch (e) {
      if (e instanceof RostergateError) throw e;
      throw new RostergateError('DATA_FOLDER', `cannot open the store at ${path}: ${(e as Error).message}`);
    }
    // An in-memory database is private to its connection, so tests read through the writer.
    const reader = path === ':memory:' ? writer : new Database(path, { readonly: true });
    if (reader !== writer) {
      reader.pragma('busy_timeout = 5000');
      tune(reader);
    }
    return new SqliteStore(writer, reader, path);
  }

  async transaction<T>(fn: (tx: StoreTx) => Promise<T>): Promise<T> {
    // One write transaction at a time: chain them, since async work happens between statements.
    const run = this.queue.then(async () => {
      try {
        this.writer.exec('BEGIN IMMEDIATE');
      } catch (e) {
        throw storeConditionError(e, this.label) ?? e;
      }
      try {
        const out = await fn(new SqliteTx(this.writer));
        this.writer.exec('COMMIT');
        return out;
      } catch (e) {
        // SQLite rolls a transaction back itself on some errors (SQLITE_FULL, SQLITE_IOERR): a
        // second ROLLBACK would fail and hide the real error behind "no transaction is active".
        if (this.writer.inTransaction) this.writer.exec('ROLLBACK');
        throw storeConditionError(e, this.label) ?? e;
      }
    });
    this.queue = run.catch(() => undefined);
    return run;
  }

  /**
   * Whether the store can take writes now, cheaply (readiness probes call it): a write in a
   * transaction that is rolled back (a read-only file or mount refuses it at once), then room left —
   * pages below max_page_count plus free pages, and free space on the disk — of at least 1 MiB.
   * The probe does not wait for the write lock: when another process (a `rostergate sync`) holds
   * it, that process is writing, which is answer enough, and /readyz must not stall behind a page.
   */
  async writable(): Promise<void> {
    const probe = this.queue.then(() => {
      this.writer.pragma('busy_timeout = 0');
      try {
        this.writer.exec('BEGIN IMMEDIATE');
      } catch (e) {
        if ((e as { code?: string }).code === 'SQLITE_BUSY') return;
        throw storeConditionError(e, this.label) ?? e;
      } finally {
        this.writer.pragma(`busy_timeout = ${BUSY_TIMEOUT_MS}`);
      }
      try {
        this.writer.prepare(`INSERT INTO meta (key, value) VALUES ('write_probe', ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value`).run(new Date().toISOString());
      } catch (e) {
        throw storeConditionError(e, this.label) ?? e;
      } finally {
        if (this.writer.inTransaction) this.writer.exec('ROLLBACK');
      }
    });
    this.queue = probe.catch(() => undefined);
    await probe;
    const n = (pragma: string) => Number(this.writer.pragma(pragma, { simple: true }));
    let room = (n('max_page_count') - n('page_count') + n('freelist_count')) * n('page_size');
    if (this.path !== ':memory:') {
      const fs = statfsSync(dirname(this.path));
      room = Math.min(room, fs.bavail * fs.bsize);
    }
    if (room < MIN_ROOM_BYTES) throw storeConditionError({ code: 'SQLITE_FULL' }, this.label)!;
  }

  private all<R>(sql: string, ...params: unknown[]): R[] {
    this.readCount++;
    // The reader only while a write transaction is open (its uncommitted rows must not be seen).
    // Otherwise the writer: it sees the same committed state, and its page cache survives its own
    // commits, where the reader's is emptied by every one (each request's audit entry): measured,
    // that tripled the cost of a keyed request's reads (docs/serving.md).
    const db = this.writer.inTransaction ? this.reader : this.writer;
    // Prepared once per connection and text: a request's reads are a few shapes, run again and again.
    const cache = db === this.reader ? this.readerStatements : this.writerStatements;
    let st = cache.get(sql);
    if (!st) {
      // Queries built from filters have a bounded number of shapes; this only guards against a bug.
      if (cache.size >= 1000) cache.clear();
      cache.set(sql, (st = db.prepare(sql)));
    }
    return st.all(...params) as R[];
  }

  async getEntities(ids: readonly string[]): Promise<(EntityRow | undefined)[]> {
    if (ids.length === 0) return [];
    const rows = this.all<RawEntity>(`SELECT * FROM entities WHERE id IN (SELECT value FROM json_each(?))`, JSON.stringify(ids));
    const byId = new Map(rows.map((r) => [r.id, toEntity(r)]));
    return ids.map((id) => byId.get(id));
  }

  async list(q: ListQuery): Promise<ListResult> {
    // Positional parameters: those of the FROM clause (joins) come first, then those of WHERE.
    const joinParams: unknown[] = [];
    const where = ['e.type = ?'];
    const params: unknown[] = [q.type];
    const ordered = q.order && isPseudonymOrdered(q.type) ? pseudonymFrom(q.type) : undefined;
    let from = ordered?.from ?? 'entities e';
    const keys = ordered?.keys ?? ['e.id'];
    if (ordered) {
      where.push('k0.domain = ? AND k0.version = ?');
      params.push(q.order!.domain, q.order!.version);
    }
    if (q.linkedTo) {
      from += ' JOIN links l ON l.from_id = e.id AND l.rel = ? AND l.to_id = ?';
      joinParams.push(q.linkedTo.rel, q.linkedTo.to);
    }
    // A purpose's updatedSince compares the last change it could see (entity_views), not the entity's own.
    const byView = q.updatedSince !== undefined && q.view !== undefined;
    if (byView) {
      from += ' JOIN entity_views v ON v.view = ? AND v.type = ? AND v.entity_id = e.id';
      joinParams.push(q.view, q.type);
      where.push('v.updated_at >= ?');
      params.push(q.updatedSince);
    } else if (q.updatedSince) {
      where.push('e.updated_at >= ?');
      params.push(q.updatedSince);
    }
    params.unshift(...joinParams);
    if (q.hasValue) {
      where.push(`EXISTS (SELECT 1 FROM json_each(e.data, ?) WHERE value = ?)`);
      params.push(`$.${q.hasValue.field}`, q.hasValue.value);
    }
    if (q.fieldEquals) {
      where.push(`json_extract(e.data, ?) = ?`);
      params.push(`$.${q.fieldEquals.field}`, q.fieldEquals.value);
    }
    // Counted only when asked (totalCount): a count per page would make paging a large list quadratic.
    const countSql = `SELECT count(*) AS n FROM ${from} WHERE ${where.join(' AND ')}`;
    const countParams = [...params];
    const count = async () => this.all<{ n: number }>(countSql, ...countParams)[0]!.n;
    if (ordered && q.afterKey) {
      // The leading part as a plain range too, so the scan starts there in the pseudonyms index.
      where.push(`k0.value >= ? AND (${keys.join(', ')}) > (${keys.map(() => '?').join(', ')})`);
      params.push(q.afterKey[0], ...q.afterKey);
    } else if (!ordered && q.afterId) {
      where.push('e.id > ?');
      params.push(q.afterId);
    }
    const rows = this.all<RawEntity & Partial<RawViewTime> & Record<`sk${number}`, string>>(
      `SELECT e.*${byView ? ', v.updated_at AS view_at, v.updated_seq AS view_seq' : ''}${ordered ? keys.map((k, i) => `, ${k} AS sk${i}`).join('') : ''}
       FROM ${from} WHERE ${where.join(' AND ')} ORDER BY ${keys.join(', ')} LIMIT ?`,
      ...params,
      q.first + 1,
    );
    const page = rows.slice(0, q.first);
    const times = byView ? new Map(page.map((r) => [r.id, { updatedAt: r.view_at!, updatedSeq: r.view_seq! }])) : undefined;
    return {
      rows: page.map(toEntity), hasNext: rows.length > q.first, count,
      ...(times ? { times } : {}),
      ...(ordered ? { keys: page.map((r) => keys.map((_, i) => r[`sk${i}`]!)) } : {}),
    };
  }

  async linkedFrom(rel: string, toIds: readonly string[]): Promise<Map<string, string[]>> {
    const out = new Map<string, string[]>(toIds.map((id) => [id, []]));
    if (toIds.length === 0) return out;
    const rows = this.all<{ from_id: string; to_id: string }>(
      `SELECT from_id, to_id FROM links WHERE rel = ? AND to_id IN (SELECT value FROM json_each(?)) ORDER BY from_id`,
      rel,
      JSON.stringify(toIds),
    );
    for (const r of rows) out.get(r.to_id)!.push(r.from_id);
    return out;
  }

  async sourcesOf(entityIds: readonly string[]) {
    const out = new Map<string, { source: string; key: string; lastModified: string | null }[]>(entityIds.map((id) => [id, []]));
    if (entityIds.length === 0) return out;
    const rows = this.all<{ entity_id: string; source: string; key: string; last_modified: string | null }>(
      `SELECT entity_id, source, key, last_modified FROM source_records WHERE entity_id IN (SELECT value FROM json_each(?)) ORDER BY source, key`,
      JSON.stringify(entityIds),
    );
    for (const r of rows) out.get(r.entity_id)?.push({ source: r.source, key: r.key, lastModified: r.last_modified });
    return out;
  }

  async getSyncState(source: string): Promise<SyncStateRow | undefined> {
    const r = this.all<RawSync>(`SELECT * FROM sync_state WHERE source = ?`, source)[0];
    return r && toSync(r);
  }

  async changes(q: { afterSeq: number; limit: number; types?: EntityType[] }): Promise<ChangeRow[]> {
    const types = q.types ?? [...ENTITY_TYPES];
    return this.all<RawChange>(
      `SELECT * FROM change_log WHERE seq > ? AND type IN (SELECT value FROM json_each(?)) ORDER BY seq LIMIT ?`,
      q.afterSeq,
      JSON.stringify(types),
      q.limit,
    ).map(toChange);
  }

  async tombstones(ids: readonly string[]): Promise<EntityRow[]> {
    if (ids.length === 0) return [];
    return this.all<RawChange>(
      `SELECT c.* FROM change_log c JOIN (SELECT entity_id, max(seq) AS seq FROM change_log
         WHERE entity_id IN (SELECT value FROM json_each(?)) AND op = 'deleted' GROUP BY entity_id) d ON d.seq = c.seq`,
      JSON.stringify(ids),
    ).map((r) => tombstoneOf(toChange(r)));
  }

  async oldestChangeSeq(): Promise<number | undefined> {
    return this.all<{ s: number | null }>(`SELECT min(seq) AS s FROM change_log`)[0]?.s ?? undefined;
  }

  async headSeq(): Promise<number> {
    // A log purged to nothing still has a head: the last change it held (seqs are never reused).
    return this.all<{ s: number | null }>(
      `SELECT coalesce((SELECT max(seq) FROM change_log), (SELECT CAST(value AS INTEGER) FROM meta WHERE key = 'change_log_purged_through'), 0) AS s`,
    )[0]?.s ?? 0;
  }

  async purgedThroughSeq(): Promise<number> {
    return Number(this.all<{ value: string }>(`SELECT value FROM meta WHERE key = 'change_log_purged_through'`)[0]?.value ?? 0);
  }

  async purgeChanges(beforeIso: string): Promise<number> {
    return this.transaction(async () => {
      const last = (this.writer.prepare(`SELECT max(seq) AS s FROM change_log WHERE at < ?`).get(beforeIso) as { s: number | null }).s;
      if (last === null) return 0;
      const n = this.writer.prepare(`DELETE FROM change_log WHERE seq <= ?`).run(last).changes;
      this.writer
        .prepare(`INSERT INTO meta (key, value) VALUES ('change_log_purged_through', ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value`)
        .run(String(last));
      return n;
    });
  }

  async initMeta(key: string, value: string): Promise<string> {
    return this.transaction(async () => {
      this.writer.prepare(`INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO NOTHING`).run(key, value);
      return (this.writer.prepare(`SELECT value FROM meta WHERE key = ?`).get(key) as { value: string }).value;
    });
  }

  async meta(key: string): Promise<string | undefined> {
    return this.all<{ value: string }>(`SELECT value FROM meta WHERE key = ?`, key)[0]?.value;
  }

  async conflicts(): Promise<IdentityConflict[]> {
    return this.all<{ id: number; at: string; source: string; type: EntityType; key: string; reason: string; candidates: string; resolved_at: string | null; resolution: string | null }>(
      `SELECT * FROM identity_conflicts ORDER BY id`,
    ).map(({ resolved_at, ...r }) => ({ ...r, candidates: JSON.parse(r.candidates) as string[], resolvedAt: resolved_at }));
  }

  async counts(): Promise<Record<EntityType, number>> {
    const rows = this.all<{ type: EntityType; n: number }>(`SELECT type, count(*) AS n FROM entities GROUP BY type`);
    const out = Object.fromEntries(ENTITY_TYPES.map((t) => [t, 0])) as Record<EntityType, number>;
    for (const r of rows) out[r.type] = r.n;
    return out;
  }

  async addApiKey(hash: string, client: string, at: string) {
    await this.transaction(async () => {
      this.writer.prepare(`INSERT INTO api_keys (hash, client, created_at) VALUES (?, ?, ?)`).run(hash, client, at);
    });
  }

  async findApiKey(hash: string) {
    const r = this.all<{ client: string; revoked_at: string | null }>(`SELECT client, revoked_at FROM api_keys WHERE hash = ?`, hash)[0];
    return r && { client: r.client, revokedAt: r.revoked_at };
  }

  async revokeApiKeys(client: string, at: string) {
    return this.transaction(async () =>
      this.writer.prepare(`UPDATE api_keys SET revoked_at = ? WHERE client = ? AND revoked_at IS NULL`).run(at, client).changes,
    );
  }

  async listApiKeys() {
    return this.all<{ client: string; hash: string; created_at: string; revoked_at: string | null }>(
      `SELECT client, hash, created_at, revoked_at FROM api_keys ORDER BY client, created_at`,
    ).map((r) => ({ client: r.client, hashPrefix: r.hash.slice(0, 8), createdAt: r.created_at, revokedAt: r.revoked_at }));
  }

  async domainVersion(domain: string) {
    return this.all<{ version: number }>(`SELECT version FROM pseudonym_domains WHERE domain = ?`, domain)[0]?.version;
  }

  async pseudonymsOf(domain: string, version: number, entityIds: readonly string[]) {
    const out = new Map<string, string>();
    if (entityIds.length === 0) return out;
    for (const r of this.all<{ entity_id: string; value: string }>(
      `SELECT entity_id, value FROM pseudonyms WHERE domain = ? AND version = ? AND entity_id IN (SELECT value FROM json_each(?))`,
      domain, version, JSON.stringify(entityIds),
    )) out.set(r.entity_id, r.value);
    return out;
  }

  async entityByPseudonym(domain: string, value: string) {
    return this.all<{ entity_id: string }>(`SELECT entity_id FROM pseudonyms WHERE domain = ? AND value = ?`, domain, value)[0]?.entity_id;
  }

  async peopleWithoutPseudonym(domain: string, version: number, limit: number) {
    return this.all<{ id: string }>(
      `SELECT e.id FROM entities e WHERE e.type = 'person' AND NOT EXISTS
         (SELECT 1 FROM pseudonyms p WHERE p.domain = ? AND p.version = ? AND p.entity_id = e.id) ORDER BY e.id LIMIT ?`,
      domain, version, limit,
    ).map((r) => r.id);
  }

  async viewTimes(view: string, entityIds: readonly string[]) {
    const out = new Map<string, ViewTime>();
    if (entityIds.length === 0) return out;
    for (const r of this.all<{ entity_id: string; view_at: string; view_seq: number }>(
      `SELECT entity_id, updated_at AS view_at, updated_seq AS view_seq FROM entity_views WHERE view = ? AND entity_id IN (SELECT value FROM json_each(?))`,
      view, JSON.stringify(entityIds),
    )) out.set(r.entity_id, { updatedAt: r.view_at, updatedSeq: r.view_seq });
    return out;
  }

  async viewFingerprints() {
    return new Map(this.all<{ view: string; fingerprint: string }>(`SELECT view, fingerprint FROM view_fingerprints`).map((r) => [r.view, r.fingerprint]));
  }

  async personIds(afterId: string | undefined, limit: number) {
    return this.all<{ id: string }>(`SELECT id FROM entities WHERE type = 'person' AND id > ? ORDER BY id LIMIT ?`, afterId ?? '', limit).map((r) => r.id);
  }

  async auditEntries(q: { afterSeq?: number; limit?: number }) {
    return this.all<RawAudit>(`SELECT * FROM audit_log WHERE seq > ? ORDER BY seq LIMIT ?`, q.afterSeq ?? 0, q.limit ?? 1_000_000).map(toAudit);
  }

  async disclosuresOf(entityId: string) {
    return this.all<{ client: string; first_at: string; last_at: string }>(
      `SELECT client, first_at, last_at FROM disclosures WHERE entity_id = ? ORDER BY client`, entityId,
    ).map((r) => ({ client: r.client, firstAt: r.first_at, lastAt: r.last_at }));
  }

  async entityOfRecord(r: SourceRecordRef) {
    return this.all<{ entity_id: string | null }>(`SELECT entity_id FROM source_records WHERE source = ? AND type = ? AND key = ?`, r.source, r.type, r.key)[0]?.entity_id ?? undefined;
  }

  async subjectRows(entityIds: readonly string[]): Promise<SubjectRows> {
    const ids = JSON.stringify(entityIds);
    const among = `(SELECT value FROM json_each(?))`;
    return {
      sourceRecords: this.all<RawSource>(`SELECT * FROM source_records WHERE entity_id IN ${among} ORDER BY source, type, key`, ids).map(toSource),
      matchKeys: this.all<{ entity_id: string; kind: string; value: string }>(
        `SELECT entity_id, kind, value FROM match_keys WHERE entity_id IN ${among} ORDER BY entity_id, kind, value`, ids,
      ).map((r) => ({ entityId: r.entity_id, kind: r.kind, value: r.value })),
      pseudonyms: this.all<{ entity_id: string; domain: string; version: number; value: string; current: number }>(
        `SELECT p.entity_id, p.domain, p.version, p.value, (d.version = p.version) AS current FROM pseudonyms p
         LEFT JOIN pseudonym_domains d ON d.domain = p.domain WHERE p.entity_id IN ${among} ORDER BY p.domain, p.version, p.entity_id`, ids,
      ).map((r) => ({ entityId: r.entity_id, domain: r.domain, version: r.version, value: r.value, current: r.current === 1 })),
      overrides: this.all<{ source: string; type: EntityType; key: string; entity_id: string; decided_at: string }>(
        `SELECT * FROM identity_overrides WHERE entity_id IN ${among} ORDER BY source, type, key`, ids,
      ).map((r) => ({ source: r.source, type: r.type, key: r.key, entityId: r.entity_id, decidedAt: r.decided_at })),
      changes: this.all<RawChange>(`SELECT * FROM change_log WHERE entity_id IN ${among} ORDER BY seq`, ids).map((r) => {
        const { before: _before, ...c } = toChange(r);
        return c;
      }),
      disclosures: this.all<{ entity_id: string; client: string; first_at: string; last_at: string }>(
        `SELECT entity_id, client, first_at, last_at FROM disclosures WHERE entity_id IN ${among} ORDER BY client, entity_id`, ids,
      ).map((r) => ({ entityId: r.entity_id, client: r.client, firstAt: r.first_at, lastAt: r.last_at })),
    };
  }

  async close(): Promise<void> {
    await this.queue;
    if (this.reader !== this.writer) this.reader.close();
    this.writer.close();
  }
}

interface RawDelivery {
  id: number; webhook_id: string; seq: number; msg_id: string; event_type: string; payload: string; status: DeliveryRow['status'];
  attempts: number; next_attempt_at: string; last_status: number | null; last_error: string | null; created_at: string; delivered_at: string | null;
}
const toDelivery = (r: RawDelivery): DeliveryRow => ({
  id: r.id, webhookId: r.webhook_id, seq: r.seq, msgId: r.msg_id, eventType: r.event_type, payload: r.payload, status: r.status,
  attempts: r.attempts, nextAttemptAt: r.next_attempt_at, lastStatus: r.last_status, lastError: r.last_error, createdAt: r.created_at, deliveredAt: r.delivered_at,
});
interface RawWebhook { id: string; client: string; url: string; events: string; secret: string; cursor_seq: number; created_at: string }
const toWebhook = (r: RawWebhook): WebhookRow => ({
  id: r.id, client: r.client, url: r.url, events: JSON.parse(r.events), secret: r.secret, cursorSeq: r.cursor_seq, createdAt: r.created_at,
});

class SqliteWebhooks implements WebhookStore {
  constructor(
    private readonly store: SqliteStore,
    private readonly writer: Db,
    private readonly all: <R>(sql: string, ...p: unknown[]) => R[],
  ) {}

  private write<T>(fn: () => T): Promise<T> {
    return this.store.transaction(async () => fn());
  }

  create(w: WebhookRow) {
    return this.write(() => {
      this.writer.prepare(`INSERT INTO webhooks (id, client, url, events, secret, cursor_seq, created_at) VALUES (?, ?, ?, ?, ?, ?, ?)`)
        .run(w.id, w.client, w.url, JSON.stringify(w.events), w.secret, w.cursorSeq, w.createdAt);
    });
  }
  async list() {
    return this.all<RawWebhook>(`SELECT * FROM webhooks ORDER BY created_at, id`).map(toWebhook);
  }
  async get(id: string) {
    const r = this.all<RawWebhook>(`SELECT * FROM webhooks WHERE id = ?`, id)[0];
    return r && toWebhook(r);
  }
  delete(id: string) {
    return this.write(() => {
      this.writer.prepare(`DELETE FROM webhook_deliveries WHERE webhook_id = ?`).run(id);
      return this.writer.prepare(`DELETE FROM webhooks WHERE id = ?`).run(id).changes > 0;
    });
  }
  setCursor(id: string, seq: number) {
    return this.write(() => void this.writer.prepare(`UPDATE webhooks SET cursor_seq = ? WHERE id = ?`).run(seq, id));
  }
  enqueue(id: string, ds: Parameters<WebhookStore['enqueue']>[1], fromSeq: number, toSeq: number) {
    return this.write(() => {
      const moved = this.writer.prepare(`UPDATE webhooks SET cursor_seq = ? WHERE id = ? AND cursor_seq = ?`).run(toSeq, id, fromSeq).changes > 0;
      if (!moved) return false;
      const ins = this.writer.prepare(`INSERT INTO webhook_deliveries (webhook_id, seq, msg_id, event_type, payload, status, next_attempt_at, created_at)
        VALUES (?, ?, ?, ?, ?, 'pending', ?, ?)`);
      for (const d of ds) ins.run(id, d.seq, d.msgId, d.eventType, d.payload, d.nextAttemptAt, d.createdAt);
      return true;
    });
  }
  async nextPending(id: string) {
    const r = this.all<RawDelivery>(`SELECT * FROM webhook_deliveries WHERE webhook_id = ? AND status = 'pending' ORDER BY id LIMIT 1`, id)[0];
    return r && toDelivery(r);
  }
  update(d: Parameters<WebhookStore['update']>[0]) {
    return this.write(() => {
      this.writer.prepare(`UPDATE webhook_deliveries SET status = ?, attempts = ?, next_attempt_at = ?, last_status = ?, last_error = ?, delivered_at = ? WHERE id = ?`)
        .run(d.status, d.attempts, d.nextAttemptAt, d.lastStatus, d.lastError, d.deliveredAt, d.id);
    });
  }
  async deliveries(id: string, status?: DeliveryRow['status'], limit = 100) {
    return this.all<RawDelivery>(
      `SELECT * FROM webhook_deliveries WHERE webhook_id = ? AND (? IS NULL OR status = ?) ORDER BY id DESC LIMIT ?`, id, status ?? null, status ?? null, limit,
    ).map(toDelivery);
  }
  async counts(id: string) {
    const out = { pending: 0, delivered: 0, dead: 0 };
    for (const r of this.all<{ status: DeliveryRow['status']; n: number }>(`SELECT status, count(*) AS n FROM webhook_deliveries WHERE webhook_id = ? GROUP BY status`, id)) out[r.status] = r.n;
    return out;
  }
  retryDead(id: string, at: string) {
    return this.write(() =>
      this.writer.prepare(`UPDATE webhook_deliveries SET status = 'pending', attempts = 0, next_attempt_at = ? WHERE webhook_id = ? AND status = 'dead'`).run(at, id).changes,
    );
  }
  async seqAt(iso: string) {
    return this.all<{ s: number | null }>(`SELECT min(seq) AS s FROM change_log WHERE at >= ?`, iso)[0]?.s ?? (await this.store.headSeq()) + 1;
  }
}

interface RawAudit {
  seq: number; at: string; client: string; purpose: string; kind: string; operation: string | null; operation_hash: string | null;
  categories: string; fields: string; people: number; prev_hash: string; hash: string;
}
const toAudit = (r: RawAudit): AuditRow & { seq: number } => ({
  seq: r.seq, at: r.at, client: r.client, purpose: r.purpose, kind: r.kind, operation: r.operation, operationHash: r.operation_hash,
  categories: JSON.parse(r.categories), fields: JSON.parse(r.fields), people: r.people, prevHash: r.prev_hash, hash: r.hash,
});

class SqliteTx implements StoreTx {
  private stmts = new Map<string, Database.Statement>();
  constructor(private readonly db: Db) {}

  private st(sql: string): Database.Statement {
    let s = this.stmts.get(sql);
    if (!s) {
      s = this.db.prepare(sql);
      this.stmts.set(sql, s);
    }
    return s;
  }

  async getSourceRecord(source: string, type: EntityType, key: string) {
    const r = this.st(`SELECT * FROM source_records WHERE source = ? AND type = ? AND key = ?`).get(source, type, key) as RawSource | undefined;
    return r && toSource(r);
  }

  async putSourceRecord(r: SourceRecordRow) {
    this.st(
      `INSERT INTO source_records (source, type, key, entity_id, data, hash, last_modified, seen_run)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?)
       ON CONFLICT (source, type, key) DO UPDATE SET entity_id = excluded.entity_id, data = excluded.data,
         hash = excluded.hash, last_modified = excluded.last_modified, seen_run = excluded.seen_run`,
    ).run(r.source, r.type, r.key, r.entityId, JSON.stringify(r.data), r.hash, r.lastModified, r.seenRun);
  }

  async deleteSourceRecord(source: string, type: EntityType, key: string) {
    this.st(`DELETE FROM source_records WHERE source = ? AND type = ? AND key = ?`).run(source, type, key);
  }

  async sourceRecordsOf(entityId: string) {
    return (this.st(`SELECT * FROM source_records WHERE entity_id = ?`).all(entityId) as RawSource[]).map(toSource);
  }

  async unseenSourceRecords(source: string, types: EntityType[], runId: number) {
    return this.st(
      `SELECT type, key FROM source_records WHERE source = ? AND type IN (SELECT value FROM json_each(?)) AND seen_run <> ? ORDER BY type, key`,
    ).all(source, JSON.stringify(types), runId) as { type: EntityType; key: string }[];
  }

  async countSourceRecords(source: string, types: EntityType[]) {
    return (this.st(`SELECT count(*) AS n FROM source_records WHERE source = ? AND type IN (SELECT value FROM json_each(?))`).get(
      source,
      JSON.stringify(types),
    ) as { n: number }).n;
  }

  async pendingSourceRecords(source: string) {
    return (this.st(`SELECT * FROM source_records WHERE source = ? AND entity_id IS NULL`).all(source) as RawSource[]).map(toSource);
  }

  async resolveKey(source: string, type: EntityType, key: string) {
    const r = this.st(`SELECT entity_id FROM source_records WHERE source = ? AND type = ? AND key = ?`).get(source, type, key) as
      | { entity_id: string | null }
      | undefined;
    return r?.entity_id ?? undefined;
  }

  async getEntity(id: string) {
    const r = this.st(`SELECT * FROM entities WHERE id = ?`).get(id) as RawEntity | undefined;
    return r && toEntity(r);
  }

  async putEntity(r: { id: string; type: EntityType; data: unknown; updatedAt: string; updatedSeq: number }) {
    this.st(
      `INSERT INTO entities (id, type, data, updated_at, updated_seq) VALUES (?, ?, ?, ?, ?)
       ON CONFLICT (id) DO UPDATE SET data = excluded.data, updated_at = excluded.updated_at, updated_seq = excluded.updated_seq`,
    ).run(r.id, r.type, JSON.stringify(r.data), r.updatedAt, r.updatedSeq);
  }

  async deleteEntity(id: string) {
    this.st(`DELETE FROM links WHERE from_id = ?`).run(id);
    this.st(`DELETE FROM match_keys WHERE entity_id = ?`).run(id);
    this.st(`DELETE FROM pseudonyms WHERE entity_id = ?`).run(id);
    this.st(`DELETE FROM entity_views WHERE entity_id = ?`).run(id);
    this.st(`DELETE FROM entities WHERE id = ?`).run(id);
  }

  async setLinks(fromId: string, links: { rel: string; to: string }[]) {
    this.st(`DELETE FROM links WHERE from_id = ?`).run(fromId);
    const ins = this.st(`INSERT OR IGNORE INTO links (from_id, rel, to_id) VALUES (?, ?, ?)`);
    for (const l of links) ins.run(fromId, l.rel, l.to);
  }

  async linksTo(rel: string, toId: string) {
    return (this.st(`SELECT from_id FROM links WHERE rel = ? AND to_id = ? ORDER BY from_id`).all(rel, toId) as { from_id: string }[]).map((r) => r.from_id);
  }

  async appendChange(c: Omit<ChangeRow, 'seq'>) {
    const info = this.st(`INSERT INTO change_log (at, entity_id, type, op, fields, source, before, generalised) VALUES (?, ?, ?, ?, ?, ?, ?, ?)`).run(
      c.at,
      c.entityId,
      c.type,
      c.op,
      JSON.stringify(c.fields),
      c.source,
      c.before === undefined ? null : JSON.stringify(c.before),
      c.generalised === undefined ? null : JSON.stringify(c.generalised),
    );
    return Number(info.lastInsertRowid);
  }

  async changesOf(entityIds: readonly string[]) {
    if (entityIds.length === 0) return [];
    return (this.st(`SELECT * FROM change_log WHERE entity_id IN (SELECT value FROM json_each(?)) ORDER BY seq`).all(JSON.stringify(entityIds)) as RawChange[]).map(toChange);
  }

  async changeHorizon() {
    const r = (this.st(`SELECT at AS updatedAt, seq AS updatedSeq FROM change_log ORDER BY seq LIMIT 1`).get() ??
      this.st(`SELECT updated_at AS updatedAt, updated_seq AS updatedSeq FROM entities ORDER BY updated_seq DESC LIMIT 1`).get()) as ViewTime | undefined;
    return r;
  }

  async putViewTimes(rows: ViewTimeRow[]) {
    const up = this.st(`INSERT INTO entity_views (view, entity_id, type, updated_at, updated_seq) VALUES (?, ?, ?, ?, ?)
      ON CONFLICT (entity_id, view) DO UPDATE SET type = excluded.type, updated_at = excluded.updated_at, updated_seq = excluded.updated_seq`);
    for (const r of rows) up.run(r.view, r.entityId, r.type, r.updatedAt, r.updatedSeq);
  }

  async entitiesForView(view: string, types: EntityType[], q: { afterId?: string; limit: number; missingOnly: boolean }) {
    return this.st(
      `SELECT e.id, e.type FROM entities e WHERE e.type IN (SELECT value FROM json_each(?)) AND e.id > ?
         AND (? = 0 OR NOT EXISTS (SELECT 1 FROM entity_views v WHERE v.view = ? AND v.entity_id = e.id)) ORDER BY e.id LIMIT ?`,
    ).all(JSON.stringify(types), q.afterId ?? '', q.missingOnly ? 1 : 0, view, q.limit) as { id: string; type: EntityType }[];
  }

  async deleteViewTimesExcept(view: string, keep: EntityType[]) {
    return this.st(`DELETE FROM entity_views WHERE view = ? AND type NOT IN (SELECT value FROM json_each(?))`).run(view, JSON.stringify(keep)).changes;
  }

  async dropView(view: string) {
    this.st(`DELETE FROM entity_views WHERE view = ?`).run(view);
    this.st(`DELETE FROM view_fingerprints WHERE view = ?`).run(view);
  }

  async setViewFingerprint(view: string, fingerprint: string, at: string) {
    this.st(`INSERT INTO view_fingerprints (view, fingerprint, built_at) VALUES (?, ?, ?)
      ON CONFLICT (view) DO UPDATE SET fingerprint = excluded.fingerprint, built_at = excluded.built_at`).run(view, fingerprint, at);
  }

  async findByMatchKey(kind: string, value: string) {
    return (this.st(`SELECT entity_id FROM match_keys WHERE kind = ? AND value = ? ORDER BY entity_id`).all(kind, value) as { entity_id: string }[]).map(
      (r) => r.entity_id,
    );
  }

  async setMatchKeys(entityId: string, keys: { kind: string; value: string }[]) {
    this.st(`DELETE FROM match_keys WHERE entity_id = ?`).run(entityId);
    const ins = this.st(`INSERT OR IGNORE INTO match_keys (kind, value, entity_id) VALUES (?, ?, ?)`);
    for (const k of keys) ins.run(k.kind, k.value, entityId);
  }

  async addConflict(c: Omit<IdentityConflict, 'id' | 'resolvedAt' | 'resolution'>) {
    this.st(
      `INSERT INTO identity_conflicts (at, source, type, key, reason, candidates) VALUES (?, ?, ?, ?, ?, ?)
       ON CONFLICT (source, type, key, reason) DO UPDATE SET at = excluded.at, candidates = excluded.candidates, resolved_at = NULL, resolution = NULL`,
    ).run(c.at, c.source, c.type, c.key, c.reason, JSON.stringify(c.candidates));
  }

  async resolveConflicts(r: SourceRecordRef, resolution: string, at: string) {
    return this.st(`UPDATE identity_conflicts SET resolved_at = ?, resolution = ? WHERE source = ? AND type = ? AND key = ? AND resolved_at IS NULL`)
      .run(at, resolution, r.source, r.type, r.key).changes;
  }

  async identityOverride(r: SourceRecordRef) {
    return (this.st(`SELECT entity_id FROM identity_overrides WHERE source = ? AND type = ? AND key = ?`).get(r.source, r.type, r.key) as { entity_id: string } | undefined)?.entity_id;
  }

  async setIdentityOverride(r: SourceRecordRef, entityId: string, at: string) {
    this.st(`INSERT INTO identity_overrides (source, type, key, entity_id, decided_at) VALUES (?, ?, ?, ?, ?)
      ON CONFLICT (source, type, key) DO UPDATE SET entity_id = excluded.entity_id, decided_at = excluded.decided_at`).run(r.source, r.type, r.key, entityId, at);
  }

  async getDomainVersion(domain: string) {
    return (this.st(`SELECT version FROM pseudonym_domains WHERE domain = ?`).get(domain) as { version: number } | undefined)?.version;
  }

  async setDomainVersion(domain: string, version: number, at: string) {
    this.st(`INSERT INTO pseudonym_domains (domain, version, rotated_at) VALUES (?, ?, ?)
      ON CONFLICT (domain) DO UPDATE SET version = excluded.version, rotated_at = excluded.rotated_at`).run(domain, version, at);
  }

  async putPseudonyms(rows: { domain: string; version: number; entityId: string; value: string }[]) {
    const ins = this.st(`INSERT OR REPLACE INTO pseudonyms (domain, version, entity_id, value) VALUES (?, ?, ?, ?)`);
    for (const r of rows) ins.run(r.domain, r.version, r.entityId, r.value);
  }

  async deletePseudonyms(domain: string, version: number) {
    return this.st(`DELETE FROM pseudonyms WHERE domain = ? AND version = ?`).run(domain, version).changes;
  }

  async personTombstones(afterSeq: number, limit: number) {
    const rows = this.st(
      `SELECT seq, entity_id, json_extract(before, '$._pseudonyms') AS p FROM change_log WHERE op = 'deleted' AND type = 'person' AND seq > ? ORDER BY seq LIMIT ?`,
    ).all(afterSeq, limit) as { seq: number; entity_id: string; p: string | null }[];
    return rows.map((r) => ({ seq: r.seq, entityId: r.entity_id, pseudonyms: r.p ? (JSON.parse(r.p) as Record<string, string>) : {} }));
  }

  async setTombstonePseudonyms(seq: number, pseudonyms: Record<string, string>) {
    this.st(`UPDATE change_log SET before = json_set(before, '$._pseudonyms', json(?)) WHERE seq = ? AND op = 'deleted'`).run(JSON.stringify(pseudonyms), seq);
  }

  async pseudonymsOfEntity(entityId: string) {
    // The current version of each domain: what the domain's clients know the person by.
    const rows = this.st(
      `SELECT p.domain, p.value FROM pseudonyms p JOIN pseudonym_domains d ON d.domain = p.domain AND d.version = p.version WHERE p.entity_id = ?`,
    ).all(entityId) as { domain: string; value: string }[];
    return Object.fromEntries(rows.map((r) => [r.domain, r.value]));
  }

  async lastAudit() {
    return this.st(`SELECT seq, hash FROM audit_log ORDER BY seq DESC LIMIT 1`).get() as { seq: number; hash: string } | undefined;
  }

  async purgeChangesBefore(beforeIso: string) {
    const last = (this.st(`SELECT max(seq) AS s FROM change_log WHERE at < ?`).get(beforeIso) as { s: number | null }).s;
    if (last === null) return 0;
    const n = this.st(`DELETE FROM change_log WHERE seq <= ?`).run(last).changes;
    this.st(`INSERT INTO meta (key, value) VALUES ('change_log_purged_through', ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value`).run(String(last));
    return n;
  }

  async purgeWebhookDeliveriesBefore(beforeIso: string) {
    return this.st(`DELETE FROM webhook_deliveries WHERE status <> 'pending' AND coalesce(delivered_at, created_at) < ?`).run(beforeIso).changes;
  }

  async auditLastBefore(beforeIso: string) {
    return this.st(`SELECT seq, hash FROM audit_log WHERE seq = (SELECT max(seq) FROM audit_log WHERE at < ?)`).get(beforeIso) as { seq: number; hash: string } | undefined;
  }

  async deleteAuditThrough(seq: number) {
    // DDL is transactional in SQLite: should anything below fail, the rollback restores the trigger too.
    this.db.exec(`DROP TRIGGER audit_log_no_delete`);
    const n = this.db.prepare(`DELETE FROM audit_log WHERE seq <= ?`).run(seq).changes;
    this.db.exec(`CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log BEGIN SELECT RAISE(ABORT, 'audit log is append-only'); END`);
    return n;
  }

  async insertAudit(r: AuditRow) {
    return Number(
      this.st(`INSERT INTO audit_log (at, client, purpose, kind, operation, operation_hash, categories, fields, people, prev_hash, hash)
        VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`).run(
        r.at, r.client, r.purpose, r.kind, r.operation, r.operationHash, JSON.stringify(r.categories), JSON.stringify(r.fields), r.people, r.prevHash, r.hash,
      ).lastInsertRowid,
    );
  }

  async recordDisclosures(client: string, entityIds: string[], at: string) {
    const up = this.st(`INSERT INTO disclosures (client, entity_id, first_at, last_at) VALUES (?, ?, ?, ?)
      ON CONFLICT (client, entity_id) DO UPDATE SET last_at = excluded.last_at`);
    for (const id of entityIds) up.run(client, id, at, at);
  }

  async transferDisclosures(fromId: string, toId: string, mode: 'move' | 'copy') {
    this.st(`INSERT INTO disclosures (client, entity_id, first_at, last_at) SELECT client, ?, first_at, last_at FROM disclosures WHERE entity_id = ?
      ON CONFLICT (client, entity_id) DO UPDATE SET first_at = min(first_at, excluded.first_at), last_at = max(last_at, excluded.last_at)`).run(toId, fromId);
    if (mode === 'move') this.st(`DELETE FROM disclosures WHERE entity_id = ?`).run(fromId);
  }

  async isSuppressed(source: string, type: EntityType, keyHash: string) {
    return !!this.st(`SELECT 1 FROM suppressions WHERE source = ? AND type = ? AND key_hash = ?`).get(source, type, keyHash);
  }

  async addSuppressions(rows: SuppressionRow[]) {
    const ins = this.st(`INSERT OR IGNORE INTO suppressions (source, type, key_hash, erasure, created_at) VALUES (?, ?, ?, ?, ?)`);
    for (const r of rows) ins.run(r.source, r.type, r.keyHash, r.erasure, r.createdAt);
  }

  async liftSuppression(source: string, type: EntityType, keyHash: string) {
    const r = this.st(`SELECT erasure FROM suppressions WHERE source = ? AND type = ? AND key_hash = ?`).get(source, type, keyHash) as { erasure: string } | undefined;
    if (!r) return 0;
    return this.st(`DELETE FROM suppressions WHERE erasure = ?`).run(r.erasure).changes;
  }

  async eraseTraces(entityIds: readonly string[], pseudonyms: readonly string[]) {
    for (const id of entityIds) {
      this.st(`DELETE FROM links WHERE from_id = ? OR to_id = ?`).run(id, id);
      for (const t of ['match_keys', 'pseudonyms', 'entity_views', 'identity_overrides', 'disclosures']) this.st(`DELETE FROM ${t} WHERE entity_id = ?`).run(id);
      this.st(`DELETE FROM change_log WHERE entity_id = ? OR instr(coalesce(before, ''), ?) > 0`).run(id, id);
      this.st(`DELETE FROM identity_conflicts WHERE instr(candidates, ?) > 0`).run(id);
    }
    // Payloads name a person by gateway id or by pseudonym, as the client's purpose sees them.
    for (const v of [...entityIds, ...pseudonyms]) this.st(`DELETE FROM webhook_deliveries WHERE instr(payload, ?) > 0`).run(v);
  }

  async addDeliveries(ds: Parameters<StoreTx['addDeliveries']>[0]) {
    const ins = this.st(`INSERT INTO webhook_deliveries (webhook_id, seq, msg_id, event_type, payload, status, next_attempt_at, created_at)
      VALUES (?, ?, ?, ?, ?, 'pending', ?, ?)`);
    for (const d of ds) ins.run(d.webhookId, d.seq, d.msgId, d.eventType, d.payload, d.nextAttemptAt, d.createdAt);
  }

  async setSyncState(r: SyncStateRow) {
    this.st(
      `INSERT INTO sync_state (source, state, run_id, run_status, run_full, started_at, updated_at, error)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?)
       ON CONFLICT (source) DO UPDATE SET state = excluded.state, run_id = excluded.run_id, run_status = excluded.run_status,
         run_full = excluded.run_full, started_at = excluded.started_at, updated_at = excluded.updated_at, error = excluded.error`,
    ).run(r.source, JSON.stringify(r.state), r.runId, r.runStatus, r.runFull ? 1 : 0, r.startedAt, r.updatedAt, r.error);
  }

  async getLease(key: string): Promise<LeaseRow | undefined> {
    return this.st(
      `SELECT key, token, holder_host AS holderHost, holder_pid AS holderPid, acquired_at AS acquiredAt, heartbeat_at AS heartbeatAt, expires_at AS expiresAt
       FROM sync_leases WHERE key = ?`,
    ).get(key) as LeaseRow | undefined;
  }

  async putLease(l: LeaseRow) {
    this.st(
      `INSERT INTO sync_leases (key, token, holder_host, holder_pid, acquired_at, heartbeat_at, expires_at) VALUES (?, ?, ?, ?, ?, ?, ?)
       ON CONFLICT (key) DO UPDATE SET token = excluded.token, holder_host = excluded.holder_host, holder_pid = excluded.holder_pid,
         acquired_at = excluded.acquired_at, heartbeat_at = excluded.heartbeat_at, expires_at = excluded.expires_at`,
    ).run(l.key, l.token, l.holderHost, l.holderPid, l.acquiredAt, l.heartbeatAt, l.expiresAt);
  }

  async deleteLease(key: string, token: string) {
    this.st(`DELETE FROM sync_leases WHERE key = ? AND token = ?`).run(key, token);
  }
}

/**
 * Pseudonym order (src/store/order.ts) in SQL: the rows are reached from the person's pseudonym
 * (`k0`, constrained to the order's domain and version by the caller), so a page is a walk of the
 * pseudonyms_order index from the cursor on, not a sort of the whole list. CROSS JOIN fixes that
 * join order in SQLite: without statistics its planner would rather scan every enrollment by type
 * and sort them all on every page. `keys` are the sort key parts as SQL expressions, in order.
 */
function pseudonymFrom(type: PseudonymOrderedType): { from: string; keys: string[] } {
  switch (type) {
    case 'person':
      return { from: 'pseudonyms k0 JOIN entities e ON e.id = k0.entity_id', keys: ['k0.value'] };
    case 'enrollment':
      return {
        from: `pseudonyms k0 CROSS JOIN links kl ON kl.rel = 'enrollment.person' AND kl.to_id = k0.entity_id CROSS JOIN entities e ON e.id = kl.from_id`,
        keys: ['k0.value', `coalesce(json_extract(e.data, '$.classId'), '')`, 'e.id'],
      };
    case 'guardianship':
      return {
        from: `pseudonyms k0 CROSS JOIN links kl ON kl.rel = 'guardianship.student' AND kl.to_id = k0.entity_id CROSS JOIN entities e ON e.id = kl.from_id
          CROSS JOIN pseudonyms k1 ON k1.domain = k0.domain AND k1.version = k0.version AND k1.entity_id = json_extract(e.data, '$.guardianId')`,
        keys: ['k0.value', 'k1.value', 'e.id'],
      };
  }
}

function migrate(db: Db) {
  db.exec(`CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, applied_at TEXT NOT NULL)`);
  const done = new Set((db.prepare(`SELECT version FROM schema_migrations`).all() as { version: number }[]).map((r) => r.version));
  const newest = Math.max(0, ...done);
  const known = Math.max(...SQLITE_MIGRATIONS.map((m) => m.version));
  if (newest > known) {
    throw new RostergateError('STORE', `the store was written by a newer rostergate (schema ${newest} > ${known}); upgrade rostergate`);
  }
  for (const m of SQLITE_MIGRATIONS) {
    if (done.has(m.version)) continue;
    db.transaction(() => {
      if (m.sql) db.exec(m.sql);
      if (m.repair) repairRows(db, m.repair);
      db.prepare(`INSERT INTO schema_migrations (version, applied_at) VALUES (?, ?)`).run(m.version, new Date().toISOString());
    })();
  }
}

/** Runs a data migration's row rewrites, a page of rows at a time (keyset by rowid). */
function repairRows(db: Db, repair: RowRepair): void {
  const PAGE = 1000;
  const entities = db.prepare(`SELECT rowid AS r, type, data FROM entities WHERE rowid > ? ORDER BY rowid LIMIT ${PAGE}`);
  const setEntity = db.prepare(`UPDATE entities SET data = ? WHERE rowid = ?`);
  for (let after = 0; ; ) {
    const rows = entities.all(after) as { r: number; type: EntityType; data: string }[];
    for (const row of rows) {
      const d = repair.entity(row.type, JSON.parse(row.data));
      if (d) setEntity.run(JSON.stringify(d), row.r);
    }
    if (rows.length < PAGE) break;
    after = rows[rows.length - 1]!.r;
  }
  const sources = db.prepare(`SELECT rowid AS r, type, data, last_modified FROM source_records WHERE rowid > ? ORDER BY rowid LIMIT ${PAGE}`);
  const setSource = db.prepare(`UPDATE source_records SET data = coalesce(?, data), last_modified = CASE WHEN ? THEN ? ELSE last_modified END WHERE rowid = ?`);
  for (let after = 0; ; ) {
    const rows = sources.all(after) as { r: number; type: EntityType; data: string; last_modified: string | null }[];
    for (const row of rows) {
      const fix = repair.sourceRecord(row.type, JSON.parse(row.data), row.last_modified);
      if (fix) setSource.run(fix.data ? JSON.stringify(fix.data) : null, fix.lastModified !== undefined ? 1 : 0, fix.lastModified ?? null, row.r);
    }
    if (rows.length < PAGE) break;
    after = rows[rows.length - 1]!.r;
  }
}

interface RawEntity { id: string; type: EntityType; data: string; updated_at: string; updated_seq: number }
interface RawViewTime { view_at: string; view_seq: number }
interface RawSource { source: string; type: EntityType; key: string; entity_id: string | null; data: string; hash: string; last_modified: string | null; seen_run: number }
interface RawChange {
  seq: number; at: string; entity_id: string; type: EntityType; op: ChangeRow['op']; fields: string; source: string | null; before: string | null; generalised: string | null;
}
interface RawSync { source: string; state: string; run_id: number; run_status: SyncStateRow['runStatus']; run_full: number; started_at: string; updated_at: string; error: string | null }

const toEntity = (r: RawEntity): EntityRow => ({ id: r.id, type: r.type, data: JSON.parse(r.data), updatedAt: r.updated_at, updatedSeq: r.updated_seq });
const toSource = (r: RawSource): SourceRecordRow => ({
  source: r.source, type: r.type, key: r.key, entityId: r.entity_id, data: JSON.parse(r.data), hash: r.hash, lastModified: r.last_modified, seenRun: r.seen_run,
});
const toChange = (r: RawChange): ChangeRow => ({
  seq: r.seq, at: r.at, entityId: r.entity_id, type: r.type, op: r.op, fields: JSON.parse(r.fields), source: r.source,
  ...(r.before ? { before: JSON.parse(r.before) } : {}),
  ...(r.generalised ? { generalised: JSON.parse(r.generalised) } : {}),
});
const toSync = (r: RawSync): SyncStateRow => ({
  source: r.source, state: JSON.parse(r.state), runId: r.run_id, runStatus: r.run_status, runFull: r.run_full === 1,
  startedAt: r.started_at, updatedAt: r.updated_at, error: r.error,
});
