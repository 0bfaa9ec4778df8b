import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startAuthHarness, type AuthHarness } from '../support/auth-harness.js';
import { TopicCollector } from '../support/kafka.js';
import { waitFor } from '../support/wait.js';

async function login(h: AuthHarness, body: Record<string, unknown>, ua = 'vitest-login') {
  const res = await fetch(`${h.httpUrl}/v1/login`, { method: 'POST', headers: { 'content-type': 'application/json', 'user-agent': ua }, body: JSON.stringify(body) });
  const json = (await res.json()) as Record<string, unknown>;
  return { status: res.status, json, headers: res.headers };
}

/** The answer without what legitimately differs per request. */
const shape = (r: { status: number; json: Record<string, unknown> }) => ({ status: r.status, ...r.json, request_id: undefined });

describe('password login: per-account lockout, same answer when locked, events', () => {
  let h: AuthHarness;
  let events: TopicCollector;
  const tenant = `login-${randomUUID()}`;

  beforeAll(async () => {
    h = await startAuthHarness({ env: { LOGIN_MAX_FAILURES_PER_ACCOUNT: '3', LOGIN_MAX_FAILURES_PER_IP: '50', LOGIN_LOCKOUT_SECONDS: '600', AUTH_LOGIN_TENANT: tenant, CORS_ORIGINS: 'https://ui.example', CORS_ALLOW_CREDENTIALS: 'true' } });
    events = await new TopicCollector('security.events', (m) => m.json?.['tenant'] === tenant).start();
  });
  afterAll(async () => {
    await events?.stop();
    await h?.stop();
  });

  it('the right password returns a session JWT that authenticates', async () => {
    const r = await login(h, { password: h.password });
    expect(r.status).toBe(200);
    expect(r.headers.get('cache-control')).toBe('no-store');
    expect(r.json).toMatchObject({ token_type: 'Bearer' });
    const p = await h.client().authenticate(String(r.json['access_token']));
    expect(p).toMatchObject({ sub: 'admin', tenant, scopes: ['auth:admin'], method: 'jwt' });
  });

  it('a wrong password is 401 with no hint', async () => {
    const r = await login(h, { password: 'wrong-password-1' });
    expect(r.status).toBe(401);
    expect(r.json['code']).toBe('BAD_CREDENTIALS');
  });

  it('locks the account after the configured failures; locked answers are identical for right and wrong passwords', async () => {
    await login(h, { password: 'wrong-password-2' });
    const third = await login(h, { password: 'wrong-password-3' });
    expect(third.status).toBe(401);
    const lockedWrong = await login(h, { password: 'wrong-password-4' });
    const lockedRight = await login(h, { password: h.password });
    expect(lockedWrong.status).toBe(429);
    expect(shape(lockedRight)).toEqual(shape(lockedWrong));
    expect(lockedRight.json['code']).toBe('LOGIN_LOCKED');
    expect(JSON.stringify(lockedRight.json)).not.toContain('access_token');
  });

  it('the lockout holds on another instance (kept in Redis)', async () => {
    const other = await startAuthHarness({ redisPrefix: h.redisPrefix, jwtSecret: h.env['JWT_SECRET'], env: { AUTH_PASSWORD: h.password, LOGIN_MAX_FAILURES_PER_ACCOUNT: '3', AUTH_LOGIN_TENANT: tenant } });
    try {
      const r = await login(other, { password: h.password });
      expect(r.status).toBe(429);
      expect(r.json['code']).toBe('LOGIN_LOCKED');
    } finally {
      await other.stop();
    }
  });

  it('validates the body (class-validator) and answers problem+json', async () => {
    const r = await fetch(`${h.httpUrl}/v1/login`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ password: 1, extra: true }) });
    expect(r.status).toBe(400);
    expect(r.headers.get('content-type')).toContain('application/problem+json');
  });

  it('sends security headers and CORS for the configured origin only', async () => {
    const ok = await fetch(`${h.httpUrl}/v1/login`, { method: 'OPTIONS', headers: { origin: 'https://ui.example', 'access-control-request-method': 'POST' } });
    expect(ok.headers.get('access-control-allow-origin')).toBe('https://ui.example');
    expect(ok.headers.get('access-control-allow-credentials')).toBe('true');
    const evil = await fetch(`${h.httpUrl}/v1/login`, { method: 'OPTIONS', headers: { origin: 'https://evil.example', 'access-control-request-method': 'POST' } });
    expect(evil.headers.get('access-control-allow-origin')).toBeNull();
    const any = await fetch(`${h.httpUrl}/.well-known/jwks.json`);
    expect(any.headers.get('x-content-type-options')).toBe('nosniff');
  });

  it('emits authentication_failed (bad_password, with ip and user agent), login_locked and token_issued — never the password', async () => {
    await waitFor(() => events.messages.some((m) => m.json?.['type'] === 'login_locked'), { what: 'login_locked event' });
    const all = events.messages.map((m) => m.json!);
    const failed = all.find((e) => e['type'] === 'authentication_failed' && e['reason'] === 'bad_password')!;
    expect(failed).toMatchObject({ service: 'auth', tenant, outcome: 'failure', actor: { user_id: 'admin', ip_address: expect.stringMatching(/127\.0\.0\.1/), user_agent: 'vitest-login' } });
    expect(all.find((e) => e['type'] === 'login_locked')).toMatchObject({ outcome: 'denied', reason: 'too_many_failures' });
    expect(all.some((e) => e['type'] === 'token_issued')).toBe(true);
    expect(all.some((e) => e['type'] === 'authentication_failed' && e['reason'] === 'locked')).toBe(true);
    const raw = events.messages.map((m) => m.value?.toString('utf8')).join('\n');
    expect(raw).not.toContain(h.password);
    expect(raw).not.toMatch(/wrong-password/);
    expect(raw).not.toMatch(/eyJ[A-Za-z0-9_-]{10,}\./);
  });
});

describe('password login: per-IP lockout and flood limit', () => {
  it('locks an IP that fails across many accounts, even for the right account and password', async () => {
    const h = await startAuthHarness({ env: { LOGIN_MAX_FAILURES_PER_ACCOUNT: '100', LOGIN_MAX_FAILURES_PER_IP: '3' } });
    try {
      for (const u of ['u1', 'u2', 'u3']) expect((await login(h, { username: u, password: 'nope-nope-nope' })).status).toBe(401);
      const r = await login(h, { password: h.password });
      expect(r.status).toBe(429);
      expect(r.json['code']).toBe('LOGIN_LOCKED');
    } finally {
      await h.stop();
    }
  });

  it('rate-limits /v1/login per IP before checking anything', async () => {
    const h = await startAuthHarness({ env: { LOGIN_RATE_LIMIT_PER_MINUTE: '3' } });
    try {
      for (let i = 0; i < 3; i++) expect((await login(h, { password: h.password })).status).toBe(200);
      const r = await login(h, { password: h.password });
      expect(r.status).toBe(429);
      expect(r.json['code']).toBe('LOGIN_RATE_LIMITED');
    } finally {
      await h.stop();
    }
  });

  it('AUTH_ENABLED=false: login says clearly that it is disabled', async () => {
    const h = await startAuthHarness({ env: { AUTH_ENABLED: 'false', AUTH_PASSWORD: '' } });
    try {
      const r = await login(h, { password: 'anything-at-all' });
      expect(r.status).toBe(409);
      expect(r.json).toMatchObject({ code: 'LOGIN_DISABLED' });
      expect(String(r.json['detail'])).toMatch(/disabled.*AUTH_ENABLED=false/);
    } finally {
      await h.stop();
    }
  });
});

describe('password login behind a reverse proxy (TRUST_PROXY)', () => {
  const attempt = (h: AuthHarness, forwardedFor: string) =>
    fetch(`${h.httpUrl}/v1/login`, { method: 'POST', headers: { 'content-type': 'application/json', 'x-forwarded-for': forwardedFor }, body: JSON.stringify({ password: 'wrong-password' }) });

  it('locks out the client address the proxy forwarded, not the proxy, and ignores entries the client forged', async () => {
    const tenant = `proxy-${randomUUID()}`;
    const h = await startAuthHarness({ env: { TRUST_PROXY: 'true', LOGIN_MAX_FAILURES_PER_ACCOUNT: '1000', LOGIN_MAX_FAILURES_PER_IP: '2', AUTH_LOGIN_TENANT: tenant } });
    try {
      // The client forges a different leftmost entry on each try; the proxy appends the address it saw.
      expect((await attempt(h, '10.0.0.1, 198.51.100.7')).status).toBe(401);
      expect((await attempt(h, '10.0.0.2, 198.51.100.7')).status).toBe(401);
      expect((await attempt(h, '10.0.0.3, 198.51.100.7')).status).toBe(429);
      // Another client behind the same proxy is not locked out.
      expect((await attempt(h, '198.51.100.8')).status).toBe(401);
    } finally {
      await h.stop();
    }
  });

  it('without TRUST_PROXY a forwarded address is ignored: the lockout is on the connecting address', async () => {
    const h = await startAuthHarness({ env: { LOGIN_MAX_FAILURES_PER_ACCOUNT: '1000', LOGIN_MAX_FAILURES_PER_IP: '2', AUTH_LOGIN_TENANT: `direct-${randomUUID()}` } });
    try {
      expect((await attempt(h, '198.51.100.1')).status).toBe(401);
      expect((await attempt(h, '198.51.100.2')).status).toBe(401);
      expect((await attempt(h, '198.51.100.3')).status).toBe(429);
    } finally {
      await h.stop();
    }
  });
});
