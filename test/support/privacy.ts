/** Test helpers: a synced store served with the demo purposes, clients and fresh API keys. */
import { join } from 'node:path';
import { RosterDataset } from '../../src/demo/dataset.ts';
import { directConnector } from '../../src/demo/direct-connector.ts';
import type { DistrictOptions } from '../../src/demo/generator.ts';
import { DEMO_CLIENTS, DEMO_PURPOSES } from '../../src/demo/demo-policy.ts';
import { parseConfig, type Config } from '../../src/config/config.ts';
import { buildUnifiedSchema } from '../../src/graphql/schema.ts';
import { createLogger } from '../../src/log.ts';
import { hashApiKey, newApiKey } from '../../src/privacy/api-keys.ts';
import { KeyRing } from '../../src/privacy/pseudonym.ts';
import { setupPrivacy, type Privacy } from '../../src/graphql/privacy.ts';
import { serveStore } from '../../src/runtime.ts';
import { SqliteStore } from '../../src/store/sqlite.ts';
import { syncSource, type SyncSummary } from '../../src/sync/runner.ts';
import type { RunningGateway } from '../../src/server/gateway.ts';
import { openTestStore, tempDir, type StoreKind } from './stores.ts';
import type { Store } from '../../src/store/types.ts';
import { request } from 'undici';
import type { TenantAdmin } from '../../src/graphql/admin-services.ts';

export const TEST_MASTER_KEY = Buffer.alloc(32, 7);

export interface PrivateGateway {
  dataset: RosterDataset;
  store: Store & { readCount: number };
  config: Config;
  privacy: Privacy;
  keys: Record<string, string>;
  gw: RunningGateway;
  summary: SyncSummary;
  resync(): Promise<SyncSummary>;
  /** `tenant`: the x-rostergate-tenant header, for clients of several tenants. */
  gql(client: string, query: string, variables?: unknown, tenant?: string): Promise<{ status: number; body: { data?: any; errors?: any[] } }>;
  close(): Promise<void>;
}

export function demoPrivacyConfig(store: string, extra: Record<string, unknown> = {}): Config {
  return parseConfig({ store, privacy: { tenant: 'test' }, purposes: DEMO_PURPOSES, clients: DEMO_CLIENTS, ...extra });
}

export async function privateGateway(
  district: DistrictOptions = { students: 120, teachers: 8, classes: 12, schools: 2 },
  keyring = new KeyRing(TEST_MASTER_KEY, 'test'),
  opts: {
    config?: Record<string, unknown>; webhooks?: boolean; store?: StoreKind;
    /** Wraps the store the gateway serves from (e.g. to count or slow its reads); sync uses the store itself. */
    served?: (store: Store) => Store;
    /** Tenant management for the admin purpose, over the gateway's (SQLite) store at its path. */
    tenantAdmin?: (store: Store, location: string) => TenantAdmin;
    /** The tenants of the demo's admin client (clients[].tenants); tenant management needs ["*"]. */
    adminTenants?: string[];
  } = {},
): Promise<PrivateGateway> {
  const dir = tempDir();
  const dataset = RosterDataset.generate(district);
  const config = demoPrivacyConfig(join(dir, 'rg.db'), opts.config);
  if (opts.adminTenants) config.clients = config.clients.map((c) => (c.id === 'admin-demo' ? { ...c, tenants: opts.adminTenants } : c));
  const store = opts.store === 'postgres' ? await openTestStore('postgres') : SqliteStore.open(config.store);
  // Tests rotate domains and revoke keys and expect the next request to see it: no version or key
  // caching (test/e2e/serving.test.ts covers the key cache and its bound).
  const privacy = setupPrivacy(config, buildUnifiedSchema(), { keyring, versionCacheMs: 0, apiKeyCacheMs: 0, tenantAdmin: opts.tenantAdmin?.(store, config.store) });
  const sync = async () => {
    const ingest = await privacy.ingest(store);
    const s = await syncSource(store, directConnector('demo', dataset), { ...ingest, matchRules: config.identity.match });
    s.dropped = [...ingest.minimiser.dropped].sort();
    return s;
  };
  const summary = await sync();
  const keys: Record<string, string> = {};
  for (const c of config.clients) {
    keys[c.id] = newApiKey();
    await store.addApiKey(hashApiKey(keys[c.id]!), c.id, new Date().toISOString());
  }
  const gw = await serveStore(opts.served ? opts.served(store) : store, config, createLogger({ level: 'silent' }), { port: 0, privacy, webhooks: opts.webhooks ?? false });
  return {
    dataset, store, config, privacy, keys, gw, summary,
    resync: sync,
    async gql(client, query, variables, tenant) {
      const headers: Record<string, string> = { 'content-type': 'application/json', ...(tenant ? { 'x-rostergate-tenant': tenant } : {}) };
      if (keys[client]) headers['x-api-key'] = keys[client]!;
      else if (client) headers['x-api-key'] = client;
      const r = await request(`${gw.url}/graphql`, { method: 'POST', headers, body: JSON.stringify({ query, variables }) });
      return { status: r.statusCode, body: (await r.body.json()) as { data?: any; errors?: any[] } };
    },
    async close() {
      await gw.close();
      await store.close();
    },
  };
}
