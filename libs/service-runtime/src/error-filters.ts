import { Metadata, status as GrpcStatus } from '@grpc/grpc-js';
import { type ArgumentsHost, Catch, type ExceptionFilter, HttpException } from '@nestjs/common';
import { throwError, type Observable } from 'rxjs';
import { DomainError, GRPC_REASON_KEY, InvalidInputError, REQUEST_ID_KEY, type ProblemDetails } from '@soma/contracts';
import type { Logger } from '@soma/observability';
import { isDependencyUnavailable } from './dependency-errors.js';
import { requestIdFrom } from './request-id.js';

/** Reason code of an unclaimed error that says a server this service needs is unreachable (see isDependencyUnavailable). */
export const DEPENDENCY_UNAVAILABLE = 'DEPENDENCY_UNAVAILABLE';

/** Bugs are errors, a server-side failure that is not a bug (a dependency down) a warning, a refused request info. */
function logLevelOf(reason: string, serverSide: boolean): 'error' | 'warn' | 'info' {
  return reason === 'INTERNAL' ? 'error' : serverSide ? 'warn' : 'info';
}

/** A service's exhaustive mapping of its own error codes, one per transport. */
export type GrpcStatusMapper = (code: string) => GrpcStatus;
export type HttpStatusMapper = (code: string) => number;

function describe(exception: unknown): Record<string, unknown> {
  if (exception instanceof DomainError) return { code: exception.code, detail: exception.detail };
  if (exception instanceof Error) return { err: { type: exception.name, message: exception.message, stack: exception.stack } };
  return { err: String(exception) };
}

/**
 * Every gRPC failure leaves through here: a status code, a safe message with the reason code and
 * request id, and the same two in trailing metadata. Unknown errors become INTERNAL with no detail.
 */
@Catch()
export class GrpcErrorFilter implements ExceptionFilter {
  constructor(private readonly logger: Logger, private readonly toStatus: GrpcStatusMapper) {}

  catch(exception: unknown, host: ArgumentsHost): Observable<never> {
    const incoming = host.switchToRpc().getContext<Metadata | undefined>();
    const requestId = requestIdFrom(incoming instanceof Metadata ? incoming.get(REQUEST_ID_KEY) : undefined);
    let code: GrpcStatus;
    let reason: string;
    let message: string;
    if (exception instanceof InvalidInputError) {
      code = GrpcStatus.INVALID_ARGUMENT;
      reason = exception.code;
      message = exception.publicMessage;
    } else if (exception instanceof DomainError) {
      code = this.toStatus(exception.code);
      reason = exception.code;
      message = exception.publicMessage;
    } else if (isDependencyUnavailable(exception)) {
      code = GrpcStatus.UNAVAILABLE;
      reason = DEPENDENCY_UNAVAILABLE;
      message = 'a dependency of this service is unavailable; retry later';
    } else {
      code = GrpcStatus.INTERNAL;
      reason = 'INTERNAL';
      message = 'internal error';
    }
    this.logger[logLevelOf(reason, code === GrpcStatus.UNAVAILABLE)]({ request_id: requestId, grpc_status: code, ...describe(exception) }, 'grpc call failed');
    const metadata = new Metadata();
    metadata.set(GRPC_REASON_KEY, reason);
    metadata.set(REQUEST_ID_KEY, requestId);
    return throwError(() => ({ code, message: `${reason}: ${message} (request_id=${requestId})`, details: `${reason}: ${message} (request_id=${requestId})`, metadata }));
  }
}

/**
 * One global filter for both transports of a service (Nest shares global filters between the HTTP
 * app and its gRPC microservice): it hands each failure to the transport's own filter.
 */
@Catch()
export class SomaExceptionFilter implements ExceptionFilter {
  private readonly grpc: GrpcErrorFilter;
  private readonly http: ProblemJsonFilter;
  constructor(logger: Logger, grpcStatusOf: GrpcStatusMapper, httpStatusOf: HttpStatusMapper) {
    this.grpc = new GrpcErrorFilter(logger, grpcStatusOf);
    this.http = new ProblemJsonFilter(logger, httpStatusOf);
  }

  catch(exception: unknown, host: ArgumentsHost): unknown {
    return host.getType() === 'rpc' ? this.grpc.catch(exception, host) : this.http.catch(exception, host);
  }
}

/** Every HTTP failure leaves as `application/problem+json` (RFC 9457) with a request id. */
@Catch()
export class ProblemJsonFilter implements ExceptionFilter {
  constructor(private readonly logger: Logger, private readonly toStatus: HttpStatusMapper) {}

  catch(exception: unknown, host: ArgumentsHost): void {
    const http = host.switchToHttp();
    const req = http.getRequest<{ headers: Record<string, unknown>; method?: string; url?: string }>();
    const res = http.getResponse<{ status(n: number): { type(t: string): { send(b: string): void } }; setHeader(k: string, v: string): void; headersSent?: boolean }>();
    const requestId = requestIdFrom(req.headers?.[REQUEST_ID_KEY]);
    let status: number;
    let code: string;
    let detail: string;
    if (exception instanceof InvalidInputError) {
      status = 400;
      code = exception.code;
      detail = exception.publicMessage;
    } else if (exception instanceof DomainError) {
      status = this.toStatus(exception.code);
      code = exception.code;
      detail = exception.publicMessage;
    } else if (exception instanceof HttpException) {
      status = exception.getStatus();
      code = status === 404 ? 'NOT_FOUND' : status === 413 ? 'PAYLOAD_TOO_LARGE' : status < 500 ? 'BAD_REQUEST' : 'INTERNAL';
      detail = status < 500 ? safeHttpMessage(exception) : 'internal error';
    } else if (isBodyParserError(exception)) {
      status = exception.status;
      code = status === 413 ? 'PAYLOAD_TOO_LARGE' : 'BAD_REQUEST';
      detail = status === 413 ? 'request body too large' : 'request body is not valid JSON';
    } else if (isDependencyUnavailable(exception)) {
      status = 503;
      code = DEPENDENCY_UNAVAILABLE;
      detail = 'a dependency of this service is unavailable; retry later';
    } else {
      status = 500;
      code = 'INTERNAL';
      detail = 'internal error';
    }
    this.logger[logLevelOf(code, status >= 500)]({ request_id: requestId, http_status: status, method: req.method, path: req.url?.split('?')[0], ...describe(exception) }, 'http request failed');
    if (res.headersSent) return;
    const body: ProblemDetails = { type: `https://soma.dev/problems/${code.toLowerCase().replaceAll('_', '-')}`, title: code, status, detail, code, request_id: requestId };
    res.setHeader(REQUEST_ID_KEY, requestId);
    res.status(status).type('application/problem+json').send(JSON.stringify(body));
  }
}

function safeHttpMessage(e: HttpException): string {
  const status = e.getStatus();
  if (status === 404) return 'no such route';
  if (status === 405) return 'method not allowed';
  return 'bad request';
}

function isBodyParserError(e: unknown): e is { status: number; type: string } {
  return typeof e === 'object' && e !== null && typeof (e as { status?: unknown }).status === 'number' && typeof (e as { type?: unknown }).type === 'string' && (e as { status: number }).status < 500;
}
