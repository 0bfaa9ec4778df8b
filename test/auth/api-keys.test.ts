import { randomBytes, randomUUID } from 'node:crypto';
import { status } from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AuthClient, AuthClientError } from '@soma/auth-client';
import { startAuthHarness, type AuthHarness } from '../support/auth-harness.js';
import { waitFor } from '../support/wait.js';

async function failure(p: Promise<unknown>): Promise<AuthClientError> {
  try {
    await p;
  } catch (e) {
    return e as AuthClientError;
  }
  throw new Error('call succeeded');
}

describe('API keys (two instances sharing Redis)', () => {
  let a: AuthHarness;
  let b: AuthHarness;
  let admin: AuthClient;
  let cb: AuthClient;
  const tenant = `t-${randomUUID()}`;
  const prefix = `test:auth:${randomUUID()}:`;
  const secret = randomBytes(48).toString('base64url');

  beforeAll(async () => {
    a = await startAuthHarness({ redisPrefix: prefix, jwtSecret: secret, env: { API_KEY_ROTATION_GRACE_SECONDS: '3600' } });
    b = await startAuthHarness({ redisPrefix: prefix, jwtSecret: secret });
    admin = a.client({ adminCredential: await a.adminToken() });
    cb = b.client();
  });
  afterAll(async () => {
    await a?.stop();
    await b?.stop();
  });

  it('creates sk-soma- + 32 base62 keys, shown once, stored only as SHA-256', async () => {
    const created = await admin.createApiKey({ tenant, name: 'ci', scopes: ['agents:run'], external_id: 'ext-1', metadata: { team: 'ml' } });
    expect(created.key).toMatch(/^sk-soma-[0-9A-Za-z]{32}$/);
    expect(created.api_key).toMatchObject({ tenant, name: 'ci', scopes: ['agents:run'], external_id: 'ext-1', metadata: { team: 'ml' }, revoked: false });
    expect(created.api_key.masked).toBe(`${created.key.slice(0, 8)}…${created.key.slice(-4)}`);
    const { Redis } = await import('ioredis');
    const r = new Redis('redis://127.0.0.1:6379');
    try {
      const keys = await r.keys(`${prefix}apikey:*`);
      const values = await Promise.all(keys.filter((k) => k.includes(':h:') || k.includes(':id:')).map((k) => r.get(k)));
      expect(values.join('\n')).not.toContain(created.key);
      expect(values.join('\n')).not.toContain(created.key.slice(8));
      const { createHash } = await import('node:crypto');
      expect(keys).toContain(`${prefix}apikey:h:${createHash('sha256').update(created.key).digest('hex')}`);
    } finally {
      r.disconnect();
    }
  });

  it('lists masked keys (first 8 + last 4), never the secret', async () => {
    const created = await admin.createApiKey({ tenant, name: 'listed' });
    const list = await admin.listApiKeys(tenant);
    const item = list.find((k) => k.id === created.api_key.id)!;
    expect(item.masked).toBe(`${created.key.slice(0, 8)}…${created.key.slice(-4)}`);
    expect(JSON.stringify(list)).not.toContain(created.key.slice(8, -4));
  });

  it('verifies with a typed result and the principal; usable as Bearer like a JWT', async () => {
    const { key, api_key } = await admin.createApiKey({ tenant, name: 'p', scopes: ['a', 'b'], owner_sub: 'alice', persona_id: 'helper' });
    const v = await cb.verifyApiKey(key);
    expect(v.result).toBe('VALID');
    expect(v.principal).toMatchObject({ sub: 'alice', tenant, personaId: 'helper', scopes: ['a', 'b'], method: 'api_key', credentialId: api_key.id });
    await expect(cb.authenticate(`Bearer ${key}`)).resolves.toMatchObject({ sub: 'alice', method: 'api_key' });
  });

  it('NOT_FOUND for unknown, malformed and foreign-prefix keys', async () => {
    for (const k of [`sk-soma-${'A'.repeat(32)}`, 'sk-soma-short', `sk-other-${'A'.repeat(32)}`, '']) {
      expect((await cb.verifyApiKey(k)).result).toBe('NOT_FOUND');
    }
    expect((await failure(cb.authenticate(`sk-soma-${'B'.repeat(32)}`))).reason).toBe('INVALID_CREDENTIAL');
  });

  it('INSUFFICIENT_SCOPE when a required scope is missing', async () => {
    const { key } = await admin.createApiKey({ tenant, name: 's', scopes: ['read'] });
    expect((await cb.verifyApiKey(key, { requiredScopes: ['write'] })).result).toBe('INSUFFICIENT_SCOPE');
    expect((await cb.verifyApiKey(key, { requiredScopes: ['read'] })).result).toBe('VALID');
    expect((await failure(cb.authenticate(key, { requiredScopes: ['write'] }))).code).toBe(status.PERMISSION_DENIED);
  });

  it('EXPIRED after expires_at', async () => {
    const { key } = await admin.createApiKey({ tenant, name: 'e', expires_at: new Date(Date.now() + 1500).toISOString() });
    expect((await cb.verifyApiKey(key)).result).toBe('VALID');
    await waitFor(async () => (await cb.verifyApiKey(key)).result === 'EXPIRED', { what: 'key to expire', timeoutMs: 10_000 });
    expect((await failure(cb.authenticate(key))).reason).toBe('API_KEY_EXPIRED');
  });

  it('rejects creating a key that has already expired', async () => {
    expect((await failure(admin.createApiKey({ tenant, name: 'x', expires_at: new Date(Date.now() - 1000).toISOString() }))).code).toBe(status.INVALID_ARGUMENT);
  });

  it('usage budget: remaining counts down across instances, then USAGE_EXCEEDED; refills periodically', async () => {
    const { key } = await admin.createApiKey({ tenant, name: 'budget', budget: { remaining: 3, refill_amount: 2, refill_interval_seconds: 3 } });
    const ca = a.client();
    expect((await ca.verifyApiKey(key)).remaining).toBe(2);
    expect((await cb.verifyApiKey(key)).remaining).toBe(1);
    const third = await ca.verifyApiKey(key);
    expect(third.result).toBe('VALID');
    expect((await cb.verifyApiKey(key)).result).toBe('USAGE_EXCEEDED');
    expect((await failure(cb.authenticate(key))).reason).toBe('API_KEY_USAGE_EXCEEDED');
    await waitFor(async () => (await cb.verifyApiKey(key)).result === 'VALID', { what: 'refill', timeoutMs: 15_000, intervalMs: 250 });
  });

  it('per-key rate limit is enforced across instances through Redis', async () => {
    const { key } = await admin.createApiKey({ tenant, name: 'rl', rate_limit: { limit: 3, window_seconds: 60 } });
    const ca = a.client();
    expect((await ca.verifyApiKey(key)).result).toBe('VALID');
    expect((await cb.verifyApiKey(key)).result).toBe('VALID');
    expect((await ca.verifyApiKey(key)).result).toBe('VALID');
    const limited = await cb.verifyApiKey(key);
    expect(limited.result).toBe('RATE_LIMITED');
    expect(limited.retryAfterMs).toBeGreaterThan(0);
    const e = await failure(ca.authenticate(key));
    expect(e.code).toBe(status.RESOURCE_EXHAUSTED);
    expect(e.reason).toBe('API_KEY_RATE_LIMITED');
  });

  it('rotation: new key works, old key keeps working during the grace period, then stops', async () => {
    const { key: oldKey, api_key } = await admin.createApiKey({ tenant, name: 'rot', scopes: ['x'], external_id: 'e-rot' });
    expect((await cb.verifyApiKey(oldKey)).result).toBe('VALID');
    const rotated = await admin.rotateApiKey(tenant, api_key.id, 2);
    expect(rotated.key).not.toBe(oldKey);
    expect(rotated.api_key).toMatchObject({ scopes: ['x'], external_id: 'e-rot', name: 'rot' });
    expect(rotated.previous.replaced_by).toBe(rotated.api_key.id);
    expect((await cb.verifyApiKey(rotated.key)).result).toBe('VALID');
    expect((await cb.verifyApiKey(oldKey)).result).toBe('VALID');
    await waitFor(async () => (await cb.verifyApiKey(oldKey)).result === 'REVOKED', { what: 'grace to end', timeoutMs: 10_000 });
    expect((await cb.verifyApiKey(rotated.key)).result).toBe('VALID');
  });

  it('rotates every active key of a tenant', async () => {
    const t2 = `t2-${randomUUID()}`;
    const k1 = await admin.createApiKey({ tenant: t2, name: 'one' });
    const k2 = await admin.createApiKey({ tenant: t2, name: 'two' });
    const out = await admin.rotateTenantApiKeys(t2, 60);
    expect(out.map((o) => o.previous.id).sort()).toEqual([k1.api_key.id, k2.api_key.id].sort());
    for (const o of out) expect((await cb.verifyApiKey(o.key)).result).toBe('VALID');
    expect((await cb.verifyApiKey(k1.key)).result).toBe('VALID'); // grace
    const listed = await admin.listApiKeys(t2);
    expect(listed).toHaveLength(4);
  });

  it('revocation: REVOKED everywhere; listing hides it unless asked', async () => {
    const { key, api_key } = await admin.createApiKey({ tenant, name: 'rev' });
    await admin.revokeApiKey(tenant, api_key.id);
    expect((await cb.verifyApiKey(key)).result).toBe('REVOKED');
    expect((await admin.listApiKeys(tenant)).some((k) => k.id === api_key.id)).toBe(false);
    expect((await admin.listApiKeys(tenant, true)).find((k) => k.id === api_key.id)?.revoked).toBe(true);
  });

  it('records last_used_at (off the hot path)', async () => {
    const { key, api_key } = await admin.createApiKey({ tenant, name: 'used' });
    await cb.verifyApiKey(key);
    await waitFor(async () => (await admin.listApiKeys(tenant)).find((k) => k.id === api_key.id)?.last_used_at, { what: 'last_used_at' });
  });

  describe('admin API is protected', () => {
    it('refuses admin calls without a credential, with a non-admin one, and across tenants', async () => {
      const anonymous = a.client();
      expect((await failure(anonymous.createApiKey({ tenant, name: 'x' }))).code).toBe(status.UNAUTHENTICATED);
      const user = (await a.issueToken({ tenant, sub: 'bob', scopes: ['agents:run'] })).token;
      expect((await failure(anonymous.createApiKey({ tenant, name: 'x' }, { credential: user }))).code).toBe(status.PERMISSION_DENIED);
      const otherAdmin = (await a.issueToken({ tenant: 'other-tenant', sub: 'eve', scopes: ['auth:admin'] })).token;
      expect((await failure(anonymous.listApiKeys(tenant, false, { credential: otherAdmin }))).code).toBe(status.PERMISSION_DENIED);
      expect((await failure(anonymous.rotateSigningKey({ credential: otherAdmin }))).code).toBe(status.PERMISSION_DENIED);
      const tenantAdmin = (await a.issueToken({ tenant, sub: 'carol', scopes: ['auth:admin'] })).token;
      await expect(anonymous.listApiKeys(tenant, false, { credential: tenantAdmin })).resolves.toBeInstanceOf(Array);
      const tenantKey = await admin.createApiKey({ tenant, name: 'admin-key', scopes: ['auth:admin'] });
      await expect(anonymous.listApiKeys(tenant, false, { credential: tenantKey.key })).resolves.toBeInstanceOf(Array);
    });

    it('a key of another tenant is NOT_FOUND (no cross-tenant oracle)', async () => {
      const { api_key } = await admin.createApiKey({ tenant, name: 'mine' });
      expect((await failure(admin.revokeApiKey(`${tenant}-other`, api_key.id))).code).toBe(status.NOT_FOUND);
    });

    it('REST admin API: 401 without credential, 403 for a non-admin, CRUD for an admin', async () => {
      const base = `${a.httpUrl}/v1/tenants/${tenant}/api-keys`;
      expect((await fetch(base)).status).toBe(401);
      const user = (await a.issueToken({ tenant, sub: 'bob' })).token;
      expect((await fetch(base, { headers: { authorization: `Bearer ${user}` } })).status).toBe(403);
      const auth = { authorization: `Bearer ${await a.adminToken()}`, 'content-type': 'application/json' };
      const bad = await fetch(base, { method: 'POST', headers: auth, body: JSON.stringify({ name: 'x', unknown_field: 1 }) });
      expect(bad.status).toBe(400);
      expect(bad.headers.get('content-type')).toContain('application/problem+json');
      const created = await fetch(base, { method: 'POST', headers: auth, body: JSON.stringify({ name: 'rest', scopes: ['r'], rate_limit: { limit: 10, window_seconds: 1 } }) });
      expect(created.status).toBe(201);
      const body = (await created.json()) as { key: string; api_key: { id: string } };
      expect(body.key).toMatch(/^sk-soma-/);
      const listed = (await (await fetch(base, { headers: auth })).json()) as { api_keys: Array<{ id: string }> };
      expect(listed.api_keys.some((k) => k.id === body.api_key.id)).toBe(true);
      const rotated = await fetch(`${base}/${body.api_key.id}/rotate`, { method: 'POST', headers: auth, body: JSON.stringify({ grace_seconds: 1 }) });
      expect(rotated.status).toBe(200);
      const del = await fetch(`${base}/${body.api_key.id}`, { method: 'DELETE', headers: auth });
      expect(del.status).toBe(200);
      expect((await cb.verifyApiKey(body.key)).result).toBe('REVOKED');
    });
  });
});
