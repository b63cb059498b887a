/**
 * docs/cli.md is the command line's reference: every command and option of src/cli-program.ts is
 * in it, required options are marked there and in `--help`, and the exit codes it lists are the
 * ones src/exit-codes.ts gives.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Command } from 'commander';
import { describe, expect, it } from 'vitest';
import { buildProgram } from '../../src/cli-program.ts';
import { RostergateError } from '../../src/errors.ts';
import { COMMAND_EXITS, EXIT, USAGE_ERROR_CODES, exitCodeOf } from '../../src/exit-codes.ts';

const doc = readFileSync(join(import.meta.dirname, '../../docs/cli.md'), 'utf8');

/** Every command that runs something (not a group like `keys`), with its path. */
function leaves(c: Command, path: string[] = []): { path: string; cmd: Command }[] {
  return c.commands.flatMap((s) => (s.commands.length ? leaves(s, [...path, s.name()]) : [{ path: [...path, s.name()].join(' '), cmd: s }]));
}

/** The text of a `## ` section of the doc, up to the next one. */
function section(heading: string): string | undefined {
  const start = doc.indexOf(`\n## ${heading}\n`);
  if (start < 0) return undefined;
  const end = doc.indexOf('\n## ', start + 1);
  return doc.slice(start, end < 0 ? undefined : end);
}

describe('docs/cli.md', () => {
  const commands = leaves(buildProgram());

  it('has a section for every command, and none for a command that does not exist', () => {
    expect(commands.length).toBeGreaterThan(15);
    for (const { path } of commands) expect(section(`\`rostergate ${path}\``), path).toBeDefined();
    const documented = [...doc.matchAll(/^## `rostergate ([^`]+)`$/gm)].map((m) => m[1]);
    expect(documented.sort()).toEqual(commands.map((c) => c.path).sort());
  });

  it('lists every option of every command, marking exactly the required ones', () => {
    for (const { path, cmd } of commands) {
      const text = section(`\`rostergate ${path}\``)!;
      for (const o of cmd.options) {
        const row = text.split('\n').find((l) => l.startsWith(`| \`${o.flags}\``));
        expect(row, `${path} ${o.flags}`).toBeDefined();
        expect(row!.includes('**required**'), `${path} ${o.flags} marked required`).toBe(o.mandatory);
      }
    }
  });

  it('--help marks every required option "(required)"', () => {
    for (const { path, cmd } of commands) {
      const help = cmd.helpInformation().replace(/\s+/g, ' ');
      const required = cmd.options.filter((o) => o.mandatory);
      expect(help.match(/\(required\)/g)?.length ?? 0, path).toBe(required.length);
      for (const o of required) expect(help, `${path} ${o.flags}`).toMatch(new RegExp(`${o.flags.replace(/[<>]/g, '.')} .*?\\(required\\)`));
    }
    expect(commands.find((c) => c.path === 'extract')!.cmd.options.filter((o) => o.mandatory).map((o) => o.long)).toEqual(['--client', '--dataset', '--out']);
  });

  it('gives each command the exit codes src/exit-codes.ts says it can end with', () => {
    for (const { path } of commands) {
      const line = /^Exit codes: ([\d, ]+)\.$/m.exec(section(`\`rostergate ${path}\``)!);
      expect(line, path).not.toBeNull();
      const listed = line![1]!.split(', ').map(Number);
      expect(listed, path).toEqual([...new Set([EXIT.OK, EXIT.FAILED, EXIT.USAGE, ...(COMMAND_EXITS[path] ?? [])])].sort());
    }
    for (const path of Object.keys(COMMAND_EXITS)) expect(commands.map((c) => c.path)).toContain(path);
  });

  it('explains every exit code, and which errors are usage errors, as src/exit-codes.ts maps them', () => {
    const table = section('Exit codes')!;
    const rows = new Map([...table.matchAll(/^\| (\d) \| (.*) \|$/gm)].map((m) => [Number(m[1]), m[2]!]));
    expect([...rows.keys()].sort()).toEqual([...new Set(Object.values(EXIT))].sort());
    for (const code of USAGE_ERROR_CODES) {
      expect(rows.get(EXIT.USAGE), code).toContain(`\`${code}\``);
      expect(exitCodeOf(new RostergateError(code, 'x'))).toBe(EXIT.USAGE);
    }
    expect(rows.get(EXIT.BUSY)).toContain('`SYNC_BUSY`');
    expect(exitCodeOf(new RostergateError('SYNC_BUSY', 'x'))).toBe(EXIT.BUSY);
    for (const e of [new RostergateError('STORE_FULL', 'x'), new RostergateError('SOURCE_HTTP', 'x'), new Error('x')]) expect(exitCodeOf(e)).toBe(EXIT.FAILED);
  });
});
