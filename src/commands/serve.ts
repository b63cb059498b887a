import { configPath, loadConfigFile, type Config } from '../config/config.ts';
import { RostergateError } from '../errors.ts';
import { errorForLog, log } from '../log.ts';
import { isPostgresUrl, openStore, serveStore } from '../runtime.ts';
import { KeyRing } from '../privacy/pseudonym.ts';
import type { Store } from '../store/types.ts';
import { FixedTenants } from '../tenants/fixed-tenants.ts';
import type { Tenants } from '../tenants/tenants.ts';
import { homeTenant, serveTenants } from '../tenants/serving.ts';
import { existsSync } from 'node:fs';
import { assertCanListen } from '../server/gateway.ts';

/**
 * The config a command works on. Every command that reads the store or the sources needs one: the
 * defaults alone name no sources, purposes or clients, and a store at the default path would be
 * created rather than found. So a missing one is a refusal that says what to pass.
 * `alternative` names another way the command accepts (e.g. "--demo for the demo's configuration").
 */
export function loadConfig(flag: string | undefined, command: string, alternative?: string): Config {
  const path = configPath(flag);
  if (!path) {
    throw new RostergateError('CONFIG_INVALID', `${command} needs a config file: pass --config FILE, or set ROSTERGATE_CONFIG=FILE${alternative ? `, or ${alternative}` : ''} (see docs/configuration.md)`);
  }
  return loadConfigFile(path);
}

export async function serveCommand(opts: { config?: string; port?: number; host?: string }): Promise<void> {
  const cfg = loadConfig(opts.config, 'serve');
  if (!isPostgresUrl(cfg.store) && !existsSync(cfg.store)) {
    throw new RostergateError('DATA_FOLDER', `no store at ${cfg.store}: run \`rostergate sync\` first (or \`npm start\` for the demo)`);
  }
  // A port that is taken fails before the store is opened and its start-up work (migrations, view times) runs.
  await assertCanListen(opts.port ?? cfg.server.port, opts.host ?? cfg.server.host);
  const store = await openStore(cfg);
  const tenants = cfg.server.openAccess ? undefined : servedTenants(cfg, store);
  const gw = tenants ? await serveTenants(tenants, cfg, log, { port: opts.port, host: opts.host }) : await serveStore(store, cfg, log, { port: opts.port, host: opts.host });
  process.stdout.write(`rostergate serving ${cfg.store}\n  GraphQL: ${gw.url}/graphql\n  console: ${gw.url}/\n`);
  onShutdown(async () => {
    await gw.close();
    await tenants?.close();
    await store.close();
  });
}

/**
 * The tenants `serve` serves: the config's own (home) tenant over the configured store. The tenant
 * catalog (issue 15) replaces this with its registry, whose home tenant is the same.
 */
export function servedTenants(cfg: Config, store: Store): Tenants {
  const keyring = KeyRing.load({ tenant: cfg.privacy.tenant, file: cfg.privacy.masterKeyFile });
  return new FixedTenants(cfg.privacy.tenant, [homeTenant(cfg, store, keyring)]);
}

/** Graceful shutdown on SIGTERM/SIGINT: finish in-flight requests, close the store, exit 0. */
export function onShutdown(fn: () => Promise<void>): void {
  let stopping = false;
  const stop = (signal: string) => {
    if (stopping) return;
    stopping = true;
    log.info({ signal }, 'shutting down');
    fn().then(
      () => process.exit(0),
      (e) => {
        log.error(errorForLog(e), 'shutdown failed');
        process.exit(1);
      },
    );
  };
  process.once('SIGTERM', () => stop('SIGTERM'));
  process.once('SIGINT', () => stop('SIGINT'));
}
