import { createHash } from 'node:crypto';
import { ExpiringCache } from '@soma/expiring-cache';
import { AuthzError, AuthzErrorCode } from './authz.errors.js';

/** What a caller of authz may do; granted as auth scopes (`authz:admin` implies all three). */
export type AuthzPermission = 'authz:check' | 'authz:write' | 'authz:read';

/** The tenant of platform principals (auth's cross-tenant operators and services): any tenant. */
export const ANY_TENANT = '*';

export interface AuthzCaller {
  sub: string;
  tenant: string;
  scopes: readonly string[];
}

/** Outcome of authenticating a credential with auth. */
export type CallerAuthentication =
  | { kind: 'ok'; caller: AuthzCaller; expiresAtMs?: number }
  | { kind: 'rejected'; reason: string }
  | { kind: 'unavailable'; reason: string };

export interface CallerAuthenticator {
  authenticate(credential: string, requestId: string): Promise<CallerAuthentication>;
}

export interface CallerAccessOptions {
  /** `off` answers every caller (development default); `required` authenticates and authorizes each call. */
  mode: 'required' | 'off';
  authenticator: CallerAuthenticator | undefined;
  /** How long an authenticated credential is trusted without asking auth again (revocation delay bound). */
  cacheTtlMs: number;
  cacheMax?: number;
  now?: () => number;
}

const BEARER = /^Bearer ([\x21-\x7e]{1,4096})$/;

/**
 * Who may ask authz: every gRPC call and the policy view carry `authorization: Bearer <JWT or API key>`,
 * authenticated by auth (cached for `cacheTtlMs`, never beyond the credential's expiry). The caller needs
 * the call's permission as a scope, and its tenant must be the tenant the call is about, unless it is a
 * platform principal (tenant `*`). Calls about no tenant (global policy view, system evaluations) need `*`.
 */
export class CallerAccess {
  private readonly cache: ExpiringCache<AuthzCaller> | undefined;
  private readonly now: () => number;

  constructor(private readonly o: CallerAccessOptions) {
    if (o.mode === 'required' && !o.authenticator) throw new Error('caller authentication is required but no authenticator is configured');
    this.now = o.now ?? Date.now;
    this.cache = o.cacheTtlMs > 0 ? new ExpiringCache(o.cacheMax ?? 10_000) : undefined;
  }

  get required(): boolean {
    return this.o.mode === 'required';
  }

  /**
   * Throws UNAUTHENTICATED (no / malformed / refused credential), UNAVAILABLE (auth could not answer) or
   * PERMISSION_DENIED (missing scope, other tenant). `tenant` is the tenant the request is about, or
   * undefined for global resources. Returns the caller (undefined when mode is `off`).
   */
  async authorize(authorization: string | undefined, permission: AuthzPermission, tenant: string | undefined, requestId: string): Promise<AuthzCaller | undefined> {
    if (this.o.mode === 'off') return undefined;
    const m = BEARER.exec(authorization ?? '');
    if (!m) throw new AuthzError(AuthzErrorCode.Unauthenticated, 'a credential is required: authorization: Bearer <token or API key>');
    const caller = await this.authenticate(m[1]!, requestId);
    if (!caller.scopes.includes(permission) && !caller.scopes.includes('authz:admin')) {
      throw new AuthzError(AuthzErrorCode.PermissionDenied, `${permission} is not granted to this caller`, { sub: caller.sub, tenant: caller.tenant });
    }
    if (caller.tenant !== ANY_TENANT && (tenant === undefined || tenant !== caller.tenant)) {
      throw new AuthzError(AuthzErrorCode.PermissionDenied, tenant === undefined ? 'this call needs a platform credential (tenant *)' : 'the caller may only ask about its own tenant', {
        sub: caller.sub,
        caller_tenant: caller.tenant,
        tenant,
      });
    }
    return caller;
  }

  private async authenticate(credential: string, requestId: string): Promise<AuthzCaller> {
    const key = createHash('sha256').update(credential).digest('base64url');
    const now = this.now();
    const hit = this.cache?.get(key, now);
    if (hit) return hit;
    const r = await this.o.authenticator!.authenticate(credential, requestId);
    switch (r.kind) {
      case 'rejected':
        throw new AuthzError(AuthzErrorCode.Unauthenticated, 'the credential was refused', { auth_reason: r.reason });
      case 'unavailable':
        throw new AuthzError(AuthzErrorCode.Unavailable, 'the credential could not be verified now', { auth_reason: r.reason });
      case 'ok': {
        // Never trusted beyond the credential's own expiry.
        this.cache?.set(key, r.caller, Math.min(now + this.o.cacheTtlMs, r.expiresAtMs ?? Number.POSITIVE_INFINITY), now);
        return r.caller;
      }
    }
  }
}
