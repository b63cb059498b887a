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
  /** Another run holds the source's lease (src/store/lease.ts). */
  | 'SYNC_BUSY'
  /** The tenant is paused (`rostergate tenants resume` to sync it again). */
  | 'TENANT_PAUSED'
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
  /** Client credentials cannot be checked now (the JWT issuer's key set is unreachable): HTTP 503. */
  | 'AUTH_UNAVAILABLE'
  /** A client over its request rate (clients[].rateLimit, server.rateLimit): HTTP 429. */
  | 'RATE_LIMITED'
  | 'FORBIDDEN'
  /**
   * A tenant the client may not use, or that does not exist: one answer for both (HTTP 403), so a
   * client cannot learn which tenants exist by asking (src/tenants/request-tenant.ts).
   */
  | 'TENANT_REFUSED'
  /** A client of several tenants sent no x-rostergate-tenant header (HTTP 400). */
  | 'TENANT_REQUIRED'
  /** The tenant is paused: kept, but not served until resumed (HTTP 503). */
  | 'TENANT_PAUSED'
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

/**
 * A request refused for its credentials (HTTP 401). `reason` is a stable code (e.g. token_expired);
 * `scheme` is the kind of credential that was sent, so the challenge can say what was wrong with it.
 */
export class AuthenticationError extends RostergateError {
  constructor(readonly reason: string, message: string, readonly scheme: 'Bearer' | 'ApiKey' | 'none') {
    super('UNAUTHENTICATED', message);
  }
}

/** A client over its rate limit (HTTP 429): `retryAfterSec` is when its next request will be let through. */
export class RateLimitedError extends RostergateError {
  constructor(readonly client: string, readonly retryAfterSec: number, limit: { requestsPerMinute: number; burst: number }) {
    super('RATE_LIMITED', `client ${client} is over its rate limit of ${limit.requestsPerMinute} requests per minute (burst ${limit.burst}): retry after ${retryAfterSec} s`, {}, { retryable: true });
  }
}

export function isRostergateError(e: unknown, code?: ErrorCode): e is RostergateError {
  return e instanceof RostergateError && (code === undefined || e.code === code);
}

/** One line for a terminal: the message, without a stack. */
export function oneLine(e: unknown): string {
  if (e instanceof Error) return e.message.split('\n')[0] ?? String(e);
  return String(e);
}

/**
 * The HTTP answer to a request refused before it runs — bad credentials (401, with the challenge
 * RFC 6750 asks for), credentials that cannot be checked now (503), a client over its rate limit
 * (429, Retry-After), or a tenant it may not use (403), did not name (400) or that is paused (503)
 * — or undefined for any other error. Shared by /graphql and /extracts.
 */
export function refusalAnswer(e: unknown): { status: number; headers: Record<string, string | string[]>; body: { errors: { message: string; extensions: Record<string, unknown> }[] } } | undefined {
  const body = (extensions: Record<string, unknown>) => ({ errors: [{ message: (e as Error).message, extensions }] });
  if (e instanceof AuthenticationError) {
    // A quoted-string without quotes, backslashes or non-ASCII (RFC 6750 §3: error_description's characters).
    const description = e.message.replace(/["\\]/g, "'").replace(/[^\x20-\x7e]/g, '?');
    const bearer = e.scheme === 'none' ? 'Bearer' : `Bearer error="invalid_token", error_description="${description}"`;
    return { status: 401, headers: { 'www-authenticate': ['ApiKey header="x-api-key"', bearer] }, body: body({ code: 'UNAUTHENTICATED', reason: e.reason }) };
  }
  if (isRostergateError(e, 'UNAUTHENTICATED')) return { status: 401, headers: { 'www-authenticate': ['ApiKey header="x-api-key"', 'Bearer'] }, body: body({ code: 'UNAUTHENTICATED' }) };
  if (e instanceof RateLimitedError) {
    return { status: 429, headers: { 'retry-after': String(e.retryAfterSec) }, body: body({ code: 'RATE_LIMITED', client: e.client, retryAfterSec: e.retryAfterSec }) };
  }
  if (isRostergateError(e, 'AUTH_UNAVAILABLE')) return { status: 503, headers: { 'retry-after': '5' }, body: body({ code: 'AUTH_UNAVAILABLE' }) };
  if (isRostergateError(e, 'TENANT_REFUSED')) return { status: 403, headers: {}, body: body({ code: 'TENANT_REFUSED' }) };
  if (isRostergateError(e, 'TENANT_REQUIRED')) return { status: 400, headers: {}, body: body({ code: 'TENANT_REQUIRED' }) };
  if (isRostergateError(e, 'TENANT_PAUSED')) return { status: 503, headers: {}, body: body({ code: 'TENANT_PAUSED' }) };
  return undefined;
}
