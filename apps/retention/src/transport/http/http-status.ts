import { RetentionErrorCode } from '../../domain/retention.errors.js';

/** The one mapping of retention error codes to HTTP status codes. Exhaustive: a new code fails to compile here. */
export function httpStatusOf(code: string): number {
  const known = code as RetentionErrorCode;
  switch (known) {
    case RetentionErrorCode.Unauthenticated:
      return 401;
    case RetentionErrorCode.PermissionDenied:
      return 403;
    case RetentionErrorCode.InvalidArgument:
      return 400;
    case RetentionErrorCode.NotFound:
    case RetentionErrorCode.UnknownPolicy:
      return 404;
    case RetentionErrorCode.PolicyBusy:
    case RetentionErrorCode.AuditKeyUnavailable:
      return 409;
    case RetentionErrorCode.ExportTooLarge:
      return 413;
    case RetentionErrorCode.AuditUnavailable:
    case RetentionErrorCode.AuthUnavailable:
    case RetentionErrorCode.Unavailable:
      return 503;
    default: {
      const unreachable: never = known;
      return unreachable ?? 500;
    }
  }
}
