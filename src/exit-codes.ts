/**
 * The command line's exit codes, in one place: src/cli.ts maps errors to them, the commands that
 * end with a verdict return them, and docs/cli.md lists them (test/unit/cli-docs.test.ts keeps the
 * two in step).
 */
import { isRostergateError, type ErrorCode } from './errors.ts';

export const EXIT = {
  OK: 0,
  /** A source failed (sync), or any other error at run time: the store, the network, a bug. */
  FAILED: 1,
  /** Usage or input the operator must fix: a bad option, a config error, an unknown record. Nothing was changed. */
  USAGE: 2,
  /** sync: the mass-deletion guard stopped a source. */
  GUARDED: 3,
  /**
   * sync: another run (process or machine) was syncing a source, which was skipped; erase: a sync
   * was running (SYNC_BUSY). Worth retrying later, or with --wait.
   */
  BUSY: 4,
  /** audit verify: an entry was edited, removed or inserted. */
  TAMPERED: 4,
  /** sync --tenant: the tenant is paused, so nothing was synced. */
  PAUSED: 5,
} as const;

/** Errors that are the operator's to fix (exit 2); every other error exits 1. */
export const USAGE_ERROR_CODES: readonly ErrorCode[] = ['CONFIG_INVALID', 'DATA_FOLDER', 'IDENTITY_REFUSED', 'NOT_FOUND'];

/** Codes a command can end with besides 0, 1 and 2 (which every command can). */
export const COMMAND_EXITS: Readonly<Record<string, readonly number[]>> = {
  sync: [EXIT.GUARDED, EXIT.BUSY, EXIT.PAUSED],
  'tenants remove': [EXIT.BUSY],
  erase: [EXIT.BUSY],
  'audit verify': [EXIT.TAMPERED],
};

/** The exit code of a command that ended with an error (src/cli.ts). */
export function exitCodeOf(e: unknown): number {
  if (USAGE_ERROR_CODES.some((code) => isRostergateError(e, code))) return EXIT.USAGE;
  if (isRostergateError(e, 'SYNC_BUSY')) return EXIT.BUSY;
  if (isRostergateError(e, 'TENANT_PAUSED')) return EXIT.PAUSED;
  return EXIT.FAILED;
}
