/**
 * Whether an error that no domain code claimed means "a server we depend on is unreachable or shedding
 * load" (PostgreSQL, Redis, Kafka, another service) rather than a bug. Callers get UNAVAILABLE / 503 for
 * those — retryable, and honest about the cause — instead of INTERNAL / 500. Recognised by the error
 * shapes the clients document (Node system error codes, PostgreSQL SQLSTATE classes, pg pool, ioredis
 * and kafkajs error names), following `cause` chains.
 */
export function isDependencyUnavailable(error: unknown, depth = 0): boolean {
  if (!(error instanceof Error) || depth > 5) return false;
  const code = (error as { code?: unknown }).code;
  if (typeof code === 'string') {
    if (NETWORK_ERROR_CODES.has(code)) return true;
    // SQLSTATE: class 08 connection exception; 57P01-03 shutdown / cannot connect now; 53300 too many connections.
    if (/^08[0-9A-Z]{3}$/.test(code) || /^57P0[123]$/.test(code) || code === '53300') return true;
  }
  if (DEPENDENCY_ERROR_NAMES.has(error.name)) return true;
  if (POOL_MESSAGES.some((m) => m.test(error.message))) return true;
  return isDependencyUnavailable((error as { cause?: unknown }).cause, depth + 1);
}

const NETWORK_ERROR_CODES = new Set(['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EPIPE', 'EHOSTUNREACH', 'ENETUNREACH', 'EAI_AGAIN', 'ECONNABORTED']);

const DEPENDENCY_ERROR_NAMES = new Set([
  'MaxRetriesPerRequestError', // ioredis: the command could not be sent
  'KafkaJSConnectionError',
  'KafkaJSNumberOfRetriesExceeded',
  'KafkaJSRequestTimeoutError',
]);

/** pg and pg-pool report these as plain Errors without a code. */
const POOL_MESSAGES = [/^timeout exceeded when trying to connect$/i, /^Connection terminated\b/i, /^Connection is closed\.?$/i];
