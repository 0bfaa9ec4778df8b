import { createHash, timingSafeEqual } from 'node:crypto';
import { AuthClient } from '@soma/auth-client';
import { AuditError, AuditErrorCode } from '../domain/audit.errors.js';

/** Who may export: `tenant` = '*' for every tenant, otherwise the only tenant they may read. */
export interface ExportGrant {
  subject: string;
  tenant: string;
}

export interface ExportAuthenticator {
  authenticate(authorization: string | undefined): Promise<ExportGrant>;
  close(): void;
}

const EXPORT_SCOPES = new Set(['audit:export', 'audit:admin']);
const digest = (s: string) => createHash('sha256').update(s, 'utf8').digest();

/**
 * Bearer authentication of the export: through the auth service when AUTH_GRPC_ADDRESS is set (JWT or
 * API key with scope audit:export; tenant-bound unless the credential's tenant is '*'), else a static
 * AUDIT_EXPORT_API_KEY (constant-time compare, all tenants). With neither, every request is refused.
 */
export function exportAuthenticator(options: { authAddress?: string; apiKey?: string }): ExportAuthenticator {
  const client = options.authAddress ? new AuthClient({ address: options.authAddress, deadlineMs: 2000 }) : undefined;
  const keyDigest = options.apiKey ? digest(options.apiKey) : undefined;
  const unauthenticated = () => new AuditError(AuditErrorCode.Unauthenticated, 'a valid bearer credential is required');
  return {
    async authenticate(authorization) {
      if (!authorization || !/^Bearer\s+\S+$/i.test(authorization)) throw unauthenticated();
      const token = authorization.replace(/^Bearer\s+/i, '');
      if (keyDigest && timingSafeEqual(digest(token), keyDigest)) return { subject: 'export-api-key', tenant: '*' };
      if (client) {
        const principal = await client.tryAuthenticate(authorization);
        if (!principal) throw unauthenticated();
        if (!principal.scopes.some((s) => EXPORT_SCOPES.has(s))) {
          throw new AuditError(AuditErrorCode.PermissionDenied, 'the credential lacks scope audit:export');
        }
        return { subject: principal.sub, tenant: principal.tenant };
      }
      throw unauthenticated();
    },
    close() {
      client?.close();
    },
  };
}
