import { status } from '@grpc/grpc-js';
import { AuditErrorCode } from '../../domain/audit.errors.js';

/** The one mapping of audit error codes to gRPC status codes. Exhaustive: a new code fails to compile here. */
export function grpcStatusOf(code: string): status {
  const known = code as AuditErrorCode;
  switch (known) {
    case AuditErrorCode.Unauthenticated:
      return status.UNAUTHENTICATED;
    case AuditErrorCode.PermissionDenied:
      return status.PERMISSION_DENIED;
    case AuditErrorCode.NotFound:
      return status.NOT_FOUND;
    case AuditErrorCode.Unavailable:
    case AuditErrorCode.AuditUnavailable:
      return status.UNAVAILABLE;
    case AuditErrorCode.InvalidQuery:
    case AuditErrorCode.InvalidPageToken:
      return status.INVALID_ARGUMENT;
    default: {
      const unreachable: never = known;
      return unreachable ?? status.INTERNAL;
    }
  }
}
