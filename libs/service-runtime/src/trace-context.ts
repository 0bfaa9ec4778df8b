import type { CallHandler, ExecutionContext, NestInterceptor } from '@nestjs/common';
import { context, SpanKind, SpanStatusCode, trace } from '@opentelemetry/api';
import { Observable } from 'rxjs';
import { extractTraceContext, tracer } from '@soma/observability';

/** The W3C trace headers of a gRPC call (its Metadata) or an HTTP request (its headers). */
function carrierOf(ctx: ExecutionContext): Record<string, unknown> {
  if (ctx.getType() === 'rpc') {
    const md = ctx.switchToRpc().getContext() as { getMap?: () => Record<string, unknown> } | undefined;
    return typeof md?.getMap === 'function' ? md.getMap() : {};
  }
  if (ctx.getType() === 'http') return (ctx.switchToHttp().getRequest() as { headers?: Record<string, unknown> }).headers ?? {};
  return {};
}

/**
 * Every handler runs in a server span whose parent is the caller's `traceparent` (gRPC metadata or HTTP
 * header), so `currentTraceId()` — the trace_id of security events and log lines — is the caller's trace.
 * A call without one starts a new trace. The handler is subscribed inside the span's context, and the
 * async-hooks context manager carries it through every await of the handler.
 */
export class TraceContextInterceptor implements NestInterceptor {
  intercept(ctx: ExecutionContext, next: CallHandler): Observable<unknown> {
    const parent = extractTraceContext(carrierOf(ctx));
    const name = `${ctx.getClass().name}.${ctx.getHandler().name}`;
    return new Observable((subscriber) => {
      const span = tracer('soma-server').startSpan(name, { kind: SpanKind.SERVER }, parent);
      const subscription = context.with(trace.setSpan(parent, span), () =>
        next.handle().subscribe({
          next: (value) => subscriber.next(value),
          error: (error: unknown) => {
            span.setStatus({ code: SpanStatusCode.ERROR });
            span.end();
            subscriber.error(error);
          },
          complete: () => {
            span.end();
            subscriber.complete();
          },
        }),
      );
      return () => subscription.unsubscribe();
    });
  }
}
