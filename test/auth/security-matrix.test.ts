import { createHmac, randomBytes, randomUUID } from 'node:crypto';
import * as grpc from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { GRPC_REASON_KEY, grpcClientConstructor, grpcPackageOf } from '@soma/contracts';
import { startAuthHarness, type AuthHarness } from '../support/auth-harness.js';

/**
 * Security matrix of every auth endpoint, table-driven.
 *
 * Administrative gRPC methods and the REST admin API × {no credential, malformed header, garbage bearer,
 * tampered JWT, expired JWT, unknown API key, revoked API key (all: UNAUTHENTICATED / 401), wrong tenant,
 * missing permission, same-tenant user without scopes (all: PERMISSION_DENIED / 403)}; then cross-tenant
 * objects (another tenant's key or token, named under the caller's own tenant: NOT_FOUND / 404); then a
 * positive control per method, after checking that no refused call changed anything.
 *
 * Credential-describing methods (VerifyToken, VerifyApiKey, Authenticate) take the credential as their
 * input and need none of their own: the matrix gives them the same bad credentials (refused), a credential
 * of another tenant (answered with that credential's own tenant: there is no tenant to ask for) and a
 * missing scope (INSUFFICIENT_SCOPE). GetServiceInfo, /v1/login, the JWKS and the health/metrics endpoints
 * are public by design: every credential gets the same answer and the answers hold no secret.
 */
const run = randomBytes(4).toString('hex');
const T = `acme-${run}`;
const T2 = `globex-${run}`;

let h: AuthHarness;
let client: grpc.Client;
const cred: Record<string, string> = {};
const fixture = { victimJti: '', victimToken: '', victimKey: '', victimKeyId: '', victimKey2: '', victimKeyId2: '', kid: '', keysInT: 0 };

type Row = [name: string, authorization: () => string | undefined];
const UNAUTHENTICATED_ROWS: Row[] = [
  ['no credential', () => undefined],
  ['malformed header (Basic scheme)', () => `Basic ${Buffer.from('admin:admin').toString('base64')}`],
  ['garbage bearer', () => 'Bearer not-a-credential'],
  ['tampered JWT (tenant *, auth:admin, foreign signature)', () => `Bearer ${cred['tampered']}`],
  ['expired JWT (tenant *, auth:admin)', () => `Bearer ${cred['expired']}`],
  ['unknown API key', () => `Bearer sk-soma-${'Z'.repeat(32)}`],
  ['revoked API key (tenant *, auth:admin)', () => `Bearer ${cred['revokedKey']}`],
];
const DENIED_ROWS: Row[] = [
  ['wrong tenant (auth:admin of another tenant)', () => `Bearer ${cred['wrongTenant']}`],
  ['missing permission (tenant *, every scope but auth:admin)', () => `Bearer ${cred['noAdmin']}`],
  ['same-tenant user without scopes', () => `Bearer ${cred['plainUser']}`],
];

interface AdminEndpoint {
  rpc: string;
  request: () => Record<string, unknown>;
  /** Only tenant `*` may call it (signing keys are global). */
  global: boolean;
}
const ADMIN: AdminEndpoint[] = [
  { rpc: 'IssueToken', request: () => ({ tenant: T, sub: 'minted', scopes: ['auth:admin'] }), global: false },
  { rpc: 'RevokeToken', request: () => ({ tenant: T, jti: fixture.victimJti }), global: false },
  { rpc: 'CreateApiKey', request: () => ({ tenant: T, name: 'matrix' }), global: false },
  { rpc: 'ListApiKeys', request: () => ({ tenant: T }), global: false },
  { rpc: 'RevokeApiKey', request: () => ({ tenant: T, id: fixture.victimKeyId }), global: false },
  { rpc: 'RotateApiKey', request: () => ({ tenant: T, id: fixture.victimKeyId2 }), global: false },
  { rpc: 'RotateTenantApiKeys', request: () => ({ tenant: T }), global: false },
  { rpc: 'RevokeSubject', request: () => ({ tenant: T, sub: 'victim' }), global: false },
  { rpc: 'RotateSigningKey', request: () => ({}), global: true },
  { rpc: 'ListSigningKeys', request: () => ({}), global: true },
];
const DESCRIBING = ['VerifyToken', 'VerifyApiKey', 'Authenticate'];
const PUBLIC_GRPC = ['GetServiceInfo'];

interface Answer {
  code: number;
  reason: string;
  details: string;
  response?: Record<string, unknown>;
}

function call(rpc: string, request: unknown, authorization?: string): Promise<Answer> {
  const md = new grpc.Metadata();
  if (authorization !== undefined) md.set('authorization', authorization);
  type Unary = (req: unknown, md: grpc.Metadata, opts: grpc.CallOptions, cb: (e: grpc.ServiceError | null, r: unknown) => void) => void;
  return new Promise((resolve) => {
    (client as unknown as Record<string, Unary>)[rpc]!.call(client, request, md, { deadline: Date.now() + 10_000 }, (e, r) => {
      if (!e) return resolve({ code: grpc.status.OK, reason: '', details: '', response: r as Record<string, unknown> });
      resolve({ code: e.code, reason: String(e.metadata?.get(GRPC_REASON_KEY)[0] ?? ''), details: e.details });
    });
  });
}

/** A refusal says what kind (reason code) and nothing else: no stack, no hint, no echo of the credential. */
function expectOpaque(a: Answer, credential?: string): void {
  expect(a.details).not.toMatch(/\n\s+at |Error:|redis|signature|audience|kid|HMAC/i);
  if (credential) expect(a.details).not.toContain(credential.replace(/^\w+\s+/, '').slice(0, 24));
}

const b64 = (v: unknown) => Buffer.from(JSON.stringify(v)).toString('base64url');
function forge(header: Record<string, unknown>, claims: Record<string, unknown>, secret: Buffer): string {
  const input = `${b64(header)}.${b64(claims)}`;
  return `${input}.${createHmac('sha256', secret).update(input).digest('base64url')}`;
}

beforeAll(async () => {
  h = await startAuthHarness();
  const Ctor = grpcClientConstructor('auth');
  client = new Ctor(h.grpcAddress, grpc.credentials.createInsecure());
  const now = Math.floor(Date.now() / 1000);
  const { kid, key } = h.runtime.keyring.signingKey();
  fixture.kid = kid;
  const base = { iss: 'soma-auth', aud: 'soma', sub: 'mallory', tenant: '*', scope: 'auth:admin', jti: randomUUID() };
  cred['tampered'] = forge({ alg: 'HS256', kid, typ: 'JWT' }, { ...base, iat: now, exp: now + 600 }, randomBytes(32));
  cred['expired'] = forge({ alg: 'HS256', kid, typ: 'JWT' }, { ...base, iat: now - 7200, exp: now - 3600 }, key.export());
  const revoked = await h.createApiKey({ tenant: '*', name: 'revoked-admin', scopes: ['auth:admin'] });
  await h.runtime.admin.revokeApiKey({ sub: 'setup', tenant: '*', persona_id: 'default', scopes: ['auth:admin'], method: 'jwt', credential_id: 'setup' }, '*', revoked.id);
  cred['revokedKey'] = revoked.key;
  cred['wrongTenant'] = (await h.issueToken({ tenant: T2, sub: 'eve', scopes: ['auth:admin'] })).token;
  cred['noAdmin'] = (await h.issueToken({ tenant: '*', sub: 'ops', scopes: ['secrets:admin', 'retention:admin', 'auth:read', 'admin'] })).token;
  cred['plainUser'] = (await h.issueToken({ tenant: T, sub: 'bob' })).token;
  cred['tenantAdmin'] = (await h.issueToken({ tenant: T, sub: 'carol', scopes: ['auth:admin'] })).token;
  cred['tenantAdminKey'] = (await h.createApiKey({ tenant: T, name: 'tenant-admin-key', scopes: ['auth:admin'] })).key;
  cred['t2Admin'] = cred['wrongTenant'];
  cred['platformAdmin'] = await h.adminToken();
  const victim = await h.issueToken({ tenant: T, sub: 'victim' });
  fixture.victimJti = victim.jti;
  fixture.victimToken = victim.token;
  const k1 = await h.createApiKey({ tenant: T, name: 'victim-1', owner_sub: 'victim' });
  const k2 = await h.createApiKey({ tenant: T, name: 'victim-2' });
  Object.assign(fixture, { victimKey: k1.key, victimKeyId: k1.id, victimKey2: k2.key, victimKeyId2: k2.id });
  fixture.keysInT = (await h.runtime.apiKeys.list(T, true)).length;
});

afterAll(async () => {
  client?.close();
  await h?.stop();
});

describe('auth security matrix', () => {
  it('covers every method of soma.auth.v1.AuthService', () => {
    const pkg = grpcPackageOf('auth') as unknown as { soma: { auth: { v1: { AuthService: { service: Record<string, unknown> } } } } };
    const methods = Object.keys(pkg.soma.auth.v1.AuthService.service).sort();
    expect([...ADMIN.map((e) => e.rpc), ...DESCRIBING, ...PUBLIC_GRPC].sort()).toEqual(methods);
  });

  describe.each(ADMIN)('gRPC $rpc', (e) => {
    it.each(UNAUTHENTICATED_ROWS)('%s → UNAUTHENTICATED', async (_name, authorization) => {
      const a = await call(e.rpc, e.request(), authorization());
      expect(a.code, a.details).toBe(grpc.status.UNAUTHENTICATED);
      expect(a.reason).toMatch(/^(MISSING_CREDENTIAL|INVALID_TOKEN|INVALID_CREDENTIAL|TOKEN_EXPIRED|API_KEY_REVOKED)$/);
      expectOpaque(a, authorization());
    });
    it.each(DENIED_ROWS)('%s → PERMISSION_DENIED', async (_name, authorization) => {
      const a = await call(e.rpc, e.request(), authorization());
      expect(a.code, a.details).toBe(grpc.status.PERMISSION_DENIED);
      expect(a.reason).toBe('PERMISSION_DENIED');
      expectOpaque(a);
    });
    if (e.global) {
      it('an admin of one tenant (not *) → PERMISSION_DENIED', async () => {
        const a = await call(e.rpc, e.request(), `Bearer ${cred['tenantAdmin']}`);
        expect(a.code).toBe(grpc.status.PERMISSION_DENIED);
      });
    }
  });

  describe('cross-tenant objects: another tenant’s key or token, named under the caller’s own tenant → NOT_FOUND', () => {
    it.each([
      ['RevokeApiKey', () => ({ tenant: T2, id: fixture.victimKeyId })],
      ['RotateApiKey', () => ({ tenant: T2, id: fixture.victimKeyId2 })],
      ['RevokeToken by jti', () => ({ tenant: T2, jti: fixture.victimJti })],
      ['RevokeToken by token', () => ({ tenant: T2, token: fixture.victimToken })],
    ] as Array<[string, () => Record<string, unknown>]>)('%s', async (name, request) => {
      const a = await call(name.split(' ')[0]!, request(), `Bearer ${cred['t2Admin']}`);
      expect(a.code, a.details).toBe(grpc.status.NOT_FOUND);
      expectOpaque(a);
    });
    it('ListApiKeys of the own tenant never shows another tenant’s keys', async () => {
      const a = await call('ListApiKeys', { tenant: T2, include_revoked: true }, `Bearer ${cred['t2Admin']}`);
      expect(a.code).toBe(grpc.status.OK);
      expect(JSON.stringify(a.response)).not.toContain(fixture.victimKeyId);
    });
  });

  describe('REST admin API', () => {
    const routes: Array<[string, string, () => string, () => unknown]> = [
      ['POST', 'create', () => `/v1/tenants/${T}/api-keys`, () => ({ name: 'matrix' })],
      ['GET', 'list', () => `/v1/tenants/${T}/api-keys`, () => undefined],
      ['DELETE', 'revoke', () => `/v1/tenants/${T}/api-keys/${fixture.victimKeyId}`, () => undefined],
      ['POST', 'rotate', () => `/v1/tenants/${T}/api-keys/${fixture.victimKeyId2}/rotate`, () => ({})],
    ];
    const send = (method: string, path: string, body: unknown, authorization?: string) =>
      fetch(`${h.httpUrl}${path}`, {
        method,
        headers: { 'content-type': 'application/json', ...(authorization ? { authorization } : {}) },
        ...(body === undefined ? {} : { body: JSON.stringify(body) }),
      });
    describe.each(routes)('%s %s', (method, _name, path, body) => {
      it.each(UNAUTHENTICATED_ROWS)('%s → 401 problem+json', async (_row, authorization) => {
        const r = await send(method, path(), body(), authorization());
        expect(r.status).toBe(401);
        expect(r.headers.get('content-type')).toContain('application/problem+json');
        expect(await r.text()).not.toMatch(/\n\s+at |signature|redis/i);
      });
      it.each(DENIED_ROWS)('%s → 403', async (_row, authorization) => {
        expect((await send(method, path(), body(), authorization())).status).toBe(403);
      });
    });
    it.each([
      ['DELETE', () => `/v1/tenants/${T2}/api-keys/${fixture.victimKeyId}`],
      ['POST', () => `/v1/tenants/${T2}/api-keys/${fixture.victimKeyId2}/rotate`],
    ] as Array<[string, () => string]>)('another tenant’s key under the own tenant: %s → 404', async (method, path) => {
      expect((await send(method, path(), method === 'POST' ? {} : undefined, `Bearer ${cred['t2Admin']}`)).status).toBe(404);
    });
    it('hostile path parameters → 400 before anything else', async () => {
      const r = await send('DELETE', `/v1/tenants/${T}/api-keys/${encodeURIComponent('../../etc')}`, undefined, `Bearer ${cred['tenantAdmin']}`);
      expect(r.status).toBe(400);
    });
  });

  describe('credential-describing methods (the credential is the input)', () => {
    const bad: Array<[string, () => string]> = [
      ['empty', () => ''],
      ['garbage', () => 'not-a-credential'],
      ['tampered JWT', () => cred['tampered']!],
      ['expired JWT', () => cred['expired']!],
      ['unknown API key', () => `sk-soma-${'Z'.repeat(32)}`],
      ['revoked API key', () => cred['revokedKey']!],
    ];
    it.each(bad)('VerifyToken / Authenticate refuse a bad credential (%s) with UNAUTHENTICATED', async (_n, c) => {
      for (const [rpc, req] of [['VerifyToken', { token: c() }], ['Authenticate', { bearer: c() }]] as const) {
        const a = await call(rpc, req);
        expect(a.code, `${rpc}: ${a.details}`).toBe(grpc.status.UNAUTHENTICATED);
        expectOpaque(a, c());
      }
    });
    it.each(bad)('VerifyApiKey answers a typed refusal for a bad credential (%s)', async (_n, c) => {
      const a = await call('VerifyApiKey', { key: c() });
      expect(a.code).toBe(grpc.status.OK);
      expect(['NOT_FOUND', 'REVOKED']).toContain(a.response!['result']);
      expect(a.response!['principal']).toBeNull();
    });
    it('wrong tenant: a credential of another tenant is answered with its own tenant, never another', async () => {
      for (const [rpc, req] of [['VerifyToken', { token: cred['wrongTenant'] }], ['Authenticate', { bearer: cred['wrongTenant'] }], ['VerifyApiKey', { key: cred['tenantAdminKey'] }]] as const) {
        const a = await call(rpc, req);
        expect(a.code).toBe(grpc.status.OK);
        expect((a.response!['principal'] as { tenant: string }).tenant).toBe(rpc === 'VerifyApiKey' ? T : T2);
      }
    });
    it('missing permission: a required scope the credential lacks → INSUFFICIENT_SCOPE', async () => {
      for (const [rpc, req] of [['VerifyToken', { token: cred['plainUser'], required_scopes: ['auth:admin'] }], ['Authenticate', { bearer: cred['plainUser'], required_scopes: ['auth:admin'] }]] as const) {
        const a = await call(rpc, req);
        expect(a.code).toBe(grpc.status.PERMISSION_DENIED);
        expect(a.reason).toBe('INSUFFICIENT_SCOPE');
      }
      const k = await call('VerifyApiKey', { key: fixture.victimKey, required_scopes: ['auth:admin'] });
      expect(k.response!['result']).toBe('INSUFFICIENT_SCOPE');
      expect(k.response!['principal']).toBeNull();
    });
    it('hostile input → INVALID_ARGUMENT (oversized bearer)', async () => {
      const a = await call('Authenticate', { bearer: 'x'.repeat(70_000) });
      expect(a.code).toBe(grpc.status.INVALID_ARGUMENT);
    });
  });

  describe('public endpoints: same answer for every credential, nothing secret in it', () => {
    const secrets = () => [h.env['JWT_SECRET']!, h.password, cred['platformAdmin']!, fixture.victimKey];
    const anyCredential = () => [undefined, ...UNAUTHENTICATED_ROWS.map(([, c]) => c()), ...DENIED_ROWS.map(([, c]) => c())];
    it('GetServiceInfo', async () => {
      for (const c of anyCredential()) {
        const a = await call('GetServiceInfo', {}, c);
        expect(a.code).toBe(grpc.status.OK);
        for (const s of secrets()) expect(JSON.stringify(a.response)).not.toContain(s);
      }
    });
    it.each(['/healthz', '/readyz', '/metrics', '/.well-known/jwks.json'])('GET %s', async (path) => {
      const bodies = new Set<number>();
      for (const c of anyCredential()) {
        const r = await fetch(`${h.httpUrl}${path}`, { headers: c ? { authorization: c } : {} });
        bodies.add(r.status);
        const text = await r.text();
        for (const s of secrets()) expect(text).not.toContain(s);
      }
      expect([...bodies]).toEqual([200]);
    });
    it('POST /v1/login: no credential → 400, bad password → 401, a bearer header grants nothing', async () => {
      const post = (body: unknown, authorization?: string) =>
        fetch(`${h.httpUrl}/v1/login`, { method: 'POST', headers: { 'content-type': 'application/json', ...(authorization ? { authorization } : {}) }, body: JSON.stringify(body) });
      expect((await post({})).status).toBe(400);
      expect((await post({ password: 'wrong-password-x' })).status).toBe(401);
      expect((await post({ password: 'wrong-password-y' }, `Bearer ${cred['platformAdmin']}`)).status).toBe(401);
    });
  });

  describe('no refused call changed anything; then every method works for the right caller', () => {
    it('state unchanged by all refusals above', async () => {
      expect(h.runtime.keyring.signingKey().kid).toBe(fixture.kid);
      expect((await call('VerifyToken', { token: fixture.victimToken })).code).toBe(grpc.status.OK);
      expect((await call('VerifyApiKey', { key: fixture.victimKey })).response!['result']).toBe('VALID');
      expect((await call('VerifyApiKey', { key: fixture.victimKey2 })).response!['result']).toBe('VALID');
      const keys = await h.runtime.apiKeys.list(T, true);
      expect(keys.length).toBe(fixture.keysInT);
      expect(keys.every((k) => !k.revoked && !k.replaced_by)).toBe(true);
    });

    it.each(ADMIN)('positive control: $rpc', async (e) => {
      const credentials = e.global ? [cred['platformAdmin']!] : [cred['tenantAdmin']!, cred['tenantAdminKey']!];
      for (const c of credentials.slice(0, e.rpc.startsWith('Rotate') || e.rpc.startsWith('Revoke') ? 1 : 2)) {
        const a = await call(e.rpc, e.request(), `Bearer ${c}`);
        expect(a.code, `${e.rpc}: ${a.reason} ${a.details}`).toBe(grpc.status.OK);
      }
    });
  });
});
