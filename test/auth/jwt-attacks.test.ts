import { createHmac, createPrivateKey, generateKeyPairSync, randomUUID, sign as rsaSign, type KeyObject } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { status } from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AuthClient, AuthClientError } from '@soma/auth-client';
import { startAuthHarness, type AuthHarness } from '../support/auth-harness.js';

const b64 = (v: unknown) => Buffer.from(typeof v === 'string' ? v : JSON.stringify(v)).toString('base64url');

function hs(header: Record<string, unknown>, claims: Record<string, unknown>, key: KeyObject | Buffer | string): string {
  const input = `${b64(header)}.${b64(claims)}`;
  const secret = typeof key === 'string' || Buffer.isBuffer(key) ? key : key.export();
  return `${input}.${createHmac('sha256', secret).update(input).digest('base64url')}`;
}

function rs(header: Record<string, unknown>, claims: Record<string, unknown>, key: KeyObject): string {
  const input = `${b64(header)}.${b64(claims)}`;
  return `${input}.${rsaSign('sha256', Buffer.from(input), key).toString('base64url')}`;
}

async function rejection(client: AuthClient, token: string): Promise<AuthClientError> {
  try {
    await client.verifyToken(token);
  } catch (e) {
    return e as AuthClientError;
  }
  throw new Error('token was accepted');
}

describe('JWT verification rejects every attack (HS256 instance)', () => {
  let h: AuthHarness;
  let client: AuthClient;
  let kid: string;
  let key: KeyObject;
  const tenant = `t-${randomUUID()}`;
  const now = () => Math.floor(Date.now() / 1000);
  const claims = (extra: Record<string, unknown> = {}) => ({ sub: 'mallory', tenant, jti: randomUUID(), iss: 'soma-auth', aud: 'soma', iat: now(), nbf: now(), exp: now() + 600, ...extra });
  const header = (extra: Record<string, unknown> = {}) => ({ alg: 'HS256', kid, typ: 'JWT', ...extra });

  beforeAll(async () => {
    h = await startAuthHarness({ env: { JWT_CLOCK_SKEW_SECONDS: '30', JWT_MAX_TOKEN_BYTES: '4096' } });
    client = h.client();
    ({ kid, key } = h.runtime.keyring.signingKey());
  });
  afterAll(async () => {
    await h?.stop();
  });

  it('control: a correctly forged-by-us token verifies (so every rejection below is about the one change)', async () => {
    const p = await client.verifyToken(hs(header(), claims(), key));
    expect(p).toMatchObject({ sub: 'mallory', tenant, method: 'jwt' });
  });

  it('every issued token carries a kid', async () => {
    const { token } = await h.issueToken({ tenant, sub: 'alice' });
    expect(JSON.parse(Buffer.from(token.split('.')[0]!, 'base64url').toString())).toMatchObject({ alg: 'HS256', kid, typ: 'JWT' });
  });

  for (const alg of ['none', 'None', 'NONE', 'nOnE']) {
    it(`rejects alg "${alg}" (unsigned)`, async () => {
      const e = await rejection(client, `${b64({ alg, kid, typ: 'JWT' })}.${b64(claims())}.`);
      expect(e.code).toBe(status.UNAUTHENTICATED);
      expect(e.reason).toBe('INVALID_TOKEN');
    });
    it(`rejects alg "${alg}" with a signature attached`, async () => {
      const good = hs(header(), claims(), key).split('.')[2];
      const e = await rejection(client, `${b64({ alg, kid })}.${b64(claims())}.${good}`);
      expect(e.reason).toBe('INVALID_TOKEN');
    });
  }

  it('rejects an RS256 token on an HS256 deployment (algorithm not pinned)', async () => {
    const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
    const e = await rejection(client, rs({ alg: 'RS256', kid, typ: 'JWT' }, claims(), privateKey));
    expect(e.reason).toBe('INVALID_TOKEN');
  });

  it('rejects HS384/HS512 signed with the right key (only HS256 is pinned)', async () => {
    const input = `${b64({ alg: 'HS512', kid })}.${b64(claims())}`;
    const e = await rejection(client, `${input}.${createHmac('sha512', key.export()).update(input).digest('base64url')}`);
    expect(e.reason).toBe('INVALID_TOKEN');
  });

  it('rejects an unknown kid', async () => {
    expect((await rejection(client, hs(header({ kid: 'hs256-unknown-kid' }), claims(), key))).reason).toBe('INVALID_TOKEN');
  });

  it('rejects a missing kid', async () => {
    expect((await rejection(client, hs({ alg: 'HS256', typ: 'JWT' }, claims(), key))).reason).toBe('INVALID_TOKEN');
  });

  it('rejects an unknown crit header', async () => {
    expect((await rejection(client, hs(header({ crit: ['x-soma-extension'], 'x-soma-extension': 1 }), claims(), key))).reason).toBe('INVALID_TOKEN');
  });

  it('rejects crit naming a registered header (crit is never honoured)', async () => {
    expect((await rejection(client, hs(header({ crit: ['exp'] }), claims(), key))).reason).toBe('INVALID_TOKEN');
  });

  it('rejects a jku header (never fetched)', async () => {
    expect((await rejection(client, hs(header({ jku: 'https://attacker.example/jwks.json' }), claims(), key))).reason).toBe('INVALID_TOKEN');
  });

  it('rejects an x5u header (never fetched)', async () => {
    expect((await rejection(client, hs(header({ x5u: 'https://attacker.example/cert.pem' }), claims(), key))).reason).toBe('INVALID_TOKEN');
  });

  it('rejects an embedded jwk header signed with the attacker key', async () => {
    const attacker = Buffer.from('attacker-controlled-secret-of-32-bytes!!');
    const token = hs(header({ jwk: { kty: 'oct', k: attacker.toString('base64url') } }), claims(), attacker);
    expect((await rejection(client, token)).reason).toBe('INVALID_TOKEN');
  });

  it('rejects an x5c header', async () => {
    expect((await rejection(client, hs(header({ x5c: ['MIIB'] }), claims(), key))).reason).toBe('INVALID_TOKEN');
  });

  it('rejects a bad signature', async () => {
    const t = hs(header(), claims(), key);
    const sig = t.split('.')[2]!;
    const flipped = (sig[0] === 'A' ? 'B' : 'A') + sig.slice(1);
    expect((await rejection(client, `${t.split('.').slice(0, 2).join('.')}.${flipped}`)).reason).toBe('INVALID_TOKEN');
  });

  it('rejects a missing signature', async () => {
    const t = hs(header(), claims(), key);
    expect((await rejection(client, `${t.split('.').slice(0, 2).join('.')}.`)).reason).toBe('INVALID_TOKEN');
  });

  it('rejects a signature by another secret', async () => {
    expect((await rejection(client, hs(header(), claims(), Buffer.alloc(32, 7)))).reason).toBe('INVALID_TOKEN');
  });

  it('rejects a payload changed after signing (tenant swap)', async () => {
    const t = hs(header(), claims(), key).split('.');
    expect((await rejection(client, `${t[0]}.${b64(claims({ tenant: 'victim' }))}.${t[2]}`)).reason).toBe('INVALID_TOKEN');
  });

  it('rejects an expired token (exp past, beyond the skew)', async () => {
    const e = await rejection(client, hs(header(), claims({ iat: now() - 7200, nbf: now() - 7200, exp: now() - 31 }), key));
    expect(e.reason).toBe('TOKEN_EXPIRED');
  });

  it('accepts exp within the configured skew (30 s)', async () => {
    await expect(client.verifyToken(hs(header(), claims({ iat: now() - 600, nbf: now() - 600, exp: now() - 10 }), key))).resolves.toMatchObject({ tenant });
  });

  it('rejects nbf in the future beyond the skew', async () => {
    expect((await rejection(client, hs(header(), claims({ nbf: now() + 120 }), key))).reason).toBe('TOKEN_NOT_YET_VALID');
  });

  it('rejects iat in the future beyond the skew', async () => {
    expect((await rejection(client, hs(header(), claims({ iat: now() + 120 }), key))).reason).toBe('TOKEN_NOT_YET_VALID');
  });

  it('rejects a wrong iss', async () => {
    expect((await rejection(client, hs(header(), claims({ iss: 'evil-issuer' }), key))).reason).toBe('INVALID_TOKEN');
  });

  it('rejects a wrong aud', async () => {
    expect((await rejection(client, hs(header(), claims({ aud: 'another-api' }), key))).reason).toBe('INVALID_TOKEN');
  });

  for (const claim of ['exp', 'sub', 'tenant', 'iss', 'aud', 'jti']) {
    it(`rejects a token without ${claim}`, async () => {
      const c: Record<string, unknown> = claims();
      delete c[claim];
      expect((await rejection(client, hs(header(), c, key))).reason).toBe('INVALID_TOKEN');
    });
  }

  it('rejects non-numeric exp', async () => {
    expect((await rejection(client, hs(header(), claims({ exp: String(now() + 600) }), key))).reason).toBe('INVALID_TOKEN');
  });

  it('rejects malformed tokens (parts, encoding, JSON)', async () => {
    const good = hs(header(), claims(), key);
    const [p0, p1, p2] = good.split('.');
    const samples = [
      'not-a-jwt',
      `${p0}.${p1}`,
      `${good}.extra`,
      `${p0}=.${p1}.${p2}`,
      `${p0}.${p1}.${p2}==`,
      `${b64('{"alg":"HS256",')}.${p1}.${p2}`,
      hs(header(), 'not json' as unknown as Record<string, unknown>, key),
      hs(header(), [1, 2] as unknown as Record<string, unknown>, key),
      ` ${good}`,
    ];
    for (const s of samples) expect((await rejection(client, s)).reason, s.slice(0, 40)).toBe('INVALID_TOKEN');
  });

  it('rejects an oversized token before parsing', async () => {
    const e = await rejection(client, hs(header(), claims({ pad: 'x'.repeat(5000) }), key));
    expect(e.reason).toBe('INVALID_TOKEN');
  });

  it('rejects a revoked token', async () => {
    const { token, jti } = await h.issueToken({ tenant, sub: 'bob' });
    await client.verifyToken(token);
    await h.client({ adminCredential: await h.adminToken() }).revokeToken({ tenant, jti });
    expect((await rejection(client, token)).reason).toBe('TOKEN_REVOKED');
  });

  it('answers failures with a reason code only (no hint which part failed)', async () => {
    const e = await rejection(client, hs(header(), claims({ aud: 'x' }), key));
    expect(e.message).not.toMatch(/aud|audience|signature|kid/i);
  });
});

describe('JWT verification rejects HS/RS key confusion (RS256 instance)', () => {
  let h: AuthHarness;
  let dir: string;
  let client: AuthClient;
  const tenant = `t-${randomUUID()}`;
  const now = () => Math.floor(Date.now() / 1000);

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'soma-auth-rs-'));
    const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
    const file = join(dir, 'jwt.rsa.pem');
    writeFileSync(file, privateKey.export({ format: 'pem', type: 'pkcs8' }), { mode: 0o600 });
    h = await startAuthHarness({ env: { JWT_ALGORITHM: 'RS256', JWT_PRIVATE_KEY_FILE: file } });
    client = h.client();
  });
  afterAll(async () => {
    await h?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('issues RS256 tokens with a kid and publishes the public key as JWKS', async () => {
    const { token } = await h.issueToken({ tenant, sub: 'alice' });
    const hdr = JSON.parse(Buffer.from(token.split('.')[0]!, 'base64url').toString());
    expect(hdr.alg).toBe('RS256');
    const jwks = (await (await fetch(`${h.httpUrl}/.well-known/jwks.json`)).json()) as { keys: Array<Record<string, string>> };
    expect(jwks.keys.map((k) => k.kid)).toContain(hdr.kid);
    expect(jwks.keys.every((k) => k.kty === 'RSA' && !('d' in k) && !('p' in k))).toBe(true);
    await expect(client.verifyToken(token)).resolves.toMatchObject({ sub: 'alice' });
  });

  it('rejects an HS256 token MACed with the RS256 public key (alg confusion)', async () => {
    const { kid } = h.runtime.keyring.signingKey();
    const jwks = (await (await fetch(`${h.httpUrl}/.well-known/jwks.json`)).json()) as { keys: Array<Record<string, string>> };
    const jwk = jwks.keys.find((k) => k.kid === kid)!;
    const { createPublicKey } = await import('node:crypto');
    const pem = createPublicKey({ key: jwk as never, format: 'jwk' }).export({ format: 'pem', type: 'spki' }) as string;
    const c = { sub: 'mallory', tenant, jti: randomUUID(), iss: 'soma-auth', aud: 'soma', iat: now(), exp: now() + 600 };
    for (const secret of [pem, pem.trim(), JSON.stringify(jwk)]) {
      const e = await rejection(client, hs({ alg: 'HS256', kid, typ: 'JWT' }, c, secret));
      expect(e.reason).toBe('INVALID_TOKEN');
    }
  });

  it('rejects an RS256 token signed by a key not in the keyring, even with a known kid', async () => {
    const { kid } = h.runtime.keyring.signingKey();
    const other = createPrivateKey(generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey.export({ format: 'pem', type: 'pkcs8' }));
    const c = { sub: 'mallory', tenant, jti: randomUUID(), iss: 'soma-auth', aud: 'soma', iat: now(), exp: now() + 600 };
    expect((await rejection(client, rs({ alg: 'RS256', kid }, c, other))).reason).toBe('INVALID_TOKEN');
  });
});
