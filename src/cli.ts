/**
 * The `rostergate` command line. Each subcommand lives in src/commands/; this file only wires
 * commander and turns errors into one clear line and an exit code.
 */
import { Command, CommanderError } from 'commander';
import { isRostergateError, oneLine } from './errors.ts';

const program = new Command()
  .name('rostergate')
  .description('A self-hostable GraphQL gateway over school rostering sources that minimises the identity data it passes on.')
  .version('0.1.0')
  .showHelpAfterError('(run `rostergate --help` for usage)')
  .exitOverride();

program
  .command('serve')
  .description('serve the store over GraphQL')
  .option('-c, --config <file>', 'config file (YAML or JSON); default $ROSTERGATE_CONFIG')
  .option('-p, --port <port>', 'port to listen on (overrides the config)')
  .option('--host <host>', 'address to bind (overrides the config)')
  .action(async (opts) => (await import('./commands/serve.ts')).serveCommand(opts));

program
  .command('sync')
  .description('read the configured sources into the store')
  .option('-c, --config <file>', 'config file (YAML or JSON); default $ROSTERGATE_CONFIG')
  .option('-s, --source <id>', 'only this source')
  .option('--full', 'ignore incremental cursors and read everything')
  .option('--allow-mass-delete', 'let a full sync delete more than the configured share of records')
  .action(async (opts) => {
    process.exitCode = await (await import('./commands/sync.ts')).syncCommand(opts);
  });

program
  .command('sandbox')
  .description('start the local vendor sandboxes (emulators serving a synthetic district)')
  .option('-p, --port <port>', 'port', '4100')
  .option('--seed <n>', 'district seed')
  .option('--students <n>', 'number of students')
  .action(async (opts) => (await import('./commands/sandbox.ts')).sandboxCommand(opts));

program
  .command('demo')
  .description('start the sandboxes, sync the demo district through them into SQLite, and serve it')
  .option('-p, --port <port>', 'gateway port', '4000')
  .option('--data <dir>', 'folder for the demo store', './data')
  .option('--students <n>', 'number of students in the demo district')
  .action(async (opts) => (await import('./commands/demo.ts')).demoCommand(opts));

try {
  await program.parseAsync(process.argv);
} catch (e) {
  if (e instanceof CommanderError) {
    // Commander already printed its one-line message (unknown option, missing argument …).
    process.exit(e.exitCode === 0 ? 0 : 2);
  }
  process.stderr.write(`rostergate: ${oneLine(e)}\n`);
  process.exit(isRostergateError(e, 'CONFIG_INVALID') || isRostergateError(e, 'DATA_FOLDER') ? 2 : 1);
}
