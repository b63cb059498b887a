/**
 * Traces, recorded with the SDK's in-memory exporter, on SQLite and PostgreSQL: one GraphQL request
 * is one trace, HTTP server span → graphql.execute → store reads (and → request.authenticate → the key's lookup); one sync is one trace, sync.run →
 * sync.page → upstream.request (the vendor's HTTP, a retried 429 included) and sync.run →
 * sync.apply → store.transaction. A caller's W3C traceparent is continued. No attribute holds a
 * person's name, email or id, and no URL.
 */
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { InMemorySpanExporter, SimpleSpanProcessor, type ReadableSpan } from '@opentelemetry/sdk-trace';
import { request } from 'undici';
import type { PrivateGateway } from '../support/privacy.ts';
import { storeKinds } from '../support/stores.ts';
import { observedDeployment, type Observed } from '../support/observed.ts';
import type { RosterDataset } from '../../src/demo/dataset.ts';
import type { RunningSandbox } from '../../connectors/sandbox-kit.ts';
import { cleverDefinition, sandboxSourceConfig } from '../../connectors/clever/index.ts';
import { testHttp } from '../support/connector-suite.ts';
import { syncSource } from '../../src/sync/runner.ts';
import { createLogger } from '../../src/log.ts';
import { installTracing, stopTracing } from '../../src/kernel/tracing.ts';

const log = createLogger({ level: 'silent' });
const exporter = new InMemorySpanExporter();

const parentOf = (s: ReadableSpan, all: ReadableSpan[]) => all.find((p) => p.spanContext().spanId === s.parentSpanContext?.spanId);
const ancestors = (s: ReadableSpan, all: ReadableSpan[]): string[] => {
  const names: string[] = [];
  for (let p = parentOf(s, all); p; p = parentOf(p, all)) names.push(p.name);
  return names;
};
const named = (name: string) => exporter.getFinishedSpans().filter((s) => s.name === name);

/** Every attribute value of every finished span, as text. */
const attributeValues = () => exporter.getFinishedSpans().flatMap((s) => Object.values(s.attributes).map(String));

beforeAll(async () => {
  await installTracing(new SimpleSpanProcessor({ exporter }));
});
afterAll(() => stopTracing());

describe.each(storeKinds())('traces on %s', (kind) => {
  let deployment: Observed;
  let pgw: PrivateGateway;
  let sandbox: RunningSandbox;
  let ds: RosterDataset;

  beforeAll(async () => {
    deployment = await observedDeployment(kind);
    ({ pgw, sandbox, ds } = deployment);
  }, 120_000);
  afterAll(() => deployment?.close());
  beforeEach(() => exporter.reset());

  it('a request: HTTP server span → graphql.execute → store reads, all in one trace', async () => {
    const r = await pgw.gql('lms-demo', '{ schools { edges { node { name classes(first: 3) { edges { node { title } } } } } } }');
    expect(r.status).toBe(200);
    // The server span ends just after the answer is sent.
    for (let i = 0; i < 50 && named('HTTP POST').length === 0; i++) await new Promise((res) => setTimeout(res, 10));
    const all = exporter.getFinishedSpans();
    const [server] = named('HTTP POST');
    expect(server).toBeDefined();
    expect(server!.parentSpanContext).toBeUndefined();
    expect(server!.attributes['http.route']).toBe('/graphql');
    expect(server!.attributes['http.response.status_code']).toBe(200);
    const [execute] = named('graphql.execute');
    expect(parentOf(execute!, all)?.name).toBe('HTTP POST');
    expect(execute!.attributes['rostergate.purpose']).toBe('roster-sync');
    expect(execute!.attributes['graphql.operation.type']).toBe('query');
    const [authenticate] = named('request.authenticate');
    expect(parentOf(authenticate!, all)?.name).toBe('HTTP POST');
    const reads = named('store.read');
    // The resolvers' reads are the execution's; the API key's lookup is authentication's.
    expect(reads.filter((read) => ancestors(read, all).includes('graphql.execute')).length).toBeGreaterThan(0);
    expect(reads.filter((read) => ancestors(read, all).includes('request.authenticate')).length).toBeGreaterThan(0);
    for (const read of reads) {
      expect([['graphql.execute', 'HTTP POST'], ['request.authenticate', 'HTTP POST']]).toContainEqual(ancestors(read, all).slice(-2));
      expect(read.spanContext().traceId).toBe(server!.spanContext().traceId);
      expect(read.attributes['db.system']).toBe(kind === 'postgres' ? 'postgresql' : 'sqlite');
    }
  });

  it('continues a caller\'s trace from its traceparent header', async () => {
    const traceId = '4bf92f3577b34da6a3ce929d0e0e4736';
    const r = await request(`${pgw.gw.url}/graphql`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-api-key': pgw.keys['lms-demo']!, traceparent: `00-${traceId}-00f067aa0ba902b7-01` },
      body: JSON.stringify({ query: '{ schools { edges { node { name } } } }' }),
    });
    await r.body.json();
    for (let i = 0; i < 50 && named('HTTP POST').length === 0; i++) await new Promise((res) => setTimeout(res, 10));
    expect(named('HTTP POST')[0]!.spanContext().traceId).toBe(traceId);
    expect(named('HTTP POST')[0]!.parentSpanContext?.spanId).toBe('00f067aa0ba902b7');
  });

  it('a sync: sync.run → sync.page → upstream.request, and sync.run → sync.apply → store.transaction', async () => {
    sandbox.faults.inject({ kind: 'status', status: 429, retryAfter: '0' }, { match: /\/users/, times: 1 });
    const source = `clever-traces-${kind}`;
    const connector = cleverDefinition.create(cleverDefinition.configSchema.parse({ id: source, ...sandboxSourceConfig(sandbox.urlOf('/clever')), pageSize: 25 }), { http: testHttp(source), log });
    const summary = await syncSource(pgw.store, connector);
    expect(summary.status).toBe('complete');

    const all = exporter.getFinishedSpans();
    const runs = named('sync.run');
    expect(runs).toHaveLength(1);
    const run = runs[0]!;
    expect(run.parentSpanContext).toBeUndefined();
    expect(run.attributes).toMatchObject({ 'rostergate.source': source, 'rostergate.sync.status': 'complete', 'rostergate.sync.records': summary.records });

    const pages = named('sync.page');
    expect(pages.length).toBeGreaterThanOrEqual(summary.pages);
    for (const p of pages) expect(parentOf(p, all)?.name).toBe('sync.run');

    const upstream = named('upstream.request');
    expect(upstream.length).toBe(sandbox.faults.hits.filter((h) => h.startsWith('/clever')).length);
    for (const u of upstream) {
      expect(ancestors(u, all)).toEqual(['sync.page', 'sync.run']);
      expect(u.attributes['rostergate.source']).toBe(source);
    }
    const limited = upstream.filter((u) => u.attributes['http.response.status_code'] === 429);
    expect(limited).toHaveLength(1);
    expect(limited[0]!.status.code).toBe(2); // SpanStatusCode.ERROR
    // The retry of the rate-limited page is in the same page's span.
    const retried = upstream.find((u) => u.attributes['http.request.resend_count'] === 1)!;
    expect(retried.parentSpanContext?.spanId).toBe(limited[0]!.parentSpanContext?.spanId);

    const applies = named('sync.apply');
    expect(applies.length).toBeGreaterThan(0);
    for (const a of applies) expect(parentOf(a, all)?.name).toBe('sync.run');
    const transactions = named('store.transaction').filter((t) => ancestors(t, all).includes('sync.run'));
    expect(transactions.some((t) => parentOf(t, all)?.name === 'sync.apply')).toBe(true);
    for (const s of [...pages, ...upstream, ...applies, ...transactions]) expect(s.spanContext().traceId).toBe(run.spanContext().traceId);
  });

  it('no attribute holds a name, an email, a key or a URL', async () => {
    await pgw.gql('lms-demo', '{ people(first: 20) { edges { node { id givenName email } } } }');
    const connector = cleverDefinition.create(cleverDefinition.configSchema.parse({ id: `clever-traces-${kind}`, ...sandboxSourceConfig(sandbox.urlOf('/clever')), pageSize: 25 }), { http: testHttp(`clever-traces-${kind}`), log });
    await syncSource(pgw.store, connector, { full: true });
    const values = attributeValues();
    expect(values.length).toBeGreaterThan(0);
    for (const p of [...pgw.dataset.list('person'), ...ds.list('person')]) {
      const d = p.data as { givenName?: string; familyName?: string; email?: string };
      for (const v of [d.email, d.givenName, d.familyName, p.key]) if (v) expect(values.filter((x) => x === v || (v.length > 6 && x.includes(v))), v).toEqual([]);
    }
    expect(values.filter((v) => /^https?:\/\//.test(v) || v.includes('rgk_'))).toEqual([]);
  });
});
