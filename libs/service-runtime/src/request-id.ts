import { randomUUID } from 'node:crypto';

const SAFE_REQUEST_ID = /^[A-Za-z0-9._-]{8,64}$/;

/** Use the caller's request id when it is well-formed (so logs join up), otherwise mint one. */
export function requestIdFrom(candidate: unknown): string {
  const value = Array.isArray(candidate) ? candidate[0] : candidate;
  return typeof value === 'string' && SAFE_REQUEST_ID.test(value) ? value : randomUUID();
}
