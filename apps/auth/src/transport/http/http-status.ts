import { AuthErrorCode } from '../../domain/auth.errors.js';

/** The one mapping of auth error codes to HTTP status codes. Exhaustive: a new code fails to compile here. */
export function httpStatusOf(code: string): number {
  const known = code as AuthErrorCode;
  switch (known) {
    case AuthErrorCode.InvalidToken:
    case AuthErrorCode.TokenExpired:
    case AuthErrorCode.TokenNotYetValid:
    case AuthErrorCode.TokenRevoked:
    case AuthErrorCode.InvalidCredential:
    case AuthErrorCode.MissingCredential:
    case AuthErrorCode.ApiKeyRevoked:
    case AuthErrorCode.ApiKeyExpired:
    case AuthErrorCode.BadPassword:
      return 401;
    case AuthErrorCode.InsufficientScope:
    case AuthErrorCode.PermissionDenied:
      return 403;
    case AuthErrorCode.ApiKeyRateLimited:
    case AuthErrorCode.ApiKeyUsageExceeded:
    case AuthErrorCode.LoginLocked:
    case AuthErrorCode.LoginRateLimited:
      return 429;
    case AuthErrorCode.InvalidArgument:
      return 400;
    case AuthErrorCode.NotFound:
      return 404;
    case AuthErrorCode.LoginDisabled:
      return 409;
    case AuthErrorCode.Unavailable:
      return 503;
    default: {
      const unreachable: never = known;
      return unreachable ?? 500;
    }
  }
}
