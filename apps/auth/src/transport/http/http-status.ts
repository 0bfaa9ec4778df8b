import { AuthErrorCode } from '../../domain/auth.errors.js';

/** The one mapping of auth error codes to HTTP status codes. Exhaustive: a new code fails to compile here. */
export function httpStatusOf(code: string): number {
  const known = code as AuthErrorCode;
  switch (known) {
    case AuthErrorCode.Unauthenticated:
      return 401;
    case AuthErrorCode.PermissionDenied:
      return 403;
    case AuthErrorCode.NotFound:
      return 404;
    case AuthErrorCode.Unavailable:
      return 503;
    default: {
      const unreachable: never = known;
      return unreachable ?? 500;
    }
  }
}
