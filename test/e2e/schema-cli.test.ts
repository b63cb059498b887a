/**
 * `rostergate schema --client ID`: prints the client's purpose SDL, which a client generates types
 * from (docs/typed-client.md): the documented codegen config and operation produce TypeScript that
 * the documented client typechecks against.
 */
import { describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { buildSchema, parse, printSchema, validate } from 'graphql';
import ts from 'typescript';
import { generate } from '@graphql-codegen/cli';
import { parse as parseYaml } from 'yaml';
import { buildUnifiedSchema } from '../../src/graphql/schema.ts';
import { KeyRing } from '../../src/privacy/pseudonym.ts';
import { setupPrivacy } from '../../src/graphql/privacy.ts';
import { demoReportConfig } from '../../src/demo/demo.ts';
import { tempDir } from '../support/stores.ts';
import { CLI_BIN } from '../support/cli-bin.ts';

const root = join(import.meta.dirname, '../..');
const bin = CLI_BIN;
const example = join(root, 'docs/examples/typed-client');
const run = (args: string[]) => {
  const env: NodeJS.ProcessEnv = { ...process.env, ROSTERGATE_LOG_LEVEL: 'silent' };
  delete env.NODE_ENV;
  delete env.ROSTERGATE_CONFIG;
  return spawnSync(process.execPath, [bin, ...args], { encoding: 'utf8', env, timeout: 60_000 });
};

describe('rostergate schema', { timeout: 180_000 }, () => {
  const printed = run(['schema', '--client', 'analytics-demo', '--demo']);

  it('prints the client\'s purpose schema with its descriptions and classification notes', () => {
    expect(printed.status, printed.stderr).toBe(0);
    expect(printed.stderr).toBe('');
    const privacy = setupPrivacy(demoReportConfig(), buildUnifiedSchema(), { keyring: new KeyRing(Buffer.alloc(32, 1), 'rostergate-demo') });
    expect(printed.stdout).toBe(printSchema(privacy.schemas.get('analytics')!.schema) + '\n');
    const sdl = buildSchema(printed.stdout);
    expect(Object.keys((sdl.getType('Person') as import('graphql').GraphQLObjectType).getFields())).not.toContain('givenName');
    expect(printed.stdout).toMatch(/Classification: IDENTIFIER \(.*\)\. This purpose receives a keyed pseudonym[^"]*"""\n  id: Pseudonym!/);
    // Another client, another schema.
    const lms = run(['schema', '--client', 'lms-demo', '--demo']);
    expect(lms.status).toBe(0);
    expect(lms.stdout).toContain('givenName: String!');
  });

  it('reads the client and its purpose from --config, without a master key or a store', () => {
    const dir = tempDir();
    const cfg = join(dir, 'rostergate.yaml');
    writeFileSync(cfg, [
      'store: ./never-opened.db',
      'purposes:',
      '  counts: { legalBasis: "Public task (test)", categories: { NONE: allow } }',
      'clients:',
      '  - { id: counter, purpose: counts }',
    ].join('\n') + '\n');
    const r = run(['schema', '--client', 'counter', '--config', cfg]);
    expect(r.status, r.stderr).toBe(0);
    const sdl = buildSchema(r.stdout);
    const person = sdl.getType('Person') as import('graphql').GraphQLObjectType;
    expect(Object.keys(person.getFields())).not.toContain('id');
    expect(person.getFields().roles!.description).toBe("The person's roles across all sources (a teacher may also be a guardian).\n\nClassification: NONE (not personal data). This purpose receives it as is.");
    expect(existsSync(join(dir, 'never-opened.db'))).toBe(false);
    const other = run(['schema', '--client', 'nobody', '--config', cfg]);
    expect(other.status).toBe(2);
    expect(other.stderr).toBe(`rostergate: no client "nobody" in ${cfg} (clients: counter)\n`);
  });

  it('names an unknown client, or the missing config, in one line with exit 2', () => {
    const unknown = run(['schema', '--client', 'nobody', '--demo']);
    expect(unknown.status).toBe(2);
    expect(unknown.stderr).toBe('rostergate: no client "nobody" in the demo (clients: lms-demo, analytics-demo, sso-demo, admin-demo)\n');
    expect(unknown.stdout).toBe('');
    const noConfig = run(['schema', '--client', 'analytics-demo']);
    expect(noConfig.status).toBe(2);
    expect(noConfig.stderr).toBe("rostergate: schema needs a config file: pass --config FILE, or set ROSTERGATE_CONFIG=FILE, or --demo for the demo's clients (see docs/configuration.md)\n");
    const missing = run(['schema']);
    expect(missing.status).toBe(2);
    expect(missing.stderr).toBe("error: required option '--client <id>' not specified (see `rostergate schema --help`)\n");
  });

  it('the documented operation is valid against the printed SDL, and codegen makes types the documented client typechecks with', async () => {
    const sdl = buildSchema(printed.stdout);
    const operation = readFileSync(join(example, 'course-participation.graphql'), 'utf8');
    expect(validate(sdl, parse(operation)).map((e) => e.message)).toEqual([]);
    // The client embeds the same operation text.
    const client = readFileSync(join(example, 'client.ts'), 'utf8');
    const embedded = /const QUERY = `([^`]*)`/.exec(client)![1]!;
    expect(printSchemaless(embedded)).toBe(printSchemaless(operation));

    const dir = tempDir();
    writeFileSync(join(dir, 'analytics.graphql'), printed.stdout);
    for (const f of ['course-participation.graphql', 'client.ts']) copyFileSync(join(example, f), join(dir, f));
    const config = parseYaml(readFileSync(join(example, 'codegen.yml'), 'utf8'));
    await generate({ ...config, cwd: dir, silent: true }, true);
    const types = readFileSync(join(dir, 'analytics-types.ts'), 'utf8');
    expect(types).toContain('export type CourseParticipationQuery');

    const program = ts.createProgram([join(dir, 'client.ts')], {
      strict: true, noEmit: true, target: ts.ScriptTarget.ES2022, module: ts.ModuleKind.NodeNext, moduleResolution: ts.ModuleResolutionKind.NodeNext,
      allowImportingTsExtensions: true, skipLibCheck: true, types: ['node'], typeRoots: [join(root, 'node_modules/@types')], lib: ['lib.es2022.d.ts', 'lib.dom.d.ts'],
    });
    const problems = ts.getPreEmitDiagnostics(program).map((d) => ts.flattenDiagnosticMessageText(d.messageText, '\n'));
    expect(problems).toEqual([]);
  });
});

/** An operation's text without layout or comments, to compare two copies of it. */
function printSchemaless(op: string): string {
  return JSON.stringify(parse(op, { noLocation: true }));
}
