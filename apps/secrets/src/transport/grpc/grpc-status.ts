import { status } from '@grpc/grpc-js';
import { SecretsErrorCode } from '../../domain/secrets.errors.js';

/** The one mapping of secrets error codes to gRPC status codes. Exhaustive: a new code fails to compile here. */
export function grpcStatusOf(code: string): status {
  const known = code as SecretsErrorCode;
  switch (known) {
    case SecretsErrorCode.Unauthenticated:
      return status.UNAUTHENTICATED;
    case SecretsErrorCode.PermissionDenied:
      return status.PERMISSION_DENIED;
    case SecretsErrorCode.InvalidArgument:
      return status.INVALID_ARGUMENT;
    case SecretsErrorCode.NotFound:
      return status.NOT_FOUND;
    case SecretsErrorCode.VersionConflict:
    case SecretsErrorCode.SecretUndecryptable:
      return status.FAILED_PRECONDITION;
    case SecretsErrorCode.ReferenceUnresolved:
    case SecretsErrorCode.Unavailable:
      return status.UNAVAILABLE;
    default: {
      const unreachable: never = known;
      return unreachable ?? status.INTERNAL;
    }
  }
}
