/**
 * The Dockerfile and compose.yaml read as data, for the tests that check them without a Docker
 * engine (test/unit/deploy-files.test.ts, test/e2e/compiled-build.test.ts). The Dockerfile reader
 * knows only what ours uses: comments, `\` continuations, `ARG` defaults in `FROM`, stages by
 * `AS name`, and the exec (JSON) form of ENTRYPOINT, CMD and HEALTHCHECK CMD.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse as parseYaml } from 'yaml';

export const ROOT = join(import.meta.dirname, '../..');

export interface Instruction {
  op: string;
  /** Everything after the instruction word, continuations joined. */
  args: string;
}
export interface Stage {
  name: string;
  from: string;
  instructions: Instruction[];
}

export function readDockerfile(text = readFileSync(join(ROOT, 'Dockerfile'), 'utf8')): Stage[] {
  const logical: string[] = [];
  let pending = '';
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (!pending && (line === '' || line.startsWith('#'))) continue;
    if (line.endsWith('\\')) {
      pending += `${line.slice(0, -1).trim()} `;
      continue;
    }
    logical.push(pending + line);
    pending = '';
  }
  const args = new Map<string, string>();
  const stages: Stage[] = [];
  for (const l of logical) {
    const [, op, rest] = /^(\S+)\s*(.*)$/.exec(l)!;
    const upper = op!.toUpperCase();
    if (upper === 'ARG' && !stages.length) {
      const [k, v] = rest!.split('=');
      args.set(k!, v ?? '');
    } else if (upper === 'FROM') {
      const m = /^(\S+)(?:\s+AS\s+(\S+))?$/i.exec(rest!)!;
      const from = m[1]!.replace(/\$\{(\w+)\}/g, (_, k: string) => args.get(k) ?? '');
      stages.push({ name: m[2] ?? String(stages.length), from, instructions: [] });
    } else {
      stages.at(-1)!.instructions.push({ op: upper, args: rest! });
    }
  }
  return stages;
}

export const all = (stage: Stage, op: string) => stage.instructions.filter((i) => i.op === op);
export const last = (stage: Stage, op: string) => all(stage, op).at(-1);
/** An exec-form argument list: `["node", "x.js"]`. */
export const execForm = (args: string): string[] => JSON.parse(args) as string[];

/** HEALTHCHECK's command (its exec form after its options). */
export function healthcheckCommand(stage: Stage): string[] {
  const hc = last(stage, 'HEALTHCHECK');
  if (!hc) throw new Error('no HEALTHCHECK');
  const at = hc.args.indexOf('CMD [');
  return execForm(hc.args.slice(at + 4));
}

export interface ComposeService {
  image?: string;
  build?: unknown;
  command?: string[];
  environment?: Record<string, string>;
  volumes?: string[];
  secrets?: string[];
  ports?: string[];
  depends_on?: Record<string, unknown>;
  healthcheck?: { disable?: boolean; test?: string[] };
}
export interface Compose {
  services: Record<string, ComposeService>;
  secrets?: Record<string, { file?: string }>;
  volumes?: Record<string, unknown>;
}

/** compose.yaml with YAML merge keys applied (`<<: *rostergate`), as Compose reads it. */
export function readCompose(): Compose {
  return parseYaml(readFileSync(join(ROOT, 'compose.yaml'), 'utf8'), { merge: true }) as Compose;
}

/** `${NAME:?message}` and `${NAME:-default}` interpolated from `vars`, as Compose does from .env. */
export function interpolate(value: string, vars: Record<string, string>): string {
  return value.replace(/\$\{(\w+)(?::([?-])([^}]*))?\}/g, (_, name: string, op?: string, rest?: string) => {
    const v = vars[name];
    if (v) return v;
    if (op === '?') throw new Error(`${name}: ${rest}`);
    return op === '-' ? rest! : '';
  });
}
