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
      return 503;
    default: {
      const unreachable: never = known;
      return unreachable ?? 500;
    }
  }
}
