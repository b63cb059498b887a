import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sql } from 'kysely';
import type { WriteTx } from '../../src/store/queries/write-tx.ts';
import Database from 'better-sqlite3';
import { auditLogFor } from '../../src/graphql/privacy.ts';
import { KeyRing } from '../../src/privacy/pseudonym.ts';
import { SqliteStore } from '../../src/store/sqlite.ts';
import { join } from 'node:path';
import { openTestStore, storeKinds, tempDir } from '../support/stores.ts';

const ring = new KeyRing(Buffer.alloc(32, 3), 't');
let path: string;

async function withLog(n: number) {
  path = join(tempDir(), 'audit.db');
  const store = SqliteStore.open(path);
  const log = auditLogFor(store, ring);
  for (let i = 0; i < n; i++) {
    await log.record({ at: `2026-11-25T10:00:0${i}Z`, client: 'c', purpose: 'p', kind: 'query', operation: `Op${i}`, operationHash: 'h', categories: { DIRECT: 1 }, fields: ['Person.email'], people: i }, [`per_${i}`]);
  }
  return store;
}

describe('hash-chained audit log', () => {
  it('verifies an untouched chain', async () => {
    const store = await withLog(5);
    const r = await auditLogFor(store, ring).verify();
    expect(r).toMatchObject({ ok: true, entries: 5, head: { seq: 5 } });
    expect((await auditLogFor(store, ring).verify(r.head!.hash)).ok).toBe(true);
    await store.close();
  });

  it('refuses updates through SQL, and detects an edited entry when the guard is bypassed', async () => {
    const store = await withLog(5);
    await store.close();
    const db = new Database(path);
    expect(() => db.prepare(`UPDATE audit_log SET people = 99 WHERE seq = 3`).run()).toThrow(/append-only/);
    db.exec(`DROP TRIGGER audit_log_no_update`);
    db.prepare(`UPDATE audit_log SET people = 99 WHERE seq = 3`).run();
    db.close();
    const again = SqliteStore.open(path);
    const r = await auditLogFor(again, ring).verify();
    expect(r.ok).toBe(false);
    expect(r.firstBad).toEqual({ seq: 3, reason: expect.stringMatching(/edited/) });
    await again.close();
  });

  it('refuses deletes through SQL, and detects a removed entry when the guard is bypassed', async () => {
    const store = await withLog(5);
    await store.close();
    const db = new Database(path);
    expect(() => db.prepare(`DELETE FROM audit_log WHERE seq = 2`).run()).toThrow(/append-only/);
    db.exec(`DROP TRIGGER audit_log_no_delete`);
    db.prepare(`DELETE FROM audit_log WHERE seq = 2`).run();
    db.close();
    const again = SqliteStore.open(path);
    expect((await auditLogFor(again, ring).verify()).firstBad).toEqual({ seq: 3, reason: expect.stringMatching(/removed or inserted/) });
    await again.close();
  });

  it('detects an entry inserted without the key', async () => {
    const store = await withLog(4);
    await store.close();
    const db = new Database(path);
    // A forger copies entry 2's links and content but cannot compute the keyed hash.
    db.prepare(`INSERT INTO audit_log (at, client, purpose, kind, operation, operation_hash, categories, fields, people, prev_hash, hash)
      SELECT at, 'forger', purpose, kind, operation, operation_hash, categories, fields, people, hash, hash FROM audit_log WHERE seq = 4`).run();
    db.close();
    const again = SqliteStore.open(path);
    expect((await auditLogFor(again, ring).verify()).firstBad).toEqual({ seq: 5, reason: expect.stringMatching(/inserted without the key/) });
    await again.close();
  });

  it('entries cut from the end leave a valid chain, which the noted head (anchor) exposes', async () => {
    const store = await withLog(5);
    const head = (await auditLogFor(store, ring).verify()).head!;
    await store.close();
    const db = new Database(path);
    db.exec(`DROP TRIGGER audit_log_no_delete`);
    db.prepare(`DELETE FROM audit_log WHERE seq >= 4`).run();
    db.close();
    const again = SqliteStore.open(path);
    expect((await auditLogFor(again, ring).verify()).ok).toBe(true);
    const r = await auditLogFor(again, ring).verify(head.hash);
    expect(r.ok).toBe(false);
    expect(r.firstBad?.reason).toMatch(/anchor is not on the chain/);
    await again.close();
  });

  it('a recomputed plain hash does not fool it: the chain is keyed', async () => {
    const store = await withLog(2);
    const other = new KeyRing(Buffer.alloc(32, 4), 't');
    expect((await auditLogFor(store, other).verify()).ok).toBe(false);
    await store.close();
  });
});

describe('hash-chained audit log on PostgreSQL', () => {
  it.runIf(storeKinds().includes('postgres'))('refuses updates, deletes and truncation, and detects an edited entry when the guard is bypassed', async () => {
    const store = await openTestStore('postgres');
    try {
      const log = auditLogFor(store, ring);
      for (let i = 0; i < 4; i++) {
        await log.record({ at: `2026-11-25T10:00:0${i}Z`, client: 'c', purpose: 'p', kind: 'query', operation: null, operationHash: null, categories: {}, fields: [], people: i }, []);
      }
      expect((await log.verify()).ok).toBe(true);
      const tamper = (text: string) => store.transaction(async (tx) => void (await sql.raw(text).execute((tx as WriteTx).db)));
      await expect(tamper(`UPDATE audit_log SET people = 99 WHERE seq = 2`)).rejects.toThrow(/append-only/);
      await expect(tamper(`DELETE FROM audit_log WHERE seq = 3`)).rejects.toThrow(/append-only/);
      await expect(tamper(`TRUNCATE audit_log`)).rejects.toThrow(/append-only/);
      await tamper(`ALTER TABLE audit_log DISABLE TRIGGER audit_log_no_update`);
      await tamper(`UPDATE audit_log SET people = 99 WHERE seq = 2`);
      expect((await log.verify()).firstBad?.seq).toBe(2);
    } finally {
      await store.close();
    }
  });
});
