import { DomainError } from '@soma/contracts';

/** Every way a audit operation can fail, as callers see it. Transports map each code exhaustively. */
export enum AuditErrorCode {
  Unauthenticated = 'UNAUTHENTICATED',
  PermissionDenied = 'PERMISSION_DENIED',
  NotFound = 'NOT_FOUND',
  Unavailable = 'UNAVAILABLE',
}

export class AuditError extends DomainError<AuditErrorCode> {}
