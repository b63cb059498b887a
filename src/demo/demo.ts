/**
 * The demo: a synthetic district served by the vendor sandboxes, synced through the real
 * connectors into a fresh SQLite store. Used by `npm start` and by the end-to-end tests.
 */
import { mkdirSync, rmSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { CONNECTORS } from '../../connectors/registry.ts';
import { startSandboxServer, type RunningSandbox } from '../../connectors/sandbox-kit.ts';
import { parseConfig, type Config } from '../config/config.ts';
import type { Logger } from '../log.ts';
import { RostergateError } from '../errors.ts';
import { syncAll } from '../runtime.ts';
import { openStore } from '../store/open.ts';
import type { Store } from '../store/types.ts';
import type { SyncHooks, SyncSummary } from '../sync/runner.ts';
import { RosterDataset } from './dataset.ts';
import type { DatasetView } from '../../connectors/dataset-view.ts';
import { sliceBySchools } from './slice.ts';
import type { SourceType } from '../../connectors/types.ts';
import { directConnector } from './direct-connector.ts';
import { syncSource } from '../sync/runner.ts';
import { DEMO_CLIENTS, DEMO_PRIVACY, DEMO_PURPOSES } from './demo-policy.ts';
import { setupPrivacy, type Privacy } from '../graphql/privacy.ts';
import { buildUnifiedSchema } from '../graphql/schema.ts';
import { KeyRing } from '../privacy/pseudonym.ts';
import { hashApiKey, newApiKey } from '../privacy/api-keys.ts';
import { randomBytes } from 'node:crypto';
import type { DistrictOptions } from './generator.ts';

export interface Demo {
  config: Config;
  privacy: Privacy;
  /** Ready-made API keys of the demo clients (printed by `npm start`). */
  keys: { client: string; purpose: string; key: string }[];
  dataset: RosterDataset;
  sandbox: RunningSandbox;
  store: Store;
  summaries: SyncSummary[];
  close(): Promise<void>;
}

/**
 * Which part of the district each vendor serves in the demo: the elementary school rosters through
 * Clever, the middle school through OneRoster REST, the high school sends OneRoster CSV drops. People
 * in more than one school (a teacher, guardians of siblings) arrive from several sources and are
 * linked into one person. The high school also teaches in Google Classroom, and the Microsoft 365
 * tenant covers the whole district: Classroom courses and Teams classes are objects of their own,
 * while their people are linked to the SIS people (by SIS id, or by email where a source has none).
 * Types not listed serve the whole district.
 */
const DEMO_SCHOOL_OF: Partial<Record<SourceType, number>> = { clever: 0, oneroster: 1, 'oneroster-csv': 2, 'google-classroom': 2 };

export function demoViews(dataset: RosterDataset): Map<SourceType, DatasetView> {
  const schools = dataset.list('org').filter((o) => o.data.type === 'school').map((o) => o.key);
  const out = new Map<SourceType, DatasetView>();
  for (const def of CONNECTORS) {
    const i = DEMO_SCHOOL_OF[def.type as SourceType];
    out.set(def.type, i === undefined || schools.length === 0 ? dataset : sliceBySchools(dataset, [schools[i % schools.length]!]));
  }
  return out;
}

/** The demo's config: one source per connector type that can take part, in this precedence order. */
export async function demoConfig(sandbox: RunningSandbox, dataset: RosterDataset, dataDir: string): Promise<Config> {
  const workDir = join(dataDir, 'drops');
  // The drops hold (synthetic, but realistic) personal data: owner-only, like the store.
  mkdirSync(workDir, { recursive: true, mode: 0o700 });
  const sources: Record<string, unknown>[] = [];
  const views = demoViews(dataset);
  for (const def of CONNECTORS) {
    if (!def.demoSource) continue;
    const block = await def.demoSource({ sandboxUrl: (p) => sandbox.urlOf(p), dataset: views.get(def.type)!, workDir });
    sources.push({ id: demoSourceId(def.type), ...block });
  }
  return parseConfig(
    { store: join(dataDir, 'demo.db'), sources, privacy: DEMO_PRIVACY, purposes: DEMO_PURPOSES, clients: DEMO_CLIENTS },
    'demo config',
  );
}

const demoSourceId = (type: string) => `demo-${type}`;

/**
 * The demo's config as far as the privacy report reads it, without starting the sandboxes or
 * writing drops: the same purposes, clients and privacy keys, and the same sources by id and type
 * (their URLs and paths, which the report does not show, left out). A test checks it against
 * `demoConfig` itself.
 */
export function demoReportConfig(): Config {
  const cfg = parseConfig({ privacy: DEMO_PRIVACY, purposes: DEMO_PURPOSES, clients: DEMO_CLIENTS }, 'demo config');
  return { ...cfg, sources: CONNECTORS.filter((d) => d.demoSource).map((d) => ({ id: demoSourceId(d.type), type: d.type })) };
}

export async function startDemo(opts: {
  dataDir: string;
  district?: DistrictOptions;
  log: Logger;
  hooks?: SyncHooks;
  sandboxPort?: number;
  /** An empty store to sync into instead of the demo's SQLite file (tests run the demo on PostgreSQL too); closed with the demo. */
  store?: Store;
}): Promise<Demo> {
  const dataDir = resolve(opts.dataDir);
  try {
    mkdirSync(dataDir, { recursive: true, mode: 0o700 });
  } catch (e) {
    throw new RostergateError('DATA_FOLDER', `cannot create the data folder ${dataDir}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
  }
  // The demo always starts from a fresh store, so it is the same on every machine.
  for (const f of ['demo.db', 'demo.db-wal', 'demo.db-shm']) rmSync(join(dataDir, f), { force: true });
  const dataset = RosterDataset.generate(opts.district ?? {});
  const views = demoViews(dataset);
  const sandbox = await startSandboxServer({
    dataset,
    apps: CONNECTORS.flatMap((d) => (d.sandbox ? [d.sandbox] : [])),
    datasets: new Map(CONNECTORS.flatMap((d) => (d.sandbox ? [[d.sandbox.prefix, views.get(d.type)!] as const] : []))),
    port: opts.sandboxPort,
  });
  const config = await demoConfig(sandbox, dataset, dataDir);
  const store = opts.store ?? (await openStore(config));
  try {
    // The demo's master key lives only as long as the demo: its store is rebuilt on every start.
    const privacy = setupPrivacy(config, buildUnifiedSchema(), { keyring: new KeyRing(randomBytes(32), config.privacy.tenant) });
    const keys = [];
    for (const c of config.clients) {
      const key = newApiKey();
      await store.addApiKey(hashApiKey(key), c.id, new Date().toISOString());
      keys.push({ client: c.id, purpose: c.purpose, key });
    }
    const summaries = config.sources.length
      ? await syncAll(store, config, opts.log, { hooks: opts.hooks, privacy })
      : [await syncDirect(store, dataset, privacy, opts.hooks)];
    return {
      config, privacy, keys, dataset, sandbox, store, summaries,
      async close() {
        await store.close();
        await sandbox.close();
      },
    };
  } catch (e) {
    await store.close();
    await sandbox.close();
    throw e;
  }
}

/** With no vendor connector registered, the demo loads the district straight into the store. */
async function syncDirect(store: Store, dataset: RosterDataset, privacy: Privacy, hooks?: SyncHooks): Promise<SyncSummary> {
  const ingest = await privacy.ingest(store);
  const summary = await syncSource(store, directConnector('demo-direct', dataset), { ...ingest, hooks });
  summary.dropped = [...ingest.minimiser.dropped].sort();
  return summary;
}
