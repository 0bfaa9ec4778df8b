import { createHmac, randomBytes, randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AuthClient } from '@soma/auth-client';
import { validateSecurityEvent } from '@soma/contracts';
import { startAuthHarness, type AuthHarness } from '../support/auth-harness.js';
import { TopicCollector } from '../support/kafka.js';
import { waitFor } from '../support/wait.js';

/**
 * Every auth security event arrives on `security.events` (real Kafka, through the durable outbox) with
 * the envelope the contract demands, the fields docs/events.md lists, and no secret: no token, no API
 * key, no password, no signing key.
 */
type Event = Record<string, unknown> & { type: string; tenant: string; action: string; resource: string; outcome: string; reason: string | null; actor: { user_id: string | null; ip_address: string | null; user_agent: string | null }; details: Record<string, unknown> };

const run = randomBytes(4).toString('hex');
const T = `events-${run}`;
const UA = `soma-events-test/${run}`;
const IP = '203.0.113.7';

describe('auth security events on security.events', () => {
  let h: AuthHarness;
  let events: TopicCollector;
  let admin: AuthClient;
  let client: AuthClient;
  const secrets: string[] = [];
  let newKid = '';

  const of = (type: string, pred: (e: Event) => boolean = () => true) => events.messages.map((m) => m.json as Event).filter((e) => e.type === type && pred(e));
  const one = async (type: string, pred: (e: Event) => boolean = () => true) => (await waitFor(() => of(type, pred)[0], { what: `${type} event`, timeoutMs: 30_000 }));

  beforeAll(async () => {
    h = await startAuthHarness({ env: { AUTH_LOGIN_TENANT: T, LOGIN_MAX_FAILURES_PER_ACCOUNT: '2', AUTH_SUCCESS_EVENT_WINDOW_SECONDS: '60' } });
    events = await new TopicCollector('security.events', (m) => m.json?.['service'] === 'auth' && (m.json?.['tenant'] === T || (m.json?.['actor'] as { user_agent?: string } | undefined)?.user_agent === UA || m.json?.['type'] === 'signing_key_rotated')).start();
    const adminToken = (await h.issueToken({ tenant: T, sub: 'carol', scopes: ['auth:admin'] })).token;
    secrets.push(h.password, h.env['JWT_SECRET']!, adminToken, await h.adminToken());
    admin = h.client({ adminCredential: adminToken });
    client = h.client();

    // token_issued, authentication_succeeded (jwt), token_revoked, authentication_failed (revoked)
    const issued = await admin.issueToken({ tenant: T, sub: 'alice', scopes: ['agents:run'] });
    secrets.push(issued.token);
    await client.authenticate(issued.token, { ipAddress: IP, userAgent: UA });
    await admin.revokeToken({ tenant: T, jti: issued.jti });
    await client.authenticate(issued.token, { ipAddress: IP, userAgent: UA }).catch(() => undefined);
    // authentication_failed (expired): a correctly signed token past exp + skew
    const { kid, key } = h.runtime.keyring.signingKey();
    const now = Math.floor(Date.now() / 1000);
    const b64 = (v: unknown) => Buffer.from(JSON.stringify(v)).toString('base64url');
    const input = `${b64({ alg: 'HS256', kid, typ: 'JWT' })}.${b64({ sub: 'old', tenant: T, jti: randomUUID(), iss: 'soma-auth', aud: 'soma', iat: now - 7200, exp: now - 3600 })}`;
    const expired = `${input}.${createHmac('sha256', key.export()).update(input).digest('base64url')}`;
    secrets.push(expired);
    await client.authenticate(expired, { ipAddress: IP, userAgent: UA }).catch(() => undefined);
    // authentication_failed (invalid_token), (unknown_key)
    await client.authenticate('eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0.', { ipAddress: IP, userAgent: UA }).catch(() => undefined);
    const unknownKey = `sk-soma-${'Q'.repeat(32)}`;
    secrets.push(unknownKey);
    await client.authenticate(unknownKey, { ipAddress: IP, userAgent: UA }).catch(() => undefined);
    // api_key_created, authentication_succeeded (api_key), api_key_rotated, api_key_revoked
    const created = await admin.createApiKey({ tenant: T, name: 'events', scopes: ['x'] });
    secrets.push(created.key);
    await client.authenticate(created.key, { ipAddress: IP, userAgent: UA });
    const rotated = await admin.rotateApiKey(T, created.api_key.id, 60);
    secrets.push(rotated.key);
    await admin.revokeApiKey(T, rotated.api_key.id);
    // login: bad_password ×2 → login_locked; signing_key_rotated
    for (const pw of ['wrong-password-1', 'wrong-password-2']) {
      secrets.push(pw);
      await fetch(`${h.httpUrl}/v1/login`, { method: 'POST', headers: { 'content-type': 'application/json', 'user-agent': UA }, body: JSON.stringify({ password: pw }) });
    }
    newKid = (await h.client({ adminCredential: await h.adminToken() }).rotateSigningKey()).signing_key.kid;
  });
  afterAll(async () => {
    await events?.stop();
    await h?.stop();
  });

  it('every event type arrives, valid against the soma.security.event/v1 contract', async () => {
    for (const type of ['authentication_succeeded', 'authentication_failed', 'login_locked', 'token_issued', 'token_revoked', 'api_key_created', 'api_key_revoked', 'api_key_rotated', 'signing_key_rotated']) {
      const e = await one(type);
      expect(e).toMatchObject({ schema: 'soma.security.event/v1', service: 'auth' });
      expect(validateSecurityEvent(e), type).toMatchObject({ ok: true });
    }
  });

  it('authentication_failed carries ip_address, user_agent and the reason (invalid_token, expired, revoked, unknown_key, bad_password)', async () => {
    for (const reason of ['invalid_token', 'expired', 'revoked', 'unknown_key', 'bad_password']) {
      const e = await one('authentication_failed', (x) => x.reason === reason);
      expect(e, reason).toMatchObject({ outcome: 'failure', action: 'authenticate', actor: { user_agent: UA } });
      expect(e.actor.ip_address).toMatch(reason === 'bad_password' ? /127\.0\.0\.1/ : new RegExp(IP.replace(/\./g, '\\.')));
    }
    // A signature-checked token names its tenant and jti even when refused; an unverifiable one does not.
    expect(await one('authentication_failed', (x) => x.reason === 'expired')).toMatchObject({ tenant: T, actor: { user_id: 'old' } });
    expect(await one('authentication_failed', (x) => x.reason === 'revoked')).toMatchObject({ tenant: T, actor: { user_id: 'alice' } });
    expect((await one('authentication_failed', (x) => x.reason === 'invalid_token')).tenant).toBe('unknown');
  });

  it('success, issuance, revocation, key and signing-key events carry ids, never credentials', async () => {
    const succ = await one('authentication_succeeded', (x) => x.details['method'] === 'jwt' && x.actor.user_id === 'alice');
    expect(succ).toMatchObject({ tenant: T, outcome: 'success', actor: { user_id: 'alice', ip_address: IP, user_agent: UA } });
    expect(await one('authentication_succeeded', (x) => x.details['method'] === 'api_key')).toMatchObject({ tenant: T });
    // Administrative calls over gRPC record the calling peer's address and agent.
    const issued = await one('token_issued', (x) => x.details['sub'] === 'alice');
    expect(issued).toMatchObject({ tenant: T, action: 'issue_token', actor: { user_id: 'carol', ip_address: expect.stringMatching(/127\.0\.0\.1|::1/), user_agent: expect.stringMatching(/grpc/) }, details: { jti: expect.any(String), kid: expect.any(String) } });
    expect(await one('token_revoked')).toMatchObject({ tenant: T, action: 'revoke_token', outcome: 'success', details: { jti: expect.any(String), revoked_until: expect.any(String) } });
    const created = await one('api_key_created');
    expect(created).toMatchObject({ tenant: T, details: { key_id: expect.stringMatching(/^ak_/), masked: expect.stringMatching(/^sk-soma-…[0-9A-Za-z]{4}$/) } });
    expect(await one('api_key_rotated')).toMatchObject({ tenant: T, details: { previous_id: created.details['key_id'], grace_until: expect.any(String) } });
    expect(await one('api_key_revoked')).toMatchObject({ tenant: T, action: 'revoke_api_key' });
    expect(await one('login_locked')).toMatchObject({ tenant: T, outcome: 'denied', reason: 'too_many_failures', actor: { user_agent: UA } });
    expect(await one('signing_key_rotated', (x) => x.details['kid'] === newKid)).toMatchObject({ tenant: '*', action: 'rotate_signing_key', details: { alg: 'HS256', previous_kid: expect.any(String) } });
  });

  it('a caller-supplied ip_address that is not an IP is refused (INVALID_ARGUMENT), not written into an event', async () => {
    const { token } = await h.issueToken({ tenant: T, sub: 'ipless' });
    await expect(client.authenticate(token, { ipAddress: 'not-an-ip', userAgent: UA })).rejects.toMatchObject({ reason: 'INVALID_ARGUMENT' });
    await expect(client.authenticate(token, { ipAddress: '::ffff:198.51.100.4', userAgent: UA })).resolves.toMatchObject({ sub: 'ipless' });
    expect(await one('authentication_succeeded', (x) => x.actor.user_id === 'ipless')).toMatchObject({ actor: { ip_address: '198.51.100.4', user_agent: UA } });
  });

  it('no event holds a token, an API key, a password or a key', async () => {
    await one('signing_key_rotated', (x) => x.details['kid'] === newKid);
    const raw = events.messages.map((m) => m.value?.toString('utf8') ?? '').join('\n');
    expect(events.messages.length).toBeGreaterThan(15);
    for (const s of secrets) expect(raw).not.toContain(s);
    expect(raw).not.toMatch(/eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}/);
    expect(raw).not.toMatch(/sk-soma-[0-9A-Za-z]{32}/);
    const { key } = h.runtime.keyring.signingKey();
    expect(raw).not.toContain(key.export().toString('base64url'));
  });
});
