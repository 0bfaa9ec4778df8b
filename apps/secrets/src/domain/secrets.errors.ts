import { DomainError } from '@soma/contracts';

/** Every way a secrets operation can fail, as callers see it. Transports map each code exhaustively. */
export enum SecretsErrorCode {
  Unauthenticated = 'UNAUTHENTICATED',
  PermissionDenied = 'PERMISSION_DENIED',
  NotFound = 'NOT_FOUND',
  Unavailable = 'UNAVAILABLE',
}

export class SecretsError extends DomainError<SecretsErrorCode> {}
