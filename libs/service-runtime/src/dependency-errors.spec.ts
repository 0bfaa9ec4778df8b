import { describe, expect, it } from 'vitest';
import { isDependencyUnavailable } from './dependency-errors.js';

const withCode = (message: string, code: string) => Object.assign(new Error(message), { code });
const named = (name: string, message = 'x') => Object.assign(new Error(message), { name });

describe('isDependencyUnavailable', () => {
  it('recognises unreachable servers and shedding databases', () => {
    expect(isDependencyUnavailable(withCode('connect ECONNREFUSED 127.0.0.1:5432', 'ECONNREFUSED'))).toBe(true);
    expect(isDependencyUnavailable(withCode('terminating connection due to administrator command', '57P01'))).toBe(true);
    expect(isDependencyUnavailable(withCode('connection failure', '08006'))).toBe(true);
    expect(isDependencyUnavailable(withCode('sorry, too many clients already', '53300'))).toBe(true);
    expect(isDependencyUnavailable(new Error('timeout exceeded when trying to connect'))).toBe(true);
    expect(isDependencyUnavailable(new Error('Connection terminated due to connection timeout'))).toBe(true);
    expect(isDependencyUnavailable(named('MaxRetriesPerRequestError'))).toBe(true);
    expect(isDependencyUnavailable(named('KafkaJSConnectionError'))).toBe(true);
    expect(isDependencyUnavailable(new Error('query failed', { cause: withCode('read ECONNRESET', 'ECONNRESET') }))).toBe(true);
  });

  it('leaves bugs and data errors alone', () => {
    expect(isDependencyUnavailable(new TypeError("Cannot read properties of undefined (reading 'x')"))).toBe(false);
    expect(isDependencyUnavailable(withCode('duplicate key value violates unique constraint', '23505'))).toBe(false);
    expect(isDependencyUnavailable(withCode('syntax error at or near "x"', '42601'))).toBe(false);
    expect(isDependencyUnavailable('ECONNREFUSED')).toBe(false);
    expect(isDependencyUnavailable(undefined)).toBe(false);
  });
});
