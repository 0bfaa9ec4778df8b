import { describe, it, expect } from 'vitest';
import { AuthzError, AuthzErrorCode } from './authz.errors.js';
import { CallerAccess, type CallerAuthentication } from './caller-access.js';

function access(answers: Record<string, CallerAuthentication>, now = { t: 1_000 }, ttl = 5_000) {
  const asked: string[] = [];
  const a = new CallerAccess({
    mode: 'required',
    cacheTtlMs: ttl,
    now: () => now.t,
    authenticator: { authenticate: async (credential) => (asked.push(credential), answers[credential] ?? { kind: 'rejected', reason: 'UNKNOWN' }) },
  });
  return { a, asked, now };
}

async function code(p: Promise<unknown>): Promise<string> {
  try {
    await p;
  } catch (e) {
    if (e instanceof AuthzError) return e.code;
    throw e;
  }
  return 'OK';
}

const ok = (tenant: string, scopes: string[], expiresAtMs?: number): CallerAuthentication => ({ kind: 'ok', caller: { sub: 's', tenant, scopes }, ...(expiresAtMs ? { expiresAtMs } : {}) });

describe('CallerAccess', () => {
  it('off: answers every caller without asking auth', async () => {
    const a = new CallerAccess({ mode: 'off', authenticator: undefined, cacheTtlMs: 0 });
    expect(a.required).toBe(false);
    expect(await a.authorize(undefined, 'authz:write', undefined, 'r')).toBeUndefined();
  });

  it('refuses a missing or malformed credential, a refused one, and maps an auth outage to UNAVAILABLE', async () => {
    const { a } = access({ down: { kind: 'unavailable', reason: 'UNAVAILABLE' } });
    for (const h of [undefined, '', 'Basic abc', 'Bearer ', 'Bearer a b']) expect(await code(a.authorize(h, 'authz:check', 't', 'r')), String(h)).toBe(AuthzErrorCode.Unauthenticated);
    expect(await code(a.authorize('Bearer nope', 'authz:check', 't', 'r'))).toBe(AuthzErrorCode.Unauthenticated);
    expect(await code(a.authorize('Bearer down', 'authz:check', 't', 'r'))).toBe(AuthzErrorCode.Unavailable);
  });

  it('needs the permission (or authz:admin) and the request tenant (or tenant *)', async () => {
    const { a } = access({ acme: ok('acme', ['authz:check']), admin: ok('acme', ['authz:admin']), platform: ok('*', ['authz:check', 'authz:read']), none: ok('acme', []) });
    expect(await code(a.authorize('Bearer acme', 'authz:check', 'acme', 'r'))).toBe('OK');
    expect(await code(a.authorize('Bearer admin', 'authz:write', 'acme', 'r'))).toBe('OK');
    expect(await code(a.authorize('Bearer acme', 'authz:check', 'globex', 'r'))).toBe(AuthzErrorCode.PermissionDenied);
    expect(await code(a.authorize('Bearer acme', 'authz:check', undefined, 'r'))).toBe(AuthzErrorCode.PermissionDenied);
    expect(await code(a.authorize('Bearer acme', 'authz:write', 'acme', 'r'))).toBe(AuthzErrorCode.PermissionDenied);
    expect(await code(a.authorize('Bearer none', 'authz:check', 'acme', 'r'))).toBe(AuthzErrorCode.PermissionDenied);
    expect(await code(a.authorize('Bearer platform', 'authz:check', 'globex', 'r'))).toBe('OK');
    expect(await code(a.authorize('Bearer platform', 'authz:read', undefined, 'r'))).toBe('OK');
  });

  it('caches an authenticated caller for the TTL, never past its credential expiry', async () => {
    const { a, asked, now } = access({ k: ok('acme', ['authz:check']), short: ok('acme', ['authz:check'], 2_000) });
    await a.authorize('Bearer k', 'authz:check', 'acme', 'r');
    await a.authorize('Bearer k', 'authz:check', 'acme', 'r');
    expect(asked).toEqual(['k']);
    now.t += 6_000;
    await a.authorize('Bearer k', 'authz:check', 'acme', 'r');
    expect(asked).toEqual(['k', 'k']);
    now.t = 1_000;
    await a.authorize('Bearer short', 'authz:check', 'acme', 'r');
    now.t = 2_500;
    await a.authorize('Bearer short', 'authz:check', 'acme', 'r');
    expect(asked.filter((x) => x === 'short')).toHaveLength(2);
  });

  it('does not cache refusals', async () => {
    const { a, asked } = access({});
    await code(a.authorize('Bearer x', 'authz:check', 'acme', 'r'));
    await code(a.authorize('Bearer x', 'authz:check', 'acme', 'r'));
    expect(asked).toEqual(['x', 'x']);
  });
});
