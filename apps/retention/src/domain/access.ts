import { RetentionError, RetentionErrorCode } from './retention.errors.js';
import type { Caller } from './ports.js';

export type Scope = 'retention:admin' | 'gdpr:export' | 'gdpr:erase' | 'consent:read' | 'consent:write';

/** A principal of tenant `*` acts on any tenant, otherwise only on its own. */
export function actsOnTenant(caller: Caller, tenant: string): boolean {
  return caller.tenant === '*' || caller.tenant === tenant;
}

/** The data subject themself: same tenant (exactly, not `*`) and same sub. */
export function isSelf(caller: Caller, tenant: string, userId: string): boolean {
  return caller.tenant === tenant && caller.sub === userId;
}

/**
 * Allow when the caller holds one of `scopes` for `tenant`, or (when `allowSelf`) is the subject.
 * Everything else is PERMISSION_DENIED; the message never says which rule would have let it pass.
 */
export function authorize(caller: Caller, scopes: Scope[], target: { tenant: string; userId?: string; allowSelf?: boolean }): 'self' | 'scope' {
  if (target.allowSelf && target.userId !== undefined && isSelf(caller, target.tenant, target.userId)) return 'self';
  if (actsOnTenant(caller, target.tenant) && scopes.some((s) => caller.scopes.includes(s))) return 'scope';
  throw new RetentionError(RetentionErrorCode.PermissionDenied, 'caller may not perform this operation', {
    caller_tenant: caller.tenant,
    needed: scopes,
    target_tenant: target.tenant,
  });
}

/** Cross-tenant operations (policies span every tenant): only a `*` principal with the scope. */
export function authorizeGlobal(caller: Caller, scope: Scope): void {
  if (caller.tenant === '*' && caller.scopes.includes(scope)) return;
  throw new RetentionError(RetentionErrorCode.PermissionDenied, 'caller may not perform this operation', { caller_tenant: caller.tenant, needed: scope });
}
