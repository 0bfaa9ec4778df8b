import { DomainError } from '@soma/contracts';

/** Every way a retention operation can fail, as callers see it. Transports map each code exhaustively. */
export enum RetentionErrorCode {
  Unauthenticated = 'UNAUTHENTICATED',
  PermissionDenied = 'PERMISSION_DENIED',
  NotFound = 'NOT_FOUND',
  Unavailable = 'UNAVAILABLE',
}

export class RetentionError extends DomainError<RetentionErrorCode> {}
