import { AuthError, AuthErrorCode } from './auth.errors.js';
import type { AuthEvents, RequestContext } from './auth-events.js';
import type { ApiKeyService, ApiKeyVerification, VerifyApiKeyResult } from './api-key-service.js';
import { canAdminister, type Principal } from './principal.js';
import type { TokenService, VerifiedToken } from './token-service.js';

const API_KEY_ERRORS: Record<Exclude<VerifyApiKeyResult, 'VALID'>, [AuthErrorCode, string, string]> = {
  NOT_FOUND: [AuthErrorCode.InvalidCredential, 'invalid credential', 'unknown_key'],
  REVOKED: [AuthErrorCode.ApiKeyRevoked, 'api key revoked', 'revoked'],
  EXPIRED: [AuthErrorCode.ApiKeyExpired, 'api key expired', 'expired'],
  RATE_LIMITED: [AuthErrorCode.ApiKeyRateLimited, 'api key rate limit exceeded', 'rate_limited'],
  USAGE_EXCEEDED: [AuthErrorCode.ApiKeyUsageExceeded, 'api key usage budget exhausted', 'usage_exceeded'],
  INSUFFICIENT_SCOPE: [AuthErrorCode.InsufficientScope, 'insufficient scope', 'insufficient_scope'],
};

const TOKEN_REASONS: Partial<Record<AuthErrorCode, string>> = {
  [AuthErrorCode.TokenExpired]: 'expired',
  [AuthErrorCode.TokenNotYetValid]: 'not_yet_valid',
  [AuthErrorCode.TokenRevoked]: 'revoked',
  [AuthErrorCode.InsufficientScope]: 'insufficient_scope',
  [AuthErrorCode.InvalidToken]: 'invalid_token',
};

/** "Who is calling?" for any bearer credential: an API key of this deployment, or a JWT. */
export class Authenticator {
  constructor(
    private readonly tokens: TokenService,
    private readonly apiKeys: ApiKeyService,
    private readonly events: AuthEvents,
    private readonly apiKeyPrefix: string,
  ) {}

  async authenticate(bearer: string, requiredScopes: readonly string[] = [], ctx?: RequestContext): Promise<Principal> {
    const credential = bearer.replace(/^\s*bearer\s+/i, '').trim();
    if (!credential) {
      this.events.failed('missing_credential', { method: 'none' }, ctx);
      throw new AuthError(AuthErrorCode.MissingCredential, 'missing credential');
    }
    if (credential.startsWith(this.apiKeyPrefix)) {
      const v = await this.verifyApiKey(credential, requiredScopes, ctx);
      if (v.result === 'VALID' && v.principal) return v.principal;
      const [code, message, reason] = API_KEY_ERRORS[v.result as Exclude<VerifyApiKeyResult, 'VALID'>];
      throw new AuthError(code, message, { reason, ...(v.retryAfterMs ? { retry_after_ms: v.retryAfterMs } : {}) });
    }
    return (await this.verifyToken(credential, requiredScopes, ctx)).principal;
  }

  /** VerifyApiKey and the API-key half of Authenticate: a typed result, and the same events. */
  async verifyApiKey(key: string, requiredScopes: readonly string[] = [], ctx?: RequestContext): Promise<ApiKeyVerification> {
    const v = await this.apiKeys.verify(key, requiredScopes);
    if (v.result === 'VALID' && v.principal) this.events.succeeded(v.principal, ctx);
    else {
      const reason = API_KEY_ERRORS[v.result as Exclude<VerifyApiKeyResult, 'VALID'>][2];
      this.events.failed(reason, { method: 'api_key', ...(v.record ? { tenant: v.record.tenant, credential_id: v.record.id, ...(v.record.owner_sub ? { sub: v.record.owner_sub } : {}) } : {}) }, ctx);
    }
    return v;
  }

  /** VerifyToken and the JWT half of Authenticate: the same checks, the same events. */
  async verifyToken(token: string, requiredScopes: readonly string[] = [], ctx?: RequestContext): Promise<VerifiedToken> {
    try {
      const t = await this.tokens.verify(token, requiredScopes);
      this.events.succeeded(t.principal, ctx);
      return t;
    } catch (e) {
      if (e instanceof AuthError && e.code !== AuthErrorCode.Unavailable) {
        const reason = TOKEN_REASONS[e.code] ?? 'invalid_token';
        const who = e.detail as { tenant?: string; sub?: string; jti?: string } | undefined;
        this.events.failed(reason, { method: 'jwt', ...(who?.tenant ? { tenant: who.tenant, sub: who.sub, credential_id: who.jti } : {}) }, ctx);
      }
      throw e;
    }
  }

  /** The caller of an administrative operation must hold auth:admin for the tenant (or for `*`). */
  async requireAdmin(bearer: string | undefined, tenant: string, ctx?: RequestContext): Promise<Principal> {
    if (!bearer) throw new AuthError(AuthErrorCode.MissingCredential, 'missing credential');
    const p = await this.authenticate(bearer, [], ctx);
    if (!canAdminister(p, tenant)) {
      this.events.failed('not_admin', { tenant, method: p.method, credential_id: p.credential_id, sub: p.sub }, ctx);
      throw new AuthError(AuthErrorCode.PermissionDenied, 'permission denied');
    }
    return p;
  }
}
