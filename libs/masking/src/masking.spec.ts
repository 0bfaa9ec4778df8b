import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { randomBytes } from 'node:crypto';
import { maskApiKey, maskEmail, maskFernetKey, maskPersonalData, maskSecretsDeep, maskSecretsInText } from './masking.js';

describe('masking', () => {
  const key = 'sk-soma-AbCdEfGhIjKlMnOpQrStUvWxYz012345';
  it('keeps the first 8 and last 4 characters of an API key', () => {
    expect(maskApiKey(key)).toBe('sk-soma-…2345');
    expect(maskApiKey('short')).toBe('***');
  });
  it('masks bearer tokens, JWTs and API keys inside free text', () => {
    const jwt = 'eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ1In0.c2lnbmF0dXJlc2lnbmF0dXJl';
    const out = maskSecretsInText(`auth=Bearer ${jwt} key=${key} again ${jwt}`);
    expect(out).not.toContain(jwt);
    expect(out).not.toContain('AbCdEfGhIjKlMnOp');
    expect(out).toContain('Bearer ***');
  });
  it('masks e-mail addresses', () => {
    expect(maskEmail('write to alice@example.com now')).toBe('write to a***@example.com now');
  });
  it('redacts secret-named fields at any depth and survives cycles', () => {
    const obj: Record<string, unknown> = { user: 'u1', nested: { password: 'hunter2', db_password: 'x', list: [{ token: 't' }] } };
    obj['self'] = obj;
    const out = JSON.stringify(maskSecretsDeep(obj));
    expect(out).not.toContain('hunter2');
    expect(out).toContain('[redacted]');
    expect(out).toContain('[cycle]');
    expect(out).toContain('u1');
  });
  it('masks personal data in details', () => {
    expect(maskPersonalData({ email: 'bob@corp.io', api_key: key })).toEqual({ email: 'b***@corp.io', api_key: '[redacted]' });
  });
  it('masks Fernet keys and Fernet tokens inside free text, key lists included', () => {
    const k1 = `${randomBytes(32).toString('base64url')}=`;
    const k2 = `${randomBytes(32).toString('base64url')}=`;
    const token = `gAAAAA${randomBytes(60).toString('base64url')}==`;
    const out = maskSecretsInText(`FERNET_KEY=${k1},${k2} stored ${token} (key "${k1}")`);
    expect(out).not.toContain(k1.slice(0, 43));
    expect(out).not.toContain(k2.slice(0, 43));
    expect(out).not.toContain(token.slice(6, 40));
    expect(out).toBe('FERNET_KEY=[fernet-key],[fernet-key] stored [fernet-token] (key "[fernet-key]")');
    expect(maskFernetKey(k1)).toBe('[fernet-key]');
  });
  it('leaves text that only resembles a Fernet key alone', () => {
    const unpadded = randomBytes(32).toString('base64url');
    const longer = `${randomBytes(40).toString('base64url')}=`;
    expect(maskSecretsInText(`id ${unpadded} and ${longer}`)).toBe(`id ${unpadded} and ${longer}`);
  });
});

describe('maskPersonalData fast path', () => {
  // The general path as it was before the plain-JSON walk: the oracle.
  const reference = (value: unknown) => JSON.parse(JSON.stringify(maskSecretsDeep(value) ?? null, (_k, v) => (typeof v === 'string' ? maskEmail(v) : v)));
  const key = 'sk-soma-AbCdEfGhIjKlMnOpQrStUvWxYz012345';
  const text = fc.oneof(
    fc.string(),
    fc.constantFrom('alice@example.com', `key ${key}`, 'Bearer abc.def', 'eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ1In0.c2ln', 'x=1', 'BASIC zz', `${'A'.repeat(43)}=`),
  );
  const json = fc.letrec((tie) => ({
    value: fc.oneof({ depthSize: 'small' }, text, fc.integer(), fc.double(), fc.boolean(), fc.constant(null), fc.constant(undefined), tie('array'), tie('object')),
    array: fc.array(tie('value'), { maxLength: 4 }),
    object: fc.dictionary(fc.oneof(fc.string(), fc.constantFrom('password', 'token', 'email', 'api_key', 'note')), tie('value'), { maxKeys: 4 }),
  })).value;

  it('gives exactly what the general path gives, for any JSON-like value', () => {
    fc.assert(
      fc.property(json, (v) => {
        expect(JSON.stringify(maskPersonalData(v))).toBe(JSON.stringify(reference(v)));
      }),
      { numRuns: 2000 },
    );
  });

  it('leaves Dates, deep nesting and cycles to the general path', () => {
    const when = new Date(0);
    expect(maskPersonalData({ when })).toEqual(reference({ when })); // as before: a Date has no own fields
    const deep: Record<string, unknown> = {};
    let cur = deep;
    for (let i = 0; i < 12; i++) cur = (cur['n'] = {}) as Record<string, unknown>;
    expect(JSON.stringify(maskPersonalData(deep))).toContain('[depth]');
  });
});
