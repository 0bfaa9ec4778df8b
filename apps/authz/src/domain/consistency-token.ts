import { randomBytes } from 'node:crypto';
import { AuthzError, AuthzErrorCode } from './authz.errors.js';

/**
 * Consistency tokens ("zookies"). OpenFGA has no revision to hand back after a write, so the token
 * records the write time; presenting one asks for an answer at least as fresh as that write, which
 * the service honours by skipping its caches and asking OpenFGA with HIGHER_CONSISTENCY.
 */
const FORMAT = /^ct1\.([0-9a-z]{1,12})\.([A-Za-z0-9_-]{8,32})$/;

export function mintConsistencyToken(now = Date.now()): string {
  return `ct1.${now.toString(36)}.${randomBytes(9).toString('base64url')}`;
}

/** '' → undefined (no freshness asked); a malformed token is INVALID_ARGUMENT, never silently ignored. */
export function parseConsistencyToken(token: string | undefined | null): { writtenAt: number } | undefined {
  if (!token) return undefined;
  const m = FORMAT.exec(token);
  if (!m) throw new AuthzError(AuthzErrorCode.InvalidArgument, 'consistency_token is malformed');
  return { writtenAt: parseInt(m[1]!, 36) };
}
