/**
 * `/metrics` in Prometheus's text format (src/kernel/metrics.ts holds the registry). Never public
 * by default: it is served either on its own listener (`server.metrics.port`, bound to
 * `server.metrics.host`, for a scraper on a private network or a pod's sidecar) or on the API port
 * behind a bearer token (`server.metrics.token`), or both; with neither configured there is no
 * /metrics at all. Metrics carry no personal data, but they do tell who uses the gateway how much
 * (client ids, sources, error rates), which is not for every caller of the API.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { collectProcessMetrics, registry } from '../kernel/metrics.ts';
import { errorForLog, type Logger } from '../log.ts';

export interface MetricsAccess {
  /** A separate listener for /metrics (0: any free port, for tests). */
  port?: number;
  host?: string;
  /** Bearer token that opens /metrics on the API port (and on the separate listener, if set). */
  token?: string;
}

const digest = (s: string) => createHash('sha256').update(s, 'utf8').digest();

/** Whether a request carries the token, compared in constant time (over digests, so lengths do not leak either). */
export function bearerMatches(req: Pick<IncomingMessage, 'headers'>, token: string): boolean {
  const m = /^Bearer ([^\s]+)$/.exec(req.headers.authorization ?? '');
  return m !== null && timingSafeEqual(digest(m[1]!), digest(token));
}

/** Writes the registry's current figures. */
export async function sendMetrics(res: ServerResponse, log: Logger): Promise<void> {
  try {
    const body = await registry.metrics();
    res.writeHead(200, { 'content-type': registry.contentType, 'cache-control': 'no-store' });
    res.end(body);
  } catch (e) {
    log.error(errorForLog(e), 'metrics could not be collected');
    res.writeHead(500, { 'content-type': 'text/plain; charset=utf-8' });
    res.end('metrics could not be collected\n');
  }
}

/**
 * Answers /metrics on the API port when a token is configured: 401 without it, and 404 (as for
 * any unknown path) when /metrics is not offered on this port at all.
 */
export function metricsRoute(access: MetricsAccess | undefined, log: Logger) {
  const token = access?.token;
  if (token) collectProcessMetrics();
  return async (req: IncomingMessage, res: ServerResponse, url: URL): Promise<boolean> => {
    if (url.pathname !== '/metrics' || !token) return false;
    if (!bearerMatches(req, token)) {
      res.writeHead(401, { 'content-type': 'application/json; charset=utf-8', 'www-authenticate': 'Bearer realm="metrics"' });
      res.end(JSON.stringify({ error: 'metrics need the bearer token configured in server.metrics.token' }));
      return true;
    }
    await sendMetrics(res, log);
    return true;
  };
}

export interface RunningMetricsServer {
  url: string;
  port: number;
  close(): Promise<void>;
}

/** The separate metrics listener: /metrics only (token-checked when one is configured), 404 elsewhere. */
export async function startMetricsServer(access: MetricsAccess & { port: number }, log: Logger): Promise<RunningMetricsServer> {
  collectProcessMetrics();
  const server: Server = createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    if (path !== '/metrics' || (req.method !== 'GET' && req.method !== 'HEAD')) {
      res.writeHead(404, { 'content-type': 'text/plain; charset=utf-8' });
      return void res.end('not found: this port serves /metrics only\n');
    }
    if (access.token && !bearerMatches(req, access.token)) {
      res.writeHead(401, { 'content-type': 'text/plain; charset=utf-8', 'www-authenticate': 'Bearer realm="metrics"' });
      return void res.end('bearer token required\n');
    }
    void sendMetrics(res, log);
  });
  const host = access.host ?? '127.0.0.1';
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(access.port, host, () => resolve());
  });
  const port = (server.address() as AddressInfo).port;
  log.info({ host, port }, 'metrics served on their own port');
  return {
    url: `http://${host.includes(':') ? `[${host}]` : host}:${port}`,
    port,
    close: () => new Promise<void>((r) => { server.closeAllConnections(); server.close(() => r()); }),
  };
}
