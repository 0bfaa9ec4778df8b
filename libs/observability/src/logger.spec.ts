import { Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { createLogger } from './logger.js';

function capture() {
  const lines: string[] = [];
  const destination = new Writable({
    write(chunk, _enc, cb) {
      lines.push(String(chunk));
      cb();
    },
  });
  return { lines, logger: createLogger({ service: 'test', level: 'debug', destination }) };
}

describe('log redaction', () => {
  const apiKey = 'sk-soma-AbCdEfGhIjKlMnOpQrStUvWxYz012345';
  const jwt = 'eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJhbGljZSJ9.Zm9vYmFyYmF6cXV4cXV1eA';

  it('removes secret fields by name, at the top level and nested', () => {
    const { lines, logger } = capture();
    logger.info({ password: 'hunter2-hunter2', user: { token: 'tok-123456', name: 'bob' }, req: { headers: { authorization: `Bearer ${jwt}` } } }, 'login');
    const out = lines.join('');
    expect(out).not.toContain('hunter2');
    expect(out).not.toContain('tok-123456');
    expect(out).not.toContain(jwt);
    expect(out).toContain('bob');
    expect(JSON.parse(lines[0]!).service).toBe('test');
  });

  it('masks credential-shaped strings in messages and free fields', () => {
    const { lines, logger } = capture();
    logger.warn({ note: `caller sent ${apiKey}` }, `verify failed for Bearer ${jwt} and ${apiKey}`);
    const out = lines.join('');
    expect(out).not.toContain(jwt);
    expect(out).not.toContain('AbCdEfGhIjKlMnOpQrSt');
    expect(out).toContain('sk-soma-…2345');
  });

  it('masks secrets inside logged errors', () => {
    const { lines, logger } = capture();
    logger.error({ err: new Error(`bad key ${apiKey}`) }, 'boom');
    expect(lines.join('')).not.toContain('AbCdEfGhIjKlMnOpQrSt');
  });
});
