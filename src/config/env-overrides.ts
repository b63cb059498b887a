/**
 * Configuration keys that the environment may override, for containers and orchestrators that set
 * a deployment's address and store per environment while one config file (purposes, clients,
 * sources) is shared: `ROSTERGATE_PORT=8080` beats `server.port` in the file, and a command-line
 * flag (`serve --port`) beats both.
 *
 * An override is put into the file's parsed content before validation, so it passes through the
 * same zod rules as the key it replaces; an error names the variable (src/config/config.ts). Only
 * keys of a deployment's placement are here — nothing that changes what is served to whom, or how
 * pseudonyms are derived (`privacy.tenant`), may differ between replicas by an environment variable.
 */

export interface EnvOverride {
  /** The environment variable. */
  name: string;
  /** The config key it replaces, as dot-separated path. */
  key: string;
  kind: 'string' | 'number';
  /** Relative paths in it are relative to the working directory (in the file: to the file). */
  path?: boolean;
  /** For docs/configuration.md. */
  what: string;
}

export const ENV_OVERRIDES: readonly EnvOverride[] = [
  { name: 'ROSTERGATE_STORE', key: 'store', kind: 'string', path: true, what: 'the store: a SQLite file or a `postgres://` URL (`env:NAME` works here too)' },
  { name: 'ROSTERGATE_PORT', key: 'server.port', kind: 'number', what: 'port to listen on' },
  { name: 'ROSTERGATE_HOST', key: 'server.host', kind: 'string', what: 'address to bind (`0.0.0.0` in a container)' },
  { name: 'ROSTERGATE_DRAIN_SECONDS', key: 'server.drainSeconds', kind: 'number', what: 'seconds `/readyz` answers 503 on SIGTERM before the listener closes' },
  { name: 'ROSTERGATE_MASTER_KEY_FILE', key: 'privacy.masterKeyFile', kind: 'string', path: true, what: 'file holding the master key (a mounted secret: docs/deployment.md)' },
];

export interface Applied {
  /** The content with the overrides put in (a copy: the input is not changed). */
  raw: unknown;
  /** Config key → the variable that set it, for error messages and path resolution. */
  from: Map<string, string>;
  /** Overrides whose value could not even be read as its kind: "ROSTERGATE_PORT: not a number". */
  errors: string[];
}

/** Puts the set variables of ENV_OVERRIDES into a config file's parsed content. Empty counts as unset. */
export function applyEnvOverrides(raw: unknown, env: NodeJS.ProcessEnv = process.env): Applied {
  const out = structuredClone(raw && typeof raw === 'object' ? raw : {}) as Record<string, unknown>;
  const from = new Map<string, string>();
  const errors: string[] = [];
  for (const o of ENV_OVERRIDES) {
    const text = env[o.name]?.trim();
    if (!text) continue;
    let value: string | number = text;
    if (o.kind === 'number') {
      // Number('') is 0 and Number('0x10') is 16: only plain decimals are taken as numbers.
      if (!/^-?\d+(\.\d+)?$/.test(text)) {
        errors.push(`${o.name} (overrides ${o.key}): not a number`);
        continue;
      }
      value = Number(text);
    }
    const parts = o.key.split('.');
    let at: Record<string, unknown> | undefined = out;
    for (const p of parts.slice(0, -1)) {
      // A section the file leaves out is made; one that is not an object is left for zod to refuse.
      if (at[p] === undefined || at[p] === null) at[p] = {};
      const next: unknown = at[p];
      if (typeof next !== 'object' || Array.isArray(next)) {
        at = undefined;
        break;
      }
      at = next as Record<string, unknown>;
    }
    if (!at) continue;
    at[parts.at(-1)!] = value;
    from.set(o.key, o.name);
  }
  return { raw: out, from, errors };
}
