/**
 * The base of every service's typed domain error. A service declares a string enum of codes
 * (`AuthErrorCode.TokenExpired = 'TOKEN_EXPIRED'`) and maps each code to a gRPC and an HTTP status
 * in one exhaustive switch per transport. `publicMessage` is safe for callers; `detail` is for logs.
 */
export abstract class DomainError<Code extends string = string> extends Error {
  constructor(
    readonly code: Code,
    readonly publicMessage: string,
    readonly detail?: Record<string, unknown>,
  ) {
    super(`${code}: ${publicMessage}`);
    this.name = new.target.name;
  }
}

/** Raised by transport adapters when a request does not decode or validate. */
export class InvalidInputError extends DomainError<'INVALID_ARGUMENT'> {
  constructor(readonly violations: string[]) {
    super('INVALID_ARGUMENT', `invalid request: ${violations.slice(0, 5).join('; ')}`);
  }
}

/** RFC 9457 problem details, the body of every HTTP error (`application/problem+json`). */
export interface ProblemDetails {
  type: string;
  title: string;
  status: number;
  detail: string;
  /** The domain reason code, e.g. `TOKEN_EXPIRED`. */
  code: string;
  request_id: string;
}

/** gRPC metadata keys carrying the reason code and request id beside the status. */
export const GRPC_REASON_KEY = 'soma-reason';
export const REQUEST_ID_KEY = 'x-request-id';
