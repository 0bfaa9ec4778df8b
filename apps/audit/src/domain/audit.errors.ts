import { DomainError } from '@soma/contracts';

/** Every way an audit operation can fail, as callers see it. Transports map each code exhaustively. */
export enum AuditErrorCode {
  Unauthenticated = 'UNAUTHENTICATED',
  PermissionDenied = 'PERMISSION_DENIED',
  NotFound = 'NOT_FOUND',
  Unavailable = 'UNAVAILABLE',
  /** A query that cannot be answered as asked (bad range, user without tenant, page size). */
  InvalidQuery = 'INVALID_QUERY',
  /** A page token that was not issued by this API or does not decode. */
  InvalidPageToken = 'INVALID_PAGE_TOKEN',
  /** The read's own `audit_log_accessed` event could not be buffered: the read is refused, not done unrecorded. */
  AuditUnavailable = 'AUDIT_UNAVAILABLE',
}

export class AuditError extends DomainError<AuditErrorCode> {}
