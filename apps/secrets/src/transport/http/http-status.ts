import { SecretsErrorCode } from '../../domain/secrets.errors.js';

/** The one mapping of secrets error codes to HTTP status codes. Exhaustive: a new code fails to compile here. */
export function httpStatusOf(code: string): number {
  const known = code as SecretsErrorCode;
  switch (known) {
    case SecretsErrorCode.Unauthenticated:
      return 401;
    case SecretsErrorCode.PermissionDenied:
      return 403;
    case SecretsErrorCode.InvalidArgument:
      return 400;
    case SecretsErrorCode.NotFound:
      return 404;
    case SecretsErrorCode.VersionConflict:
    case SecretsErrorCode.SecretUndecryptable:
      return 409;
    case SecretsErrorCode.ReferenceUnresolved:
    case SecretsErrorCode.Unavailable:
      return 503;
    default: {
      const unreachable: never = known;
      return unreachable ?? 500;
    }
  }
}
