import { DomainError } from '@soma/contracts';

/** Every way an auth operation can fail, as callers see it. Transports map each code exhaustively. */
export enum AuthErrorCode {
  /** Malformed, unsigned, wrongly signed, unknown kid, forbidden header, wrong iss/aud, missing claims, oversized. */
  InvalidToken = 'INVALID_TOKEN',
  TokenExpired = 'TOKEN_EXPIRED',
  TokenNotYetValid = 'TOKEN_NOT_YET_VALID',
  TokenRevoked = 'TOKEN_REVOKED',
  /** A bearer that is neither a JWT nor an API key of this deployment, or an unknown API key. */
  InvalidCredential = 'INVALID_CREDENTIAL',
  MissingCredential = 'MISSING_CREDENTIAL',
  ApiKeyRevoked = 'API_KEY_REVOKED',
  ApiKeyExpired = 'API_KEY_EXPIRED',
  ApiKeyRateLimited = 'API_KEY_RATE_LIMITED',
  ApiKeyUsageExceeded = 'API_KEY_USAGE_EXCEEDED',
  InsufficientScope = 'INSUFFICIENT_SCOPE',
  PermissionDenied = 'PERMISSION_DENIED',
  InvalidArgument = 'INVALID_ARGUMENT',
  NotFound = 'NOT_FOUND',
  BadPassword = 'BAD_CREDENTIALS',
  LoginLocked = 'LOGIN_LOCKED',
  LoginRateLimited = 'LOGIN_RATE_LIMITED',
  LoginDisabled = 'LOGIN_DISABLED',
  /** Redis (deny-list, key store, limits) could not answer: verification fails closed. */
  Unavailable = 'UNAVAILABLE',
}

export class AuthError extends DomainError<AuthErrorCode> {}
