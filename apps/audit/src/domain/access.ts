import { AuditError, AuditErrorCode } from './audit.errors.js';

/**
 * Who may read the audit log (ADR 0405). Every API call is authenticated first (no credential or a
 * refused one → UNAUTHENTICATED), then authorised here (→ PERMISSION_DENIED):
 * - `audit:read`   QueryEvents, CountEvents — own tenant only unless the principal's tenant is `*`;
 * - `audit:export` the NDJSON export — same tenant rule;
 * - `audit:verify` VerifyChain — chains interleave every tenant, so only a `*` principal;
 * - `audit:admin`  all of the above.
 */
export type AuditScope = 'audit:read' | 'audit:export' | 'audit:verify';

export interface AuditCaller {
  subject: string;
  /** `*` = every tenant. */
  tenant: string;
  scopes: readonly string[];
  /** jti of the JWT or id of the API key (never the credential itself), when the authenticator knows it. */
  credential_id?: string;
}

/** Why a caller was refused; also the `reason` of its `audit_log_accessed` event. */
export type AccessDenialReason = 'missing_scope' | 'other_tenant' | 'not_all_tenants';

const holds = (caller: AuditCaller, scope: AuditScope) => caller.scopes.includes(scope) || caller.scopes.includes('audit:admin');

function denied(caller: AuditCaller, scope: AuditScope, why: AccessDenialReason): AuditError {
  return new AuditError(AuditErrorCode.PermissionDenied, 'the credential may not perform this operation', { caller_tenant: caller.tenant, needed: scope, why });
}

/**
 * The tenant a tenant-scoped read is confined to. A `*` principal reads what it asks for (all tenants when
 * none); anyone else reads only their own tenant, and asking for another one is refused, not narrowed.
 */
export function authorizeTenantRead(caller: AuditCaller, scope: 'audit:read' | 'audit:export', requestedTenant: string | undefined): string | undefined {
  if (!holds(caller, scope)) throw denied(caller, scope, 'missing_scope');
  if (caller.tenant === '*') return requestedTenant;
  if (requestedTenant !== undefined && requestedTenant !== caller.tenant) throw denied(caller, scope, 'other_tenant');
  return caller.tenant;
}

/** Operations over every tenant (chain verification): a `*` principal holding the scope. */
export function authorizeGlobal(caller: AuditCaller, scope: AuditScope): void {
  if (!holds(caller, scope)) throw denied(caller, scope, 'missing_scope');
  if (caller.tenant !== '*') throw denied(caller, scope, 'not_all_tenants');
}

/** The reason of a refusal raised above, or null when `e` is not one. */
export function denialReasonOf(e: unknown): AccessDenialReason | null {
  if (!(e instanceof AuditError) || e.code !== AuditErrorCode.PermissionDenied) return null;
  const why = e.detail?.['why'];
  return why === 'missing_scope' || why === 'other_tenant' || why === 'not_all_tenants' ? why : null;
}
