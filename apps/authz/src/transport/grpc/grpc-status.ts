import { status } from '@grpc/grpc-js';
import { AuthzErrorCode } from '../../domain/authz.errors.js';

/** The one mapping of authz error codes to gRPC status codes. Exhaustive: a new code fails to compile here. */
export function grpcStatusOf(code: string): status {
  const known = code as AuthzErrorCode;
  switch (known) {
    case AuthzErrorCode.Unauthenticated:
      return status.UNAUTHENTICATED;
    case AuthzErrorCode.PermissionDenied:
      return status.PERMISSION_DENIED;
    case AuthzErrorCode.NotFound:
      return status.NOT_FOUND;
    case AuthzErrorCode.Unavailable:
    case AuthzErrorCode.RelationshipWriteFailed:
    case AuthzErrorCode.AuditUnavailable:
      return status.UNAVAILABLE;
    case AuthzErrorCode.InvalidArgument:
      return status.INVALID_ARGUMENT;
    case AuthzErrorCode.RelationshipsDisabled:
      return status.FAILED_PRECONDITION;
    default: {
      const unreachable: never = known;
      return unreachable ?? status.INTERNAL;
    }
  }
}
