/**
 * Shared machinery for the vendor sandboxes — local emulators of each vendor's wire format that
 * serve the synthetic demo district. They are test and demo equipment, never a production data
 * source: every response says so in an `x-rostergate-sandbox` header.
 *
 * One HTTP server hosts every sandbox under its own path prefix (`/clever`, `/oneroster`, …), and a
 * shared fault plan lets tests inject 429 storms, 5xx, hangs and truncated pages into any of them.
 * An optional per-sandbox request quota answers over-quota requests with the vendor's own 429.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { DatasetView } from './dataset-view.ts';

export interface SandboxContext {
  dataset: DatasetView;
  /** Public base URL of this sandbox, e.g. http://127.0.0.1:4100/clever (no trailing slash). */
  baseUrl: string;
}

export interface SandboxRequest {
  method: string;
  url: URL;
  /** Path below the sandbox's prefix, e.g. "/v3.0/users". */
  path: string;
  headers: IncomingMessage['headers'];
  body: string;
}

export interface SandboxResponse {
  status: number;
  headers?: Record<string, string>;
  /** An object is sent as JSON; a string as is. */
  body?: unknown;
}

export interface SandboxHandler {
  handle(req: SandboxRequest): Promise<SandboxResponse> | SandboxResponse;
  /** The vendor's error body for an injected status, so faults look like the real thing. */
  errorBody?(status: number): unknown;
  /**
   * Headers of a rate-limited (429) answer, given when the window resets (ms since the epoch), in
   * the vendor's own form. Default: `Retry-After` in whole seconds.
   */
  rateLimitHeaders?(resetAtMs: number): Record<string, string>;
}

export interface SandboxApp {
  /** Vendor name for logs and the landing list ("Clever Data API v3"). */
  name: string;
  /** Path prefix on the shared server ("/clever"). */
  prefix: string;
  create(ctx: SandboxContext): SandboxHandler;
}

export type Fault =
  | { kind: 'status'; status: number; retryAfter?: string; headers?: Record<string, string> }
  | { kind: 'truncate' }
  | { kind: 'hang'; ms: number }
  | { kind: 'reset' }
  /** Headers at once, then the body a byte every `intervalMs` (a vendor that trickles). */
  | { kind: 'trickle'; intervalMs: number }
  /** The real page followed by `bytes` of JSON whitespace: still valid, but oversized. */
  | { kind: 'pad'; bytes: number };

/** Faults applied, in order, to the next requests whose path matches. */
export class FaultPlan {
  private queue: { match?: RegExp; fault: Fault; times: number; after: number }[] = [];
  /** Count of requests each sandbox path received (for tests that assert request patterns). */
  readonly hits: string[] = [];

  /**
   * Queues a fault for the next `times` requests whose path matches, after letting `after` of them
   * through untouched (so a test can break a run in its middle, e.g. the third page of users).
   */
  inject(fault: Fault, opts: { match?: RegExp; times?: number; after?: number } = {}): this {
    this.queue.push({ match: opts.match, fault, times: opts.times ?? 1, after: opts.after ?? 0 });
    return this;
  }

  clear(): void {
    this.queue = [];
  }

  take(path: string): Fault | undefined {
    const i = this.queue.findIndex((q) => !q.match || q.match.test(path));
    if (i < 0) return undefined;
    const q = this.queue[i]!;
    if (q.after > 0) {
      q.after--;
      return undefined;
    }
    if (--q.times <= 0) this.queue.splice(i, 1);
    return q.fault;
  }
}

export interface RunningSandbox {
  url: string;
  port: number;
  faults: FaultPlan;
  /** Base URL of one mounted sandbox by prefix, e.g. urlOf('/clever'). */
  urlOf(prefix: string): string;
  close(): Promise<void>;
}

export async function startSandboxServer(opts: {
  dataset: DatasetView;
  apps: SandboxApp[];
  /** A different view of the data for some sandboxes, by prefix (the demo gives each vendor its own schools). */
  datasets?: Map<string, DatasetView>;
  port?: number;
  host?: string;
  /**
   * Each sandbox's request quota per fixed window (Clever: 1200 per minute, reset every minute
   * rather than averaged). Requests over it get the vendor's 429. Off when absent.
   */
  rateLimit?: { requests: number; windowMs: number };
}): Promise<RunningSandbox> {
  const faults = new FaultPlan();
  const windows = new Map<string, { start: number; count: number }>();
  // Hung requests end with the server, so a test's injected hang never outlives it.
  const hangs = new Set<NodeJS.Timeout>();
  let closed = false;
  const host = opts.host ?? '127.0.0.1';
  const handlers = new Map<string, SandboxHandler>();
  let origin = '';
  const server: Server = createServer((req, res) => {
    void dispatch(req, res).catch((e) => {
      if (!res.headersSent) sendJson(res, 500, { message: `sandbox error: ${(e as Error).message}` });
      else res.destroy();
    });
  });
  // Idle connections live longer here than in the connectors' pool (10 s), as at the vendors' load
  // balancers, so the client always closes first: a server closing a connection just as the client
  // reuses it (likely on a busy machine) costs a reset and a retry.
  server.keepAliveTimeout = 30_000;

  async function dispatch(req: IncomingMessage, res: ServerResponse) {
    const url = new URL(req.url ?? '/', origin);
    const app = opts.apps.find((a) => url.pathname === a.prefix || url.pathname.startsWith(a.prefix + '/'));
    if (!app) return sendJson(res, 404, { message: 'no sandbox at this path', sandboxes: opts.apps.map((a) => a.prefix) });
    const handler = handlers.get(app.prefix)!;
    const path = url.pathname.slice(app.prefix.length) || '/';
    faults.hits.push(`${app.prefix}${path}`);
    if (opts.rateLimit) {
      const now = Date.now();
      let w = windows.get(app.prefix);
      if (!w || now - w.start >= opts.rateLimit.windowMs) windows.set(app.prefix, (w = { start: now, count: 0 }));
      if (++w.count > opts.rateLimit.requests) {
        const resetAt = w.start + opts.rateLimit.windowMs;
        const headers = handler.rateLimitHeaders?.(resetAt) ?? { 'retry-after': String(Math.max(1, Math.ceil((resetAt - now) / 1000))) };
        return sendJson(res, 429, handler.errorBody?.(429) ?? { message: 'rate limit exceeded' }, headers);
      }
    }
    const fault = faults.take(`${app.prefix}${path}`);
    if (fault?.kind === 'hang') {
      await new Promise<void>((r) => {
        const t = setTimeout(() => (hangs.delete(t), r()), fault.ms);
        hangs.add(t);
      });
      if (closed) return;
    }
    if (fault?.kind === 'reset') return void req.socket.destroy();
    if (fault?.kind === 'status') {
      const headers = { ...fault.headers, ...(fault.retryAfter !== undefined ? { 'retry-after': fault.retryAfter } : {}) };
      return sendJson(res, fault.status, handler.errorBody?.(fault.status) ?? { message: `injected ${fault.status}` }, headers);
    }
    const body = await readBody(req);
    const out = await handler.handle({ method: req.method ?? 'GET', url, path, headers: req.headers, body });
    const text = typeof out.body === 'string' ? out.body : out.body === undefined ? '' : JSON.stringify(out.body);
    const contentType = typeof out.body === 'string' ? 'text/plain; charset=utf-8' : 'application/json; charset=utf-8';
    const sent = fault?.kind === 'truncate' ? text.slice(0, Math.max(1, Math.floor(text.length / 2))) : fault?.kind === 'pad' ? text + ' '.repeat(fault.bytes) : text;
    res.writeHead(out.status, { 'content-type': contentType, 'x-rostergate-sandbox': app.name, ...out.headers });
    if (fault?.kind === 'trickle') return trickle(res, Buffer.from(sent), fault.intervalMs, hangs);
    res.end(sent);
  }

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port ?? 0, host, () => resolve());
  });
  const port = (server.address() as AddressInfo).port;
  origin = `http://${host}:${port}`;
  for (const app of opts.apps) handlers.set(app.prefix, app.create({ dataset: opts.datasets?.get(app.prefix) ?? opts.dataset, baseUrl: origin + app.prefix }));
  return {
    url: origin,
    port,
    faults,
    urlOf: (prefix) => origin + prefix,
    close: () =>
      new Promise<void>((resolve) => {
        closed = true;
        for (const t of hangs) clearTimeout(t);
        hangs.clear();
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/** Sends a body a byte at a time until it is done or the client goes away; timers end with the server. */
function trickle(res: ServerResponse, body: Buffer, intervalMs: number, timers: Set<NodeJS.Timeout>): void {
  res.flushHeaders();
  let i = 0;
  const next = () => {
    if (res.destroyed || i >= body.length) return void res.end();
    res.write(body.subarray(i, ++i));
    const t = setTimeout(() => (timers.delete(t), next()), intervalMs);
    timers.add(t);
  };
  next();
}

function sendJson(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}) {
  res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', ...headers });
  res.end(JSON.stringify(body));
}

function readBody(req: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}

/** Reads `Authorization: Basic …` as [id, secret]. */
export function basicAuth(headers: IncomingMessage['headers']): [string, string] | undefined {
  const h = headers.authorization;
  if (!h?.startsWith('Basic ')) return undefined;
  const decoded = Buffer.from(h.slice(6), 'base64').toString('utf8');
  const i = decoded.indexOf(':');
  return i < 0 ? undefined : [decodeURIComponent(decoded.slice(0, i)), decodeURIComponent(decoded.slice(i + 1))];
}

export function bearer(headers: IncomingMessage['headers']): string | undefined {
  const h = headers.authorization;
  return h?.startsWith('Bearer ') ? h.slice(7) : undefined;
}

/** A stable pseudo-random id derived from a demo key, in a vendor's id shape. */
export function vendorId(namespace: string, key: string, shape: 'hex24' | 'uuid' | 'digits21'): string {
  // FNV-1a over the input, stretched: fixture ids only, not a security function.
  let out = '';
  let h = 0x811c9dc5;
  for (let round = 0; out.length < 40; round++) {
    for (const ch of `${namespace}:${key}:${round}`) {
      h ^= ch.charCodeAt(0);
      h = Math.imul(h, 0x01000193) >>> 0;
    }
    out += h.toString(16).padStart(8, '0');
  }
  if (shape === 'hex24') return out.slice(0, 24);
  if (shape === 'uuid') return `${out.slice(0, 8)}-${out.slice(8, 12)}-4${out.slice(13, 16)}-8${out.slice(17, 20)}-${out.slice(20, 32)}`;
  return BigInt('0x' + out.slice(0, 17)).toString().padStart(21, '1').slice(0, 21);
}

/**
 * Work counters of the sandboxes, so a test can check that serving a page costs work in
 * proportion to the page, not to the district, without timing anything: `builds` counts the
 * per-version indexes made (once per dataset version), `indexed` the records sorted into an index
 * built on demand (OneRoster's listings by modification time), `compared` the cursor comparisons
 * made while seeking a page, `rendered` the records turned into wire objects.
 */
export const sandboxWork = {
  builds: 0,
  indexed: 0,
  compared: 0,
  rendered: 0,
  reset(): void {
    this.builds = this.indexed = this.compared = this.rendered = 0;
  },
};

/** What `prepareIndexes` builds: every per-version value of the sandboxes serving a dataset. */
const preparers = new WeakMap<DatasetView, Set<() => void>>();

/**
 * A value derived from the dataset, built on first use and kept until the dataset changes (its
 * `headSeq` moves with every change): listings sorted in a vendor's order, lookups by vendor id.
 * `prepare` builds what the value itself builds lazily (OneRoster's listings by modification
 * time), when `prepareIndexes` asks.
 */
export function perVersion<T>(dataset: DatasetView, build: () => T, prepare?: (value: T) => void): () => T {
  let cache: { seq: number; value: T } | undefined;
  const get = () => {
    if (cache?.seq !== dataset.headSeq) {
      sandboxWork.builds++;
      cache = { seq: dataset.headSeq, value: build() };
    }
    return cache.value;
  };
  let set = preparers.get(dataset);
  if (!set) preparers.set(dataset, (set = new Set()));
  set.add(() => prepare?.(get()));
  return get;
}

/**
 * Builds now the per-version indexes that the sandboxes serving `dataset` would otherwise build on
 * the next request after a change. A vendor keeps its indexes as it writes, so its first delta
 * query after a change costs what the next does; a sandbox re-indexes the whole district per
 * version, lazily (seconds at 50,000 students). A caller that changes the dataset and then times
 * what a connector costs (bench/sync.ts's incremental sync) prepares them in between, and says so.
 */
export function prepareIndexes(dataset: DatasetView): void {
  for (const prepare of preparers.get(dataset) ?? []) prepare();
}

/**
 * The position of the first id after `cursor` (`inclusive`: at or after) in ids sorted ascending
 * by `<`, found by binary search: a cursor page is O(log n), not a scan of the resource.
 */
export function seek(ids: readonly string[], cursor: string, inclusive = false): number {
  let lo = 0;
  let hi = ids.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    sandboxWork.compared++;
    if (ids[mid]! < cursor || (!inclusive && ids[mid] === cursor)) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/** Renders the items of one page and counts them (see `sandboxWork`). */
export function renderPage<T, R>(items: readonly T[], render: (item: T, index: number) => R, offset = 0): R[] {
  sandboxWork.rendered += items.length;
  return items.map((x, i) => render(x, offset + i));
}
