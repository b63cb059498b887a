/**
 * docs/configuration.md is the config file's reference: every key of the zod schemas (the file's
 * and each source type's) is in it, it names no key that does not exist, and the defaults it
 * states for keys that have one are the schema's.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseConfig } from '../../src/config/config.ts';
import { ENV_OVERRIDES } from '../../src/config/env-overrides.ts';
import { configKeyPaths, sourceKeyPaths } from '../support/config-keys.ts';

const fullDoc = readFileSync(join(import.meta.dirname, '../../docs/configuration.md'), 'utf8');
/** The environment variables' section has tables of its own (variables, not keys): checked apart. */
const ENV_HEADING = '## Environment variables';
const envStart = fullDoc.indexOf(`\n${ENV_HEADING}\n`);
const envEnd = fullDoc.indexOf('\n## ', envStart + 1);
const envDoc = fullDoc.slice(envStart, envEnd);
const doc = fullDoc.slice(0, envStart) + fullDoc.slice(envEnd);

/** Rows of the reference tables: the key in the first cell, the default in the second. */
function rows(text: string): Map<string, string> {
  return new Map([...text.matchAll(/^\| `([^`]+)` \|([^|]*)\|/gm)].map((m) => [m[1]!, m[2]!.trim()]));
}

/** The text from a heading to the next heading of the same or a higher level. */
function section(heading: string): string {
  const start = doc.indexOf(`\n${heading}\n`);
  expect(start, heading).toBeGreaterThan(0);
  const level = heading.indexOf(' ');
  const next = [...doc.slice(start + heading.length + 2).matchAll(/^(#+) /gm)].find((m) => m[1]!.length <= level);
  return doc.slice(start, next ? start + heading.length + 2 + next.index : undefined);
}

describe('docs/configuration.md', () => {
  const documented = rows(doc);

  it('has a row for every key of the config file', () => {
    const missing = configKeyPaths().filter((p) => !documented.has(p));
    expect(missing).toEqual([]);
  });

  it('has a row for every key of every source type, in that type\'s section or the one for all sources', () => {
    const common = rows(section('## `sources`').split('\n### ')[0]!);
    for (const [type, paths] of Object.entries(sourceKeyPaths())) {
      const own = rows(section(`### \`type: ${type}\``));
      expect(paths.filter((p) => !own.has(p) && !common.has(p)), type).toEqual([]);
      // And nothing documented for the type that it does not have.
      expect([...own.keys()].filter((p) => !paths.includes(p)), type).toEqual([]);
    }
  });

  it('names no key the schema does not have', () => {
    const known = new Set([...configKeyPaths(), ...Object.values(sourceKeyPaths()).flat()]);
    expect([...documented.keys()].filter((k) => !known.has(k))).toEqual([]);
  });

  it('lists every environment override with the key it overrides, and no other', () => {
    expect(envStart).toBeGreaterThan(0);
    const overrides = [...envDoc.matchAll(/^\| `(ROSTERGATE_[A-Z_]+)` \| `([^`]+)` \|/gm)].map((m) => [m[1], m[2]]);
    expect(overrides).toEqual(ENV_OVERRIDES.map((o) => [o.name, o.key]));
    const keys = new Set(configKeyPaths());
    for (const o of ENV_OVERRIDES) expect(keys.has(o.key), o.key).toBe(true);
  });

  it('states the defaults an empty config gets', () => {
    const defaults = parseConfig({}) as unknown as Record<string, unknown>;
    const valueAt = (path: string) => path.split('.').reduce<unknown>((v, k) => (v && typeof v === 'object' ? (v as Record<string, unknown>)[k] : undefined), defaults);
    const shown = (v: unknown): string => (Array.isArray(v) ? `\`[${v.join(', ')}]\`` : typeof v === 'string' ? `\`${v}\`` : String(v));
    let checked = 0;
    for (const [path, cell] of documented) {
      const v = valueAt(path);
      if (v === undefined || (typeof v === 'object' && !Array.isArray(v))) continue;
      expect(cell.startsWith(shown(v)), `${path}: documented "${cell}", the schema's default is ${shown(v)}`).toBe(true);
      checked++;
    }
    expect(checked).toBeGreaterThan(15);
  });
});
