import { status } from '@grpc/grpc-js';
import { AuthErrorCode } from '../../domain/auth.errors.js';

/** The one mapping of auth error codes to gRPC status codes. Exhaustive: a new code fails to compile here. */
export function grpcStatusOf(code: string): status {
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
      return status.UNAUTHENTICATED;
    case AuthErrorCode.InsufficientScope:
    case AuthErrorCode.PermissionDenied:
      return status.PERMISSION_DENIED;
    case AuthErrorCode.ApiKeyRateLimited:
    case AuthErrorCode.ApiKeyUsageExceeded:
    case AuthErrorCode.LoginLocked:
    case AuthErrorCode.LoginRateLimited:
      return status.RESOURCE_EXHAUSTED;
    case AuthErrorCode.InvalidArgument:
      return status.INVALID_ARGUMENT;
    case AuthErrorCode.NotFound:
      return status.NOT_FOUND;
    case AuthErrorCode.LoginDisabled:
      return status.FAILED_PRECONDITION;
    case AuthErrorCode.Unavailable:
      return status.UNAVAILABLE;
    default: {
      const unreachable: never = known;
      return unreachable ?? status.INTERNAL;
    }
  }
}
