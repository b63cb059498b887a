/**
 * The composition root: turns a validated config into a store, connectors and a gateway. Commands
 * (serve, sync, demo) and end-to-end tests build the gateway the same way through here.
 */
import { HttpClient } from '../connectors/http.ts';
import { definitionOf } from '../connectors/registry.ts';
import type { Connector, SourceType } from '../connectors/types.ts';
import type { Config, SourceConfig } from './config/config.ts';
import { RostergateError } from './errors.ts';
import type { Logger } from './log.ts';
import { SqliteStore } from './store/sqlite.ts';
import type { Store } from './store/types.ts';
import { syncSource, type SyncHooks, type SyncSummary } from './sync/runner.ts';
import { buildUnifiedSchema } from './graphql/schema.ts';
import { createContext } from './graphql/context.ts';
import { startGateway, type RunningGateway } from './server/gateway.ts';

export function openStore(cfg: Pick<Config, 'store'>): Store {
  if (cfg.store.startsWith('postgres://') || cfg.store.startsWith('postgresql://')) {
    throw new RostergateError('CONFIG_INVALID', 'PostgreSQL stores are not available in this version yet: use a SQLite file path for `store`');
  }
  return SqliteStore.open(cfg.store);
}

export function createConnector(source: SourceConfig, log: Logger): { connector: Connector; http: HttpClient } {
  const def = definitionOf(source.type);
  if (!def) throw new RostergateError('CONFIG_INVALID', `source ${source.id}: unknown type ${source.type}`);
  const http = new HttpClient({ sourceId: source.id, log, ...source.http });
  return { connector: def.create(source, { http, log }), http };
}

export function sourceTypes(cfg: Pick<Config, 'sources'>): Map<string, SourceType> {
  return new Map(cfg.sources.map((s) => [s.id, s.type]));
}

/** Syncs the configured sources in config order (earlier sources take precedence in merges). */
export async function syncAll(
  store: Store,
  cfg: Config,
  log: Logger,
  opts: { only?: string; full?: boolean; allowMassDelete?: boolean; hooks?: SyncHooks } = {},
): Promise<SyncSummary[]> {
  const chosen = opts.only ? cfg.sources.filter((s) => s.id === opts.only) : cfg.sources;
  if (opts.only && chosen.length === 0) {
    throw new RostergateError('CONFIG_INVALID', `no source with id "${opts.only}" (configured: ${cfg.sources.map((s) => s.id).join(', ') || 'none'})`);
  }
  const summaries: SyncSummary[] = [];
  for (const source of chosen) {
    const { connector, http } = createConnector(source, log);
    try {
      summaries.push(
        await syncSource(store, connector, {
          full: opts.full,
          allowMassDelete: opts.allowMassDelete,
          maxDeleteShare: cfg.sync.maxDeleteShare,
          precedence: cfg.sources.map((s) => s.id),
          matchRules: cfg.identity.match,
          hooks: opts.hooks,
        }),
      );
    } finally {
      await http.close();
    }
  }
  return summaries;
}

export async function serveStore(
  store: Store,
  cfg: Config,
  log: Logger,
  opts: { port?: number; host?: string; ready?: () => boolean; demoKeys?: { client: string; key: string }[] } = {},
): Promise<RunningGateway> {
  const schema = buildUnifiedSchema();
  const types = sourceTypes(cfg);
  return startGateway({
    schema,
    context: async () => createContext(store, types),
    port: opts.port ?? cfg.server.port,
    host: opts.host ?? cfg.server.host,
    log,
    ready: opts.ready,
    demoKeys: opts.demoKeys,
  });
}
