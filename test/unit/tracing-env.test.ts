/**
 * The SDK starts only when the standard OTEL_* environment asks for it, and never when it says no.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { trace } from '@opentelemetry/api';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { startTracingFromEnv, stopTracing, tracingOn, withSpan } from '../../src/kernel/tracing.ts';

afterEach(() => stopTracing());

describe('startTracingFromEnv', () => {
  it('stays off without an endpoint or exporter, and when disabled', async () => {
    for (const env of [
      {},
      { OTEL_SERVICE_NAME: 'x' },
      { OTEL_EXPORTER_OTLP_ENDPOINT: 'http://127.0.0.1:4318', OTEL_SDK_DISABLED: 'true' },
      { OTEL_EXPORTER_OTLP_ENDPOINT: 'http://127.0.0.1:4318', OTEL_TRACES_EXPORTER: 'none' },
    ]) {
      expect(await startTracingFromEnv(env), JSON.stringify(env)).toBe(false);
      expect(tracingOn()).toBe(false);
      // Off: the function runs with no span at all.
      expect(await withSpan('x', {}, async (span) => span)).toBeUndefined();
    }
  });

  it('starts with an OTLP endpoint, and sends the spans there when it stops', async () => {
    const received: { path: string; body: string }[] = [];
    const collector = createServer((req, res) => {
      let body = '';
      req.on('data', (c: Buffer) => (body += c.toString('utf8')));
      req.on('end', () => {
        received.push({ path: req.url ?? '', body });
        res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
      });
    });
    await new Promise<void>((r) => collector.listen(0, '127.0.0.1', r));
    try {
      const endpoint = `http://127.0.0.1:${(collector.address() as AddressInfo).port}`;
      expect(await startTracingFromEnv({ OTEL_EXPORTER_OTLP_ENDPOINT: endpoint, OTEL_SERVICE_NAME: 'rg-test' })).toBe(true);
      expect(tracingOn()).toBe(true);
      const traceId = await withSpan('outer', {}, async (span) => {
        expect(trace.getActiveSpan()).toBe(span);
        await withSpan('inner', { 'rostergate.source': 'clever' }, async () => undefined);
        return span!.spanContext().traceId;
      });
      expect(traceId).toMatch(/^[0-9a-f]{32}$/);
      await stopTracing();
      expect(tracingOn()).toBe(false);
      expect(received.map((r) => r.path)).toEqual(['/v1/traces']);
      const body = received[0]!.body;
      for (const text of ['"rg-test"', '"outer"', '"inner"', '"rostergate.source"', traceId]) expect(body).toContain(text);
    } finally {
      collector.close();
    }
  });

  it('a collector that is away does not fail the shutdown', async () => {
    expect(await startTracingFromEnv({ OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: 'http://127.0.0.1:9/v1/traces' })).toBe(true);
    await withSpan('lost', {}, async () => undefined);
    await expect(stopTracing()).resolves.toBeUndefined();
  });
});
