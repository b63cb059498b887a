/**
 * The configuration file (YAML or JSON) given by --config or ROSTERGATE_CONFIG, validated with zod.
 * Every error names the file and the path of the offending key; unknown keys are errors, not
 * silently ignored; secrets are resolved from the environment or owner-only files while validating.
 * A few keys of a deployment's placement (port, host, store …) may be overridden from the
 * environment (src/config/env-overrides.ts); a file read by loadConfigFile gets them.
 */
import { readFileSync } from 'node:fs';
import { resolve, dirname, isAbsolute } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { z } from 'zod';
import { RostergateError } from '../errors.ts';
import { secret } from '../secret.ts';
import { definitionOf, SOURCE_TYPES } from '../../connectors/registry.ts';
import type { SourceType } from '../../connectors/types.ts';
import type { Schedule } from '../../connectors/schedule.ts';
import { clientSchema, purposeSchema, rateLimitSchema } from '../privacy/policy.ts';
import { jwtConfigSchema } from '../privacy/jwt.ts';
import { webhookConfigSchema } from '../feeds/webhooks.ts';
import { privacySectionSchema } from '../privacy/config.ts';
import { retentionConfigSchema } from '../privacy/retention.ts';
import { DEFAULT_ORG_MATCH_RULES, ORG_MATCH_RULES } from '../sync/identity.ts';
import { parsingSecretsAsReferences } from '../secret.ts';
import { applyEnvOverrides } from './env-overrides.ts';
import { workerConfigSchema } from '../jobs/config.ts';

export const configSchema = z
  .object({
    /** A SQLite file path, or a postgres:// URL (secrets in it: use env:NAME for the whole URL). */
    store: z.string().min(1).default('./data/rostergate.db').transform((v, ctx) => {
      if (!v.startsWith('env:')) return v;
      const r = process.env[v.slice(4)];
      if (!r) {
        ctx.addIssue({ code: 'custom', message: `environment variable ${v.slice(4)} is not set` });
        return z.NEVER;
      }
      return r;
    }),
    server: z
      .object({
        port: z.number().int().min(0).max(65535).default(4000),
        host: z.string().default('127.0.0.1'),
        /** Serve the unified schema to anyone, without keys or purposes. Only for local experiments. */
        openAccess: z.boolean().default(false),
        /**
         * On SIGTERM, how long /readyz answers 503 "draining" while requests are still served,
         * before the listener closes: time for a load balancer to stop routing here (Kubernetes:
         * a few seconds more than the readiness probe's period).
         */
        drainSeconds: z.number().min(0).max(300).default(0),
        /** Every client's rate limit unless its own `clients[].rateLimit` says otherwise; none when left out. */
        rateLimit: rateLimitSchema.optional(),
        /**
         * How long a verified API key is trusted before it is looked up in the store again: a key
         * revoked by `rostergate keys revoke` (any process, any replica) stops working within this
         * many seconds. 0 looks every request's key up (docs/serving.md).
         */
        apiKeyCacheSeconds: z.number().min(0).max(300).default(5),
        /**
         * HTTP extracts (GET /extracts/…) on worker threads (src/extract/parallel.ts): `threads` 1
         * keeps them on the serving thread, whose cores then stay with GraphQL requests; more runs
         * extracts of `fromRows` rows or more on that many threads.
         */
        extracts: z
          // fromRows left out: the extract's own default (PARALLEL_FROM in src/extract/extract.ts).
          .object({ threads: z.number().int().min(1).max(16).default(1), fromRows: z.number().int().min(0).optional() })
          .strict()
          .default({ threads: 1 }),
        /**
         * Prometheus metrics (docs/observability.md): on a port of their own, or on the API port
         * behind a bearer token, or both. Left out: no /metrics anywhere.
         */
        metrics: z
          .object({
            /** A separate listener for /metrics (not the API port). */
            port: z.number().int().min(0).max(65535).optional(),
            /** The separate listener's address (0.0.0.0 for a scraper on another machine or pod). */
            host: z.string().default('127.0.0.1'),
            /** Bearer token for /metrics (env:NAME or file:PATH); required to serve it on the API port. */
            token: secret.optional(),
          })
          .strict()
          .refine((m) => m.port !== undefined || m.token !== undefined, 'give server.metrics a port of its own, or a token to serve /metrics on the API port (it is never public)')
          .optional(),
      })
      .strict()
      .default({ port: 4000, host: '127.0.0.1', openAccess: false, drainSeconds: 0, apiKeyCacheSeconds: 5, extracts: { threads: 1 } }),
    privacy: privacySectionSchema,
    /** Client authentication besides API keys: JWT bearer tokens from an identity provider. */
    auth: z.object({ jwt: jwtConfigSchema.optional() }).strict().default({}),
    webhooks: webhookConfigSchema.default(webhookConfigSchema.parse({})),
    /** Kept as the change log's period when `retention.changeLogDays` is left out (the older key). */
    changeFeed: z.object({ retentionDays: z.number().int().min(1, 'shorter than the minimum of 1 day (feed clients need time to catch up)').default(30) }).strict().default({ retentionDays: 30 }),
    /** Retention periods per kind of kept data, with documented minimums (src/privacy/retention.ts). */
    retention: retentionConfigSchema.default(retentionConfigSchema.parse({})),
    purposes: z.record(z.string().regex(/^[a-z0-9][a-z0-9-]*$/, 'purpose ids: lower-case letters, digits, "-"'), purposeSchema).default({}),
    clients: z.array(clientSchema).default([]),
    sources: z.array(z.object({ id: z.string(), type: z.string() }).passthrough()).default([]),
    identity: z
      .object({
        /** How one person is recognised across sources, in order. */
        match: z.array(z.enum(['sisId', 'email', 'stateId'])).min(1).default(['sisId', 'email']),
        /** How one school or district is recognised across sources, in order; [] keeps each source's own. */
        matchOrgs: z.array(z.enum(ORG_MATCH_RULES)).default([...DEFAULT_ORG_MATCH_RULES]),
      })
      .strict()
      .default({ match: ['sisId', 'email'], matchOrgs: [...DEFAULT_ORG_MATCH_RULES] }),
    sync: z
      .object({
        maxDeleteShare: z.number().min(0).max(1).default(0.2),
        /** The nice value `sync` and `worker` lower their CPU priority to, so a gateway beside them serves first (src/kernel/cpu-priority.ts). */
        nice: z.number().int().min(0).max(19).default(10),
        /** The share of wall-clock time a sync may spend applying records; it rests between groups for the rest (src/sync/pace.ts). */
        workShare: z.number().gt(0, 'sync.workShare is more than 0 (1: no rests)').max(1).default(1),
      })
      .strict()
      .default({ maxDeleteShare: 0.2, nice: 10, workShare: 1 }),
    /** Scheduled syncs (`sources[].schedule`): `rostergate worker`, and `serve` on SQLite (docs/scheduling.md). */
    worker: workerConfigSchema.default(workerConfigSchema.parse({})),
  })
  .strict();

export interface SourceConfig {
  id: string;
  type: SourceType;
  http?: { timeoutMs?: number; requestDeadlineMs?: number; maxBodyBytes?: number; maxRetries?: number; requestsPerMinute?: number; budget?: number };
  /** Parsed by connectors/schedule.ts. */
  schedule?: Schedule;
  [k: string]: unknown;
}

type BaseConfig = z.infer<typeof configSchema>;
/** `retention.changeLogDays` always set after parsing (from `changeFeed.retentionDays` when left out). */
export type Config = Omit<BaseConfig, 'sources' | 'retention'> & {
  sources: SourceConfig[];
  retention: Omit<BaseConfig['retention'], 'changeLogDays'> & { changeLogDays: number };
  file?: string;
};

/** Reads, validates and completes a config file; `env` supplies the overrides (ROSTERGATE_PORT …). */
export function loadConfigFile(path: string, env: NodeJS.ProcessEnv = process.env): Config {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    throw new RostergateError('CONFIG_INVALID', `cannot read config file ${path}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
  }
  let raw: unknown;
  try {
    raw = path.endsWith('.json') ? JSON.parse(text) : parseYaml(text);
  } catch (e) {
    throw new RostergateError('CONFIG_INVALID', `${path}: not valid ${path.endsWith('.json') ? 'JSON' : 'YAML'}: ${(e as Error).message.split('\n')[0]}`);
  }
  const overrides = applyEnvOverrides(raw ?? {}, env);
  if (overrides.errors.length) throw new RostergateError('CONFIG_INVALID', `${path}: ${overrides.errors.join('; ')}`);
  const cfg = parseConfig(overrides.raw, path, overrides.from);
  // Relative paths in the file are relative to the file, not to wherever the command runs; those
  // given by an environment variable are relative to the working directory, like any shell path.
  const base = dirname(resolve(path));
  const rel = (p: string, key?: string) =>
    isAbsolute(p) || p === ':memory:' || p.startsWith('postgres') ? p : resolve(key && overrides.from.has(key) ? process.cwd() : base, p);
  cfg.store = rel(cfg.store, 'store');
  if (cfg.privacy.masterKeyFile) cfg.privacy.masterKeyFile = rel(cfg.privacy.masterKeyFile, 'privacy.masterKeyFile');
  for (const s of cfg.sources) if (typeof s.path === 'string') s.path = rel(s.path);
  for (const k of cfg.auth.jwt?.keys ?? []) if (k.file) k.file = rel(k.file);
  return { ...cfg, file: path };
}

/** `fromEnv`: config keys set by environment variables (key → variable), named in errors about them. */
export function parseConfig(raw: unknown, where = 'config', fromEnv: ReadonlyMap<string, string> = new Map()): Config {
  const base = configSchema.safeParse(raw);
  if (!base.success) throw new RostergateError('CONFIG_INVALID', `${where}: ${formatIssues(base.error, fromEnv)}`);
  const sources = parseSources(base.data.sources, where);
  const clientIds = new Set<string>();
  base.data.clients.forEach((c, i) => {
    if (clientIds.has(c.id)) throw new RostergateError('CONFIG_INVALID', `${where}: clients[${i}]: duplicate client id "${c.id}"`);
    clientIds.add(c.id);
    if (!base.data.purposes[c.purpose]) {
      throw new RostergateError('CONFIG_INVALID', `${where}: clients[${i}] (${c.id}).purpose: no purpose "${c.purpose}" (defined: ${Object.keys(base.data.purposes).join(', ') || 'none'})`);
    }
  });
  // One period for the change log, under either key; two different ones would leave it unclear which is kept.
  const cf = (raw as { changeFeed?: { retentionDays?: unknown } } | null)?.changeFeed?.retentionDays;
  const rd = base.data.retention.changeLogDays;
  if (rd !== undefined && cf !== undefined && cf !== rd) {
    throw new RostergateError('CONFIG_INVALID', `${where}: retention.changeLogDays (${rd}) and changeFeed.retentionDays (${String(cf)}) differ: set only retention.changeLogDays`);
  }
  const changeLogDays = rd ?? base.data.changeFeed.retentionDays;
  return { ...base.data, changeFeed: { retentionDays: changeLogDays }, retention: { ...base.data.retention, changeLogDays }, sources };
}

/**
 * Validates a list of sources by their types' schemas (connectors/registry.ts): ids unique, types
 * known, each source's keys checked. `secrets: 'references'` keeps env:/file: references unresolved
 * and refuses literal secrets (sources kept in the store: a tenant's, src/tenants/catalog.ts).
 */
export function parseSources(raw: unknown, where: string, opts: { secrets?: 'resolve' | 'references' } = {}): SourceConfig[] {
  const listed = z.array(z.object({ id: z.string(), type: z.string() }).passthrough()).safeParse(raw);
  if (!listed.success) throw new RostergateError('CONFIG_INVALID', `${where}: sources: ${formatIssues(listed.error)}`);
  const seen = new Set<string>();
  const one = (s: { id: string; type: string }, i: number) => {
    const label = `sources[${i}]${s.id ? ` (${s.id})` : ''}`;
    if (seen.has(s.id)) throw new RostergateError('CONFIG_INVALID', `${where}: ${label}: duplicate source id "${s.id}"`);
    seen.add(s.id);
    const def = definitionOf(s.type);
    if (!def) {
      const known = SOURCE_TYPES.join(', ');
      throw new RostergateError('CONFIG_INVALID', `${where}: ${label}.type: unknown source type "${s.type}" (known: ${known})`);
    }
    const parsed = opts.secrets === 'references' ? parsingSecretsAsReferences(() => def.configSchema.safeParse(s)) : def.configSchema.safeParse(s);
    if (!parsed.success) throw new RostergateError('CONFIG_INVALID', `${where}: ${label}: ${formatIssues(parsed.error)}`);
    return parsed.data as SourceConfig;
  };
  return listed.data.map(one);
}

function formatIssues(err: z.ZodError, fromEnv: ReadonlyMap<string, string> = new Map()): string {
  return err.issues
    .slice(0, 5)
    .map((i) => {
      const path = i.path.join('.');
      const msg = i.code === 'unrecognized_keys' ? `unknown key(s) ${(i as { keys: string[] }).keys.join(', ')}` : i.message;
      // The value never came from the file: say where it did (and not what it is: a store URL may hold a password).
      const env = fromEnv.get(path);
      if (env) return `${env} (overrides ${path}): ${msg}`;
      return path ? `${path}: ${msg}` : msg;
    })
    .join('; ');
}

/** --config wins; then ROSTERGATE_CONFIG; otherwise none (defaults). */
export function configPath(flag?: string): string | undefined {
  return flag ?? process.env.ROSTERGATE_CONFIG ?? undefined;
}

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
