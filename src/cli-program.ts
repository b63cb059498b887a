/**
 * The `rostergate` command tree (commander): every command, its options and where its code lives
 * (src/commands/). Built by a function so docs/cli.md can be checked against it without running
 * anything (test/unit/cli-docs.test.ts); src/cli.ts parses the command line with it.
 */
import { Command, Help, InvalidArgumentError, Option } from 'commander';

/** Option values checked while parsing, so a bad one is commander's one-line error and exit 2. */
function port(value: string): number {
  const n = Number(value);
  if (!/^\d+$/.test(value) || n > 65535) throw new InvalidArgumentError('Not a port number (0–65535).');
  return n;
}
function count(value: string): number {
  const n = Number(value);
  if (!/^\d+$/.test(value) || n < 1) throw new InvalidArgumentError('Not a whole number of at least 1.');
  return n;
}
function integer(value: string): number {
  if (!/^-?\d+$/.test(value)) throw new InvalidArgumentError('Not a whole number.');
  return Number(value);
}

/** Every command that reads a deployment's store or sources needs its config (src/commands/serve.ts loadConfig). */
const CONFIG = 'config file (YAML or JSON); required unless $ROSTERGATE_CONFIG names one';
const CONFIG_OR_DEMO = 'config file (YAML or JSON); required unless $ROSTERGATE_CONFIG names one or --demo is given';

export function buildProgram(): Command {
  const program = new Command()
    .name('rostergate')
    .description('A self-hostable GraphQL gateway over school rostering sources that minimises the identity data it passes on.')
    .version('0.1.0')
    .exitOverride()
    // Set before the subcommands are made, which copy it: `--help` marks the options a command cannot
    // run without (requiredOption) as "(required)". Options required one way out of several are shown
    // in the command's usage line instead.
    .configureHelp({
      optionDescription(option) {
        const text = Help.prototype.optionDescription.call(this, option);
        return option.mandatory ? `${text} (required)` : text;
      },
    });

  program
    .command('serve')
    .description('serve the store over GraphQL')
    .option('-c, --config <file>', CONFIG)
    .option('-p, --port <port>', 'port to listen on (overrides the config)', port)
    .option('--host <host>', 'address to bind (overrides the config)')
    .action(async (opts) => (await import('./commands/serve.ts')).serveCommand(opts));

  program
    .command('sync')
    .description('read the configured sources into the store')
    .option('-c, --config <file>', CONFIG)
    .option('-s, --source <id>', 'only this source')
    .option('--full', 'ignore incremental cursors and read everything')
    .option('--allow-mass-delete', 'let a full sync delete more than the configured share of records')
    .option('--wait', 'if another run is syncing a source, wait for it to finish (default: skip that source, exit 4)')
    .option('--report <file>', 'write the sync report (every warning, held-back record, dangling reference and skipped row, by source key) to FILE as JSON')
    .option('--tenant <id>', 'sync this tenant\'s sources into its store (default: the config file\'s own tenant)')
    .option('--all-tenants', 'sync every active tenant, the config file\'s own first')
    .action(async (opts) => {
      process.exitCode = await (await import('./commands/sync.ts')).syncCommand(opts);
    });

  program
    .command('worker')
    .description('run scheduled syncs (sources[].schedule) taken from the job queue in the PostgreSQL store, until SIGTERM')
    .option('-c, --config <file>', CONFIG)
    .option('--concurrency <n>', 'jobs run at once by this process (overrides worker.concurrency)', count)
    .action(async (opts) => (await import('./commands/worker.ts')).workerCommand(opts));

  program
    .command('sandbox')
    .description('start the local vendor sandboxes (emulators serving a synthetic district)')
    .option('-p, --port <port>', 'port', port, 4100)
    .option('--seed <n>', 'district seed', integer)
    .option('--students <n>', 'number of students', count)
    .option('--rate-limit <n>', 'requests per minute each sandbox answers before its vendor\'s 429', count)
    .action(async (opts) => (await import('./commands/sandbox.ts')).sandboxCommand(opts));

  program
    .command('demo')
    .description('start the sandboxes, sync the demo district through them into SQLite, and serve it')
    .option('-p, --port <port>', 'gateway port', port, 4000)
    .option('--data <dir>', 'folder for the demo store', './data')
    .option('--students <n>', 'number of students in the demo district (teachers and classes grow with it)', count)
    .action(async (opts) => (await import('./commands/demo.ts')).demoCommand(opts));

  program
    .command('extract')
    .description('write a pseudonymised extract through a client\'s purpose view, with a k-anonymity report')
    .requiredOption('--client <id>', 'client whose purpose decides what the extract holds')
    .requiredOption('--dataset <name>', 'people | enrollments | classes | schools | organizations | courses | sessions | guardianships')
    .option('--format <format>', 'csv | ndjson', 'csv')
    .requiredOption('--out <file>', 'output file (refused if it exists, unless --force)')
    .option('--force', 'overwrite an existing output file')
    .option('--k <n>', 'k for the k-anonymity check (default: the purpose\'s, 5)')
    .option('--threads <n>', 'worker threads for an extract of 200,000 rows or more (default: the cores, 2 to 4; 1: none)', count)
    .option('-c, --config <file>', CONFIG)
    .action(async (opts) => (await import('./commands/extract.ts')).extractCommand(opts));

  program
    .command('subject-export')
    .usage('(--person ID | --source ID --key KEY | --pseudonym P --domain D) --out FILE [options]')
    .description('write everything held about one person (subject access): JSON and a readable Markdown summary, owner-only, audited')
    .option('--person <id>', 'the person\'s gateway id (per_…)')
    .option('--source <id>', 'or the person by a source\'s id …')
    .option('--key <key>', '… and the person\'s key in that source')
    .option('--pseudonym <p>', 'or by a pseudonym (p1_…) …')
    .option('--domain <name>', '… in its pseudonymisation domain')
    .requiredOption('--out <file>', 'JSON output file (refused if it exists, unless --force)')
    .option('--summary <file>', 'Markdown summary file (default: OUT.md)')
    .option('--force', 'overwrite existing output files')
    .option('-c, --config <file>', CONFIG)
    .action(async (opts) => (await import('./commands/subject-export.ts')).subjectExportCommand(opts));

  program
    .command('erase')
    .usage('(--person ID | --source ID --key KEY | --lift --source ID --key KEY) [options]')
    .description('erase a person on request: removed with everything about them, suppressed against later syncs, recipients told by webhook, audited')
    .option('--person <id>', 'the person\'s gateway id (per_…)')
    .option('--source <id>', 'or the person by a source\'s id …')
    .option('--key <key>', '… and the person\'s key in that source')
    .option('--lift', 'lift an erasure\'s suppression (with --source and --key): the next sync brings the person back as a new person')
    .option('--wait', 'wait for running syncs to finish instead of refusing')
    .option('-c, --config <file>', CONFIG)
    .action(async (opts) => (await import('./commands/erase.ts')).eraseCommand(opts));

  const keys = program.command('keys').description('API keys, the master key, pseudonym-domain rotation');
  keys
    .command('create')
    .description('create an API key for a client (shown once; only its hash is kept)')
    .requiredOption('--client <id>', 'client id from the config')
    .option('--tenant <id>', 'narrow the key to one of the client\'s tenants (clients[].tenants): it reads only that one')
    .option('-c, --config <file>', CONFIG)
    .action(async (opts) => (await import('./commands/keys.ts')).keysCreate(opts));
  keys
    .command('list')
    .description('list API keys by client (hash prefixes only)')
    .option('-c, --config <file>', CONFIG)
    .action(async (opts) => (await import('./commands/keys.ts')).keysList(opts));
  keys
    .command('revoke')
    .description('revoke every key of a client')
    .requiredOption('--client <id>', 'client id')
    .option('-c, --config <file>', CONFIG)
    .action(async (opts) => (await import('./commands/keys.ts')).keysRevoke(opts));
  keys
    .command('master')
    .description('write a new random master key to a file readable only by its owner')
    .requiredOption('--out <file>', 'where to write it')
    .option('--force', 'overwrite an existing file')
    .action(async (opts) => (await import('./commands/keys.ts')).keysMaster(opts));
  keys
    .command('rotate')
    .description('move a pseudonymisation domain to a new key version')
    .requiredOption('--domain <name>', 'pseudonymisation domain (by default a purpose id)')
    .option('--rekey-table <file>', 'write an old → new pseudonym CSV for the domain owner (mode 600)')
    .option('--force', 'overwrite an existing re-keying table')
    .option('-c, --config <file>', CONFIG)
    .action(async (opts) => (await import('./commands/keys.ts')).keysRotate(opts));

  const tenants = program.command('tenants').description('the tenants (schools, districts) this deployment serves besides the config file\'s own');
  tenants
    .command('add')
    .argument('<id>', 'tenant id: lower-case letters, digits, "-" (at most 56)')
    .description('add an active tenant; its sources from a YAML/JSON file (secrets only as env:NAME or file:/path)')
    .requiredOption('--name <name>', 'a label for operators (the district\'s name)')
    .option('--sources <file>', 'YAML or JSON: a list of sources, as under `sources:` in the config')
    .option('-c, --config <file>', CONFIG)
    .action(async (id, opts) => (await import('./commands/tenants.ts')).tenantsAdd(id, opts));
  tenants
    .command('list')
    .description('list the tenants (the config file\'s own first), or with --removed the removal records')
    .option('--removed', 'list removed tenants: which, when, by whom')
    .option('--json', 'machine-readable output')
    .option('-c, --config <file>', CONFIG)
    .action(async (opts) => (await import('./commands/tenants.ts')).tenantsList(opts));
  tenants
    .command('show')
    .argument('<id>', 'tenant id')
    .description('show a tenant: status, sources (secrets as their references), where its data is kept')
    .option('-c, --config <file>', CONFIG)
    .action(async (id, opts) => (await import('./commands/tenants.ts')).tenantsShow(id, opts));
  tenants
    .command('pause')
    .argument('<id>', 'tenant id')
    .description('pause a tenant: kept, but neither synced nor served until resumed')
    .option('-c, --config <file>', CONFIG)
    .action(async (id, opts) => (await import('./commands/tenants.ts')).tenantsPause(id, opts));
  tenants
    .command('resume')
    .argument('<id>', 'tenant id')
    .description('resume a paused tenant')
    .option('-c, --config <file>', CONFIG)
    .action(async (id, opts) => (await import('./commands/tenants.ts')).tenantsResume(id, opts));
  tenants
    .command('set-sources')
    .argument('<id>', 'tenant id')
    .argument('<file>', 'YAML or JSON: a list of sources')
    .description('replace a tenant\'s sources (validated as config sources; secrets only by reference)')
    .option('-c, --config <file>', CONFIG)
    .action(async (id, file, opts) => (await import('./commands/tenants.ts')).tenantsSetSources(id, file, opts));
  tenants
    .command('remove')
    .argument('<id>', 'tenant id')
    .description('remove a tenant and erase its data (its store); the removal is recorded')
    .option('--yes', 'confirm: the tenant\'s data is erased')
    .option('--wait', 'wait for running syncs of the tenant to finish instead of refusing')
    .option('-c, --config <file>', CONFIG)
    .action(async (id, opts) => {
      await (await import('./commands/tenants.ts')).tenantsRemove(id, opts);
    });

  const identity = program.command('identity').description('cross-source identity resolution, and correcting it by hand');
  identity
    .command('conflicts')
    .description('list records kept apart because their match was ambiguous or contradictory, and how resolved ones were settled')
    .option('--json', 'machine-readable output')
    .option('-c, --config <file>', CONFIG)
    .action(async (opts) => (await import('./commands/identity.ts')).identityConflicts(opts));
  identity
    .command('link')
    .usage('(--conflict N | --source ID --key KEY [--type person|org]) --into ENTITY [options]')
    .description('merge the person or organisation holding a record (e.g. one a conflict kept apart) into the one it belongs to; kept across syncs')
    .option('--conflict <id>', 'the record of this conflict (ids from `identity conflicts`)')
    .option('--source <id>', 'or the record by its source id …')
    .option('--key <key>', '… and its key in that source')
    .option('--type <type>', 'person | org (default: the type of --into)')
    .requiredOption('--into <entity>', 'gateway id of the person or organisation it belongs to (per_…, org_…)')
    .option('--json', 'machine-readable output')
    .option('-c, --config <file>', CONFIG)
    .action(async (opts) => (await import('./commands/identity.ts')).identityLink(opts));
  identity
    .command('unlink')
    .usage('(--conflict N | --source ID --key KEY [--type person|org]) [options]')
    .description('split one source\'s record off the person or organisation it was linked to, into a new one; kept across syncs')
    .option('--conflict <id>', 'the record of this conflict')
    .option('--source <id>', 'or the record by its source id …')
    .option('--key <key>', '… and its key in that source')
    .option('--type <type>', 'person | org', 'person')
    .option('--json', 'machine-readable output')
    .option('-c, --config <file>', CONFIG)
    .action(async (opts) => (await import('./commands/identity.ts')).identityUnlink(opts));

  program
    .command('privacy-report')
    .description('write the privacy leaflet and record of processing activities, generated from the config and the schema')
    .option('-c, --config <file>', CONFIG_OR_DEMO)
    .option('--demo', 'the report of the demo\'s configuration (`npm start`)')
    .addOption(new Option('--format <format>', 'md | html').choices(['md', 'html']).default('md'))
    .option('--out <file>', 'write to this file (replaced if it exists) instead of standard output')
    .action(async (opts) => (await import('./commands/privacy-report.ts')).privacyReportCommand(opts));

  program
    .command('schema')
    .description('print a client\'s purpose schema (SDL with descriptions) for client-side codegen')
    .requiredOption('--client <id>', 'client id from the config (demo: lms-demo, analytics-demo, sso-demo, admin-demo)')
    .option('-c, --config <file>', CONFIG_OR_DEMO)
    .option('--demo', 'a client of the demo\'s configuration (`npm start`)')
    .action(async (opts) => (await import('./commands/schema.ts')).schemaCommand(opts));

  program
    .command('audit')
    .description('audit log tools')
    .command('verify')
    .description('check the audit log hash chain; exit 4 if an entry was edited, removed or inserted')
    .option('--anchor <hash>', 'a head hash printed by an earlier verify: it must still be on the chain (catches entries cut from the end)')
    .option('-c, --config <file>', CONFIG)
    .action(async (opts) => {
      process.exitCode = await (await import('./commands/keys.ts')).auditVerify(opts);
    });

  program
    .command('retention')
    .description('retention of kept data (periods: config key retention)')
    .command('run')
    .description('remove what is past its retention period, print what was removed per kind, record the run in the audit log')
    .option('-c, --config <file>', CONFIG)
    .option('--dry-run', 'print what a run would remove now, and remove nothing')
    .action(async (opts) => {
      process.exitCode = await (await import('./commands/retention.ts')).retentionRunCommand(opts);
    });

  oneLineUsageErrors(program, 'rostergate');
  return program;
}

/**
 * A usage error (unknown option or command, bad or missing value) is one line, like every other
 * refusal: commander's message with a pointer to the help of the command that was run.
 */
function oneLineUsageErrors(cmd: Command, path: string): void {
  cmd.configureOutput({ outputError: (str, write) => write(`${str.trimEnd()} (see \`${path} --help\`)\n`) });
  for (const sub of cmd.commands) oneLineUsageErrors(sub, `${path} ${sub.name()}`);
}
