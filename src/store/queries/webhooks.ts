/**
 * Webhook subscriptions and their deliveries (WebhookStore), written once for both stores: reads
 * through the store's read connection, writes each in a transaction of their own (under the store's
 * write lock, like every write).
 */
import type { StoreDialect } from '../dialect.ts';
import type { DeliveryRow, WebhookRow, WebhookStore } from '../types.ts';
import { json, toDelivery, toWebhook } from './rows.ts';
import type { CompiledQuery, Kysely } from 'kysely';
import type { Database } from '../db.ts';
import type { WriteTx } from './write-tx.ts';

/**
 * What the webhook queries need of the store they live in (its read connection, its write
 * transactions, the change log's head): declared here rather than imported from store-reads.ts,
 * which builds this class, so the two files do not import each other.
 */
export interface WebhookHost {
  readonly rdb: Kysely<Database>;
  executeRead<R>(q: CompiledQuery<R>): Promise<R[]>;
  transaction<T>(fn: (tx: WriteTx) => Promise<T>): Promise<T>;
  headSeq(): Promise<number>;
}

export class StoreWebhooks implements WebhookStore {
  constructor(
    private readonly store: WebhookHost,
    private readonly d: StoreDialect,
  ) {}

  private get rdb() {
    return this.store.rdb;
  }

  async create(w: WebhookRow) {
    await this.store.transaction((tx) => tx.db.insertInto('webhooks')
      .values({ id: w.id, client: w.client, url: w.url, events: json(w.events), secret: w.secret, cursor_seq: w.cursorSeq, created_at: w.createdAt })
      .execute());
  }

  async list() {
    const rows = await this.store.executeRead(this.rdb.selectFrom('webhooks').selectAll().orderBy('created_at').orderBy('id').compile());
    return rows.map((r) => toWebhook(this.d, r));
  }

  async get(id: string) {
    const r = (await this.store.executeRead(this.rdb.selectFrom('webhooks').selectAll().where('id', '=', id).compile()))[0];
    return r && toWebhook(this.d, r);
  }

  delete(id: string) {
    return this.store.transaction(async (tx) => {
      await tx.db.deleteFrom('webhook_deliveries').where('webhook_id', '=', id).execute();
      return Number((await tx.db.deleteFrom('webhooks').where('id', '=', id).executeTakeFirst()).numDeletedRows) > 0;
    });
  }

  async setCursor(id: string, seq: number) {
    await this.store.transaction((tx) => tx.db.updateTable('webhooks').set({ cursor_seq: seq }).where('id', '=', id).execute());
  }

  enqueue(id: string, ds: Parameters<WebhookStore['enqueue']>[1], fromSeq: number, toSeq: number) {
    return this.store.transaction(async (tx) => {
      const moved = await tx.db.updateTable('webhooks').set({ cursor_seq: toSeq }).where('id', '=', id).where('cursor_seq', '=', fromSeq).executeTakeFirst();
      if (Number(moved.numUpdatedRows) === 0) return false;
      await tx.insertDeliveries(ds.map((d) => ({ ...d, webhookId: id })));
      return true;
    });
  }

  async nextPending(id: string) {
    const r = (await this.store.executeRead(this.rdb.selectFrom('webhook_deliveries').selectAll()
      .where('webhook_id', '=', id).where('status', '=', 'pending').orderBy('id').limit(1).compile()))[0];
    return r && toDelivery(r);
  }

  async update(d: Parameters<WebhookStore['update']>[0]) {
    await this.store.transaction((tx) => tx.db.updateTable('webhook_deliveries')
      .set({ status: d.status, attempts: d.attempts, next_attempt_at: d.nextAttemptAt, last_status: d.lastStatus, last_error: d.lastError, delivered_at: d.deliveredAt })
      .where('id', '=', d.id).execute());
  }

  async deliveries(id: string, status?: DeliveryRow['status'], limit = 100) {
    const rows = await this.store.executeRead(this.rdb.selectFrom('webhook_deliveries').selectAll().where('webhook_id', '=', id)
      .$if(status !== undefined, (qb) => qb.where('status', '=', status!)).orderBy('id', 'desc').limit(limit).compile());
    return rows.map(toDelivery);
  }

  async counts(id: string) {
    const out = { pending: 0, delivered: 0, dead: 0 };
    const rows = await this.store.executeRead(this.rdb.selectFrom('webhook_deliveries').select(['status', (eb) => eb.fn.countAll<number>().as('n')])
      .where('webhook_id', '=', id).groupBy('status').compile());
    for (const r of rows) out[r.status] = Number(r.n);
    return out;
  }

  retryDead(id: string, at: string) {
    return this.store.transaction(async (tx) => {
      const r = await tx.db.updateTable('webhook_deliveries').set({ status: 'pending', attempts: 0, next_attempt_at: at })
        .where('webhook_id', '=', id).where('status', '=', 'dead').executeTakeFirst();
      return Number(r.numUpdatedRows);
    });
  }

  async seqAt(iso: string) {
    const r = (await this.store.executeRead(this.rdb.selectFrom('change_log').select((eb) => eb.fn.min('seq').as('s')).where('at', '>=', iso).compile()))[0];
    return r?.s !== null && r?.s !== undefined ? Number(r.s) : (await this.store.headSeq()) + 1;
  }
}
