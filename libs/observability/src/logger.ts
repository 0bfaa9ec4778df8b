import { pino, type DestinationStream, type Logger } from 'pino';
import { trace } from '@opentelemetry/api';
import { maskSecretsDeep, maskSecretsInText, SECRET_FIELD_NAMES } from '@soma/masking';

export type { Logger } from 'pino';

export interface LoggerOptions {
  service: string;
  level?: string;
  /** Where lines go; stdout by default. Tests pass a stream to capture and grep what was logged. */
  destination?: DestinationStream;
}

/** Paths pino removes before serialising, at the top level and one level down. */
const REDACT_PATHS = SECRET_FIELD_NAMES.flatMap((name) => [name, `*.${name}`, `req.headers.${name}`]).concat([
  'req.headers.authorization',
  'req.headers.cookie',
  'headers.authorization',
  'metadata.authorization',
]);

/**
 * JSON logs with secrets removed twice over: by field name (pino's redaction) and by shape
 * (credential-looking strings anywhere in the message or the bound object are masked).
 */
export function createLogger(options: LoggerOptions): Logger {
  return pino(
    {
      level: options.level ?? 'info',
      base: { service: options.service, pid: process.pid },
      timestamp: pino.stdTimeFunctions.isoTime,
      messageKey: 'msg',
      // Every line written inside a traced request carries its trace id, so logs join traces and events.
      mixin: () => {
        const id = trace.getActiveSpan()?.spanContext().traceId;
        return id ? { trace_id: id } : {};
      },
      redact: { paths: REDACT_PATHS, censor: '[redacted]' },
      formatters: {
        level: (label) => ({ level: label }),
        log: (object) => maskSecretsDeep(object as Record<string, unknown>),
      },
      hooks: {
        logMethod(args, method) {
          const masked = args.map((a) => (typeof a === 'string' ? maskSecretsInText(a) : a)) as Parameters<typeof method>;
          method.apply(this, masked);
        },
      },
      serializers: {
        err: (err: Error) => ({ type: err?.name, message: maskSecretsInText(String(err?.message ?? err)) }),
      },
    },
    options.destination ?? pino.destination({ sync: false }),
  );
}
