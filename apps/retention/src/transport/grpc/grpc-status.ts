import { status } from '@grpc/grpc-js';
import { RetentionErrorCode } from '../../domain/retention.errors.js';

/** The one mapping of retention error codes to gRPC status codes. Exhaustive: a new code fails to compile here. */
export function grpcStatusOf(code: string): status {
  const known = code as RetentionErrorCode;
  switch (known) {
    case RetentionErrorCode.Unauthenticated:
      return status.UNAUTHENTICATED;
    case RetentionErrorCode.PermissionDenied:
      return status.PERMISSION_DENIED;
    case RetentionErrorCode.InvalidArgument:
      return status.INVALID_ARGUMENT;
    case RetentionErrorCode.NotFound:
    case RetentionErrorCode.UnknownPolicy:
      return status.NOT_FOUND;
    case RetentionErrorCode.PolicyBusy:
    case RetentionErrorCode.AuditKeyUnavailable:
      return status.FAILED_PRECONDITION;
    case RetentionErrorCode.ExportTooLarge:
      return status.RESOURCE_EXHAUSTED;
    case RetentionErrorCode.AuditUnavailable:
    case RetentionErrorCode.AuthUnavailable:
    case RetentionErrorCode.Unavailable:
      return status.UNAVAILABLE;
    default: {
      const unreachable: never = known;
      return unreachable ?? status.INTERNAL;
    }
  }
}
