import { DomainError } from '@soma/contracts';

/** Every way a auth operation can fail, as callers see it. Transports map each code exhaustively. */
export enum AuthErrorCode {
  Unauthenticated = 'UNAUTHENTICATED',
  PermissionDenied = 'PERMISSION_DENIED',
  NotFound = 'NOT_FOUND',
  Unavailable = 'UNAVAILABLE',
}

export class AuthError extends DomainError<AuthErrorCode> {}
