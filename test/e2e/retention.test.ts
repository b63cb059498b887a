/**
 * Retention on SQLite and PostgreSQL: a run removes exactly what is past each period (change log,
 * finished webhook deliveries, audit entries) and keeps the rest; the audit chain still verifies
 * from the checkpoint, and tampering after it (or a cut past it) is still caught.
 */
import { afterEach, describe, expect, it, vi } from 'vitest';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import pg from 'pg';
import { auditLogFor } from '../../src/graphql/privacy.ts';
import { KeyRing } from '../../src/privacy/pseudonym.ts';
import { runRetention } from '../../src/privacy/retention.ts';
import { SqliteStore } from '../../src/store/sqlite.ts';
import { PostgresStore } from '../../src/store/postgres.ts';
import type { Store } from '../../src/store/types.ts';
import { parseConfig } from '../../src/config/config.ts';
import { scheduleRetention } from '../../src/runtime.ts';
import { createLogger } from '../../src/log.ts';
import { newPostgresDatabase, storeKinds, tempDir, type StoreKind } from '../support/stores.ts';

const ring = new KeyRing(Buffer.alloc(32, 5), 't');
const NOW = new Date('2026-12-01T12:00:00Z');
const daysAgo = (d: number) => new Date(NOW.getTime() - d * 86_400_000).toISOString();
const periods = { changeLogDays: 30, auditMonths: 13, webhookDeliveryDays: 30 };

/** A store plus raw SQL on it, to play the attacker who bypasses the store. */
async function open(kind: StoreKind): Promise<{ store: Store; sql(q: string): Promise<void>; done(): Promise<void> }> {
  if (kind === 'sqlite') {
    const path = join(tempDir(), 'rg.db');
    const h = {
      store: SqliteStore.open(path) as Store,
      async sql(q: string) { await h.store.close(); const db = new Database(path); try { db.exec(q); } finally { db.close(); h.store = SqliteStore.open(path); } },
      async done() { await h.store.close(); },
    };
    return h;
  }
  const db = await newPostgresDatabase();
  const store = await PostgresStore.open(db.url);
  return {
    store,
    async sql(q) { const c = new pg.Client({ connectionString: db.url }); await c.connect(); try { await c.query(q); } finally { await c.end(); } },
    async done() { await store.close(); await db.drop(); },
  };
}

async function seed(store: Store) {
  const log = auditLogFor(store, ring);
  // Audit: 3 entries 14 months old (due), 2 from 12 months ago (kept).
  for (const [i, at] of ['2025-09-01T00:00:00Z', '2025-09-02T00:00:00Z', '2025-10-01T00:00:00Z', '2025-12-15T00:00:00Z', '2026-11-30T00:00:00Z'].entries()) {
    await log.record({ at, client: 'c', purpose: 'p', kind: 'query', operation: `Op${i}`, operationHash: 'h', categories: { DIRECT: 1 }, fields: ['Person.email'], people: 1 });
  }
  // Change log: 2 older than 30 days, 1 newer.
  await store.transaction(async (tx) => {
    for (const [i, d] of [40, 31, 2].entries()) {
      await tx.appendChange({ at: daysAgo(d), entityId: `per_${i}`, type: 'person', op: 'created', fields: [], source: 's' });
    }
  });
  // Webhook deliveries: delivered 40 days ago (due), dead 35 days ago (due), delivered yesterday (kept), pending 50 days old (kept: still owed).
  await store.webhooks.create({ id: 'wh1', client: 'c', url: 'https://example.invalid/h', events: [], secret: 'x', cursorSeq: 0, createdAt: daysAgo(60) });
  const mk = (n: number, d: number) => ({ webhookId: 'wh1', seq: n, msgId: `m${n}`, eventType: 'person.created', payload: '{}', nextAttemptAt: daysAgo(d), createdAt: daysAgo(d) });
  expect(await store.webhooks.enqueue('wh1', [mk(1, 41), mk(2, 36), mk(3, 2), mk(4, 50)], 0, 4)).toBe(true);
  const ds = (await store.webhooks.deliveries('wh1')).sort((a, b) => a.seq - b.seq);
  const upd = (i: number, status: 'delivered' | 'dead', deliveredAt: string | null) =>
    store.webhooks.update({ id: ds[i]!.id, status, attempts: 1, nextAttemptAt: ds[i]!.nextAttemptAt, lastStatus: 200, lastError: null, deliveredAt });
  await upd(0, 'delivered', daysAgo(40));
  await upd(1, 'dead', null);
  await upd(2, 'delivered', daysAgo(1));
}

describe.each(storeKinds())('retention on %s', (kind) => {
  let h: Awaited<ReturnType<typeof open>>;
  afterEach(async () => h?.done());

  it('removes exactly what is due, records the counts, and the audit chain verifies from the checkpoint', async () => {
    h = await open(kind);
    await seed(h.store);
    const dry = await runRetention(h.store, ring.auditKey(), periods, { now: NOW, dryRun: true });
    expect(dry).toMatchObject({ changeLog: 2, auditLog: 3, webhookDeliveries: 2, dryRun: true });
    expect((await h.store.auditEntries({})).length).toBe(5);

    const r = await runRetention(h.store, ring.auditKey(), periods, { now: NOW });
    expect(r).toMatchObject({ changeLog: 2, auditLog: 3, webhookDeliveries: 2, dryRun: false });
    expect((await h.store.changes({ afterSeq: 0, limit: 10 })).map((c) => c.entityId)).toEqual(['per_2']);
    expect((await h.store.webhooks.deliveries('wh1')).map((d) => d.seq).sort()).toEqual([3, 4]);
    const entries = await h.store.auditEntries({});
    expect(entries.map((e) => e.kind)).toEqual(['query', 'query', 'checkpoint', 'retention']);
    expect(entries.map((e) => e.operation).slice(0, 2)).toEqual(['Op3', 'Op4']);
    expect(entries[3]!.categories).toEqual({ changeLog: 2, auditLog: 3, webhookDeliveries: 2 });
    const v = await auditLogFor(h.store, ring).verify();
    expect(v).toMatchObject({ ok: true, entries: 4, startsAfter: entries[0]!.seq - 1 });

    // A second run finds nothing more due, and the chain still verifies.
    expect(await runRetention(h.store, ring.auditKey(), periods, { now: NOW })).toMatchObject({ changeLog: 0, auditLog: 0, webhookDeliveries: 0 });
    expect((await auditLogFor(h.store, ring).verify()).ok).toBe(true);

    // The append-only guard is back after the run.
    await expect(h.sql(`DELETE FROM audit_log WHERE kind = 'retention'`)).rejects.toThrow(/append-only/);
  });

  it('detects an entry after the checkpoint altered, and a cut past the checkpoint', async () => {
    h = await open(kind);
    await seed(h.store);
    await runRetention(h.store, ring.auditKey(), periods, { now: NOW });
    const [first] = await h.store.auditEntries({});
    // Cut one more entry from the start, bypassing the guard: no checkpoint accounts for it.
    const lift = kind === 'sqlite' ? `DROP TRIGGER audit_log_no_delete;` : `ALTER TABLE audit_log DISABLE TRIGGER audit_log_no_delete;`;
    await h.sql(`${lift} DELETE FROM audit_log WHERE seq = ${first!.seq};`);
    const cut = await auditLogFor(h.store, ring).verify();
    expect(cut.ok).toBe(false);
    expect(cut.firstBad!.reason).toMatch(/no retention checkpoint accounts for/);

    const h2 = await open(kind);
    try {
      await seed(h2.store);
      await runRetention(h2.store, ring.auditKey(), periods, { now: NOW });
      const es = await h2.store.auditEntries({});
      const liftU = kind === 'sqlite' ? `DROP TRIGGER audit_log_no_update;` : `ALTER TABLE audit_log DISABLE TRIGGER audit_log_no_update;`;
      await h2.sql(`${liftU} UPDATE audit_log SET people = 99 WHERE seq = ${es[1]!.seq};`);
      const v = await auditLogFor(h2.store, ring).verify();
      expect(v.ok).toBe(false);
      expect(v.firstBad).toEqual({ seq: es[1]!.seq, reason: expect.stringMatching(/edited/) });
    } finally {
      await h2.done();
    }
  });
});

describe('scheduled retention (serve)', () => {
  it('runs every runEveryHours, and not at all with 0', async () => {
    const h = await open('sqlite');
    vi.useFakeTimers({ toFake: ['setInterval', 'clearInterval'] });
    try {
      const cfg = parseConfig({ retention: { runEveryHours: 2 } });
      const off = scheduleRetention(h.store, ring.auditKey(), parseConfig({ retention: { runEveryHours: 0 } }), createLogger({ level: 'silent' }));
      const s = scheduleRetention(h.store, ring.auditKey(), cfg, createLogger({ level: 'silent' }));
      await vi.advanceTimersByTimeAsync(3_600_000);
      expect(await h.store.auditEntries({})).toEqual([]);
      await vi.advanceTimersByTimeAsync(3_600_000);
      await s.stop();
      await off.stop();
      expect((await h.store.auditEntries({})).map((e) => e.kind)).toEqual(['retention']);
      await vi.advanceTimersByTimeAsync(4 * 3_600_000);
      expect((await h.store.auditEntries({})).length).toBe(1);
    } finally {
      vi.useRealTimers();
      await h.done();
    }
  });
});

describe('retention config', () => {
  it('defaults: 13 months of audit, change log from changeFeed.retentionDays, daily runs', () => {
    expect(parseConfig({}).retention).toEqual({ changeLogDays: 30, auditMonths: 13, webhookDeliveryDays: 30, runEveryHours: 24 });
    expect(parseConfig({ changeFeed: { retentionDays: 9 } }).retention.changeLogDays).toBe(9);
    expect(parseConfig({ retention: { changeLogDays: 9 } }).changeFeed.retentionDays).toBe(9);
  });

  it('refuses a period shorter than its minimum, naming it and the reason', () => {
    expect(() => parseConfig({ retention: { auditMonths: 3 } }, 'rg.yaml')).toThrow(/rg\.yaml: retention\.auditMonths: shorter than the minimum of 6 months \(the audit log must cover/);
    expect(() => parseConfig({ retention: { changeLogDays: 0 } })).toThrow(/retention\.changeLogDays: shorter than the minimum of 1 day/);
    expect(() => parseConfig({ retention: { webhookDeliveryDays: 0 } })).toThrow(/retention\.webhookDeliveryDays: shorter than the minimum of 1 day/);
    expect(() => parseConfig({ retention: { changeLogDays: 5 }, changeFeed: { retentionDays: 7 } })).toThrow(/retention\.changeLogDays \(5\) and changeFeed\.retentionDays \(7\) differ/);
  });
});
