/**
 * Which database a configured `store` names, and opening it. Apart from the gateway's assembly
 * (src/runtime.ts) so that a command that only reads or writes the store (tenants, keys, identity,
 * retention, erase) loads the two store drivers and not the whole gateway: each such command starts
 * in a fraction of the time.
 */
import { PostgresStore } from './postgres.ts';
import { SqliteStore } from './sqlite.ts';
import type { Store } from './types.ts';

export function isPostgresUrl(store: string): boolean {
  return store.startsWith('postgres://') || store.startsWith('postgresql://');
}

/** A `postgres://` URL opens PostgreSQL; anything else is a SQLite file path. */
export async function openStore(cfg: { store: string }): Promise<Store> {
  return isPostgresUrl(cfg.store) ? PostgresStore.open(cfg.store) : SqliteStore.open(cfg.store);
}
