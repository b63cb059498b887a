/**
 * Errors with stable codes. Messages name the source, resource and record that failed — by key,
 * never by personal value — so they are safe to log and to show an operator.
 */
export type ErrorCode =
  | 'CONFIG_INVALID'
  | 'SOURCE_AUTH'
  | 'SOURCE_HTTP'
  | 'SOURCE_TIMEOUT'
  | 'SOURCE_RATE_LIMITED'
  | 'SOURCE_BAD_PAGE'
  /** A response body larger than the source's http.maxBodyBytes (or a CSV file or row over its bound). */
  | 'SOURCE_TOO_LARGE'
  | 'SOURCE_BAD_RECORD'
  | 'SOURCE_PAGING_LOOP'
  | 'SOURCE_BUDGET'
  | 'SOURCE_CURSOR_EXPIRED'
  | 'CSV_INVALID'
  | 'SYNC_MASS_DELETE'
  | 'SYNC_ABORTED'
  /** Another run holds the source's lease (src/sync/lease.ts). */
  | 'SYNC_BUSY'
  | 'STORE'
  /** The store's disk is full (SQLITE_FULL, PostgreSQL 53100). */
  | 'STORE_FULL'
  /** The store refuses writes (SQLITE_READONLY, PostgreSQL 25006). */
  | 'STORE_READ_ONLY'
  /** The store's disk failed a read or write (SQLITE_IOERR, PostgreSQL 58030). */
  | 'STORE_IO'
  | 'DATA_FOLDER'
  | 'NOT_FOUND'
  /** An operator's identity link or unlink that cannot be carried out (unknown record, wrong type). */
  | 'IDENTITY_REFUSED'
  | 'UNAUTHENTICATED'
  | 'FORBIDDEN'
  /** The HTTP client hung up before its answer: the request's remaining store reads are refused. */
  | 'REQUEST_ABORTED';

export interface ErrorContext {
  /** The configured source id (e.g. "district-clever"). */
  source?: string;
  /** The vendor resource (e.g. "users", "sections", "users.csv"). */
  resource?: string;
  /** The source key of the failing record, or a file:line:column for CSV. */
  record?: string;
  /** HTTP status where one was received. */
  status?: number;
}

export class RostergateError extends Error {
  readonly code: ErrorCode;
  readonly context: ErrorContext;
  /** Whether retrying the same operation later may succeed. */
  readonly retryable: boolean;

  constructor(code: ErrorCode, message: string, context: ErrorContext = {}, opts: { retryable?: boolean; cause?: unknown } = {}) {
    super(formatMessage(message, context), opts.cause === undefined ? undefined : { cause: opts.cause });
    this.name = 'RostergateError';
    this.code = code;
    this.context = context;
    this.retryable = opts.retryable ?? false;
  }
}

function formatMessage(message: string, ctx: ErrorContext): string {
  const where = [
    ctx.source && `source ${ctx.source}`,
    ctx.resource && `resource ${ctx.resource}`,
    ctx.record && `record ${ctx.record}`,
    ctx.status !== undefined && `HTTP ${ctx.status}`,
  ].filter(Boolean);
  return where.length ? `${where.join(', ')}: ${message}` : message;
}

export function isRostergateError(e: unknown, code?: ErrorCode): e is RostergateError {
  return e instanceof RostergateError && (code === undefined || e.code === code);
}

/** One line for a terminal: the message, without a stack. */
export function oneLine(e: unknown): string {
  if (e instanceof Error) return e.message.split('\n')[0] ?? String(e);
  return String(e);
}
