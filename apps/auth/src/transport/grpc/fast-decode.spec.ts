import 'reflect-metadata';
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { decodeInput } from '@soma/service-runtime';
import { AuthenticateDto, VerifyApiKeyDto, VerifyTokenDto } from '../dto.js';
import { decodeAuthenticate, decodeVerifyApiKey, decodeVerifyToken, fastOnly } from './fast-decode.js';

type Outcome = { ok: true; cls: unknown; value: unknown } | { ok: false; error: string };
function outcome(f: () => object): Outcome {
  try {
    const v = f();
    return { ok: true, cls: v.constructor, value: { ...v } };
  } catch (e) {
    return { ok: false, error: `${(e as Error).name}: ${(e as Error).message}` };
  }
}

const cases = [
  { name: 'VerifyToken', dto: VerifyTokenDto, decode: decodeVerifyToken, fastPath: fastOnly.verifyToken, field: 'token', max: 65_536 },
  { name: 'VerifyApiKey', dto: VerifyApiKeyDto, decode: decodeVerifyApiKey, fastPath: fastOnly.verifyApiKey, field: 'key', max: 1024 },
  { name: 'Authenticate', dto: AuthenticateDto, decode: decodeAuthenticate, fastPath: fastOnly.authenticate, field: 'bearer', max: 65_536 },
] as const;

const anyValue = fc.oneof(
  fc.string(), fc.constant(''), fc.integer(), fc.boolean(), fc.constant(null), fc.constant(undefined),
  fc.array(fc.string(), { maxLength: 3 }), fc.array(fc.oneof(fc.string(), fc.integer(), fc.constant(null)), { maxLength: 3 }),
  fc.constantFrom('10.0.0.1', '::1', '2001:db8::1', 'fe80::1%eth0', '010.0.0.1', '1.2.3', 'not-an-ip', '256.1.1.1', ' 10.0.0.1'),
  fc.object({ maxDepth: 1 }),
);

describe('auth hot-path request decoding agrees with decodeInput', () => {
  for (const c of cases) {
    it(`${c.name}: same instance or the same INVALID_ARGUMENT for arbitrary payloads`, { timeout: 60_000 }, () => {
      const keys = [c.field, 'required_scopes', 'ip_address', 'user_agent', 'extra', '__proto__', 'constructor'];
      fc.assert(
        fc.property(fc.dictionary(fc.constantFrom(...keys), anyValue, { maxKeys: 4 }), (payload) => {
          expect(outcome(() => c.decode(payload))).toEqual(outcome(() => decodeInput(c.dto as new () => object, payload)));
        }),
        { numRuns: 500 },
      );
    });

    it(`${c.name}: well-formed requests take the fast path, limits and hostile shapes go to decodeInput`, () => {
      const good = { [c.field]: 'x'.repeat(c.max), required_scopes: ['a', 'b'] };
      expect(c.fastPath(good)).toBeInstanceOf(c.dto);
      expect(outcome(() => c.decode(good))).toEqual(outcome(() => decodeInput(c.dto as new () => object, good)));
      for (const bad of [
        { [c.field]: 'x'.repeat(c.max + 1) },
        { [c.field]: 1 },
        {},
        { [c.field]: 't', required_scopes: Array.from({ length: 101 }, () => 's') },
        { [c.field]: 't', required_scopes: [1] },
        { [c.field]: 't', required_scopes: 'a' },
        { [c.field]: 't', unexpected: 1 },
        JSON.parse(`{"${c.field}":"t","__proto__":{"x":1}}`),
        Object.create({ [c.field]: 't' }),
        null, [], 'str', 42,
      ]) {
        expect(c.fastPath(bad)).toBeUndefined();
        expect(outcome(() => c.decode(bad))).toEqual(outcome(() => decodeInput(c.dto as new () => object, bad)));
      }
    });
  }

  it('Authenticate: ip_address is checked by class-validator isIP, empty string allowed', () => {
    for (const ip of ['', '10.1.2.3', '::ffff:10.1.2.3', 'fe80::1%eth0', '1.2.3.4.5', 'localhost', 'x'.repeat(65)]) {
      const p = { bearer: 't', ip_address: ip, user_agent: 'ua' };
      expect(outcome(() => decodeAuthenticate(p))).toEqual(outcome(() => decodeInput(AuthenticateDto, p)));
    }
  });
});
