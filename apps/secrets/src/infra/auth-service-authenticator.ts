import { AuthClient, AuthClientError } from '@soma/auth-client';
import type { Caller, CallerAuthenticator, RequestContext } from '../domain/ports.js';
import { SecretsError, SecretsErrorCode } from '../domain/secrets.errors.js';

/** Callers authenticated by the auth service (JWT or API key); anything but a principal is a refusal. */
export class AuthServiceAuthenticator implements CallerAuthenticator {
  constructor(private readonly client: AuthClient, private readonly deadlineMs: number) {}

  async authenticate(credential: string, ctx: RequestContext): Promise<Caller> {
    try {
      const p = await this.client.authenticate(credential, {
        requestId: ctx.requestId,
        deadlineMs: this.deadlineMs,
        ...(ctx.ipAddress ? { ipAddress: ctx.ipAddress } : {}),
        ...(ctx.userAgent ? { userAgent: ctx.userAgent } : {}),
      });
      // An expiry auth sent but we cannot read counts as already past: such a caller is never cached.
      const expiresAt = p.expiresAt === undefined ? undefined : Date.parse(p.expiresAt);
      return {
        sub: p.sub,
        tenant: p.tenant,
        personaId: p.personaId,
        scopes: p.scopes,
        method: p.method,
        credentialId: p.credentialId,
        ...(expiresAt === undefined ? {} : { expiresAtMs: Number.isFinite(expiresAt) ? expiresAt : 0 }),
      };
    } catch (e) {
      if (e instanceof AuthClientError && e.isCredentialRejected) {
        throw new SecretsError(SecretsErrorCode.Unauthenticated, 'the credential was refused', { auth_reason: e.reason });
      }
      throw new SecretsError(SecretsErrorCode.Unavailable, 'the credential could not be verified now', {
        auth_reason: e instanceof AuthClientError ? e.reason ?? e.code : (e as Error).name,
      });
    }
  }
}
