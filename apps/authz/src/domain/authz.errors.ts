import { DomainError } from '@soma/contracts';

/** Every way a authz operation can fail, as callers see it. Transports map each code exhaustively. */
export enum AuthzErrorCode {
  Unauthenticated = 'UNAUTHENTICATED',
  PermissionDenied = 'PERMISSION_DENIED',
  NotFound = 'NOT_FOUND',
  Unavailable = 'UNAVAILABLE',
}

export class AuthzError extends DomainError<AuthzErrorCode> {}
