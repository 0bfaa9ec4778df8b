import { SecretsError, SecretsErrorCode } from './secrets.errors.js';

/**
 * Secret names become part of a Redis key and of SCAN patterns: a closed alphabet keeps glob
 * characters, whitespace and control characters out. Starting with a letter or digit also keeps
 * names apart from the service's own bookkeeping keys.
 */
export const SECRET_NAME_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._:/-]{0,127}$/;
const PREFIX_PATTERN = /^[A-Za-z0-9._:/-]{0,127}$/;

export const MAX_SECRET_BYTES = 64 * 1024;

export function assertSecretName(name: string): void {
  if (!SECRET_NAME_PATTERN.test(name)) {
    throw new SecretsError(SecretsErrorCode.InvalidArgument, 'name must be 1..128 of [A-Za-z0-9._:/-], starting with a letter or digit');
  }
}

export function assertNamePrefix(prefix: string): void {
  if (!PREFIX_PATTERN.test(prefix)) throw new SecretsError(SecretsErrorCode.InvalidArgument, 'prefix must be at most 127 of [A-Za-z0-9._:/-]');
}

export function isSecretName(name: string): boolean {
  return SECRET_NAME_PATTERN.test(name);
}
