/**
 * Metrics are visible where an operator scrapes them: after requests (answered, refused, invalid)
 * and a sync whose vendor answers some requests 429, the figures on /metrics have moved by exactly
 * what was done — on SQLite and PostgreSQL. /metrics is never open: its own port or the API port
 * wants the bearer token, and without `server.metrics` the API port has none. No label carries a
 * person's name or email.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { request } from 'undici';
import { makeExecutableSchema } from '@graphql-tools/schema';
import type { PrivateGateway } from '../support/privacy.ts';
import { storeKinds } from '../support/stores.ts';
import { metricValue } from '../support/metrics.ts';
import { observedDeployment, type Observed } from '../support/observed.ts';
import type { RosterDataset } from '../../src/demo/dataset.ts';
import type { RunningSandbox } from '../../connectors/sandbox-kit.ts';
import { cleverDefinition, sandboxSourceConfig } from '../../connectors/clever/index.ts';
import { testHttp } from '../support/connector-suite.ts';
import { syncSource } from '../../src/sync/runner.ts';
import { createLogger } from '../../src/log.ts';
import { startGateway } from '../../src/server/gateway.ts';
import { parseConfig } from '../../src/config/config.ts';

const TOKEN = 'metrics-test-token';
const log = createLogger({ level: 'silent' });

async function scrape(url: string, token?: string): Promise<{ status: number; text: string }> {
  const r = await request(`${url}/metrics`, { headers: token ? { authorization: `Bearer ${token}` } : {} });
  return { status: r.statusCode, text: await r.body.text() };
}

describe('/metrics access', () => {
  it('is refused in config without a port or a token (it is never public)', () => {
    expect(() => parseConfig({ server: { metrics: {} } })).toThrow(/a port of its own, or a token/);
    expect(parseConfig({ server: { metrics: { token: 't' } } }).server.metrics).toEqual({ host: '127.0.0.1', token: 't' });
  });

  it('is absent from the API port without server.metrics', async () => {
    const schema = makeExecutableSchema({ typeDefs: 'type Query { ok: Boolean }' });
    const gw = await startGateway({ schemas: { default: { schema } }, context: async () => ({}), log, port: 0 });
    try {
      expect((await scrape(gw.url)).status).toBe(404);
      expect((await scrape(gw.url, 'anything')).status).toBe(404);
    } finally {
      await gw.close();
    }
  });
});

describe.each(storeKinds())('metrics on %s', (kind) => {
  let deployment: Observed;
  let pgw: PrivateGateway;
  let metricsUrl: string;
  let sandbox: RunningSandbox;
  let ds: RosterDataset;

  beforeAll(async () => {
    deployment = await observedDeployment(kind, { server: { metrics: { port: 0, token: TOKEN } } });
    ({ pgw, sandbox, ds } = deployment);
    metricsUrl = (pgw.gw as typeof pgw.gw & { metricsUrl: string }).metricsUrl;
  }, 120_000);
  afterAll(() => deployment?.close());

  it('wants the token on its own port and on the API port', async () => {
    expect(metricsUrl).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    expect((await scrape(metricsUrl)).status).toBe(401);
    expect((await scrape(metricsUrl, 'wrong')).status).toBe(401);
    expect((await scrape(pgw.gw.url)).status).toBe(401);
    expect((await scrape(pgw.gw.url, `${TOKEN}x`)).status).toBe(401);
    const own = await scrape(metricsUrl, TOKEN);
    expect(own.status).toBe(200);
    expect(own.text).toContain('# TYPE rostergate_requests_total counter');
    expect((await scrape(pgw.gw.url, TOKEN)).status).toBe(200);
    // The separate port serves nothing else.
    expect((await request(`${metricsUrl}/graphql`)).statusCode).toBe(404);
  });

  it('count requests by purpose, client and outcome, their latency, and errors by code', async () => {
    const before = (await scrape(metricsUrl, TOKEN)).text;
    // The one tenant of this deployment is the config's own ("test"); a request refused before its tenant resolved has none.
    const ok = { surface: 'graphql', purpose: 'roster-sync', client: 'lms-demo', tenant: 'test', outcome: 'ok' };
    const rejected = { ...ok, outcome: 'rejected' };
    const refused = { surface: 'graphql', purpose: 'none', client: 'none', tenant: 'none', outcome: 'refused' };

    expect((await pgw.gql('lms-demo', '{ schools { edges { node { name } } } }')).status).toBe(200);
    expect((await pgw.gql('lms-demo', '{ schools { edges { node { name } } } }')).status).toBe(200);
    expect((await pgw.gql('lms-demo', '{ noSuchField }')).status).toBe(400);
    expect((await pgw.gql('rgk_not-a-key', '{ schools { edges { node { name } } } }')).status).toBe(401);

    const after = (await scrape(metricsUrl, TOKEN)).text;
    const moved = (name: string, labels: Record<string, string>) => metricValue(after, name, labels) - metricValue(before, name, labels);
    expect(moved('rostergate_requests_total', ok)).toBe(2);
    expect(moved('rostergate_requests_total', rejected)).toBe(1);
    expect(moved('rostergate_requests_total', refused)).toBe(1);
    expect(moved('rostergate_request_duration_seconds_count', { surface: 'graphql', outcome: 'ok' })).toBe(2);
    expect(moved('rostergate_request_errors_total', { surface: 'graphql', tenant: 'test', code: 'GRAPHQL_VALIDATION_FAILED' })).toBe(1);
    expect(moved('rostergate_request_errors_total', { surface: 'graphql', tenant: 'none', code: 'UNAUTHENTICATED' })).toBe(1);
    // Scrapes are not requests that count.
    expect(metricValue(after, 'rostergate_requests_total', { surface: 'other' })).toBe(0);
    // The gateway's sync and its audit entries were write transactions on this store.
    expect(metricValue(after, 'rostergate_store_transaction_seconds_count', { store: kind, outcome: 'commit' })).toBeGreaterThan(0);
  });

  it('count a sync\'s run, records, upstream requests by status and the vendor\'s 429s', async () => {
    const source = `clever-metrics-${kind}`;
    // The vendor rate-limits the users listing twice; the client waits as told and asks again.
    sandbox.faults.inject({ kind: 'status', status: 429, retryAfter: '0' }, { match: /\/users/, times: 2 });
    const connector = cleverDefinition.create(cleverDefinition.configSchema.parse({ id: source, ...sandboxSourceConfig(sandbox.urlOf('/clever')), pageSize: 25 }), { http: testHttp(source), log });
    const summary = await syncSource(pgw.store, connector);
    expect(summary.status).toBe('complete');
    expect(summary.records).toBeGreaterThan(0);

    const text = (await scrape(metricsUrl, TOKEN)).text;
    expect(metricValue(text, 'rostergate_sync_runs_total', { source, status: 'complete' })).toBe(1);
    expect(metricValue(text, 'rostergate_sync_run_duration_seconds_count', { source, status: 'complete' })).toBe(1);
    expect(metricValue(text, 'rostergate_sync_records_total', { source })).toBe(summary.records);
    // Where the run's time went, phase by phase, as its summary says (src/sync/phase-clock.ts).
    for (const phase of ['source', 'load', 'plan', 'write'] as const) {
      expect(summary.times[phase]).toBeGreaterThan(0);
      expect(metricValue(text, 'rostergate_sync_phase_seconds_total', { source, phase })).toBeCloseTo(summary.times[phase] / 1000, 6);
    }
    expect(metricValue(text, 'rostergate_upstream_rate_limited_total', { source })).toBe(2);
    expect(metricValue(text, 'rostergate_upstream_requests_total', { source, status: '429' })).toBe(2);
    const hits = sandbox.faults.hits.filter((h) => h.startsWith('/clever')).length;
    expect(metricValue(text, 'rostergate_upstream_requests_total', { source, status: '200' })).toBe(hits - 2);
  });

  it('carry no name or email in any label', async () => {
    const text = (await scrape(metricsUrl, TOKEN)).text;
    const people = [...pgw.dataset.list('person'), ...ds.list('person')].slice(0, 200);
    for (const p of people) {
      const d = p.data as { givenName?: string; familyName?: string; email?: string };
      for (const v of [d.email, d.givenName, d.familyName]) if (v) expect(text.includes(`"${v}"`), v).toBe(false);
    }
  });
});
