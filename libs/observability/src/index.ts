export { createLogger } from './logger.js';
export type { Logger, LoggerOptions } from './logger.js';
export { createMetricsRegistry, Counter, Gauge, Histogram, Registry } from './metrics.js';
export { initTracing, shutdownTracing, tracer, currentTraceId, injectTraceContext, extractTraceContext, inSpan } from './tracing.js';
export { ReadinessRegistry } from './health.js';
export type { ReadinessCheck, ReadinessReport } from './health.js';
