/**
 * The gateway's HTTP server: Apollo Server 5 wired onto node:http (no framework), the offline
 * console (GraphiQL at `/`, its files under /console/), health and readiness probes, request logs
 * without personal data, and graceful shutdown. Extra routes (extracts, webhooks admin) register through `routes`.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createNetServer, type AddressInfo, type Server as NetServer } from 'node:net';
import { ApolloServer, HeaderMap, type ApolloServerPlugin, type BaseContext, type HTTPGraphQLResponse } from '@apollo/server';
import { ApolloServerPluginCacheControlDisabled, ApolloServerPluginLandingPageDisabled } from '@apollo/server/plugin/disabled';
import { unwrapResolverError } from '@apollo/server/errors';
import { GraphQLError, type GraphQLFormattedError, type GraphQLSchema } from 'graphql';
import { RostergateError, isRostergateError, refusalAnswer } from '../errors.ts';
import { errorForLog, type Logger } from '../log.ts';
import { fieldResolver } from '../graphql/schema.ts';
import { CONSOLE_SOURCES, DEFAULT_EXAMPLES, landingPage, type ConsoleExample, type DemoKey } from './landing.ts';
import { serveConsoleAsset } from './console/assets.ts';
import { costLimitPlugin, resolveLimits, shapeLimits, type QueryLimits } from './limits.ts';
import { pageHeaders, API_HEADERS } from './headers.ts';
import { trace } from '@opentelemetry/api';
import { currentRequest, noteRequestCaller, noteRequestError, requestIdFrom, runInRequest, REQUEST_ID_HEADER, type RequestRecord } from '../kernel/request-context.ts';
import { label, requestDuration, requestErrors, requests, secondsSince } from '../kernel/metrics.ts';
import { failSpan, SpanKind, withIncomingContext, withSpan } from '../kernel/tracing.ts';
import { metricsRoute, type MetricsAccess } from './metrics-endpoint.ts';

export type RouteHandler = (req: IncomingMessage, res: ServerResponse, url: URL) => Promise<boolean> | boolean;

export interface ServedSchema<C extends BaseContext> {
  schema: GraphQLSchema;
  plugins?: ApolloServerPlugin<C>[];
  /** Rewords validation errors (e.g. to name the purpose that denies a field). */
  explain?: (message: string) => string;
  /** Query limits (defaults in ./limits.ts for the keys left out). */
  limits?: Partial<QueryLimits>;
  /** Named in limit errors: the purpose this schema serves. */
  purpose?: string;
}

export interface GatewayOptions<C extends BaseContext> {
  /** One schema per purpose (or one 'default'); each gets its own Apollo Server. */
  schemas: Record<string, ServedSchema<C>>;
  /**
   * Builds the per-request context; throw an AuthenticationError (or RostergateError UNAUTHENTICATED)
   * for 401, AUTH_UNAVAILABLE for 503, a RateLimitedError for 429 (src/errors.ts). `signal` aborts
   * when the client hangs up before its answer is sent: resolvers stop reading the store then.
   */
  context(req: IncomingMessage, signal: AbortSignal): Promise<C>;
  /** Picks the schema for a request from its context (default: 'default'). */
  schemaFor?: (ctx: C) => string;
  /**
   * What a request's answer must wait for once it has run (its audit entry's commit): no byte of it
   * is sent before this settles, and if it rejects the client gets a 500 `internal error` without
   * the data. Held here rather than inside Apollo's hooks so that the wait keeps only the answer's
   * text alive, not the execution that made it.
   */
  holdAnswer?: (ctx: C) => Promise<unknown> | undefined;
  port?: number;
  host?: string;
  log: Logger;
  /**
   * Readiness beyond "listening and not shutting down": resolves false (or throws) when the
   * gateway cannot answer queries, e.g. its store is unreachable. Load balancers stop routing to
   * a replica whose /readyz is 503; /healthz stays 200 so it is not restarted for a database blip.
   * `detail` goes into the body beside `status` (never personal data, never tenant ids: /readyz is
   * unauthenticated).
   */
  ready?: () => Readiness | Promise<Readiness>;
  /** On close, how long to keep serving with /readyz at 503 "draining" before the listener closes. */
  drainMs?: number;
  routes?: RouteHandler[];
  /** Keys the console offers in its client picker (the demo's; they are written into the page). */
  demoKeys?: DemoKey[];
  /** The console's example queries, each for a purpose (default: one school roster query). */
  examples?: ConsoleExample[];
  /** /metrics on this port, behind this bearer token; without one there is no /metrics here (./metrics-endpoint.ts). */
  metrics?: MetricsAccess;
}

export interface RunningGateway {
  url: string;
  port: number;
  close(): Promise<void>;
}

const MAX_BODY = 1_000_000;

export async function startGateway<C extends BaseContext>(opts: GatewayOptions<C>): Promise<RunningGateway> {
  const log = opts.log;
  const apollos = new Map<string, ApolloServer<C>>();
  for (const [name, served] of Object.entries(opts.schemas)) {
    const limits = resolveLimits(served.limits);
    const apollo = new ApolloServer<C>({
      schema: served.schema,
      fieldResolver,
      introspection: true,
      includeStacktraceInErrorResponses: false,
      // Shutdown is ours (src/commands/serve.ts): Apollo's own SIGTERM handler would stop it and
      // re-raise the signal, killing the process before in-flight requests finish and the store
      // closes. Apollo installs it only when NODE_ENV is not "test", so tests never saw it.
      stopOnTerminationSignals: false,
      // Cache control off: it hooks every field's resolution to compute a policy that, with no
      // cache hints in the schema, is always "no-store" — which `handle` sets on every answer instead.
      plugins: [
        ApolloServerPluginLandingPageDisabled(), ApolloServerPluginCacheControlDisabled(),
        costLimitPlugin<C>(limits, served.purpose), failureLog<C>(log), observed<C>(), ...(served.plugins ?? []),
      ],
      // The token limit is the parser's own: it stops reading a document past it.
      parseOptions: { maxTokens: limits.maxTokens },
      validationRules: [shapeLimits(limits, served.purpose)],
      formatError: (formatted, error) => {
        const masked = maskError(formatted, error, log);
        return served.explain && masked.extensions?.code === 'GRAPHQL_VALIDATION_FAILED' ? { ...masked, message: served.explain(masked.message) } : masked;
      },
    });
    await apollo.start();
    apollos.set(name, apollo);
  }
  const page = landingPage({ examples: opts.examples?.length ? opts.examples : DEFAULT_EXAMPLES, demoKeys: opts.demoKeys });
  const pageHead = pageHeaders(page, CONSOLE_SOURCES);
  let inFlight = 0;
  let draining = false;
  const metrics = metricsRoute(opts.metrics, log);

  const server: Server = createServer((req, res) => {
    const started = process.hrtime.bigint();
    const path = (req.url ?? '').split('?')[0]!;
    // Every log line of this request carries its id (src/log.ts), and so does the answer.
    const record: RequestRecord = { id: requestIdFrom(req.headers[REQUEST_ID_HEADER]), surface: surfaceOf(path), errorCodes: [] };
    res.setHeader(REQUEST_ID_HEADER, record.id);
    // JSON answers are never to be sniffed as HTML, framed or sent on as a referrer; the console page adds its CSP.
    for (const [k, v] of Object.entries(API_HEADERS)) res.setHeader(k, v);
    inFlight++;
    res.on('finish', () => runInRequest(record, () => {
      inFlight--;
      const seconds = secondsSince(started);
      // Path and status only: query strings can carry ids, bodies carry everything.
      log.info({ method: req.method, path, status: res.statusCode, ms: Math.round(seconds * 1000) }, 'request');
      countRequest(record, res.statusCode, seconds);
    }));
    runInRequest(record, () => withIncomingContext(req.headers, () =>
      withSpan(`HTTP ${req.method}`, { 'http.request.method': req.method ?? '', 'http.route': ROUTES[record.surface] ?? 'other', 'rostergate.request_id': record.id }, async (span) => {
        try {
          await handle(req, res);
        } catch (e) {
          log.error(errorForLog(e), 'request failed');
          if (!res.headersSent) sendJson(res, 500, { error: 'internal error' });
          else res.end();
        }
        span?.setAttribute('http.response.status_code', res.statusCode);
        if (res.statusCode >= 500) failSpan(span, { code: `HTTP_${res.statusCode}` });
      }, SpanKind.SERVER),
    )).catch(() => undefined);
  });

  // Idle keep-alive connections outlive a load balancer's (60 s at the common ones) and any client
  // pool's, so the gateway is never the side that closes a connection just as it is reused (a
  // reset, or a 502 at the balancer). Shutdown closes idle connections itself.
  server.keepAliveTimeout = 65_000;
  server.headersTimeout = 66_000;

  async function handle(req: IncomingMessage, res: ServerResponse) {
    const url = new URL(req.url ?? '/', 'http://localhost');
    if (url.pathname === '/healthz') return sendJson(res, 200, { status: 'ok' });
    if (url.pathname === '/readyz') {
      if (draining) return sendJson(res, 503, { status: 'draining' });
      const { ready, detail } = await readiness(opts.ready, log);
      return sendJson(res, ready ? 200 : 503, { status: ready ? 'ready' : 'not ready', ...detail });
    }
    if (url.pathname === '/' && req.method === 'GET') {
      res.writeHead(200, { ...pageHead, 'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-store' });
      return void res.end(page);
    }
    if (serveConsoleAsset(req.method ?? 'GET', url.pathname, req.headers['accept-encoding'], res)) return;
    if (await metrics(req, res, url)) return;
    for (const route of opts.routes ?? []) if (await route(req, res, url)) return;
    if (url.pathname !== '/graphql') return sendJson(res, 404, { error: 'not found', see: ['/', '/graphql', '/healthz', '/readyz'] });
    if (req.method !== 'POST' && req.method !== 'GET') return sendJson(res, 405, { error: 'use POST or GET' });

    // A client that hangs up stops the work: without this a costly query ran on after nobody waited.
    const abort = new AbortController();
    res.on('close', () => {
      if (!res.writableFinished) abort.abort(new Error('client closed the request'));
    });
    let ctx: C;
    try {
      // Authentication's own reads (an API key looked up) are this span's, apart from the operation's.
      ctx = await withSpan('request.authenticate', {}, () => opts.context(req, abort.signal));
    } catch (e) {
      // Refused before anything runs: bad credentials (401), unverifiable ones (503), over the rate limit (429).
      const refused = refusalAnswer(e);
      if (!refused) throw e;
      // The cause's kind and code (a timeout, a refused connection, a malformed key set), never a message or the token.
      if (isRostergateError(e, 'AUTH_UNAVAILABLE')) log.warn({ ...errorForLog(e), cause: errorForLog(e.cause) }, 'client credentials could not be verified');
      noteRequestError(String(refused.body.errors[0]?.extensions.code ?? `HTTP_${refused.status}`));
      for (const [k, v] of Object.entries(refused.headers)) res.setHeader(k, v);
      return sendJson(res, refused.status, refused.body);
    }
    const schemaName = opts.schemaFor?.(ctx) ?? 'default';
    const apollo = apollos.get(schemaName);
    if (!apollo) throw new Error('no schema for this client');
    if (currentRequest()?.purpose === undefined) noteRequestCaller({ purpose: schemaName });
    let body: unknown;
    if (req.method === 'POST') {
      const text = await readBody(req, MAX_BODY);
      if (text === undefined) return sendJson(res, 413, { errors: [{ message: `request body over ${MAX_BODY} bytes` }] });
      try {
        body = text ? JSON.parse(text) : {};
      } catch {
        return sendJson(res, 400, { errors: [{ message: 'request body is not valid JSON', extensions: { code: 'BAD_REQUEST' } }] });
      }
    }
    const headers = new HeaderMap();
    for (const [k, v] of Object.entries(req.headers)) if (v !== undefined) headers.set(k, Array.isArray(v) ? v.join(', ') : v);
    // Parsing, validation and execution in one span: store reads made by resolvers are its children.
    const result = await withSpan('graphql.execute', { 'rostergate.purpose': schemaName }, () => apollo.executeHTTPGraphQLRequest({
      httpGraphQLRequest: { method: req.method!, headers, search: url.search, body },
      context: resolvesTo(ctx),
    }));
    const held = opts.holdAnswer?.(ctx);
    // Returned, not awaited in this frame: while the answer waits, the request's context (its
    // loaders and the rows they read) is no longer reachable, only the answer itself.
    return held ? answerWhenSettled(held, res, result, log) : answer(res, result);
  }

  await listen(server, opts.port ?? 4000, opts.host ?? '127.0.0.1');
  const port = (server.address() as AddressInfo).port;
  const host = opts.host ?? '127.0.0.1';
  return {
    url: `http://${host.includes(':') ? `[${host}]` : host}:${port}`,
    port,
    async close() {
      // Stop accepting, let in-flight requests finish (bounded), then stop Apollo. /readyz says
      // "draining" meanwhile, so a load balancer polling a kept-alive connection stops routing here.
      draining = true;
      if (opts.drainMs) await new Promise((r) => setTimeout(r, opts.drainMs));
      const closed = new Promise<void>((r) => server.close(() => r()));
      server.closeIdleConnections();
      const deadline = Date.now() + 10_000;
      while (inFlight > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
      server.closeAllConnections();
      await closed;
      for (const a of apollos.values()) await a.stop();
    },
  };
}

/**
 * `async () => value`, made out here: an arrow in `handle` would share its scope with the
 * connection's close listener, which lives as long as the response, and so keep the request's
 * context (its loaders and their rows) alive while the answer waits for its audit entry.
 */
function resolvesTo<T>(value: T): () => Promise<T> {
  return async () => value;
}

/** Sends what Apollo answered. */
async function answer(res: ServerResponse, result: HTTPGraphQLResponse): Promise<void> {
  // Answers carry personal data: never stored by a browser or a proxy.
  res.setHeader('cache-control', 'no-store');
  for (const [k, v] of result.headers) res.setHeader(k, v);
  res.statusCode = result.status ?? 200;
  if (result.body.kind === 'complete') return void res.end(result.body.string);
  for await (const chunk of result.body.asyncIterator) res.write(chunk);
  res.end();
}

/**
 * Sends the answer once `held` (its audit entry's commit) has settled; if that failed, a 500 without
 * the data instead, logged with the cause's kind and code, never its message.
 */
async function answerWhenSettled(held: Promise<unknown>, res: ServerResponse, result: HTTPGraphQLResponse, log: Logger): Promise<void> {
  try {
    await held;
  } catch (e) {
    log.error({ ...errorForLog(e), cause: errorForLog((e as { cause?: unknown }).cause) }, 'request failed after it ran: its answer was withheld');
    noteRequestError('INTERNAL_SERVER_ERROR');
    res.setHeader('cache-control', 'no-store');
    return sendJson(res, 500, { errors: [{ message: 'internal error', extensions: { code: 'INTERNAL_SERVER_ERROR' } }] });
  }
  return answer(res, result);
}

/**
 * A request that fails after it ran, inside Apollo, is answered 500 by Apollo, which logs only the
 * message; this logs the error and its cause by kind and code.
 */
function failureLog<C extends BaseContext>(log: Logger): ApolloServerPlugin<C> {
  return {
    async unexpectedErrorProcessingRequest({ error }) {
      log.error({ ...errorForLog(error), cause: errorForLog((error as { cause?: unknown }).cause) }, 'request failed after it ran: its answer was withheld');
    },
  };
}

/**
 * Notes what metrics and traces need from Apollo's side of a request: the operation's type on the
 * execution span (not its name, which the client chooses) and the code of each error in the answer.
 */
function observed<C extends BaseContext>(): ApolloServerPlugin<C> {
  return {
    async requestDidStart() {
      return {
        async didResolveOperation({ operation }) {
          trace.getActiveSpan()?.setAttribute('graphql.operation.type', operation?.operation ?? 'unknown');
        },
        async willSendResponse({ response }) {
          if (response.body.kind !== 'single') return;
          for (const e of response.body.singleResult.errors ?? []) noteRequestError(String(e.extensions?.code ?? 'UNKNOWN'));
        },
      };
    },
  };
}

const ROUTES: Record<string, string> = { graphql: '/graphql', extract: '/extracts/{dataset}' };

/** Which kind of request a path is, for metrics: a closed set, never the path itself. */
function surfaceOf(path: string): string {
  if (path === '/graphql') return 'graphql';
  if (path === '/extracts' || path.startsWith('/extracts/')) return 'extract';
  return 'other';
}

/**
 * Counts an answered GraphQL or extract request (probes, the console's files and /metrics itself
 * are not counted: they would drown the figures that matter). `refused`: authentication or the
 * rate limit said no; `rejected`: the request itself was wrong (4xx); `error`: the answer carried
 * errors or failed (5xx).
 */
function countRequest(record: RequestRecord, status: number, seconds: number): void {
  if (record.surface === 'other') return;
  const outcome = status === 401 || status === 429 || (status === 503 && record.errorCodes.includes('AUTH_UNAVAILABLE'))
    ? 'refused'
    : status >= 500 ? 'error' : status >= 400 ? 'rejected' : record.errorCodes.length ? 'error' : 'ok';
  // The tenant as resolved (a deployment's own id), or "none" for a request refused before that.
  const tenant = record.tenant ?? 'none';
  requests.inc({ surface: record.surface, purpose: label(record.purpose), client: label(record.client), tenant, outcome });
  requestDuration.observe({ surface: record.surface, outcome }, seconds);
  const codes = record.errorCodes.length ? record.errorCodes : status >= 400 ? [`HTTP_${status}`] : [];
  for (const code of codes) requestErrors.inc({ surface: record.surface, tenant, code: label(code) });
}

const READY_TIMEOUT_MS = 2_000;

/** What a readiness check says: ready or not, and what to add to /readyz's body. */
export type Readiness = boolean | { ready: boolean; detail?: Record<string, unknown> };

/** Runs the readiness check with a time limit: a hung database must not hang the probe. */
async function readiness(check: GatewayOptions<BaseContext>['ready'], log: Logger): Promise<{ ready: boolean; detail?: Record<string, unknown> }> {
  if (!check) return { ready: true };
  let timer: NodeJS.Timeout | undefined;
  try {
    const timeout = new Promise<boolean>((r) => { timer = setTimeout(() => r(false), READY_TIMEOUT_MS); });
    const r = await Promise.race([Promise.resolve(check()), timeout]);
    return typeof r === 'boolean' ? { ready: r } : r;
  } catch (e) {
    log.warn(errorForLog(e), 'readiness check failed');
    return { ready: false };
  } finally {
    clearTimeout(timer);
  }
}

/** Listens, turning the usual failures (port taken, privileged port) into one clear line. */
function listen(server: Server | NetServer, port: number, host: string): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    server.once('error', (e: NodeJS.ErrnoException) => {
      if (e.code === 'EADDRINUSE') reject(new RostergateError('CONFIG_INVALID', `port ${port} is already in use: stop the other process or pass --port`));
      else if (e.code === 'EACCES') reject(new RostergateError('CONFIG_INVALID', `no permission to listen on port ${port}: use a port above 1024`));
      else if (e.code === 'EADDRNOTAVAIL') reject(new RostergateError('CONFIG_INVALID', `cannot listen on ${host}: not an address of this machine`));
      else reject(e);
    });
    server.listen(port, host, () => resolve());
  });
}

/**
 * Fails now, with the same line the gateway would give later, if the port cannot be listened on:
 * commands that do long work before serving (the demo's sync) check first instead of after.
 */
export async function assertCanListen(port: number, host = '127.0.0.1'): Promise<void> {
  if (port === 0) return;
  const probe = createNetServer();
  await listen(probe, port, host);
  await new Promise<void>((r) => probe.close(() => r()));
}

/** Errors are masked by default: validation and user-input errors pass, internals become a generic message. */
function maskError(formatted: GraphQLFormattedError, error: unknown, log: Logger): GraphQLFormattedError {
  const code = formatted.extensions?.code;
  const original = unwrapResolverError(error);
  if (isRostergateError(original)) {
    return { ...formatted, message: original.message, extensions: { code: original.code } };
  }
  // A custom scalar's literal that does not parse is refused in validation; it is the client's input all the same.
  if (code === 'GRAPHQL_VALIDATION_FAILED' && error instanceof GraphQLError && error.originalError instanceof GraphQLError && error.originalError.extensions?.code === 'BAD_USER_INPUT') {
    return { ...formatted, extensions: { ...formatted.extensions, code: 'BAD_USER_INPUT' } };
  }
  if (/^Schema is not configured to execute (mutation|subscription) operation/.test(formatted.message)) {
    return { message: `${formatted.message.replace(/\.$/, '')}: this client's purpose has no such operations`, extensions: { code: 'OPERATION_NOT_ALLOWED' } };
  }
  if (code === 'INTERNAL_SERVER_ERROR' || code === undefined) {
    log.error({ ...errorForLog(original), path: formatted.path }, 'resolver error');
    return { message: 'internal error', path: formatted.path, extensions: { code: 'INTERNAL_SERVER_ERROR' } };
  }
  return formatted;
}

function sendJson(res: ServerResponse, status: number, body: unknown) {
  res.writeHead(status, { 'content-type': 'application/json; charset=utf-8' });
  res.end(JSON.stringify(body));
}

function readBody(req: IncomingMessage, limit: number): Promise<string | undefined> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    let over = false;
    req.on('data', (c: Buffer) => {
      size += c.length;
      if (size > limit) over = true;
      else chunks.push(c);
    });
    req.on('end', () => resolve(over ? undefined : Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}
