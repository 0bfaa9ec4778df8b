import { DomainError } from '@soma/contracts';

/** Every way a retention operation can fail, as callers see it. Transports map each code exhaustively. */
export enum RetentionErrorCode {
  Unauthenticated = 'UNAUTHENTICATED',
  PermissionDenied = 'PERMISSION_DENIED',
  InvalidArgument = 'INVALID_ARGUMENT',
  NotFound = 'NOT_FOUND',
  UnknownPolicy = 'UNKNOWN_POLICY',
  PolicyBusy = 'POLICY_BUSY',
  AuditKeyUnavailable = 'AUDIT_KEY_UNAVAILABLE',
  ExportTooLarge = 'EXPORT_TOO_LARGE',
  AuditUnavailable = 'AUDIT_UNAVAILABLE',
  AuthUnavailable = 'AUTH_UNAVAILABLE',
  Unavailable = 'UNAVAILABLE',
}

export class RetentionError extends DomainError<RetentionErrorCode> {}
