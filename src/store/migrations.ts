/**
 * Versioned schema migrations, in code so a binary and its schema cannot drift apart. Each runs
 * once, in its own transaction; a store written by a newer version is refused rather than damaged.
 */
import { repairSourceData, repairStoredData, repairStoredDateTime } from '../model/values.ts';
import type { EntityType } from '../model/records.ts';

export interface Migration {
  version: number;
  description: string;
  sql: string;
  /** Rewrites stored rows after `sql`, in the same transaction (each store pages through its tables). */
  repair?: RowRepair;
}

/** Row rewrites of a data migration: each returns the new value, or undefined when the row stays as it is. */
export interface RowRepair {
  entity(type: EntityType, data: unknown): Record<string, unknown> | undefined;
  sourceRecord(type: EntityType, data: unknown, lastModified: string | null): { data?: Record<string, unknown>; lastModified?: string | null } | undefined;
}

/**
 * Stores synced before values were checked at the mapping boundary hold emails, dates and
 * timestamps the GraphQL scalars refuse (every query selecting them failed): repaired by the same
 * rules as at the boundary (src/model/values.ts), or removed.
 */
const REPAIR_STORED_VALUES: RowRepair = {
  entity: (type, data) => repairStoredData(type, data),
  sourceRecord: (type, data, lastModified) => {
    const d = repairSourceData(type, data);
    const lm = repairStoredDateTime(lastModified);
    if (!d && lm === undefined) return undefined;
    return { ...(d ? { data: d } : {}), ...(lm !== undefined ? { lastModified: lm } : {}) };
  },
};
const REPAIR_DESCRIPTION = 'stored values the GraphQL scalars refuse (emails, dates, lastModified) repaired or removed';

export const SQLITE_MIGRATIONS: Migration[] = [
  {
    version: 1,
    description: 'entities, links, source records, change log, sync state, identity',
    sql: `
      CREATE TABLE entities (
        id TEXT PRIMARY KEY,
        type TEXT NOT NULL,
        data TEXT NOT NULL,
        updated_at TEXT NOT NULL,
        updated_seq INTEGER NOT NULL
      );
      CREATE INDEX entities_type_id ON entities (type, id);
      CREATE INDEX entities_type_updated ON entities (type, updated_at);

      -- Outgoing references of an entity (class.school, enrollment.class, …): the reverse lookups
      -- (classes of a school, enrollments of a class) are what nested queries batch on.
      CREATE TABLE links (
        from_id TEXT NOT NULL,
        rel TEXT NOT NULL,
        to_id TEXT NOT NULL,
        PRIMARY KEY (rel, to_id, from_id)
      );
      CREATE INDEX links_from ON links (from_id);

      CREATE TABLE source_records (
        source TEXT NOT NULL,
        type TEXT NOT NULL,
        key TEXT NOT NULL,
        entity_id TEXT,
        data TEXT NOT NULL,
        hash TEXT NOT NULL,
        last_modified TEXT,
        seen_run INTEGER NOT NULL,
        PRIMARY KEY (source, type, key)
      );
      CREATE INDEX source_records_entity ON source_records (entity_id);
      CREATE INDEX source_records_pending ON source_records (source) WHERE entity_id IS NULL;

      CREATE TABLE change_log (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        at TEXT NOT NULL,
        entity_id TEXT NOT NULL,
        type TEXT NOT NULL,
        op TEXT NOT NULL CHECK (op IN ('created', 'updated', 'deleted')),
        fields TEXT NOT NULL,
        source TEXT,
        before TEXT
      );
      CREATE INDEX change_log_entity ON change_log (entity_id);

      CREATE TABLE sync_state (
        source TEXT PRIMARY KEY,
        state TEXT NOT NULL,
        run_id INTEGER NOT NULL,
        run_status TEXT NOT NULL,
        run_full INTEGER NOT NULL,
        started_at TEXT NOT NULL,
        updated_at TEXT NOT NULL,
        error TEXT
      );

      CREATE TABLE match_keys (
        kind TEXT NOT NULL,
        value TEXT NOT NULL,
        entity_id TEXT NOT NULL,
        PRIMARY KEY (kind, value, entity_id)
      );
      CREATE INDEX match_keys_entity ON match_keys (entity_id);

      CREATE TABLE identity_conflicts (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        at TEXT NOT NULL,
        source TEXT NOT NULL,
        type TEXT NOT NULL,
        key TEXT NOT NULL,
        reason TEXT NOT NULL,
        candidates TEXT NOT NULL,
        UNIQUE (source, type, key, reason)
      );
    `,
  },
  {
    version: 2,
    description: 'privacy: API keys, pseudonym domains and materialised pseudonyms, audit log, disclosure ledger',
    sql: `
      CREATE TABLE api_keys (
        hash TEXT PRIMARY KEY,
        client TEXT NOT NULL,
        created_at TEXT NOT NULL,
        revoked_at TEXT
      );
      CREATE INDEX api_keys_client ON api_keys (client);

      CREATE TABLE pseudonym_domains (
        domain TEXT PRIMARY KEY,
        version INTEGER NOT NULL,
        rotated_at TEXT NOT NULL
      );
      CREATE TABLE pseudonyms (
        domain TEXT NOT NULL,
        version INTEGER NOT NULL,
        entity_id TEXT NOT NULL,
        value TEXT NOT NULL,
        PRIMARY KEY (domain, version, entity_id)
      );
      CREATE UNIQUE INDEX pseudonyms_value ON pseudonyms (domain, value);

      -- Append-only and hash-chained: each row's hash covers its content and the previous hash.
      CREATE TABLE audit_log (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        at TEXT NOT NULL,
        client TEXT NOT NULL,
        purpose TEXT NOT NULL,
        kind TEXT NOT NULL,
        operation TEXT,
        operation_hash TEXT,
        categories TEXT NOT NULL,
        fields TEXT NOT NULL,
        people INTEGER NOT NULL,
        prev_hash TEXT NOT NULL,
        hash TEXT NOT NULL
      );
      CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log BEGIN SELECT RAISE(ABORT, 'audit log is append-only'); END;

      CREATE TABLE disclosures (
        client TEXT NOT NULL,
        entity_id TEXT NOT NULL,
        first_at TEXT NOT NULL,
        last_at TEXT NOT NULL,
        PRIMARY KEY (client, entity_id)
      );
      CREATE INDEX disclosures_entity ON disclosures (entity_id);
    `,
  },
  {
    version: 3,
    description: 'metadata (change-log retention watermark)',
    sql: `
      CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
      CREATE INDEX change_log_at ON change_log (at);
    `,
  },
  {
    version: 4,
    description: 'webhook subscriptions and deliveries (with dead letters)',
    sql: `
      CREATE TABLE webhooks (
        id TEXT PRIMARY KEY,
        client TEXT NOT NULL,
        url TEXT NOT NULL,
        types TEXT NOT NULL,
        secret TEXT NOT NULL,
        cursor_seq INTEGER NOT NULL,
        created_at TEXT NOT NULL
      );
      CREATE TABLE webhook_deliveries (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        webhook_id TEXT NOT NULL REFERENCES webhooks (id) ON DELETE CASCADE,
        seq INTEGER NOT NULL,
        msg_id TEXT NOT NULL,
        event_type TEXT NOT NULL,
        payload TEXT NOT NULL,
        status TEXT NOT NULL CHECK (status IN ('pending', 'delivered', 'dead')),
        attempts INTEGER NOT NULL DEFAULT 0,
        next_attempt_at TEXT NOT NULL,
        last_status INTEGER,
        last_error TEXT,
        created_at TEXT NOT NULL,
        delivered_at TEXT
      );
      CREATE INDEX webhook_deliveries_pending ON webhook_deliveries (webhook_id, status, id);
    `,
  },
  {
    version: 5,
    description: 'audit log: deleting entries is refused too (append-only)',
    sql: `
      CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log BEGIN SELECT RAISE(ABORT, 'audit log is append-only'); END;
    `,
  },
  {
    version: 6,
    description: 'change log: which generalised values an update changed',
    // NULL on older rows: the feed then counts a generalised field as changed with its exact field.
    sql: `ALTER TABLE change_log ADD COLUMN generalised TEXT;`,
  },
  {
    version: 7,
    description: 'webhooks filter by event type (person.updated, class.*): record-type filters become <type>.*',
    sql: `
      ALTER TABLE webhooks ADD COLUMN events TEXT NOT NULL DEFAULT '[]';
      UPDATE webhooks SET events = (SELECT json_group_array(lower(value) || '.*' ORDER BY key) FROM json_each(webhooks.types)) WHERE types <> '[]';
      ALTER TABLE webhooks DROP COLUMN types;
    `,
  },
  {
    version: 8,
    description: 'per-purpose last visible change of each record (updatedAt / updatedSince per purpose)',
    // One row per (record, purpose) for the types the purpose sees: the time and seq of the last
    // change that purpose could see (src/graphql/view-times.ts). Written with every change a sync
    // logs, so two b-trees only: the key (by record: lookups, joins, deletions) and the one
    // updatedSince reads (covering, with the id it joins on). view_fingerprints says which
    // visibility the rows were computed for, so a changed policy is recomputed at start-up.
    sql: `
      CREATE TABLE entity_views (
        entity_id TEXT NOT NULL,
        view TEXT NOT NULL,
        type TEXT NOT NULL,
        updated_at TEXT NOT NULL,
        updated_seq INTEGER NOT NULL,
        PRIMARY KEY (entity_id, view)
      ) WITHOUT ROWID;
      CREATE INDEX entity_views_updated ON entity_views (view, type, updated_at, entity_id);
      CREATE TABLE view_fingerprints (view TEXT PRIMARY KEY, fingerprint TEXT NOT NULL, built_at TEXT NOT NULL);
    `,
  },
  {
    version: 9,
    description: 'identity overrides (an operator\'s link or unlink, per source record) and resolved identity conflicts',
    sql: `
      -- The entity an operator put a source record in: resolution honours it over the match rules.
      CREATE TABLE identity_overrides (
        source TEXT NOT NULL,
        type TEXT NOT NULL,
        key TEXT NOT NULL,
        entity_id TEXT NOT NULL,
        decided_at TEXT NOT NULL,
        PRIMARY KEY (source, type, key)
      );
      CREATE INDEX identity_overrides_entity ON identity_overrides (entity_id);
      ALTER TABLE identity_conflicts ADD COLUMN resolved_at TEXT;
      ALTER TABLE identity_conflicts ADD COLUMN resolution TEXT;
    `,
  },
  {
    version: 10,
    description: 'pseudonym order: pseudonyms by value within a domain version',
    // A pseudonymising purpose lists people (and enrollments, guardianships) in pseudonym order
    // (src/store/order.ts): a page walks this index from its cursor instead of sorting every row.
    sql: `CREATE INDEX pseudonyms_order ON pseudonyms (domain, version, value);`,
  },
  {
    version: 11,
    description: 'sync leases: one run per source at a time, across processes and machines',
    // key: the source id (a tenant id would join it once the gateway hosts several). holder_host and
    // holder_pid name the holder for an operator, and let a run on the same machine take over at
    // once from a holder process that is gone. Times are ISO text, compared as text like the rest.
    sql: `
      CREATE TABLE sync_leases (
        key TEXT PRIMARY KEY,
        token TEXT NOT NULL,
        holder_host TEXT NOT NULL,
        holder_pid INTEGER NOT NULL,
        acquired_at TEXT NOT NULL,
        heartbeat_at TEXT NOT NULL,
        expires_at TEXT NOT NULL
      );
    `,
  },
  { version: 12, description: REPAIR_DESCRIPTION, sql: '', repair: REPAIR_STORED_VALUES },
  {
    version: 13,
    description: 'erasure: suppressed source records (keyed hashes of their keys), so no later sync brings an erased person back',
    // key_hash: a keyed HMAC of the source key (never the key itself); erasure: one erasure's rows
    // share it, so lifting by the person's key lifts their enrollments and guardianships too.
    sql: `
      CREATE TABLE suppressions (
        source TEXT NOT NULL,
        type TEXT NOT NULL,
        key_hash TEXT NOT NULL,
        erasure TEXT NOT NULL,
        created_at TEXT NOT NULL,
        PRIMARY KEY (source, type, key_hash)
      );
      CREATE INDEX suppressions_erasure ON suppressions (erasure);
    `,
  },
  {
    version: 14,
    description: 'tenant catalog: the tenants of a deployment beyond the config file\'s own, and a record of removed ones',
    // Only the home store's rows mean anything (src/tenants/catalog.ts); every store has the tables,
    // since every store runs the same migrations. Sources as validated JSON, secrets by reference only.
    sql: `
      CREATE TABLE tenants (
        id TEXT PRIMARY KEY,
        name TEXT NOT NULL,
        status TEXT NOT NULL CHECK (status IN ('active', 'paused')),
        sources TEXT NOT NULL,
        created_at TEXT NOT NULL,
        updated_at TEXT NOT NULL
      );
      -- Who removed which tenant when: the tenant's data is gone, this line stays for the operator.
      CREATE TABLE tenant_removals (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        tenant_id TEXT NOT NULL,
        name TEXT NOT NULL,
        removed_at TEXT NOT NULL,
        removed_by TEXT NOT NULL
      );
    `,
  },
  {
    version: 15,
    description: 'API keys narrowed to one tenant of their client (keys create --tenant)',
    // NULL: the key serves every tenant its client may use (clients[].tenants); a tenant id: only that one.
    sql: `ALTER TABLE api_keys ADD COLUMN tenant TEXT;`,
  },
  {
    version: 16,
    description: 'internal integer keys: entities get k (insertion order), and per-purpose view times are keyed by it',
    // Why: every index keyed by a random public id takes each insert at a random place, so each
    // commit rewrites index pages spread over the whole store (docs/data-engine.md, "Internal
    // keys"). View times are the largest such index a sync writes (a row per record and purpose).
    // k never leaves the store: every surface still names records by id, and orders lists by it.
    // The entities table is rebuilt (SQLite cannot give an existing table an INTEGER PRIMARY KEY),
    // keeping each row's rowid as its k. AUTOINCREMENT: a k is never used again after its entity is
    // deleted, as in PostgreSQL, so a row left behind could never name another entity.
    sql: `
      CREATE TABLE entities_new (
        k INTEGER PRIMARY KEY AUTOINCREMENT,
        id TEXT NOT NULL UNIQUE,
        type TEXT NOT NULL,
        data TEXT NOT NULL,
        updated_at TEXT NOT NULL,
        updated_seq INTEGER NOT NULL
      );
      INSERT INTO entities_new (k, id, type, data, updated_at, updated_seq) SELECT rowid, id, type, data, updated_at, updated_seq FROM entities ORDER BY rowid;
      DROP TABLE entities;
      ALTER TABLE entities_new RENAME TO entities;
      CREATE INDEX entities_type_id ON entities (type, id);
      CREATE INDEX entities_type_updated ON entities (type, updated_at);

      CREATE TABLE entity_views_new (
        entity_k INTEGER NOT NULL,
        view TEXT NOT NULL,
        type TEXT NOT NULL,
        updated_at TEXT NOT NULL,
        updated_seq INTEGER NOT NULL,
        PRIMARY KEY (entity_k, view)
      ) WITHOUT ROWID;
      INSERT INTO entity_views_new (entity_k, view, type, updated_at, updated_seq)
        SELECT e.k, v.view, v.type, v.updated_at, v.updated_seq FROM entity_views v JOIN entities e ON e.id = v.entity_id;
      DROP TABLE entity_views;
      ALTER TABLE entity_views_new RENAME TO entity_views;
      CREATE INDEX entity_views_updated ON entity_views (view, type, updated_at, entity_k);
    `,
  },
  {
    version: 17,
    description: 'internal integer keys: links are keyed by the linking entity\'s k; pseudonyms indexed by person (as in PostgreSQL)',
    // The next table after view times (docs/data-engine.md, "Internal keys"): a link lives and dies
    // with the entity it goes from, whose links are deleted before its row, and k is never used
    // again, so a link cannot come to name another entity. Its target stays a public id: links to a
    // record outlive it (an enrollment keeps its link to a class that went away). WITHOUT ROWID: the
    // primary key is the table. Links of an entity no longer stored (none should exist) are dropped
    // by the join. pseudonyms_entity: a person's pseudonyms (a tombstone's, an erasure's, a deletion's)
    // were found by scanning the whole table, since the primary key starts with the domain.
    sql: `
      CREATE TABLE links_new (
        from_k INTEGER NOT NULL,
        rel TEXT NOT NULL,
        to_id TEXT NOT NULL,
        PRIMARY KEY (rel, to_id, from_k)
      ) WITHOUT ROWID;
      INSERT INTO links_new (from_k, rel, to_id) SELECT e.k, l.rel, l.to_id FROM links l JOIN entities e ON e.id = l.from_id;
      DROP TABLE links;
      ALTER TABLE links_new RENAME TO links;
      CREATE INDEX links_from ON links (from_k);
      CREATE INDEX pseudonyms_entity ON pseudonyms (entity_id);
    `,
  },
  {
    version: 18,
    description: 'the pseudonym order index covers the person, so a walk in pseudonym order reads no pseudonym rows',
    // A page in pseudonym order walks pseudonyms_order and needs each pseudonym's person to find its
    // record (src/store/queries/store-reads.ts): the index held only (domain, version, value), so
    // every step also read the pseudonym's row by rowid. At 50,000 students the walk of the people
    // went 1.01 → 0.88 s and of the enrollments 2.8 → 2.6 s (docs/data-engine.md).
    sql: `
      DROP INDEX pseudonyms_order;
      CREATE INDEX pseudonyms_order ON pseudonyms (domain, version, value, entity_id);
    `,
  },
  {
    version: 19,
    description: 'per-purpose view times are stored only where they differ from the record\'s own',
    // A missing row now means the entity's own time (src/graphql/view-times.ts); the rows equal to
    // it say nothing more. A first sync of 20,000 students wrote 810,642 of them, 3.5 a record.
    sql: `
      DELETE FROM entity_views WHERE updated_seq = (SELECT e.updated_seq FROM entities e WHERE e.k = entity_views.entity_k);
    `,
  },
  {
    version: 20,
    description: 'pseudonyms are stored in their primary key (WITHOUT ROWID): a person\'s pseudonym is one lookup',
    // A nested list in pseudonym order (a class's enrollments, linkedPages) finds each child's
    // pseudonym by (domain, version, person): that found the primary key's index entry, then the row
    // by rowid for its value. Stored in the key, the value is where the entry is. The statement of a
    // 50,000-student store's ten classes (`linkedPages`) went 1.87–1.91 → 1.75–1.83 ms a call (docs/serving.md).
    sql: `
      CREATE TABLE pseudonyms_new (
        domain TEXT NOT NULL,
        version INTEGER NOT NULL,
        entity_id TEXT NOT NULL,
        value TEXT NOT NULL,
        PRIMARY KEY (domain, version, entity_id)
      ) WITHOUT ROWID;
      INSERT INTO pseudonyms_new (domain, version, entity_id, value) SELECT domain, version, entity_id, value FROM pseudonyms;
      DROP TABLE pseudonyms;
      ALTER TABLE pseudonyms_new RENAME TO pseudonyms;
      CREATE UNIQUE INDEX pseudonyms_value ON pseudonyms (domain, value);
      CREATE INDEX pseudonyms_entity ON pseudonyms (entity_id);
      CREATE INDEX pseudonyms_order ON pseudonyms (domain, version, value, entity_id);
    `,
  },
];

/** The same schema for PostgreSQL. Timestamps stay ISO text so both stores compare them alike. */
export const POSTGRES_MIGRATIONS: Migration[] = [
  {
    version: 1,
    description: 'entities, links, source records, change log, sync state, identity',
    sql: `
      CREATE TABLE entities (id text PRIMARY KEY, type text NOT NULL, data jsonb NOT NULL, updated_at text NOT NULL, updated_seq bigint NOT NULL);
      CREATE INDEX entities_type_id ON entities (type, id);
      CREATE INDEX entities_type_updated ON entities (type, updated_at);
      CREATE TABLE links (from_id text NOT NULL, rel text NOT NULL, to_id text NOT NULL, PRIMARY KEY (rel, to_id, from_id));
      CREATE INDEX links_from ON links (from_id);
      CREATE TABLE source_records (
        source text NOT NULL, type text NOT NULL, key text NOT NULL, entity_id text, data jsonb NOT NULL, hash text NOT NULL,
        last_modified text, seen_run integer NOT NULL, PRIMARY KEY (source, type, key));
      CREATE INDEX source_records_entity ON source_records (entity_id);
      CREATE INDEX source_records_pending ON source_records (source) WHERE entity_id IS NULL;
      CREATE TABLE change_log (
        seq bigserial PRIMARY KEY, at text NOT NULL, entity_id text NOT NULL, type text NOT NULL,
        op text NOT NULL CHECK (op IN ('created', 'updated', 'deleted')), fields jsonb NOT NULL, source text, before jsonb);
      CREATE INDEX change_log_entity ON change_log (entity_id);
      CREATE INDEX change_log_at ON change_log (at);
      CREATE TABLE sync_state (
        source text PRIMARY KEY, state jsonb NOT NULL, run_id integer NOT NULL, run_status text NOT NULL, run_full boolean NOT NULL,
        started_at text NOT NULL, updated_at text NOT NULL, error text);
      CREATE TABLE match_keys (kind text NOT NULL, value text NOT NULL, entity_id text NOT NULL, PRIMARY KEY (kind, value, entity_id));
      CREATE INDEX match_keys_entity ON match_keys (entity_id);
      CREATE TABLE identity_conflicts (
        id bigserial PRIMARY KEY, at text NOT NULL, source text NOT NULL, type text NOT NULL, key text NOT NULL, reason text NOT NULL,
        candidates jsonb NOT NULL, UNIQUE (source, type, key, reason));
    `,
  },
  {
    version: 2,
    description: 'privacy: API keys, pseudonyms, audit log, disclosure ledger',
    sql: `
      CREATE TABLE api_keys (hash text PRIMARY KEY, client text NOT NULL, created_at text NOT NULL, revoked_at text);
      CREATE INDEX api_keys_client ON api_keys (client);
      CREATE TABLE pseudonym_domains (domain text PRIMARY KEY, version integer NOT NULL, rotated_at text NOT NULL);
      CREATE TABLE pseudonyms (domain text NOT NULL, version integer NOT NULL, entity_id text NOT NULL, value text NOT NULL, PRIMARY KEY (domain, version, entity_id));
      CREATE UNIQUE INDEX pseudonyms_value ON pseudonyms (domain, value);
      CREATE INDEX pseudonyms_entity ON pseudonyms (entity_id);
      CREATE TABLE audit_log (
        seq bigserial PRIMARY KEY, at text NOT NULL, client text NOT NULL, purpose text NOT NULL, kind text NOT NULL, operation text,
        operation_hash text, categories jsonb NOT NULL, fields jsonb NOT NULL, people integer NOT NULL, prev_hash text NOT NULL, hash text NOT NULL);
      CREATE FUNCTION audit_log_append_only() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION 'audit log is append-only'; END $$;
      CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log FOR EACH ROW EXECUTE FUNCTION audit_log_append_only();
      CREATE TABLE disclosures (client text NOT NULL, entity_id text NOT NULL, first_at text NOT NULL, last_at text NOT NULL, PRIMARY KEY (client, entity_id));
      CREATE INDEX disclosures_entity ON disclosures (entity_id);
    `,
  },
  {
    version: 3,
    description: 'metadata (change-log retention watermark)',
    sql: `CREATE TABLE meta (key text PRIMARY KEY, value text NOT NULL);`,
  },
  {
    version: 4,
    description: 'webhook subscriptions and deliveries',
    sql: `
      CREATE TABLE webhooks (id text PRIMARY KEY, client text NOT NULL, url text NOT NULL, types jsonb NOT NULL, secret text NOT NULL,
        cursor_seq bigint NOT NULL, created_at text NOT NULL);
      CREATE TABLE webhook_deliveries (
        id bigserial PRIMARY KEY, webhook_id text NOT NULL REFERENCES webhooks (id) ON DELETE CASCADE, seq bigint NOT NULL, msg_id text NOT NULL,
        event_type text NOT NULL, payload text NOT NULL, status text NOT NULL CHECK (status IN ('pending', 'delivered', 'dead')),
        attempts integer NOT NULL DEFAULT 0, next_attempt_at text NOT NULL, last_status integer, last_error text, created_at text NOT NULL, delivered_at text);
      CREATE INDEX webhook_deliveries_pending ON webhook_deliveries (webhook_id, status, id);
    `,
  },
  {
    version: 5,
    description: 'audit log: deleting or truncating entries is refused too (append-only)',
    sql: `
      CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log FOR EACH ROW EXECUTE FUNCTION audit_log_append_only();
      -- TRUNCATE fires no row triggers: it needs its own statement trigger.
      CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON audit_log FOR EACH STATEMENT EXECUTE FUNCTION audit_log_append_only();
    `,
  },
  {
    version: 6,
    description: 'change log: which generalised values an update changed',
    sql: `ALTER TABLE change_log ADD COLUMN generalised jsonb;`,
  },
  {
    version: 7,
    description: 'webhooks filter by event type (person.updated, class.*): record-type filters become <type>.*',
    sql: `
      ALTER TABLE webhooks ADD COLUMN events jsonb NOT NULL DEFAULT '[]';
      UPDATE webhooks SET events = (SELECT jsonb_agg(lower(t) || '.*' ORDER BY i) FROM jsonb_array_elements_text(webhooks.types) WITH ORDINALITY AS x (t, i)) WHERE types <> '[]'::jsonb;
      ALTER TABLE webhooks DROP COLUMN types;
    `,
  },
  {
    version: 8,
    description: 'per-purpose last visible change of each record (updatedAt / updatedSince per purpose)',
    sql: `
      CREATE TABLE entity_views (entity_id text NOT NULL, view text NOT NULL, type text NOT NULL, updated_at text NOT NULL, updated_seq bigint NOT NULL,
        PRIMARY KEY (entity_id, view));
      CREATE INDEX entity_views_updated ON entity_views (view, type, updated_at, entity_id);
      CREATE TABLE view_fingerprints (view text PRIMARY KEY, fingerprint text NOT NULL, built_at text NOT NULL);
    `,
  },
  {
    version: 9,
    description: 'identity overrides (an operator\'s link or unlink, per source record) and resolved identity conflicts',
    sql: `
      CREATE TABLE identity_overrides (
        source text NOT NULL, type text NOT NULL, key text NOT NULL, entity_id text NOT NULL, decided_at text NOT NULL, PRIMARY KEY (source, type, key));
      CREATE INDEX identity_overrides_entity ON identity_overrides (entity_id);
      ALTER TABLE identity_conflicts ADD COLUMN resolved_at text, ADD COLUMN resolution text;
    `,
  },
  {
    version: 10,
    description: 'pseudonym order: pseudonyms by value within a domain version',
    // COLLATE "C": the order the list queries sort by (byte order, as SQLite), so the index serves it.
    sql: `CREATE INDEX pseudonyms_order ON pseudonyms (domain, version, value COLLATE "C");`,
  },
  {
    version: 11,
    description: 'sync leases: one run per source at a time, across processes and machines',
    sql: `
      CREATE TABLE sync_leases (
        key text PRIMARY KEY, token text NOT NULL, holder_host text NOT NULL, holder_pid integer NOT NULL,
        acquired_at text NOT NULL, heartbeat_at text NOT NULL, expires_at text NOT NULL);
    `,
  },
  { version: 12, description: REPAIR_DESCRIPTION, sql: '', repair: REPAIR_STORED_VALUES },
  {
    version: 13,
    description: 'erasure: suppressed source records (keyed hashes of their keys), so no later sync brings an erased person back',
    sql: `
      CREATE TABLE suppressions (
        source text NOT NULL, type text NOT NULL, key_hash text NOT NULL, erasure text NOT NULL, created_at text NOT NULL,
        PRIMARY KEY (source, type, key_hash));
      CREATE INDEX suppressions_erasure ON suppressions (erasure);
    `,
  },
  {
    version: 14,
    description: 'tenant catalog: the tenants of a deployment beyond the config file\'s own, and a record of removed ones',
    sql: `
      CREATE TABLE tenants (
        id text PRIMARY KEY, name text NOT NULL, status text NOT NULL CHECK (status IN ('active', 'paused')), sources jsonb NOT NULL,
        created_at text NOT NULL, updated_at text NOT NULL);
      CREATE TABLE tenant_removals (id bigserial PRIMARY KEY, tenant_id text NOT NULL, name text NOT NULL, removed_at text NOT NULL, removed_by text NOT NULL);
    `,
  },
  {
    version: 15,
    description: 'API keys narrowed to one tenant of their client (keys create --tenant)',
    sql: `ALTER TABLE api_keys ADD COLUMN tenant text;`,
  },
  {
    version: 16,
    description: 'internal integer keys: entities get k (insertion order), and per-purpose view times are keyed by it',
    // As in SQLite (see there). Existing rows get their k in whatever order the table is read.
    sql: `
      ALTER TABLE entities ADD COLUMN k bigint GENERATED ALWAYS AS IDENTITY;
      CREATE UNIQUE INDEX entities_k ON entities (k);
      CREATE TABLE entity_views_new (entity_k bigint NOT NULL, view text NOT NULL, type text NOT NULL, updated_at text NOT NULL, updated_seq bigint NOT NULL,
        PRIMARY KEY (entity_k, view));
      INSERT INTO entity_views_new (entity_k, view, type, updated_at, updated_seq)
        SELECT e.k, v.view, v.type, v.updated_at, v.updated_seq FROM entity_views v JOIN entities e ON e.id = v.entity_id;
      DROP TABLE entity_views;
      ALTER TABLE entity_views_new RENAME TO entity_views;
      ALTER INDEX entity_views_new_pkey RENAME TO entity_views_pkey;
      CREATE INDEX entity_views_updated ON entity_views (view, type, updated_at, entity_k);
    `,
  },
  {
    version: 17,
    description: 'internal integer keys: links are keyed by the linking entity\'s k',
    // As in SQLite (see there); pseudonyms_entity exists here since version 2.
    sql: `
      CREATE TABLE links_new (from_k bigint NOT NULL, rel text NOT NULL, to_id text NOT NULL, PRIMARY KEY (rel, to_id, from_k));
      INSERT INTO links_new (from_k, rel, to_id) SELECT e.k, l.rel, l.to_id FROM links l JOIN entities e ON e.id = l.from_id;
      DROP TABLE links;
      ALTER TABLE links_new RENAME TO links;
      ALTER INDEX links_new_pkey RENAME TO links_pkey;
      CREATE INDEX links_from ON links (from_k);
    `,
  },
  {
    version: 18,
    description: 'lists in id order walk an index in byte order (COLLATE "C") instead of sorting the type on every page',
    // A list in id order is ORDER BY id COLLATE "C" (byte order, as SQLite). The index was in the
    // database's collation (C.UTF-8, en_US.UTF-8, …), which PostgreSQL cannot use for another
    // collation's order: every page sorted every remaining row of its type (a full scan of the
    // entities), so paging a list cost the square of its length. At 50,000 students the raw read
    // of the 318,254 enrollments ran at 14,090 rows/s; one page of 2,001 at 5,000 students took
    // 69 ms against 2.7 ms with this index (EXPLAIN ANALYZE).
    sql: `
      DROP INDEX entities_type_id;
      CREATE INDEX entities_type_id ON entities (type, id COLLATE "C");
    `,
  },
  {
    version: 19,
    description: 'the pseudonym order index covers the person, so a walk in pseudonym order reads no pseudonym rows',
    // As SQLite's version 18. INCLUDE: the person is carried, not sorted by. A page of 2,001 people
    // at 50,000 students: the walk of the index went from 18 ms (an index scan fetching each
    // pseudonym's row) to 1–2 ms (an index-only scan), the page from 64 to 54 ms (EXPLAIN ANALYZE).
    sql: `
      DROP INDEX pseudonyms_order;
      CREATE INDEX pseudonyms_order ON pseudonyms (domain, version, value COLLATE "C") INCLUDE (entity_id);
    `,
  },
  {
    version: 20,
    description: 'the disclosure ledger leaves room on its pages, so moving a person\'s last disclosure on rewrites no index',
    // An extract moves last_at of every person it sent (once an hour: src/privacy/audit.ts). A row
    // updated on a full page moves to another, and both indexes get an entry for it; with room on
    // its page the new version stays there and no index is touched (a heap-only tuple, HOT). At
    // 50,000 students, the 116,806 rows of a people extract: 3.0 s → 0.7 s, in three runs each
    // (psql, the extract's statement). The table takes about twice the pages. Existing rows move to
    // pages filled to this factor the first time they are updated, and stay there from then on.
    sql: `ALTER TABLE disclosures SET (fillfactor = 50);`,
  },
  {
    version: 21,
    description: 'per-purpose view times are stored only where they differ from the record\'s own',
    // As SQLite's version 19.
    sql: `DELETE FROM entity_views v USING entities e WHERE e.k = v.entity_k AND e.updated_seq = v.updated_seq;`,
  },
  {
    version: 22,
    description: 'an audit entry has at most one successor (the audit log has a write lock of its own)',
    // Audit entries now commit under a lock of their own, not the roster's (TransactionOptions in
    // src/store/types.ts). A replica of an older version still appends them under the roster's lock
    // alone, so while both run, two appends could read the same head. The index makes the second
    // one fail (its batch's answers are withheld) instead of forking the chain. A chain already
    // forked would fail the index; it is then left without one (\`audit verify\` reports the fork).
    sql: `DO $$ BEGIN
      IF NOT EXISTS (SELECT 1 FROM audit_log GROUP BY prev_hash HAVING count(*) > 1) THEN
        CREATE UNIQUE INDEX audit_log_successor ON audit_log (prev_hash);
      ELSE
        RAISE WARNING 'the audit log is forked (two entries link to one): run rostergate audit verify';
      END IF;
    END $$;`,
  },
];
