/**
 * `rostergate …` as a process of its own (./cli-bin.ts), its output collected: for tests of
 * long-running commands (serve, worker) that signal, kill or wait for them.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { CLI_BIN } from './cli-bin.ts';

export interface CliProcess {
  child: ChildProcess;
  /** What it printed on stdout so far. */
  out(): string;
  /** Its exit: code or signal, and everything it printed on stderr. */
  done: Promise<{ code: number | null; signal: NodeJS.Signals | null; stderr: string }>;
}

export function startCli(args: string[], env: Record<string, string> = {}): CliProcess {
  const child = spawn(process.execPath, [CLI_BIN, ...args], { env: { ...process.env, ROSTERGATE_LOG_LEVEL: 'silent', ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout!.on('data', (d) => (stdout += d));
  child.stderr!.on('data', (d) => (stderr += d));
  return { child, out: () => stdout, done: new Promise((r) => child.on('exit', (code, signal) => r({ code, signal, stderr }))) };
}
