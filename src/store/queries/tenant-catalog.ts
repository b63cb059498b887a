/**
 * The tenant catalog (TenantCatalogStore), written once for both stores: which tenants a deployment
 * serves besides the config file's own, and a record of the removed ones. Reads through the store's
 * read connection; each write a transaction of its own, under the store's write lock.
 */
import type { Selectable } from 'kysely';
import type { Database } from '../db.ts';
import type { StoreDialect } from '../dialect.ts';
import type { TenantCatalogStore, TenantRow } from '../types.ts';
import { json } from './rows.ts';
import type { WebhookHost } from './webhooks.ts';

export class StoreTenantCatalog implements TenantCatalogStore {
  constructor(
    private readonly store: WebhookHost,
    private readonly d: StoreDialect,
  ) {}

  private toRow(r: Selectable<Database['tenants']>): TenantRow {
    return { id: r.id, name: r.name, status: r.status, sources: this.d.fromJson(r.sources), createdAt: r.created_at, updatedAt: r.updated_at };
  }

  async list() {
    const rows = await this.store.executeRead(this.store.rdb.selectFrom('tenants').selectAll().orderBy('id').compile());
    return rows.map((r) => this.toRow(r));
  }

  async get(id: string) {
    const r = (await this.store.executeRead(this.store.rdb.selectFrom('tenants').selectAll().where('id', '=', id).compile()))[0];
    return r && this.toRow(r);
  }

  add(t: TenantRow) {
    return this.store.transaction(async (tx) => {
      const r = await tx.db.insertInto('tenants')
        .values({ id: t.id, name: t.name, status: t.status, sources: json(t.sources), created_at: t.createdAt, updated_at: t.updatedAt })
        .onConflict((oc) => oc.column('id').doNothing())
        .executeTakeFirst();
      return Number(r.numInsertedOrUpdatedRows ?? 0n) > 0;
    });
  }

  update(id: string, patch: Partial<Pick<TenantRow, 'name' | 'status' | 'sources'>> & { updatedAt: string }) {
    return this.store.transaction(async (tx) => {
      const r = await tx.db.updateTable('tenants')
        .set({
          updated_at: patch.updatedAt,
          ...(patch.name !== undefined ? { name: patch.name } : {}),
          ...(patch.status !== undefined ? { status: patch.status } : {}),
          ...(patch.sources !== undefined ? { sources: json(patch.sources) } : {}),
        })
        .where('id', '=', id)
        .executeTakeFirst();
      return Number(r.numUpdatedRows) > 0;
    });
  }

  remove(id: string, removal: { removedAt: string; removedBy: string }) {
    return this.store.transaction(async (tx) => {
      const gone = await tx.db.deleteFrom('tenants').where('id', '=', id).returning('name').executeTakeFirst();
      if (!gone) return false;
      await tx.db.insertInto('tenant_removals').values({ tenant_id: id, name: gone.name, removed_at: removal.removedAt, removed_by: removal.removedBy }).execute();
      return true;
    });
  }

  async removals() {
    const rows = await this.store.executeRead(this.store.rdb.selectFrom('tenant_removals').selectAll().orderBy('id').compile());
    return rows.map((r) => ({ tenantId: r.tenant_id, name: r.name, removedAt: r.removed_at, removedBy: r.removed_by }));
  }
}
