import { createPublicKey, generateKeyPairSync, randomUUID, verify as rsaVerify } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startAuthHarness, type AuthHarness } from '../support/auth-harness.js';
import { waitFor } from '../support/wait.js';

const decode = (part: string) => JSON.parse(Buffer.from(part, 'base64url').toString('utf8')) as Record<string, unknown>;

describe('issued tokens and keys: claims and formats', () => {
  let h: AuthHarness;
  beforeAll(async () => {
    h = await startAuthHarness({ env: { API_KEY_PREFIX: 'sk-acme-' } });
  });
  afterAll(async () => {
    await h?.stop();
  });

  it('a JWT carries sub, tenant, persona_id (default "default"), exp, iat, jti, iss, aud, nbf and a kid; default lifetime 3600 s', async () => {
    const admin = h.client({ adminCredential: await h.adminToken() });
    const t = await admin.issueToken({ tenant: 'acme', sub: 'alice', scopes: ['a:b', 'c'] });
    const [header, payload] = t.token.split('.') as [string, string];
    expect(decode(header)).toEqual({ alg: 'HS256', kid: t.kid, typ: 'JWT' });
    const c = decode(payload);
    expect(c).toMatchObject({ sub: 'alice', tenant: 'acme', persona_id: 'default', iss: 'soma-auth', aud: 'soma', jti: t.jti, scope: 'a:b c' });
    expect(c['exp']).toBe((c['iat'] as number) + 3600);
    expect(c['nbf']).toBe(c['iat']);
    const withPersona = await admin.issueToken({ tenant: 'acme', sub: 'alice', personaId: 'helper', ttlSeconds: 120 });
    const c2 = decode(withPersona.token.split('.')[1]!);
    expect(c2).toMatchObject({ persona_id: 'helper' });
    expect((c2['exp'] as number) - (c2['iat'] as number)).toBe(120);
    await expect(admin.issueToken({ tenant: 'acme', sub: 'alice', ttlSeconds: 86_400 * 2 })).rejects.toMatchObject({ reason: 'INVALID_ARGUMENT' });
  });

  it('the API key prefix is configurable (API_KEY_PREFIX); other prefixes are not keys of this deployment', async () => {
    const { key } = await h.createApiKey({ tenant: 'acme', name: 'p' });
    expect(key).toMatch(/^sk-acme-[0-9A-Za-z]{32}$/);
    const c = h.client();
    expect((await c.verifyApiKey(key)).result).toBe('VALID');
    await expect(c.authenticate(`Bearer ${key}`)).resolves.toMatchObject({ method: 'api_key' });
    expect((await c.verifyApiKey(`sk-soma-${key.slice(8)}`)).result).toBe('NOT_FOUND');
  });
});

describe('RS256: JWKS, rotation across instances', () => {
  let a: AuthHarness;
  let b: AuthHarness;
  let dir: string;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'soma-auth-rs-rot-'));
    const file = join(dir, 'jwt.pem');
    writeFileSync(file, generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey.export({ format: 'pem', type: 'pkcs8' }), { mode: 0o600 });
    const prefix = `test:auth:${randomUUID()}:`;
    const env = { JWT_ALGORITHM: 'RS256', JWT_PRIVATE_KEY_FILE: file };
    a = await startAuthHarness({ redisPrefix: prefix, env });
    b = await startAuthHarness({ redisPrefix: prefix, env });
  });
  afterAll(async () => {
    await a?.stop();
    await b?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('GET /.well-known/jwks.json publishes public keys only; any RS256 verifier can check a token with it', async () => {
    const { token } = await a.issueToken({ tenant: 'acme', sub: 'alice' });
    const res = await fetch(`${a.httpUrl}/.well-known/jwks.json`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toContain('application/json');
    const jwks = (await res.json()) as { keys: Array<Record<string, string>> };
    const [h64, p64, s64] = token.split('.') as [string, string, string];
    const jwk = jwks.keys.find((k) => k.kid === decode(h64)['kid'])!;
    expect(jwk).toMatchObject({ kty: 'RSA', alg: 'RS256', use: 'sig' });
    expect(Object.keys(jwk).filter((k) => ['d', 'p', 'q', 'dp', 'dq', 'qi'].includes(k))).toEqual([]);
    const pub = createPublicKey({ key: jwk as never, format: 'jwk' });
    expect(rsaVerify('sha256', Buffer.from(`${h64}.${p64}`), pub, Buffer.from(s64, 'base64url'))).toBe(true);
  });

  it('after a rotation on A, B signs with the new key, both kids are in the JWKS, and old tokens keep verifying', async () => {
    const old = await a.issueToken({ tenant: 'acme', sub: 'before' });
    const oldKid = decode(old.token.split('.')[0]!)['kid'];
    const rotated = await a.client({ adminCredential: await a.adminToken() }).rotateSigningKey();
    const newKid = rotated.signing_key.kid;
    await waitFor(() => b.runtime.keyring.signingKey().kid === newKid, { what: 'B to load the rotated RS256 key' });
    const fresh = await b.issueToken({ tenant: 'acme', sub: 'after' });
    expect(decode(fresh.token.split('.')[0]!)['kid']).toBe(newKid);
    for (const h of [a, b]) {
      const jwks = (await (await fetch(`${h.httpUrl}/.well-known/jwks.json`)).json()) as { keys: Array<{ kid: string }> };
      expect(jwks.keys.map((k) => k.kid)).toEqual(expect.arrayContaining([oldKid, newKid]));
    }
    await expect(a.client().verifyToken(fresh.token)).resolves.toMatchObject({ sub: 'after' });
    await expect(b.client().verifyToken(old.token)).resolves.toMatchObject({ sub: 'before' });
  });
});
