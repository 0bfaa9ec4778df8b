import { DomainError } from '@soma/contracts';

/** Every way a secrets operation can fail, as callers see it. Transports map each code exhaustively. */
export enum SecretsErrorCode {
  Unauthenticated = 'UNAUTHENTICATED',
  PermissionDenied = 'PERMISSION_DENIED',
  InvalidArgument = 'INVALID_ARGUMENT',
  NotFound = 'NOT_FOUND',
  /** PutSecret's expected_version does not match the stored version. */
  VersionConflict = 'VERSION_CONFLICT',
  /** No configured Fernet key opens the stored token (an old key was removed too early). */
  SecretUndecryptable = 'SECRET_UNDECRYPTABLE',
  /** A vault:// or file reference could not be read now. */
  ReferenceUnresolved = 'REFERENCE_UNRESOLVED',
  /** Redis, auth, authz or the security-event buffer cannot serve now. */
  Unavailable = 'UNAVAILABLE',
}

export class SecretsError extends DomainError<SecretsErrorCode> {}
