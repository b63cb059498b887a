/**
 * OpenTelemetry traces. The code records spans through @opentelemetry/api only; the SDK (context
 * manager, exporter) is loaded and registered only when the standard OTEL_* environment asks for
 * it (`startTracingFromEnv`), or by a test (`installTracing`). Until then `withSpan` calls its
 * function straight away — not even the API's no-op span is made — because store reads run on the
 * serving path thousands of times a second and a sync applies pages in tight loops.
 *
 * The spans (docs/observability.md): `HTTP <method>` → `request.authenticate` | `graphql.execute` →
 * `store.read` / `store.transaction` for a request; `sync.run` → `sync.page` → `upstream.request` and `sync.run` →
 * `sync.apply` → `store.transaction` for a sync. Attributes name configured things (source,
 * resource, purpose, store kind) and outcomes; never a record, an id, a URL with its query or an
 * error message (messages may quote data), only error codes.
 */
import { context, propagation, SpanKind, SpanStatusCode, trace, type Attributes, type Span, type TextMapGetter } from '@opentelemetry/api';
import type { SpanProcessor } from '@opentelemetry/sdk-trace';

export { SpanKind, type Span };

const TRACER = 'rostergate';
let on = false;
let shutdownHook: (() => Promise<void>) | undefined;

/** Whether spans are being recorded (an SDK is installed). */
export function tracingOn(): boolean {
  return on;
}

/**
 * Runs `fn` inside a new active span (a child of the active one), ending it when `fn` settles; a
 * failure marks the span with the error's code or kind (src/log.ts errorForLog's rule). Without an
 * SDK, `fn` gets `undefined` and runs as if there were no tracing at all.
 */
export function withSpan<T>(name: string, attributes: Attributes, fn: (span: Span | undefined) => Promise<T>, kind: SpanKind = SpanKind.INTERNAL): Promise<T> {
  if (!on) return fn(undefined);
  return trace.getTracer(TRACER).startActiveSpan(name, { attributes, kind }, async (span) => {
    try {
      return await fn(span);
    } catch (e) {
      failSpan(span, e);
      throw e;
    } finally {
      span.end();
    }
  });
}

/** A span that is not made active: for work whose end is seen elsewhere (a page fetched ahead). */
export function startSpan(name: string, attributes: Attributes, kind: SpanKind = SpanKind.INTERNAL): Span | undefined {
  return on ? trace.getTracer(TRACER).startSpan(name, { attributes, kind }) : undefined;
}

/** Runs `fn` with `span` active, so what it starts (including after awaits) is its child. */
export function withActive<T>(span: Span | undefined, fn: () => T): T {
  return span ? context.with(trace.setSpan(context.active(), span), fn) : fn();
}

/** Marks a span failed by the error's code (a RostergateError's, a driver's) or its kind — never its message. */
export function failSpan(span: Span | undefined, e: unknown): void {
  if (!span) return;
  const code = typeof (e as { code?: unknown })?.code === 'string' ? (e as { code: string }).code : e instanceof Error ? e.name : typeof e;
  span.setAttribute('error.type', code);
  span.setStatus({ code: SpanStatusCode.ERROR, message: code });
}

/**
 * Runs `fn` in the trace context an incoming request carries (W3C `traceparent`), so a caller's
 * trace continues here. Without an SDK the propagator is the API's no-op and this is just `fn()`.
 */
export function withIncomingContext<T>(headers: Record<string, string | string[] | undefined>, fn: () => T): T {
  if (!on) return fn();
  const getter: TextMapGetter<typeof headers> = {
    keys: (h) => Object.keys(h),
    get: (h, key) => h[key],
  };
  return context.with(propagation.extract(context.active(), headers, getter), fn);
}

/** The active span's trace id, for log lines that join a trace (undefined without tracing). */
export function activeTraceId(): string | undefined {
  if (!on) return undefined;
  const ctx = trace.getActiveSpan()?.spanContext();
  return ctx && trace.isSpanContextValid(ctx) ? ctx.traceId : undefined;
}

/**
 * Registers an SDK that hands finished spans to `processor` (tests: a SimpleSpanProcessor over an
 * InMemorySpanExporter). Returns the function that unregisters it.
 */
export async function installTracing(processor: SpanProcessor, opts: { serviceName?: string; resourceAttributes?: Attributes } = {}): Promise<() => Promise<void>> {
  if (on) await stopTracing();
  const [{ TracerProvider }, { AsyncLocalStorageContextManager }, { W3CTraceContextPropagator }, { resourceFromAttributes }] = await Promise.all([
    import('@opentelemetry/sdk-trace'),
    import('@opentelemetry/context-async-hooks'),
    import('@opentelemetry/core'),
    import('@opentelemetry/resources'),
  ]);
  const provider = new TracerProvider({
    resource: resourceFromAttributes({ 'service.name': opts.serviceName ?? 'rostergate', ...opts.resourceAttributes }),
    spanProcessors: [processor],
  });
  context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable());
  propagation.setGlobalPropagator(new W3CTraceContextPropagator());
  trace.setGlobalTracerProvider(provider);
  on = true;
  shutdownHook = async () => {
    on = false;
    await provider.shutdown();
    trace.disable();
    propagation.disable();
    context.disable();
  };
  return stopTracing;
}

/** Flushes and unregisters the SDK, if one is installed. */
export async function stopTracing(): Promise<void> {
  const hook = shutdownHook;
  shutdownHook = undefined;
  await hook?.();
}

/**
 * Starts tracing when the standard environment asks for it: an OTLP endpoint
 * (OTEL_EXPORTER_OTLP_ENDPOINT or OTEL_EXPORTER_OTLP_TRACES_ENDPOINT, sent over OTLP/HTTP with
 * OTEL_EXPORTER_OTLP_HEADERS) or OTEL_TRACES_EXPORTER=otlp|console, unless OTEL_SDK_DISABLED=true
 * or OTEL_TRACES_EXPORTER=none. Service name from OTEL_SERVICE_NAME (default "rostergate"), more
 * resource attributes from OTEL_RESOURCE_ATTRIBUTES. Returns whether tracing is now on.
 */
export async function startTracingFromEnv(env: NodeJS.ProcessEnv = process.env): Promise<boolean> {
  if (on) return true;
  const exporterName = env.OTEL_TRACES_EXPORTER?.trim().toLowerCase();
  if (env.OTEL_SDK_DISABLED?.trim().toLowerCase() === 'true' || exporterName === 'none') return false;
  const endpoint = env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT || env.OTEL_EXPORTER_OTLP_ENDPOINT;
  if (!endpoint && exporterName !== 'otlp' && exporterName !== 'console') return false;
  const { BatchSpanProcessor, ConsoleSpanExporter } = await import('@opentelemetry/sdk-trace');
  const exporter = exporterName === 'console'
    ? new ConsoleSpanExporter()
    : new (await import('@opentelemetry/exporter-trace-otlp-http')).OTLPTraceExporter();
  const { detectResources, envDetector } = await import('@opentelemetry/resources');
  const fromEnv = detectResources({ detectors: [envDetector] }).attributes;
  await installTracing(new BatchSpanProcessor({ exporter }), { serviceName: env.OTEL_SERVICE_NAME || 'rostergate', resourceAttributes: fromEnv as Attributes });
  return true;
}
