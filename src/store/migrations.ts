/**
 * Versioned schema migrations, in code so a binary and its schema cannot drift apart. Each runs
 * once, in its own transaction; a store written by a newer version is refused rather than damaged.
 */
export interface Migration {
  version: number;
  description: string;
  sql: string;
}

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
];
