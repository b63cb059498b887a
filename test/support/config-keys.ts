/**
 * Every key a config file can hold, read from the zod schemas themselves (src/config/config.ts and
 * each connector's configSchema), so docs/configuration.md can be checked against the code.
 * Paths use `<id>` for a map's keys and `[]` for a list's items: `purposes.<id>.kAnonymity.k`,
 * `clients[].rateLimit.burst`, `sources[].http.timeoutMs`.
 */
import type { z } from 'zod';
import { configSchema } from '../../src/config/config.ts';
import { CONNECTORS } from '../../connectors/registry.ts';

interface Def {
  type: string;
  shape?: Record<string, z.ZodType>;
  innerType?: z.ZodType;
  element?: z.ZodType;
  valueType?: z.ZodType;
  in?: z.ZodType;
  options?: z.ZodType[];
  left?: z.ZodType;
  right?: z.ZodType;
}
const defOf = (s: z.ZodType) => (s as unknown as { _zod: { def: Def } })._zod.def;

/** Wrappers that change nothing about which keys exist. */
function unwrap(s: z.ZodType): z.ZodType[] {
  const d = defOf(s);
  switch (d.type) {
    case 'optional': case 'default': case 'nullable': case 'prefault': case 'readonly': case 'catch': case 'nonoptional':
      return unwrap(d.innerType!);
    case 'pipe':
      return unwrap(d.in!);
    case 'union':
      return d.options!.flatMap(unwrap);
    case 'intersection':
      return [...unwrap(d.left!), ...unwrap(d.right!)];
    default:
      return [s];
  }
}

export function keyPaths(schema: z.ZodType, prefix = ''): string[] {
  const out: string[] = [];
  for (const s of unwrap(schema)) {
    const d = defOf(s);
    if (d.type === 'object') {
      for (const [k, v] of Object.entries(d.shape!)) {
        const path = prefix ? `${prefix}.${k}` : k;
        out.push(path, ...keyPaths(v, path));
      }
    } else if (d.type === 'array') {
      out.push(...keyPaths(d.element!, `${prefix}[]`).filter((p) => p !== `${prefix}[]`));
    } else if (d.type === 'record') {
      out.push(...keyPaths(d.valueType!, `${prefix}.<id>`));
    }
  }
  return [...new Set(out)];
}

/** The keys of the config file outside `sources`, which depend on each source's type. */
export function configKeyPaths(): string[] {
  return keyPaths(configSchema).filter((p) => !p.startsWith('sources[].') || p === 'sources[].id' || p === 'sources[].type');
}

/** Per source type, the keys of one `sources[]` entry. */
export function sourceKeyPaths(): Record<string, string[]> {
  return Object.fromEntries(CONNECTORS.map((d) => [d.type, keyPaths(d.configSchema as z.ZodType, 'sources[]')]));
}
