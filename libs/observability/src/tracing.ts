import { context, propagation, trace, type Context, type Span, SpanStatusCode } from '@opentelemetry/api';
import { W3CTraceContextPropagator } from '@opentelemetry/core';
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-http';
import { BatchSpanProcessor } from '@opentelemetry/sdk-trace-base';
import { NodeTracerProvider } from '@opentelemetry/sdk-trace-node';
import { resourceFromAttributes } from '@opentelemetry/resources';

let provider: NodeTracerProvider | undefined;

/**
 * Start OpenTelemetry tracing for this process: W3C trace context, async-hooks context manager.
 * Spans are always created and propagated (the trace id reaches logs and security events); they are
 * exported over OTLP/HTTP only when OTEL_EXPORTER_OTLP_ENDPOINT is set (the exporter reads the standard
 * OTEL_EXPORTER_OTLP_* variables itself).
 */
export function initTracing(service: string): void {
  if (provider) return;
  const exporting = Boolean(process.env['OTEL_EXPORTER_OTLP_ENDPOINT'] || process.env['OTEL_EXPORTER_OTLP_TRACES_ENDPOINT']);
  provider = new NodeTracerProvider({
    resource: resourceFromAttributes({ 'service.name': `soma-${service}` }),
    spanProcessors: exporting ? [new BatchSpanProcessor(new OTLPTraceExporter())] : [],
  });
  provider.register({ propagator: new W3CTraceContextPropagator() });
}

export async function shutdownTracing(): Promise<void> {
  await provider?.shutdown();
  provider = undefined;
}

export function tracer(name = 'soma') {
  return trace.getTracer(name);
}

/** Trace id of the active span, or null outside any trace. */
export function currentTraceId(): string | null {
  const id = trace.getActiveSpan()?.spanContext().traceId;
  return id && id !== '00000000000000000000000000000000' ? id : null;
}

/** Write the active trace context into a carrier (gRPC metadata, Kafka headers, HTTP headers). */
export function injectTraceContext(carrier: Record<string, string>, ctx: Context = context.active()): Record<string, string> {
  propagation.inject(ctx, carrier);
  return carrier;
}

/** Read a trace context from a carrier; header values may be Buffers (Kafka) or arrays (HTTP). */
export function extractTraceContext(carrier: Record<string, unknown>): Context {
  const flat: Record<string, string> = {};
  for (const [k, v] of Object.entries(carrier)) {
    const first = Array.isArray(v) ? v[0] : v;
    if (typeof first === 'string') flat[k.toLowerCase()] = first;
    else if (Buffer.isBuffer(first)) flat[k.toLowerCase()] = first.toString('utf8');
  }
  return propagation.extract(context.active(), flat);
}

/** Run `fn` in a span that is a child of `parent`, recording failures on the span. */
export async function inSpan<T>(name: string, parent: Context, fn: (span: Span) => Promise<T>): Promise<T> {
  return tracer().startActiveSpan(name, {}, parent, async (span) => {
    try {
      return await fn(span);
    } catch (e) {
      span.setStatus({ code: SpanStatusCode.ERROR });
      throw e;
    } finally {
      span.end();
    }
  });
}
