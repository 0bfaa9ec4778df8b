import { AuthClient, AuthClientError } from '@soma/auth-client';
import type { CallerAuthentication, CallerAuthenticator } from '../domain/caller-access.js';

/** Authz's callers, authenticated by the auth service (JWT or API key). Anything but a principal is a refusal. */
export class AuthServiceCallerAuthenticator implements CallerAuthenticator {
  constructor(private readonly client: AuthClient, private readonly deadlineMs: number) {}

  async authenticate(credential: string, requestId: string): Promise<CallerAuthentication> {
    try {
      const p = await this.client.authenticate(`Bearer ${credential}`, { requestId, deadlineMs: this.deadlineMs });
      const expires = p.expiresAt ? Date.parse(p.expiresAt) : Number.NaN;
      return { kind: 'ok', caller: { sub: p.sub, tenant: p.tenant, scopes: p.scopes }, ...(Number.isFinite(expires) ? { expiresAtMs: expires } : {}) };
    } catch (e) {
      if (e instanceof AuthClientError && e.isCredentialRejected) return { kind: 'rejected', reason: e.reason ?? 'UNAUTHENTICATED' };
      return { kind: 'unavailable', reason: e instanceof AuthClientError ? (e.reason ?? String(e.code)) : (e as Error).name };
    }
  }
}
