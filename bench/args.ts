/**
 * The benches' command-line options, read the same way by each: `--name value` and `--flag`.
 * Hand-written rather than commander: a bench takes a few numbers and names, is run by developers
 * from `npm run bench`, and prints its options in its own header comment.
 */

/** `--name N`: a number, `dflt` when absent; anything but a non-negative number is refused. */
export function arg(name: string, dflt: number): number {
  const i = process.argv.indexOf(`--${name}`);
  const v = i > 0 ? Number(process.argv[i + 1]) : dflt;
  if (!Number.isFinite(v) || v < 0) throw new Error(`--${name} takes a number`);
  return v;
}

/** `--name text`, or undefined when absent. */
export function textArg(name: string): string | undefined {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? process.argv[i + 1] : undefined;
}

/** `--name` given. */
export function flag(name: string): boolean {
  return process.argv.includes(`--${name}`);
}
