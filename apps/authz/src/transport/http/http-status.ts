import { AuthzErrorCode } from '../../domain/authz.errors.js';

/** The one mapping of authz error codes to HTTP status codes. Exhaustive: a new code fails to compile here. */
export function httpStatusOf(code: string): number {
  const known = code as AuthzErrorCode;
  switch (known) {
    case AuthzErrorCode.Unauthenticated:
      return 401;
    case AuthzErrorCode.PermissionDenied:
      return 403;
    case AuthzErrorCode.NotFound:
      return 404;
    case AuthzErrorCode.Unavailable:
    case AuthzErrorCode.RelationshipWriteFailed:
    case AuthzErrorCode.AuditUnavailable:
      return 503;
    case AuthzErrorCode.InvalidArgument:
      return 400;
    case AuthzErrorCode.RelationshipsDisabled:
      return 412;
    default: {
      const unreachable: never = known;
      return unreachable ?? 500;
    }
  }
}
