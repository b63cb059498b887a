/**
 * What the process knows about the request it is serving, wherever it is in the call tree: its id
 * (every log line of the request carries it, through the logger's mixin in src/log.ts) and the
 * labels its metrics are counted under. Kept in an AsyncLocalStorage so no layer has to thread it
 * through its signatures: the gateway enters it once per request, authentication names the client,
 * a GraphQL plugin notes the error codes, and the gateway counts the request when it ends.
 *
 * A request id comes from the caller's `x-request-id` when that is a plain token (so a load
 * balancer's or a client's id joins their logs to ours) and is made here otherwise. A hostile value
 * — long, or with characters that could forge log fields or headers — is replaced, never cleaned:
 * a cleaned value would still be partly the attacker's text.
 */
import { AsyncLocalStorage } from 'node:async_hooks';
import { randomBytes } from 'node:crypto';

export const REQUEST_ID_HEADER = 'x-request-id';

/** Letters, digits and `-_.:` up to 128 characters: UUIDs, ULIDs, trace ids and most proxies' own ids fit. */
const SAFE_ID = /^[A-Za-z0-9._:-]{1,128}$/;

export interface RequestRecord {
  readonly id: string;
  /** Which kind of request, for metrics: 'graphql', 'extract' or 'other' (probes, the console). */
  surface: string;
  /** Set once the caller is authenticated (configured ids, never personal data). */
  purpose?: string;
  client?: string;
  /** Set once the request resolved to a tenant of the deployment (never a tenant header as sent). */
  tenant?: string;
  /** Codes of the errors the answer carried (GraphQL extensions.code, or a refusal's). */
  errorCodes: string[];
}

const storage = new AsyncLocalStorage<RequestRecord>();

/**
 * The caller's id when it is safe to echo and log, else a new one: `rg-` and 120 random bits. Not a
 * UUID on purpose: vendors' person ids are UUIDs (Graph, OneRoster), and a log scan for leaked ids
 * (test/e2e/logs.test.ts) must not mistake our own request ids for them.
 */
export function requestIdFrom(header: string | string[] | undefined): string {
  const value = Array.isArray(header) ? header[0] : header;
  return value !== undefined && SAFE_ID.test(value) ? value : newRequestId();
}

export function newRequestId(): string {
  return `rg-${randomBytes(15).toString('base64url')}`;
}

/** Runs `fn` as the request `record`: everything it starts, synchronously or not, sees the record. */
export function runInRequest<T>(record: RequestRecord, fn: () => T): T {
  return storage.run(record, fn);
}

/** The request being served, if any (a sync run or a CLI command has none). */
export function currentRequest(): RequestRecord | undefined {
  return storage.getStore();
}

/** Names the caller of the current request, and the tenant it resolved to, for its metrics (no-op outside a request). */
export function noteRequestCaller(caller: { purpose?: string; client?: string; tenant?: string }): void {
  const r = storage.getStore();
  if (!r) return;
  if (caller.purpose !== undefined) r.purpose = caller.purpose;
  if (caller.client !== undefined) r.client = caller.client;
  if (caller.tenant !== undefined) r.tenant = caller.tenant;
}

/** Notes an error code the current request answered with (no-op outside a request). */
export function noteRequestError(code: string): void {
  storage.getStore()?.errorCodes.push(code);
}
