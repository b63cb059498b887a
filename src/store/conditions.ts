/**
 * Store conditions an operator must act on — a full disk, a store that refuses writes, a failing
 * disk — told apart from ordinary failures. SQLite reports them as SQLITE_FULL / SQLITE_READONLY* /
 * SQLITE_IOERR*, PostgreSQL as SQLSTATE 53100 (disk_full), 25006 (read_only_sql_transaction) and
 * 58030 (io_error). Without this, a full disk surfaced as "cannot rollback - no transaction is
 * active" (SQLite had already rolled the transaction back itself).
 */
import { RostergateError, type ErrorCode, type ErrorContext } from '../errors.ts';

export type StoreCondition = 'full' | 'read-only' | 'io';

const CODES: Record<StoreCondition, ErrorCode> = { full: 'STORE_FULL', 'read-only': 'STORE_READ_ONLY', io: 'STORE_IO' };
const MAPPED = new Set<ErrorCode>(Object.values(CODES));

/** The condition a driver error stands for, looking through wrappers (`cause`), if any. */
export function storeCondition(e: unknown): { condition: StoreCondition; code: string } | undefined {
  for (let x = e, depth = 0; x && depth < 5; x = (x as { cause?: unknown }).cause, depth++) {
    const code = (x as { code?: unknown }).code;
    if (typeof code !== 'string') continue;
    if (code === 'SQLITE_FULL' || code === '53100') return { condition: 'full', code };
    if (code.startsWith('SQLITE_READONLY') || code === '25006') return { condition: 'read-only', code };
    if (code.startsWith('SQLITE_IOERR') || code === '58030') return { condition: 'io', code };
  }
  return undefined;
}

/**
 * The clear error for a driver error that is one of the conditions (undefined otherwise). `store`
 * names the store without secrets ("the SQLite store at data/rg.db", "the PostgreSQL store"); the
 * source and resource of a wrapping error (the page being written) are kept.
 */
export function storeConditionError(e: unknown, store: string): RostergateError | undefined {
  if (e instanceof RostergateError && MAPPED.has(e.code)) return e;
  const found = storeCondition(e);
  if (!found) return undefined;
  const ctx: ErrorContext = e instanceof RostergateError ? { source: e.context.source, resource: e.context.resource } : {};
  const rolledBack = 'the write was rolled back: nothing from it (a sync page, a key, a delivery) was committed';
  const what =
    found.condition === 'full'
      ? `${store} is full (${found.code}): free space on its disk (or raise its size limit or quota), then run again`
      : found.condition === 'read-only'
        ? `${store} refuses writes (${found.code}): it is read-only (file or folder permissions, a read-only mount, or a PostgreSQL standby or read-only setting)`
        : `${store} could not write to its disk (${found.code}): check the disk and its file system`;
  return new RostergateError(CODES[found.condition], `${what}; ${rolledBack}`, ctx, { retryable: true, cause: e });
}
