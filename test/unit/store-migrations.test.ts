/**
 * Versioned migrations on both stores: each runs once, reopening changes nothing, a store written by
 * a newer version is refused without being touched, and SQLite runs in WAL mode.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import Database from 'better-sqlite3';
import pg from 'pg';
import { SqliteStore } from '../../src/store/sqlite.ts';
import { PostgresStore } from '../../src/store/postgres.ts';
import { POSTGRES_MIGRATIONS, SQLITE_MIGRATIONS } from '../../src/store/migrations.ts';
import { storedViewRows, storeKinds, tempDir, type StoreKind } from '../support/stores.ts';
import { isRostergateError } from '../../src/errors.ts';

/** A store location that can be opened several times, and plain SQL against it outside the store. */
interface Place {
  open(): Promise<{ close(): Promise<void> }>;
  sql<R>(q: string): Promise<R[]>;
  /** Several statements at once (a migration's script). */
  script(q: string): Promise<void>;
  drop(): Promise<void>;
}

async function place(kind: StoreKind): Promise<Place> {
  if (kind === 'sqlite') {
    const file = join(tempDir(), 'rg.db');
    return {
      open: async () => SqliteStore.open(file),
      sql: async <R>(q: string) => {
        const db = new Database(file);
        try {
          const st = db.prepare(q);
          return (st.reader ? st.all() : (st.run(), [])) as R[];
        } finally {
          db.close();
        }
      },
      script: async (q: string) => {
        const db = new Database(file);
        try {
          db.exec(q);
        } finally {
          db.close();
        }
      },
      drop: async () => undefined,
    };
  }
  const admin = process.env.ROSTERGATE_TEST_POSTGRES!;
  const name = `rg_mig_${randomBytes(6).toString('hex')}`;
  const onAdmin = async (q: string) => {
    const c = new pg.Client({ connectionString: admin });
    await c.connect();
    try {
      await c.query(q);
    } finally {
      await c.end();
    }
  };
  await onAdmin(`CREATE DATABASE ${name}`);
  const url = new URL(admin);
  url.pathname = `/${name}`;
  return {
    open: () => PostgresStore.open(url.toString()),
    sql: async <R>(q: string) => {
      const c = new pg.Client({ connectionString: url.toString() });
      await c.connect();
      try {
        return (await c.query(q)).rows as R[];
      } finally {
        await c.end();
      }
    },
    script: async (q: string) => {
      const c = new pg.Client({ connectionString: url.toString() });
      await c.connect();
      try {
        await c.query(q);
      } finally {
        await c.end();
      }
    },
    drop: () => onAdmin(`DROP DATABASE IF EXISTS ${name}`),
  };
}

/** A store as schema `version` left it: that version's migrations and their schema_migrations rows, as a script. */
function schemaUpTo(kind: StoreKind, version: number): string {
  const migrations = kind === 'sqlite' ? SQLITE_MIGRATIONS : POSTGRES_MIGRATIONS;
  return `CREATE TABLE schema_migrations (version integer PRIMARY KEY, applied_at text NOT NULL);
    ${migrations.filter((m) => m.version <= version).map((m) => `${m.sql};\nINSERT INTO schema_migrations VALUES (${m.version}, '2025-01-01T00:00:00Z');`).join('\n')}`;
}

describe.each(storeKinds())('store migrations on %s', (kind) => {
  const places: Place[] = [];
  afterAll(async () => {
    for (const p of places) await p.drop();
  });
  const known = (kind === 'sqlite' ? SQLITE_MIGRATIONS : POSTGRES_MIGRATIONS).map((m) => m.version);

  it('apply each version once, and reopening applies nothing again', async () => {
    const p = await place(kind);
    places.push(p);
    await (await p.open()).close();
    const first = await p.sql<{ version: number; applied_at: string }>(`SELECT version, applied_at FROM schema_migrations ORDER BY version`);
    expect(first.map((r) => Number(r.version))).toEqual(known);
    await (await p.open()).close();
    expect(await p.sql(`SELECT version, applied_at FROM schema_migrations ORDER BY version`)).toEqual(first);
  });

  it('refuse a store written by a newer version, and leave it as it was', async () => {
    const p = await place(kind);
    places.push(p);
    await (await p.open()).close();
    const newer = Math.max(...known) + 1;
    await p.sql(`INSERT INTO schema_migrations (version, applied_at) VALUES (${newer}, '2999-01-01T00:00:00Z')`);
    const before = await p.sql(`SELECT version FROM schema_migrations ORDER BY version`);
    const err = await p.open().then(
      (s) => s.close().then(() => undefined),
      (e: unknown) => e,
    );
    expect(isRostergateError(err, 'STORE')).toBe(true);
    expect((err as Error).message).toBe(`the store was written by a newer rostergate (schema ${newer} > ${Math.max(...known)}); upgrade rostergate`);
    expect(await p.sql(`SELECT version FROM schema_migrations ORDER BY version`)).toEqual(before);
  });
});

describe.each(storeKinds())('upgrading a store on %s', (kind) => {
  const places: Place[] = [];
  afterAll(async () => {
    for (const p of places) await p.drop();
  });

  it('webhooks filtering by record type keep their filter as event types (<type>.*)', async () => {
    const p = await place(kind);
    places.push(p);
    // A store as version 6 left it, with two subscriptions.
    await p.script(`${schemaUpTo(kind, 6)}
      INSERT INTO webhooks (id, client, url, types, secret, cursor_seq, created_at) VALUES
        ('wh_some', 'lms', 'https://lms.example/hooks', '["PERSON","ACADEMIC_SESSION"]', 'sealed', 0, '2025-01-01T00:00:00Z'),
        ('wh_all', 'lms', 'https://lms.example/all', '[]', 'sealed', 0, '2025-01-01T00:00:00Z');`);
    const store = (await p.open()) as unknown as { webhooks: { list(): Promise<{ id: string; events: string[] }[]> }; close(): Promise<void> };
    try {
      const byId = Object.fromEntries((await store.webhooks.list()).map((w) => [w.id, w.events]));
      expect(byId).toEqual({ wh_some: ['person.*', 'academic_session.*'], wh_all: [] });
    } finally {
      await store.close();
    }
  });

  it('internal keys (schema 16): a store of schema 15 keeps its records and their per-purpose view times, now keyed by k, and new records follow', async () => {
    const p = await place(kind);
    places.push(p);
    await p.script(`${schemaUpTo(kind, 15)}
      INSERT INTO entities (id, type, data, updated_at, updated_seq) VALUES
        ('per_b', 'person', '{"givenName":"Test","familyName":"Two","roles":["student"]}', '2025-01-02T00:00:00Z', 2),
        ('per_a', 'person', '{"givenName":"Test","familyName":"One","roles":["student"]}', '2025-01-01T00:00:00Z', 1);
      INSERT INTO entity_views (entity_id, view, type, updated_at, updated_seq) VALUES
        ('per_a', 'analytics', 'person', '2025-01-01T00:00:00Z', 1),
        ('per_b', 'analytics', 'person', '2025-01-02T00:00:00Z', 2),
        ('per_b', 'lms', 'person', '2025-01-01T12:00:00Z', 1),
        ('per_gone', 'analytics', 'person', '2025-01-03T00:00:00Z', 3);
      INSERT INTO view_fingerprints (view, fingerprint, built_at) VALUES ('analytics', 'f1', '2025-01-01T00:00:00Z'), ('lms', 'f2', '2025-01-01T00:00:00Z');`);
    const store = (await p.open()) as unknown as import('../../src/store/types.ts').Store;
    try {
      const times = await store.viewTimes('analytics', ['per_a', 'per_b', 'per_gone']);
      expect(Object.fromEntries(times)).toEqual({
        per_a: { updatedAt: '2025-01-01T00:00:00Z', updatedSeq: 1 },
        per_b: { updatedAt: '2025-01-02T00:00:00Z', updatedSeq: 2 },
      });
      // A purpose's updatedSince still reads its own view times (lms saw per_b change earlier).
      const since = await store.list({ type: 'person', first: 10, updatedSince: '2025-01-01T06:00:00Z', view: 'lms' });
      expect(since.rows.map((r) => r.id)).toEqual(['per_b']);
      // A record written after the upgrade gets a key after every existing one, and its view time sticks to it.
      await store.transaction(async (tx) => {
        await tx.putEntity({ id: 'per_c', type: 'person', data: { givenName: 'Test', familyName: 'Three', roles: ['student'] }, updatedAt: '2025-02-01T00:00:00Z', updatedSeq: 4 });
        await tx.putViewTimes([{ view: 'analytics', entityId: 'per_c', type: 'person', updatedAt: '2025-02-01T00:00:00Z', updatedSeq: 4 }]);
      });
      const keys = Object.fromEntries((await p.sql<{ id: string; k: number | string }>(`SELECT id, k FROM entities`)).map((r) => [r.id, Number(r.k)]));
      expect(keys.per_c).toBeGreaterThan(Math.max(keys.per_a!, keys.per_b!));
      expect(Object.fromEntries(await store.viewTimes('analytics', ['per_c']))).toEqual({ per_c: { updatedAt: '2025-02-01T00:00:00Z', updatedSeq: 4 } });
      // Deleting a record deletes its view times with it (found through its key before the row goes).
      await store.transaction((tx) => tx.deleteEntity('per_b'));
      expect(await p.sql(`SELECT view FROM entity_views WHERE entity_k = ${keys.per_b}`)).toEqual([]);
    } finally {
      await store.close();
    }
  });
});

describe.each(storeKinds())('view times only where they differ (SQLite schema 19, PostgreSQL 21) on %s', (kind) => {
  const places: Place[] = [];
  afterAll(async () => {
    for (const p of places) await p.drop();
  });

  it('rows equal to their record\'s own time are dropped; every purpose reads the same times as before', async () => {
    const p = await place(kind);
    places.push(p);
    const person = (n: string) => `'{"givenName":"Test","familyName":"${n}","roles":["student"]}'`;
    await p.script(`${schemaUpTo(kind, kind === 'sqlite' ? 18 : 20)}
      INSERT INTO entities (id, type, data, updated_at, updated_seq) VALUES
        ('per_a', 'person', ${person('One')}, '2025-01-01T00:00:00Z', 1),
        ('per_b', 'person', ${person('Two')}, '2025-01-03T00:00:00Z', 3);
      INSERT INTO entity_views (entity_k, view, type, updated_at, updated_seq)
        SELECT k, 'analytics', 'person', updated_at, updated_seq FROM entities;
      INSERT INTO entity_views (entity_k, view, type, updated_at, updated_seq)
        SELECT k, 'lms', 'person', '2025-01-02T00:00:00Z', 2 FROM entities WHERE id = 'per_b';
      INSERT INTO view_fingerprints (view, fingerprint, built_at) VALUES ('analytics', 'f1', '2025-01-01T00:00:00Z'), ('lms', 'f2', '2025-01-01T00:00:00Z');`);
    const store = (await p.open()) as unknown as import('../../src/store/types.ts').Store;
    try {
      expect((await storedViewRows(store)).map((r) => r.row)).toEqual(['lms per_b 2']);
      const read = async (view: string) => Object.fromEntries([...(await store.viewTimes(view, ['per_a', 'per_b']))].map(([id, t]) => [id, t.updatedSeq]));
      expect(await read('analytics')).toEqual({ per_a: 1, per_b: 3 });
      expect(await read('lms')).toEqual({ per_a: 1, per_b: 2 });
      const since = async (view: string) => (await store.list({ type: 'person', first: 10, updatedSince: '2025-01-01T12:00:00Z', view })).rows.map((r) => r.id);
      expect(await since('analytics')).toEqual(['per_b']);
      expect(await since('lms')).toEqual(['per_b']);
      expect((await store.list({ type: 'person', first: 10, updatedSince: '2025-01-02T12:00:00Z', view: 'lms' })).rows).toEqual([]);
    } finally {
      await store.close();
    }
  });

  // PostgreSQL only: SQLite's appends were never unserialised (one writer), so its schema is unchanged.
  if (kind === 'postgres') it('schema 22: an audit entry gets at most one successor; a chain already forked is left as it is, without the index', async () => {
    const row = (prev: string, hash: string) => `('2025-01-01T00:00:00Z', 'c', 'p', 'query', NULL, NULL, '{}', '[]', 0, '${prev}', '${hash}')`;
    const cols = 'at, client, purpose, kind, operation, operation_hash, categories, fields, people, prev_hash, hash';
    const whole = await place(kind);
    const forked = await place(kind);
    places.push(whole, forked);
    await whole.script(`${schemaUpTo(kind, 21)} INSERT INTO audit_log (${cols}) VALUES ${row('g', 'h1')}, ${row('h1', 'h2')};`);
    await forked.script(`${schemaUpTo(kind, 21)} INSERT INTO audit_log (${cols}) VALUES ${row('g', 'h1')}, ${row('h1', 'h2')}, ${row('h1', 'h3')};`);
    for (const p of [whole, forked]) await (await p.open()).close();
    const index = (p: Place) => p.sql<{ indexname: string }>(`SELECT indexname FROM pg_indexes WHERE tablename = 'audit_log' AND indexname = 'audit_log_successor'`);
    expect(await index(whole)).toHaveLength(1);
    await expect(whole.sql(`INSERT INTO audit_log (${cols}) VALUES ${row('h2', 'h4')}, ${row('h2', 'h5')}`)).rejects.toMatchObject({ code: '23505' });
    expect(await index(forked)).toHaveLength(0);
    expect(await forked.sql(`SELECT hash FROM audit_log ORDER BY seq`)).toEqual([{ hash: 'h1' }, { hash: 'h2' }, { hash: 'h3' }]);
  });
});

describe('pseudonyms in their primary key (SQLite schema 20)', () => {
  const places: Place[] = [];
  afterAll(async () => {
    for (const p of places) await p.drop();
  });

  it('a store of schema 19 keeps every pseudonym, now WITHOUT ROWID, with its indexes; lookups, the order walk and erasures read as before', async () => {
    const p = await place('sqlite');
    places.push(p);
    const person = (n: string) => `'{"givenName":"Test","familyName":"${n}","roles":["student"]}'`;
    await p.script(`${schemaUpTo('sqlite', 19)}
      INSERT INTO entities (id, type, data, updated_at, updated_seq) VALUES
        ('per_a', 'person', ${person('One')}, '2025-01-01T00:00:00Z', 1),
        ('per_b', 'person', ${person('Two')}, '2025-01-01T00:00:00Z', 2);
      INSERT INTO pseudonym_domains (domain, version, rotated_at) VALUES ('analytics', 2, '2025-01-01T00:00:00Z');
      INSERT INTO pseudonyms (domain, version, entity_id, value) VALUES
        ('analytics', 1, 'per_a', 'old_a'), ('analytics', 2, 'per_a', 'zz_a'), ('analytics', 2, 'per_b', 'aa_b');`);
    const store = await p.open();
    try {
      const tables = await p.sql<{ sql: string }>(`SELECT sql FROM sqlite_master WHERE name = 'pseudonyms'`);
      expect(tables[0]!.sql).toMatch(/WITHOUT ROWID\s*$/);
      const indexes = (await p.sql<{ name: string }>(`SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'pseudonyms' AND sql IS NOT NULL ORDER BY name`)).map((r) => r.name);
      expect(indexes).toEqual(['pseudonyms_entity', 'pseudonyms_order', 'pseudonyms_value']);
      expect(await p.sql(`SELECT domain, version, entity_id, value FROM pseudonyms ORDER BY entity_id, version`)).toEqual([
        { domain: 'analytics', version: 1, entity_id: 'per_a', value: 'old_a' },
        { domain: 'analytics', version: 2, entity_id: 'per_a', value: 'zz_a' },
        { domain: 'analytics', version: 2, entity_id: 'per_b', value: 'aa_b' },
      ]);
      // The walk in pseudonym order, and a value stays unique within its domain.
      const s = store as unknown as import('../../src/store/types.ts').Store;
      expect((await s.list({ type: 'person', first: 10, order: { domain: 'analytics', version: 2 } })).rows.map((r) => r.id)).toEqual(['per_b', 'per_a']);
      await expect(p.sql(`INSERT INTO pseudonyms (domain, version, entity_id, value) VALUES ('analytics', 2, 'per_c', 'aa_b')`)).rejects.toThrow(/UNIQUE/);
      // A deletion takes the person's pseudonyms along (found through pseudonyms_entity).
      await s.transaction((tx) => tx.deleteEntity('per_a'));
      expect(await p.sql(`SELECT entity_id FROM pseudonyms ORDER BY entity_id`)).toEqual([{ entity_id: 'per_b' }]);
    } finally {
      await store.close();
    }
  });
});

describe.each(storeKinds())('internal keys for links (schema 17) on %s', (kind) => {
  const places: Place[] = [];
  afterAll(async () => {
    for (const p of places) await p.drop();
  });

  it('a store of schema 16 keeps its links, now keyed by their source\'s k; links of records gone are dropped; new links follow', async () => {
    const p = await place(kind);
    places.push(p);
    const person = (n: string) => `'{"givenName":"Test","familyName":"${n}","roles":["student"]}'`;
    await p.script(`${schemaUpTo(kind, 16)}
      INSERT INTO entities (id, type, data, updated_at, updated_seq) VALUES
        ('per_b', 'person', ${person('Two')}, '2025-01-01T00:00:00Z', 1),
        ('per_a', 'person', ${person('One')}, '2025-01-01T00:00:00Z', 2),
        ('cls_1', 'class', '{"title":"Class","orgId":"org_1"}', '2025-01-01T00:00:00Z', 3),
        ('enr_2', 'enrollment', '{"role":"student","classId":"cls_1","personId":"per_b"}', '2025-01-01T00:00:00Z', 4),
        ('enr_1', 'enrollment', '{"role":"student","classId":"cls_1","personId":"per_a"}', '2025-01-01T00:00:00Z', 5);
      INSERT INTO links (from_id, rel, to_id) VALUES
        ('enr_1', 'enrollment.class', 'cls_1'), ('enr_1', 'enrollment.person', 'per_a'),
        ('enr_2', 'enrollment.class', 'cls_1'), ('enr_2', 'enrollment.person', 'per_b'),
        ('enr_gone', 'enrollment.class', 'cls_1');
      INSERT INTO pseudonym_domains (domain, version, rotated_at) VALUES ('analytics', 1, '2025-01-01T00:00:00Z');
      INSERT INTO pseudonyms (domain, version, entity_id, value) VALUES
        ('analytics', 1, 'per_a', 'p1_zzz'), ('analytics', 1, 'per_b', 'p1_aaa');`);
    const store = (await p.open()) as unknown as import('../../src/store/types.ts').Store;
    try {
      // Links: found by target, sources named by id in id order; the link of a record gone is dropped.
      expect(Object.fromEntries(await store.linkedFrom('enrollment.class', ['cls_1']))).toEqual({ cls_1: ['enr_1', 'enr_2'] });
      expect(Number((await p.sql<{ n: number | string }>(`SELECT count(*) AS n FROM links`))[0]!.n)).toBe(4);
      expect((await store.list({ type: 'enrollment', first: 10, linkedTo: { rel: 'enrollment.person', to: 'per_b' } })).rows.map((r) => r.id)).toEqual(['enr_2']);
      // Lists in pseudonym order walk the links from each person to the records linking to them.
      const order = { domain: 'analytics', version: 1 };
      const people = await store.list({ type: 'person', first: 10, order });
      expect(people.rows.map((r) => r.id)).toEqual(['per_b', 'per_a']);
      expect(people.keyPeople).toEqual(['per_b', 'per_a']);
      const enrollments = await store.list({ type: 'enrollment', first: 10, order });
      expect(enrollments.rows.map((r) => r.id)).toEqual(['enr_2', 'enr_1']);
      expect(enrollments.keyPeople).toEqual(['per_b', 'per_a']);
      // New rows are keyed by their entity's k, and go with it.
      await store.transaction(async (tx) => {
        await tx.putEntity({ id: 'per_c', type: 'person', data: { givenName: 'Test', familyName: 'Three', roles: ['student'] }, updatedAt: '2025-02-01T00:00:00Z', updatedSeq: 6 });
        await tx.putPseudonyms([{ domain: 'analytics', version: 1, entityId: 'per_c', value: 'p1_ccc' }]);
        await tx.putEntity({ id: 'enr_3', type: 'enrollment', data: { role: 'student', classId: 'cls_1', personId: 'per_c' }, updatedAt: '2025-02-01T00:00:00Z', updatedSeq: 7 });
        await tx.setLinks('enr_3', [{ rel: 'enrollment.class', to: 'cls_1' }, { rel: 'enrollment.person', to: 'per_c' }]);
      });
      expect((await store.list({ type: 'enrollment', first: 10, order })).rows.map((r) => r.id)).toEqual(['enr_2', 'enr_3', 'enr_1']);
      await store.transaction(async (tx) => {
        await tx.deleteEntity('enr_3');
        await tx.deleteEntity('per_c');
      });
      expect(Object.fromEntries(await store.linkedFrom('enrollment.class', ['cls_1']))).toEqual({ cls_1: ['enr_1', 'enr_2'] });
      // Deleting a person takes its pseudonyms along, found through pseudonyms_entity (SQLite scanned the table).
      expect(Number((await p.sql<{ n: number | string }>(`SELECT count(*) AS n FROM pseudonyms`))[0]!.n)).toBe(2);
      if (kind === 'sqlite') {
        const plan = await p.sql<{ detail: string }>(`EXPLAIN QUERY PLAN DELETE FROM pseudonyms WHERE entity_id IN (SELECT value FROM json_each('["per_a"]'))`);
        expect(plan.map((r) => r.detail)).toEqual(expect.arrayContaining([expect.stringMatching(/^SEARCH pseudonyms USING (COVERING )?INDEX pseudonyms_entity \(entity_id=\?\)/)]));
      }
      expect(await store.entityByPseudonym('analytics', 'p1_ccc')).toBeUndefined();
    } finally {
      await store.close();
    }
  });
});

describe.each(storeKinds())('repairing stored values on %s', (kind) => {
  const places: Place[] = [];
  afterAll(async () => {
    for (const p of places) await p.drop();
  });

  it('values synced before they were checked are repaired or removed, so queries selecting them cannot fail', async () => {
    const p = await place(kind);
    places.push(p);
    // A store as version 11 left it (sync leases, the last before the repair), holding what vendors
    // really sent (synthetic people).
    const migrations = kind === 'sqlite' ? SQLITE_MIGRATIONS : POSTGRES_MIGRATIONS;
    expect(migrations.filter((m) => m.repair).map((m) => m.version)).toEqual([12]);
    const person = (email: string) => JSON.stringify({ givenName: 'Test', familyName: 'Person', roles: ['student'], email });
    const src = (raw: string) => `{"raw":${raw},"resolved":${raw}}`;
    await p.script(`${schemaUpTo(kind, 11)}
      INSERT INTO entities (id, type, data, updated_at, updated_seq) VALUES
        ('per_quote', 'person', '${person('ab"c.test@example.com')}', '2025-01-01T00:00:00Z', 1),
        ('per_noat', 'person', '${person('d_e.example.org')}', '2025-01-01T00:00:00Z', 2),
        ('per_ok', 'person', '${person(' fine@example.org')}', '2025-01-01T00:00:00Z', 3),
        ('enr_1', 'enrollment', '{"role":"student","classId":"cls_1","personId":"per_ok","beginDate":"15/06/2023","endDate":"06/05/2024"}', '2025-01-01T00:00:00Z', 4);
      INSERT INTO source_records (source, type, key, entity_id, data, hash, last_modified, seen_run) VALUES
        ('csv', 'person', 'u1', 'per_quote', '${src(person('ab"c.test@example.com'))}', 'h', '2017-05-06 08:01:05', 1),
        ('csv', 'person', 'u2', 'per_noat', '${src(person('d_e.example.org'))}', 'h', '2023-05-01', 1),
        ('csv', 'person', 'u3', 'per_ok', '${src(person(' fine@example.org'))}', 'h', '15/06/2023', 1),
        ('csv', 'enrollment', 'e1', 'enr_1', '{"raw":{"role":"student"},"resolved":{"role":"student"}}', 'h', '06/05/2023', 1),
        ('csv', 'enrollment', 'e2', 'enr_1', '{"raw":{"role":"student"},"resolved":{"role":"student"}}', 'h', '2024-01-02T03:04:05Z', 1);`);
    await (await p.open()).close();
    const parse = (v: unknown) => (typeof v === 'string' ? JSON.parse(v) : v) as Record<string, unknown>;
    const entities = Object.fromEntries((await p.sql<{ id: string; data: unknown }>(`SELECT id, data FROM entities`)).map((r) => [r.id, parse(r.data)]));
    expect(entities.per_quote!.email).toBeUndefined();
    expect(entities.per_noat!.email).toBeUndefined();
    expect(entities.per_ok!.email).toBe('fine@example.org');
    expect(entities.per_quote!.givenName).toBe('Test');
    // Day 15 is no month: read day first. 06/05/2024 has two readings: removed.
    expect(entities.enr_1).toEqual({ role: 'student', classId: 'cls_1', personId: 'per_ok', beginDate: '2023-06-15' });
    const sources = Object.fromEntries(
      (await p.sql<{ key: string; data: unknown; last_modified: string | null }>(`SELECT key, data, last_modified FROM source_records`)).map((r) => [r.key, { ...r, data: parse(r.data) }]),
    );
    expect(Object.fromEntries(Object.entries(sources).map(([k, v]) => [k, v.last_modified]))).toEqual({
      u1: '2017-05-06T08:01:05Z', u2: '2023-05-01T00:00:00Z', u3: '2023-06-15T00:00:00Z', e1: null, e2: '2024-01-02T03:04:05Z',
    });
    expect((sources.u1!.data.raw as Record<string, unknown>).email).toBeUndefined();
    expect((sources.u1!.data.resolved as Record<string, unknown>).email).toBeUndefined();
    expect((sources.u3!.data.resolved as Record<string, unknown>).email).toBe('fine@example.org');
  });
});

describe('the SQLite store', () => {
  it('runs in WAL mode, so queries read while a sync writes', async () => {
    const p = await place('sqlite');
    await (await p.open()).close();
    expect(await p.sql(`PRAGMA journal_mode`)).toEqual([{ journal_mode: 'wal' }]);
  });
});
