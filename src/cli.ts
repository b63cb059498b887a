/**
 * The `rostergate` command line. The command tree is src/cli-program.ts, each subcommand lives in
 * src/commands/; this file only parses and turns errors into one clear line and an exit code
 * (src/exit-codes.ts).
 */
import { CommanderError } from 'commander';
import { buildProgram } from './cli-program.ts';
import { oneLine } from './errors.ts';
import { EXIT, exitCodeOf } from './exit-codes.ts';
import { startTracingFromEnv, stopTracing } from './kernel/tracing.ts';

const program = buildProgram();

// Traces only when the OTEL_* environment names an exporter (docs/observability.md). Spans still
// buffered are sent when a command ends by itself (beforeExit), fails (below) or is stopped (serve's onShutdown).
if (await startTracingFromEnv()) process.once('beforeExit', () => void stopTracing());

try {
  await program.parseAsync(process.argv);
} catch (e) {
  await stopTracing().catch(() => undefined);
  if (e instanceof CommanderError) {
    // Commander already printed its one-line message (unknown option, missing argument …).
    process.exit(e.exitCode === 0 ? EXIT.OK : EXIT.USAGE);
  }
  process.stderr.write(`rostergate: ${oneLine(e)}\n`);
  process.exit(exitCodeOf(e));
}
