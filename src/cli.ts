/**
 * The `rostergate` command line. The command tree is src/cli-program.ts, each subcommand lives in
 * src/commands/; this file only parses and turns errors into one clear line and an exit code
 * (src/exit-codes.ts).
 */
import { CommanderError } from 'commander';
import { buildProgram } from './cli-program.ts';
import { oneLine } from './errors.ts';
import { EXIT, exitCodeOf } from './exit-codes.ts';

const program = buildProgram();

try {
  await program.parseAsync(process.argv);
} catch (e) {
  if (e instanceof CommanderError) {
    // Commander already printed its one-line message (unknown option, missing argument …).
    process.exit(e.exitCode === 0 ? EXIT.OK : EXIT.USAGE);
  }
  process.stderr.write(`rostergate: ${oneLine(e)}\n`);
  process.exit(exitCodeOf(e));
}
