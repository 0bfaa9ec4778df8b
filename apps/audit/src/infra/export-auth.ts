import type { ChannelCredentials } from '@grpc/grpc-js';
import { createHash, timingSafeEqual } from 'node:crypto';
import { AuthClient, AuthClientError } from '@soma/auth-client';
import type { AuditCaller } from '../domain/access.js';
import { AuditError, AuditErrorCode } from '../domain/audit.errors.js';

/** Bearer credential → caller, for every audit API (gRPC and HTTP). Never resolves for an unknown caller. */
export interface AuditAuthenticator {
  authenticate(authorization: string | undefined): Promise<AuditCaller>;
  close(): void;
}

const digest = (s: string) => createHash('sha256').update(s, 'utf8').digest();

/** What the static AUDIT_EXPORT_API_KEY may do: export and verify every tenant; no per-user queries. */
const STATIC_KEY_CALLER: AuditCaller = Object.freeze({ subject: 'audit-export-api-key', tenant: '*', scopes: Object.freeze(['audit:export', 'audit:verify']) });

/**
 * `authorization: Bearer …` → caller. First the static AUDIT_EXPORT_API_KEY (constant-time compare), then
 * the auth service when AUTH_GRPC_ADDRESS is set (JWT or API key; scopes and tenant as issued). A refused
 * credential is UNAUTHENTICATED; auth unreachable is UNAVAILABLE (fail closed). With neither configured,
 * every request is refused.
 */
export function auditAuthenticator(options: { authAddress?: string; deadlineMs: number; apiKey?: string; credentials?: ChannelCredentials }): AuditAuthenticator {
  const client = options.authAddress ? new AuthClient({ address: options.authAddress, deadlineMs: options.deadlineMs, credentials: options.credentials }) : undefined;
  const keyDigest = options.apiKey ? digest(options.apiKey) : undefined;
  const unauthenticated = (detail?: Record<string, unknown>) => new AuditError(AuditErrorCode.Unauthenticated, 'a valid bearer credential is required', detail);
  return {
    async authenticate(authorization) {
      if (!authorization || !/^Bearer\s+\S+$/i.test(authorization)) throw unauthenticated();
      const token = authorization.replace(/^Bearer\s+/i, '');
      if (keyDigest && timingSafeEqual(digest(token), keyDigest)) return STATIC_KEY_CALLER;
      if (!client) throw unauthenticated();
      try {
        const p = await client.authenticate(authorization);
        return { subject: p.sub, tenant: p.tenant, scopes: p.scopes, credential_id: p.credentialId };
      } catch (e) {
        if (e instanceof AuthClientError && (e.isCredentialRejected || e.code === 8 /* RESOURCE_EXHAUSTED: rate-limited key */)) {
          throw unauthenticated({ auth_reason: e.reason, auth_request_id: e.requestId });
        }
        const detail = e instanceof AuthClientError ? { auth_code: e.code, auth_reason: e.reason } : { error: (e as Error)?.name };
        throw new AuditError(AuditErrorCode.Unavailable, 'the credential cannot be checked now', detail);
      }
    },
    close() {
      client?.close();
    },
  };
}
