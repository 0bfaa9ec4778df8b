import { DomainError } from '@soma/contracts';

/** Every way a authz operation can fail, as callers see it. Transports map each code exhaustively. */
export enum AuthzErrorCode {
  Unauthenticated = 'UNAUTHENTICATED',
  PermissionDenied = 'PERMISSION_DENIED',
  NotFound = 'NOT_FOUND',
  Unavailable = 'UNAVAILABLE',
  /** A request that does not decode or validate (bad policy path, input that is not a JSON object…). */
  InvalidArgument = 'INVALID_ARGUMENT',
  /** A relationship call while OpenFGA is disabled or not configured. */
  RelationshipsDisabled = 'RELATIONSHIPS_DISABLED',
  /** Writing or deleting tuples failed at OpenFGA (unreachable, or it refused them). */
  RelationshipWriteFailed = 'RELATIONSHIP_WRITE_FAILED',
  /** A granted decision could not be audited (event buffer full): fail closed. */
  AuditUnavailable = 'AUDIT_UNAVAILABLE',
}

export class AuthzError extends DomainError<AuthzErrorCode> {}
