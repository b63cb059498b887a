/**
 * GET /extracts/<dataset>.<csv|ndjson>[?k=N] with the client's API key or JWT: the same extract as the
 * CLI, streamed; k may be raised above the purpose's, never lowered. The k-anonymity report follows the body as an HTTP trailer
 * (`x-rostergate-extract-report`, JSON), since it is final only when the last row is written.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { isRostergateError, refusalAnswer, RostergateError } from '../errors.ts';
import { errorForLog, type Logger } from '../log.ts';
import { noteRequestError } from '../kernel/request-context.ts';
import type { Privacy } from '../graphql/privacy.ts';
import type { Store } from '../store/types.ts';
import type { SourceType } from '../../connectors/types.ts';
import { datasetOf } from './columns.ts';
import { FORMATS, prepareExtract, runExtract, type ExtractFormat } from './extract.ts';

/** What an extract request reads: who asks, and the store, privacy and sources of the tenant it reads. */
export interface ExtractScope {
  who: { client: string };
  store: Store;
  /** The tenant's (Privacy.forTenant): its pseudonyms, and its audit log the extract is recorded in. */
  privacy: Privacy;
  sourceTypes: ReadonlyMap<string, SourceType>;
}

/**
 * `scope` authenticates the request (counting it against the client's rate limit, when the server
 * has one) and picks its tenant; it throws the refusals of src/errors.ts' `refusalAnswer`.
 */
export function extractRoute(scope: (req: IncomingMessage) => Promise<ExtractScope>, log: Logger, parallel: { threads: number; fromRows?: number } = { threads: 1 }) {
  return async (req: IncomingMessage, res: ServerResponse, url: URL): Promise<boolean> => {
    const m = /^\/extracts\/([a-z]+)\.([a-z]+)$/.exec(url.pathname);
    if (!m) return false;
    const fail = (status: number, message: string) => {
      res.writeHead(status, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ error: message }));
      return true;
    };
    if (req.method !== 'GET') return fail(405, 'use GET');
    let scoped: ExtractScope;
    try {
      scoped = await scope(req);
    } catch (e) {
      // The same answers as /graphql (401 with its challenge, 429 with Retry-After, 503), plus `error` as this route's other refusals have.
      const refused = refusalAnswer(e);
      if (!refused) throw e;
      if (isRostergateError(e, 'AUTH_UNAVAILABLE')) log.warn({ ...errorForLog(e), cause: errorForLog(e.cause) }, 'client credentials could not be verified');
      noteRequestError(String(refused.body.errors[0]?.extensions.code ?? `HTTP_${refused.status}`));
      res.writeHead(refused.status, { ...refused.headers, 'content-type': 'application/json' });
      res.end(JSON.stringify({ error: (e as Error).message, ...refused.body }));
      return true;
    }
    let dataset;
    try {
      dataset = datasetOf(m[1]!);
    } catch (e) {
      return fail(404, (e as Error).message);
    }
    const format = m[2] as ExtractFormat;
    if (!FORMATS.includes(format)) return fail(404, `unknown format "${format}" (formats: ${FORMATS.join(', ')})`);
    const { who, store, privacy, sourceTypes } = scoped;
    const kParam = url.searchParams.get('k');
    const request = { client: who.client, dataset, format, k: kParam === null ? undefined : Number(kParam) };
    try {
      prepareExtract(privacy, request);
    } catch (e) {
      if (isRostergateError(e, 'FORBIDDEN')) return fail(403, e.message);
      if (isRostergateError(e, 'CONFIG_INVALID')) return fail(400, e.message);
      throw e;
    }
    res.writeHead(200, {
      'content-type': format === 'csv' ? 'text/csv; charset=utf-8' : 'application/x-ndjson; charset=utf-8',
      'content-disposition': `attachment; filename="${dataset}.${format}"`,
      trailer: 'x-rostergate-extract-report',
    });
    try {
      const report = await runExtract({ ...request, store, privacy, sourceTypes, out: res, threads: parallel.threads, parallelFrom: parallel.fromRows });
      res.addTrailers({ 'x-rostergate-extract-report': JSON.stringify(report) });
      res.end();
    } catch (e) {
      if (req.destroyed || res.destroyed) log.warn({ client: who.client, dataset }, 'extract ended early: the client went away');
      // By kind and place only: a message may quote the value it failed on.
      else log.error({ ...errorForLog(e), client: who.client, dataset }, 'extract failed');
      // The answer began as a 200: its metrics count it as an error by this code all the same.
      noteRequestError(isRostergateError(e) ? e.code : 'EXTRACT_FAILED');
      // Headers are gone: end the stream without the trailer, so the client knows it is incomplete.
      res.destroy(e instanceof RostergateError ? e : new Error('extract failed'));
    }
    return true;
  };
}
