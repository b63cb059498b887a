/**
 * The HTTP layer every REST connector shares: one undici keep-alive pool per source, timeouts,
 * retries with jittered exponential backoff that honour `Retry-After` and `X-RateLimit-Reset`,
 * a pause before the next request when a vendor says its window is spent (`X-RateLimit-Remaining: 0`
 * with its reset), a client-side rate limit, a per-run request budget, and pluggable auth.
 *
 * Errors never carry response bodies (a vendor page is full of student data); connectors that need
 * a vendor's error code pass `describeError`, which must return only non-personal text, and vendors
 * that announce some rate limits with another status than 429 (Google: 403 `rateLimitExceeded`)
 * pass `isRateLimited`, which reads the body only to say yes or no.
 */
import { Agent, request as undiciRequest, type Dispatcher } from 'undici';
import { setTimeout as sleepMs } from 'node:timers/promises';
import { RostergateError, type ErrorCode } from '../src/errors.ts';
import type { Logger } from '../src/log.ts';
import { tenantLabel, upstreamRateLimited, upstreamRequests } from '../src/kernel/metrics.ts';
import { failSpan, SpanKind, withSpan } from '../src/kernel/tracing.ts';

export interface HttpRequest {
  method?: 'GET' | 'POST' | 'PUT' | 'DELETE';
  url: string | URL;
  headers?: Record<string, string>;
  body?: string;
  /** Vendor resource name for error messages ("users", "token"). */
  resource?: string;
  /** Skip the auth provider (token endpoints authenticate themselves). */
  noAuth?: boolean;
  /** Statuses the caller handles itself instead of getting an error (e.g. 410 for an expired delta token). */
  acceptStatuses?: number[];
}

export interface HttpResponse {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  text: string;
}

/** Adds credentials to a request; `invalidate` drops a cached token after a 401 so one fresh try follows. */
export interface AuthProvider {
  authorize(req: { method: string; url: URL; headers: Record<string, string> }): Promise<void>;
  invalidate?(): void;
}

export interface HttpClientOptions {
  sourceId: string;
  dispatcher?: Dispatcher;
  auth?: AuthProvider;
  /** Idle timeout: longest silence while waiting for headers or between body chunks (ms). */
  timeoutMs?: number;
  /**
   * Overall deadline of one attempt, headers and whole body (ms). The idle timeout alone never
   * ends a vendor that trickles its body a byte every few seconds.
   */
  requestDeadlineMs?: number;
  /** Largest response body accepted (bytes); a larger one is refused before it is parsed or stored. */
  maxBodyBytes?: number;
  /** Retries after the first attempt for 429, 5xx, timeouts and connection errors. */
  maxRetries?: number;
  baseDelayMs?: number;
  maxDelayMs?: number;
  /** Longest server-requested wait we accept before giving up with SOURCE_RATE_LIMITED (ms). */
  maxRetryAfterMs?: number;
  /** Client-side cap on requests per minute (vendors publish theirs; Clever's is 1200). */
  requestsPerMinute?: number;
  /** Hard cap on requests per client lifetime (one sync run). */
  budget?: number;
  /** Safe, non-personal description of an error body (vendor error code). */
  describeError?: (status: number, body: string) => string | undefined;
  /** Whether an error answer other than 429 is the vendor's rate limit (retried like a 429). */
  isRateLimited?: (status: number, body: string) => boolean;
  log?: Logger;
  sleep?: (ms: number) => Promise<void>;
  random?: () => number;
  now?: () => number;
}

/** Why an attempt ended without a usable answer: silence, the overall deadline, a body over the limit, the connection. */
export type FailureKind = 'timeout' | 'deadline' | 'too_large' | 'network';

export type RetryDecision = { action: 'retry'; delayMs: number } | { action: 'fail'; code: ErrorCode; retryable: boolean };

/**
 * The retry decision as one pure function of (status or error, attempt, headers).
 * `status` is undefined when the request failed before a response (timeout, reset).
 * `rateLimited`: the vendor's body says this answer (a 403 from Google) is a rate limit, so it is
 * retried with backoff like a 429; any other 401/403 fails at once as an access problem.
 */
export function decideRetry(input: {
  status?: number;
  errorCode?: FailureKind;
  rateLimited?: boolean;
  attempt: number;
  headers?: Record<string, string | string[] | undefined>;
  opts: Required<Pick<HttpClientOptions, 'maxRetries' | 'baseDelayMs' | 'maxDelayMs' | 'maxRetryAfterMs'>>;
  random: number;
  now: number;
}): RetryDecision {
  const { status, attempt, opts } = input;
  const rateLimited = status === 429 || (status !== undefined && input.rateLimited === true);
  const retryableStatus = rateLimited || status === 408 || (status !== undefined && status >= 500 && status !== 501);
  if (status !== undefined && !retryableStatus) {
    return { action: 'fail', code: status === 401 || status === 403 ? 'SOURCE_AUTH' : 'SOURCE_HTTP', retryable: false };
  }
  const failCode: ErrorCode = rateLimited
    ? 'SOURCE_RATE_LIMITED'
    : input.errorCode === 'timeout' || input.errorCode === 'deadline'
      ? 'SOURCE_TIMEOUT'
      : input.errorCode === 'too_large'
        ? 'SOURCE_TOO_LARGE'
        : 'SOURCE_HTTP';
  if (attempt > opts.maxRetries) return { action: 'fail', code: failCode, retryable: true };
  const serverWait = serverRequestedWait(input.headers ?? {}, input.now);
  if (serverWait !== undefined) {
    if (serverWait > opts.maxRetryAfterMs) return { action: 'fail', code: failCode, retryable: true };
    return { action: 'retry', delayMs: serverWait };
  }
  // Equal jitter: a random delay in [c/2, c], c = min(max, base·2^(attempt-1)), spreads a
  // thundering herd while still backing off.
  const ceiling = Math.min(opts.maxDelayMs, opts.baseDelayMs * 2 ** (attempt - 1));
  return { action: 'retry', delayMs: Math.round(ceiling / 2 + (input.random * ceiling) / 2) };
}

/** Retry-After (seconds or HTTP date) or X-RateLimit-Reset (Unix seconds), as ms from now. */
export function serverRequestedWait(headers: Record<string, string | string[] | undefined>, now: number): number | undefined {
  const h = (name: string) => {
    const v = headers[name] ?? headers[name.toLowerCase()];
    return Array.isArray(v) ? v[0] : v;
  };
  const retryAfter = h('retry-after');
  if (retryAfter !== undefined && retryAfter !== '') {
    const secs = Number(retryAfter);
    if (Number.isFinite(secs)) return Math.max(0, secs * 1000);
    const at = Date.parse(retryAfter);
    if (Number.isFinite(at)) return Math.max(0, at - now);
  }
  const reset = h('x-ratelimit-reset');
  if (reset !== undefined && reset !== '' && Number.isFinite(Number(reset))) {
    const n = Number(reset);
    // Unix seconds; anything small is a relative number of seconds (some vendors send that).
    return n > 1e9 ? Math.max(0, n * 1000 - now) : n * 1000;
  }
  return undefined;
}

/**
 * Defaults of the limits. 120 s: the largest pages vendors serve (Clever's 10,000 records, Graph's
 * 999, OneRoster's limit=10000) are tens of MiB, under a minute even at 1 MB/s, while a trickling
 * vendor fails within two minutes per attempt. 64 MiB: about three times the largest such page,
 * and far below V8's longest string (~512 MiB), past which a page cannot even be decoded
 * ("Invalid string length"); parsing 64 MiB of JSON costs well under a second.
 */
export const DEFAULT_REQUEST_DEADLINE_MS = 120_000;
export const DEFAULT_MAX_BODY_BYTES = 64 * 1024 * 1024;

const DEFAULTS = {
  timeoutMs: 30_000,
  requestDeadlineMs: DEFAULT_REQUEST_DEADLINE_MS,
  maxBodyBytes: DEFAULT_MAX_BODY_BYTES,
  maxRetries: 5,
  baseDelayMs: 500,
  maxDelayMs: 30_000,
  maxRetryAfterMs: 120_000,
};

export class HttpClient {
  readonly sourceId: string;
  private readonly opts: HttpClientOptions & typeof DEFAULTS;
  private readonly dispatcher: Dispatcher;
  private readonly ownsDispatcher: boolean;
  private requestsMade = 0;
  private recent: number[] = [];
  /** When the vendor's rate-limit window reopens, once an answer said it had no requests left (ms since the epoch). */
  private windowReopensAt = 0;

  constructor(opts: HttpClientOptions) {
    this.sourceId = opts.sourceId;
    this.opts = { ...DEFAULTS, ...stripUndefined(opts), sourceId: opts.sourceId };
    this.ownsDispatcher = !opts.dispatcher;
    this.dispatcher =
      opts.dispatcher ??
      new Agent({
        keepAliveTimeout: 10_000,
        connections: 8,
        headersTimeout: this.opts.timeoutMs,
        bodyTimeout: this.opts.timeoutMs,
      });
  }

  /** Requests made so far (for summaries and budget tests). */
  get requestCount(): number {
    return this.requestsMade;
  }

  setAuth(auth: AuthProvider): void {
    this.opts.auth = auth;
  }

  async close(): Promise<void> {
    if (this.ownsDispatcher) await this.dispatcher.close();
  }

  /** GET (or other method) returning parsed JSON; malformed JSON is SOURCE_BAD_PAGE, naming the resource. */
  async json<T>(req: HttpRequest): Promise<T> {
    return (await this.jsonResponse<T>(req)).body;
  }

  /** Parsed JSON with status and headers (paging headers such as X-Total-Count). */
  async jsonResponse<T>(req: HttpRequest): Promise<{ status: number; headers: HttpResponse['headers']; body: T }> {
    // A truncated or garbled page is usually a transient proxy or network fault: fetch it again a
    // few times before failing with SOURCE_BAD_PAGE.
    for (let attempt = 1; ; attempt++) {
      const res = await this.request(req);
      try {
        return { status: res.status, headers: res.headers, body: parseJson<T>(res.text, this.sourceId, req.resource) };
      } catch (e) {
        if (attempt > Math.min(2, this.opts.maxRetries)) throw e;
        this.opts.log?.warn({ source: this.sourceId, resource: req.resource, attempt }, 'malformed JSON page, fetching again');
      }
    }
  }

  /** Sets how error bodies are summarised (a vendor's error code; never the body itself). */
  setErrorDescriber(fn: HttpClientOptions['describeError']): void {
    this.opts.describeError = fn;
  }

  /** Sets how a vendor's rate limits sent with another status than 429 are recognised. */
  setRateLimitDetector(fn: HttpClientOptions['isRateLimited']): void {
    this.opts.isRateLimited = fn;
  }

  async request(req: HttpRequest): Promise<HttpResponse> {
    const url = new URL(req.url);
    const method = req.method ?? 'GET';
    const resource = req.resource ?? url.pathname;
    const ctx = { source: this.sourceId, resource };
    let triedReauth = false;
    for (let attempt = 1; ; attempt++) {
      await this.takeBudgetAndRate(resource);
      const headers: Record<string, string> = { accept: 'application/json', ...req.headers };
      if (!req.noAuth && this.opts.auth) await this.opts.auth.authorize({ method, url, headers });
      let status: number | undefined;
      let resHeaders: Record<string, string | string[] | undefined> = {};
      let text = '';
      let errorCode: FailureKind | undefined;
      try {
        ({ status, headers: resHeaders, text } = await this.tracedAttempt(url, method, headers, req.body, resource, attempt));
      } catch (e) {
        status = undefined;
        errorCode = e instanceof LimitError ? e.kind : /TIMEOUT/i.test((e as { code?: string }).code ?? '') ? 'timeout' : 'network';
        upstreamRequests.inc({ tenant: tenantLabel(), source: this.sourceId, status: errorCode });
        const code = e instanceof LimitError ? e.kind : ((e as { code?: string }).code ?? '');
        this.opts.log?.warn({ source: this.sourceId, resource, attempt, err: code }, 'request failed before a complete answer');
        if (attempt > this.opts.maxRetries) {
          throw new RostergateError(
            errorCode === 'timeout' || errorCode === 'deadline' ? 'SOURCE_TIMEOUT' : errorCode === 'too_large' ? 'SOURCE_TOO_LARGE' : 'SOURCE_HTTP',
            `${describeFailure(errorCode, code, this.opts)} after ${attempt} attempts`,
            ctx,
            { retryable: true, cause: e },
          );
        }
      }
      if (status !== undefined) upstreamRequests.inc({ tenant: tenantLabel(), source: this.sourceId, status: String(status) });
      if (status !== undefined && ((status >= 200 && status < 300) || req.acceptStatuses?.includes(status))) {
        this.noteRateLimitWindow(resHeaders);
        return { status, headers: resHeaders, text };
      }
      if (status === 401 && !triedReauth && this.opts.auth?.invalidate) {
        // A cached token may have expired: drop it and try once with a fresh one.
        triedReauth = true;
        this.opts.auth.invalidate();
        attempt--;
        continue;
      }
      const rateLimited = status !== undefined && status !== 429 && (this.opts.isRateLimited?.(status, text) ?? false);
      if (status === 429 || rateLimited) upstreamRateLimited.inc({ tenant: tenantLabel(), source: this.sourceId });
      const decision = decideRetry({
        status,
        errorCode,
        rateLimited,
        attempt,
        headers: resHeaders,
        opts: this.opts,
        random: (this.opts.random ?? Math.random)(),
        now: (this.opts.now ?? Date.now)(),
      });
      if (decision.action === 'retry') {
        this.opts.log?.warn({ source: this.sourceId, resource, status, attempt, delayMs: decision.delayMs }, 'retrying');
        await (this.opts.sleep ?? sleepMs)(decision.delayMs);
        continue;
      }
      const detail = status !== undefined ? this.opts.describeError?.(status, text) : undefined;
      throw new RostergateError(decision.code, describeStatus(status, attempt, decision.code, detail), { ...ctx, status }, { retryable: decision.retryable });
    }
  }

  /**
   * One attempt in its own client span, named by the resource (never the URL: paths and queries
   * carry ids); the vendor's status is an attribute, and a status the caller does not accept marks it failed.
   */
  private tracedAttempt(url: URL, method: string, headers: Record<string, string>, body: string | undefined, resource: string, attempt: number): ReturnType<HttpClient['attempt']> {
    const attributes = { 'http.request.method': method, 'server.address': url.hostname, 'rostergate.source': this.sourceId, 'rostergate.resource': resource, 'http.request.resend_count': attempt - 1 };
    return withSpan('upstream.request', attributes, async (span) => {
      const res = await this.attempt(url, method, headers, body);
      span?.setAttribute('http.response.status_code', res.status);
      if (res.status >= 400) failSpan(span, { code: String(res.status) });
      return res;
    }, SpanKind.CLIENT);
  }

  /**
   * One attempt under both limits: the deadline aborts the request wherever it is (waiting for
   * headers or half-way through a body), and the body is counted as it streams in, so an oversized
   * one is cut off at the limit instead of being buffered whole (a 700 MB page used to fail in
   * decoding, reported as a malformed page).
   */
  private async attempt(url: URL, method: string, headers: Record<string, string>, body: string | undefined): Promise<Omit<HttpResponse, 'status'> & { status: number }> {
    const { requestDeadlineMs: deadline, maxBodyBytes: maxBytes } = this.opts;
    const abort = new AbortController();
    let deadlineHit = false;
    const timer = setTimeout(() => {
      deadlineHit = true;
      abort.abort();
    }, deadline);
    try {
      const res = await undiciRequest(url, {
        method,
        headers,
        body,
        dispatcher: this.dispatcher,
        headersTimeout: this.opts.timeoutMs,
        bodyTimeout: this.opts.timeoutMs,
        signal: abort.signal,
      });
      const declared = Number(res.headers['content-length']);
      if (Number.isFinite(declared) && declared > maxBytes) {
        res.body.destroy();
        throw new LimitError('too_large');
      }
      const chunks: Buffer[] = [];
      let size = 0;
      for await (const chunk of res.body) {
        size += (chunk as Buffer).length;
        if (size > maxBytes) {
          res.body.destroy();
          throw new LimitError('too_large');
        }
        chunks.push(chunk as Buffer);
      }
      return { status: res.statusCode, headers: res.headers as HttpResponse['headers'], text: Buffer.concat(chunks, size).toString('utf8') };
    } catch (e) {
      if (deadlineHit && !(e instanceof LimitError)) throw new LimitError('deadline', e);
      throw e;
    } finally {
      clearTimeout(timer);
    }
  }

  /**
   * A successful answer that says the vendor's window has no requests left (`X-RateLimit-Remaining:
   * 0`) and when it resets: the next request waits for the reset instead of spending a 429 to learn
   * it. A reset further away than the longest wait we accept is left to the 429 path, which fails
   * clearly with SOURCE_RATE_LIMITED.
   */
  private noteRateLimitWindow(headers: HttpResponse['headers']): void {
    const remaining = headers['x-ratelimit-remaining'];
    if ((Array.isArray(remaining) ? remaining[0] : remaining)?.trim() !== '0') return;
    const now = (this.opts.now ?? Date.now)();
    const wait = serverRequestedWait({ 'x-ratelimit-reset': headers['x-ratelimit-reset'] }, now);
    if (wait !== undefined && wait > 0 && wait <= this.opts.maxRetryAfterMs) this.windowReopensAt = now + wait;
  }

  private async takeBudgetAndRate(resource: string): Promise<void> {
    if (this.opts.budget !== undefined && this.requestsMade >= this.opts.budget) {
      throw new RostergateError('SOURCE_BUDGET', `request budget of ${this.opts.budget} exhausted`, { source: this.sourceId, resource });
    }
    const closedFor = this.windowReopensAt - (this.opts.now ?? Date.now)();
    if (closedFor > 0) {
      this.opts.log?.info({ source: this.sourceId, resource, delayMs: closedFor }, 'vendor rate-limit window spent: waiting for its reset');
      await (this.opts.sleep ?? sleepMs)(closedFor);
    }
    const rpm = this.opts.requestsPerMinute;
    if (rpm) {
      const now = (this.opts.now ?? Date.now)();
      this.recent = this.recent.filter((t) => now - t < 60_000);
      if (this.recent.length >= rpm) {
        const wait = 60_000 - (now - this.recent[0]!);
        await (this.opts.sleep ?? sleepMs)(wait);
      }
      this.recent.push((this.opts.now ?? Date.now)());
    }
    this.requestsMade++;
  }
}

/** A limit of ours ended the attempt (not the vendor, not the network). */
class LimitError extends Error {
  constructor(readonly kind: 'deadline' | 'too_large', cause?: unknown) {
    super(kind === 'deadline' ? 'request deadline passed' : 'response body over the limit', { cause });
  }
}

function describeFailure(kind: FailureKind, code: string, opts: { requestDeadlineMs: number; maxBodyBytes: number }): string {
  if (kind === 'deadline') return `no complete answer within ${formatMs(opts.requestDeadlineMs)} (limit http.requestDeadlineMs)`;
  if (kind === 'too_large') return `response body exceeded ${formatBytes(opts.maxBodyBytes)} (limit http.maxBodyBytes)`;
  if (kind === 'timeout') return 'timed out';
  return `connection failed (${code || 'unknown'})`;
}

export function formatBytes(n: number): string {
  if (n >= 1024 * 1024 && n % (1024 * 1024) === 0) return `${n / (1024 * 1024)} MiB`;
  if (n >= 1024 && n % 1024 === 0) return `${n / 1024} KiB`;
  return `${n} bytes`;
}

function formatMs(ms: number): string {
  return ms % 1000 === 0 ? `${ms / 1000} s` : `${ms} ms`;
}

function describeStatus(status: number | undefined, attempts: number, code: ErrorCode, detail?: string): string {
  const base =
    code === 'SOURCE_RATE_LIMITED'
      ? `rate limited (${status}) after ${attempts} attempts`
      : status === 401
        ? 'credentials rejected (401): check the token or client id/secret configured for this source'
        : status === 403
          ? 'access denied (403): the credentials lack a permission or scope this source needs'
          : status === 404
            ? 'not found (404): check the base URL'
            : status !== undefined && status >= 500
              ? `server error (${status}) after ${attempts} attempts`
              : `unexpected status ${status}`;
  return detail ? `${base} — ${detail}` : base;
}

export function parseJson<T>(text: string, source: string, resource?: string): T {
  try {
    return JSON.parse(text) as T;
  } catch {
    throw new RostergateError('SOURCE_BAD_PAGE', `malformed JSON page (${text.length} bytes, not shown: it may hold personal data)`, {
      source,
      resource,
    }, { retryable: true });
  }
}

function stripUndefined<T extends object>(o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;
}

/**
 * An AuthProvider for OAuth-style bearer tokens: fetches one when needed, caches it until two
 * minutes before it expires, and drops it after a 401 so the next attempt fetches a fresh one.
 */
export function bearerTokenAuth(fetchToken: () => Promise<{ token: string; expiresInSeconds?: number }>): AuthProvider {
  let cached: { value: string; until: number } | undefined;
  return {
    async authorize({ headers }) {
      if (!cached || Date.now() > cached.until) {
        const t = await fetchToken();
        cached = { value: t.token, until: Date.now() + Math.max(30, (t.expiresInSeconds ?? 3600) - 120) * 1000 };
      }
      headers.authorization = `Bearer ${cached.value}`;
    },
    invalidate() {
      cached = undefined;
    },
  };
}

/** Guards a paginator against vendors that hand back a page we already followed. */
export class LoopGuard {
  private seen = new Set<string>();
  constructor(private readonly source: string, private readonly resource: string) {}
  check(token: string): void {
    if (this.seen.has(token)) {
      throw new RostergateError('SOURCE_PAGING_LOOP', `paging returned a cursor already followed in this run`, {
        source: this.source,
        resource: this.resource,
      });
    }
    this.seen.add(token);
  }
}
