import { status } from '@grpc/grpc-js';
import { AuthErrorCode } from '../../domain/auth.errors.js';

/** The one mapping of auth error codes to gRPC status codes. Exhaustive: a new code fails to compile here. */
export function grpcStatusOf(code: string): status {
  const known = code as AuthErrorCode;
  switch (known) {
    case AuthErrorCode.Unauthenticated:
      return status.UNAUTHENTICATED;
    case AuthErrorCode.PermissionDenied:
      return status.PERMISSION_DENIED;
    case AuthErrorCode.NotFound:
      return status.NOT_FOUND;
    case AuthErrorCode.Unavailable:
      return status.UNAVAILABLE;
    default: {
      const unreachable: never = known;
      return unreachable ?? status.INTERNAL;
    }
  }
}
