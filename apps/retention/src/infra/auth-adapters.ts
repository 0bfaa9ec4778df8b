import { status } from '@grpc/grpc-js';
import { AuthClientError, type AuthClient } from '@soma/auth-client';
import type { Authenticator, Caller, RequestContext, SubjectCredentials } from '../domain/ports.js';
import { RetentionError, RetentionErrorCode } from '../domain/retention.errors.js';

function callOptions(ctx: RequestContext, serviceCredential: string | undefined) {
  // Administrative calls carry the retention service's own credential; without one the caller's
  // bearer is forwarded (the caller then needs auth:admin itself).
  return { requestId: ctx.requestId, credential: serviceCredential ?? ctx.bearer };
}

function authFailure(e: unknown, what: string): RetentionError {
  if (e instanceof AuthClientError && (e.code === status.UNAUTHENTICATED || e.code === status.PERMISSION_DENIED)) {
    return new RetentionError(RetentionErrorCode.PermissionDenied, `the auth service refused to ${what}`, { auth_reason: e.reason, auth_request_id: e.requestId });
  }
  const detail = e instanceof AuthClientError ? { auth_code: e.code, auth_reason: e.reason, auth_request_id: e.requestId } : { error: (e as Error)?.name };
  return new RetentionError(RetentionErrorCode.AuthUnavailable, `the auth service could not ${what} now`, detail);
}

/** Bearer → caller through auth's Authenticate. Any failure is a refusal (fail closed). */
export class AuthServiceAuthenticator implements Authenticator {
  constructor(private readonly auth: AuthClient) {}

  async authenticate(bearer: string, ctx: RequestContext): Promise<Caller> {
    if (!bearer) throw new RetentionError(RetentionErrorCode.Unauthenticated, 'missing bearer credential');
    try {
      const p = await this.auth.authenticate(bearer, { requestId: ctx.requestId, ipAddress: ctx.ipAddress, userAgent: ctx.userAgent });
      return { sub: p.sub, tenant: p.tenant, scopes: p.scopes, credentialId: p.credentialId };
    } catch (e) {
      if (e instanceof AuthClientError && (e.code === status.UNAUTHENTICATED || e.code === status.PERMISSION_DENIED || e.code === status.RESOURCE_EXHAUSTED)) {
        throw new RetentionError(RetentionErrorCode.Unauthenticated, 'credential not accepted', { auth_reason: e.reason, auth_request_id: e.requestId });
      }
      throw authFailure(e, 'authenticate the caller');
    }
  }
}

/** The subject's API keys and tokens, through auth's admin RPCs. */
export class AuthServiceCredentials implements SubjectCredentials {
  constructor(private readonly auth: AuthClient, private readonly serviceCredential: string | undefined) {}

  async listApiKeys(tenant: string, userId: string, ctx: RequestContext): Promise<Array<Record<string, unknown>>> {
    try {
      const keys = await this.auth.listApiKeys(tenant, true, callOptions(ctx, this.serviceCredential));
      // Metadata only: the auth service never returns secrets; `masked` is already first 8 + last 4.
      return keys.filter((k) => k.owner_sub === userId).map((k) => ({ ...k }));
    } catch (e) {
      throw authFailure(e, 'list API keys');
    }
  }

  async revokeSubject(tenant: string, userId: string, ctx: RequestContext): Promise<{ apiKeysRevoked: number; tokensRevokedBefore: string }> {
    try {
      return await this.auth.revokeSubject(tenant, userId, callOptions(ctx, this.serviceCredential));
    } catch (e) {
      throw authFailure(e, 'revoke the subject');
    }
  }
}
