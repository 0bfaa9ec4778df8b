import { AuditErrorCode } from '../../domain/audit.errors.js';

/** The one mapping of audit error codes to HTTP status codes. Exhaustive: a new code fails to compile here. */
export function httpStatusOf(code: string): number {
  const known = code as AuditErrorCode;
  switch (known) {
    case AuditErrorCode.Unauthenticated:
      return 401;
    case AuditErrorCode.PermissionDenied:
      return 403;
    case AuditErrorCode.NotFound:
      return 404;
    case AuditErrorCode.Unavailable:
    case AuditErrorCode.AuditUnavailable:
      return 503;
    case AuditErrorCode.InvalidQuery:
    case AuditErrorCode.InvalidPageToken:
      return 400;
    default: {
      const unreachable: never = known;
      return unreachable ?? 500;
    }
  }
}
